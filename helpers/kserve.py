"""KServe objects for the cluster path: a vLLM ServingRuntime and one
InferenceService per model, deployed from a ModelCar by ``oci://`` URI on an L4
GPU node. Rendered as plain dicts (YAML-ready) and validated offline.

KServe pulls the ModelCar image as a sidecar and links its /models to
/mnt/models (``storageInitializer.enableModelcar: true`` in the
``inferenceservice-config`` ConfigMap); vLLM then serves /mnt/models.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import yaml

from .errors import WorkshopError
from .generated import stale_files, write_files

SCHEMA_DIR = Path(__file__).parent / "schemas"
VLLM_IMAGE = "docker.io/vllm/vllm-openai:latest"  # on OpenShift AI: the image of its vLLM runtime template; pin a tag you validated
DEFAULT_MODELCAR = "oci://quay.io/redhat-ai-services/modelcar-catalog:granite-3.1-2b-instruct"


class ManifestError(WorkshopError):
    """A rendered object does not match the KServe schema."""


@dataclass(frozen=True)
class L4Profile:
    """The L4 hardware profile: one 24 GB NVIDIA L4 per replica."""

    gpus: int = 1
    cpu: str = "4"
    memory: str = "24Gi"
    gpu_product: str = "NVIDIA-L4"
    taint_key: str = "nvidia.com/gpu"

    def resources(self) -> dict:
        amounts = {"cpu": self.cpu, "memory": self.memory, "nvidia.com/gpu": str(self.gpus)}
        return {"requests": dict(amounts), "limits": dict(amounts)}  # GPUs: requests = limits

    def scheduling(self) -> dict:
        return {
            "tolerations": [{"key": self.taint_key, "operator": "Exists", "effect": "NoSchedule"}],
            "nodeSelector": {"nvidia.com/gpu.product": self.gpu_product},
        }


@dataclass(frozen=True)
class ModelDeployment:
    """One model of the GitOps model list: a name and the ModelCar it comes from."""

    name: str
    storage_uri: str = DEFAULT_MODELCAR
    namespace: str = "maas-models"
    max_model_len: int = 8192
    profile: L4Profile = field(default_factory=L4Profile)

    def __post_init__(self) -> None:
        if not self.storage_uri.startswith("oci://"):
            raise ManifestError(f"storage_uri must be an oci:// ModelCar reference, got {self.storage_uri!r}")


def serving_runtime(name: str = "vllm-runtime", namespace: str = "maas-models") -> dict:
    """The vLLM ServingRuntime every model InferenceService uses."""
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ServingRuntime",
        "metadata": {"name": name, "namespace": namespace,
                     "annotations": {"opendatahub.io/recommended-accelerators": '["nvidia.com/gpu"]'}},
        "spec": {
            "supportedModelFormats": [{"name": "vLLM", "autoSelect": True}],
            "multiModel": False,
            "containers": [{
                "name": "kserve-container",
                "image": VLLM_IMAGE,
                "command": ["python", "-m", "vllm.entrypoints.openai.api_server"],
                "args": ["--port=8080", "--model=/mnt/models", "--served-model-name={{.Name}}"],
                "env": [{"name": "HF_HOME", "value": "/tmp/hf_home"}],
                "ports": [{"containerPort": 8080, "protocol": "TCP"}],
            }],
        },
    }


def inference_service(model: ModelDeployment, runtime: str = "vllm-runtime") -> dict:
    """One InferenceService serving a ModelCar on the L4 profile."""
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": model.name, "namespace": model.namespace,
                     "annotations": {"serving.kserve.io/deploymentMode": "RawDeployment"}},
        "spec": {
            "predictor": {
                "minReplicas": 1,
                "maxReplicas": 1,
                "model": {
                    "modelFormat": {"name": "vLLM"},
                    "runtime": runtime,
                    "storageUri": model.storage_uri,
                    "args": [f"--max-model-len={model.max_model_len}"],
                    "resources": model.profile.resources(),
                },
                **model.profile.scheduling(),
            }
        },
    }


def _schema(kind: str) -> dict:
    return json.loads((SCHEMA_DIR / f"{kind}.json").read_text())


def validate(obj: dict) -> None:
    """Check a rendered object against the KServe schema; unknown fields are errors."""
    kind = obj.get("kind")
    if kind not in ("InferenceService", "ServingRuntime"):
        raise ManifestError(f"no schema for kind {kind!r}")
    errors = sorted(jsonschema.Draft202012Validator(_schema(kind)).iter_errors(obj), key=lambda e: list(e.path))
    if errors:
        lines = [f"- {'.'.join(str(p) for p in e.path) or '(top)'}: {e.message}" for e in errors]
        raise ManifestError(f"{kind} {obj.get('metadata', {}).get('name')!r} is not valid:\n" + "\n".join(lines))


def to_yaml(*objects: dict) -> str:
    return "---\n".join(yaml.safe_dump(o, sort_keys=False) for o in objects)


# The GitOps model list: one InferenceService per model, kept in git under manifests/.
GITOPS_MODELS = (
    ModelDeployment("granite-3-1-2b-instruct", DEFAULT_MODELCAR),
)

MODELCAR_CONFIG_PATCH = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "inferenceservice-config", "namespace": "kserve"},
    "data": {"storageInitializer": json.dumps({"enableModelcar": True, "cpuModelcar": "10m", "memoryModelcar": "15Mi"})},
}


def render_manifests(models: tuple[ModelDeployment, ...] = GITOPS_MODELS) -> dict[str, str]:
    """Every file of manifests/ (path relative to it -> YAML text), validated."""
    runtime = serving_runtime()
    validate(runtime)
    files = {"base/serving-runtime-vllm.yaml": to_yaml(runtime),
             "kserve/inferenceservice-config-modelcar.yaml": to_yaml(MODELCAR_CONFIG_PATCH)}
    for model in models:
        isvc = inference_service(model)
        validate(isvc)
        files[f"models/{model.name}.yaml"] = to_yaml(isvc)
    files["kustomization.yaml"] = to_yaml({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": ["base/namespace.yaml", "base/serving-runtime-vllm.yaml"] + [f"models/{m.name}.yaml" for m in models],
    })
    files["base/namespace.yaml"] = to_yaml({"apiVersion": "v1", "kind": "Namespace",
                                            "metadata": {"name": models[0].namespace if models else "maas-models"}})
    header = "# Generated by `python -m helpers render-manifests` from helpers/kserve.py; edit there.\n"
    return {path: header + text for path, text in sorted(files.items())}


def stale_manifests(root: Path) -> list[str]:
    """Files of manifests/ that differ from what the helpers render."""
    return stale_files(root, render_manifests())


def write_manifests(root: Path) -> list[Path]:
    return write_files(root, render_manifests())
