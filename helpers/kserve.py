"""KServe objects for the cluster path: a vLLM ServingRuntime and one
InferenceService per model, deployed from a ModelCar by ``oci://`` URI on an L4
GPU node, and the OpenShift AI HardwareProfile of that node. Rendered as plain
dicts (YAML-ready) and validated offline against schemas derived from the CRDs.

KServe pulls the ModelCar image as a sidecar and links its /models to
/mnt/models (``storageInitializer.enableModelcar: true`` in the
``inferenceservice-config`` ConfigMap); vLLM then serves /mnt/models.

How a model reaches its GPU: on OpenShift AI the InferenceService names a
HardwareProfile (annotation) and OpenShift AI's webhook injects the node
selector and tolerations; elsewhere the InferenceService carries them itself.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import yaml

from .cluster.labels import SHARED_OWNER, workshop_labels
from .errors import WorkshopError

SCHEMA_DIR = Path(__file__).parent / "schemas"
# vLLM's CUDA image, by tag and digest as a public repository pins it (tinfoilsh/vllm-openai-audio, Dockerfile:
# "FROM vllm/vllm-openai:v0.14.0@sha256:1d6866b8..."). On OpenShift AI the platform's own vllm-cuda-runtime is
# referenced instead (overlays/openshift).
VLLM_IMAGE = ("docker.io/vllm/vllm-openai:v0.14.0"
              "@sha256:1d6866b87630d94f5e0cdae55ab5abb4ce0b03fcb84d9d10612f9d518d19d4fd")
# vLLM's CPU image for kind (x86-64 with AVX-512 or AVX2: see shared FACTS). vLLM 0.30.0 is a release (PyPI: vllm
# 0.30.0); vllm-project/vllm .buildkite/scripts/annotate-release.sh pushes each release as
# vllm/vllm-openai-cpu:v<version>-x86_64. No digest: no source we can cite gives one.
VLLM_CPU_IMAGE = "docker.io/vllm/vllm-openai-cpu:v0.30.0-x86_64"
DEFAULT_MODELCAR = "oci://quay.io/redhat-ai-services/modelcar-catalog:granite-3.1-2b-instruct"
DEFAULT_RUNTIME = "vllm-runtime"
OPENSHIFT_AI_RUNTIME = "vllm-cuda-runtime"  # from the vllm-cuda-runtime-template in redhat-ods-applications
HARDWARE_PROFILE_NAME = "opendatahub.io/hardware-profile-name"
HARDWARE_PROFILE_NAMESPACE = "opendatahub.io/hardware-profile-namespace"
DEPLOYMENT_MODE = "serving.kserve.io/deploymentMode"
KSERVE_SCHEMA_KINDS = ("InferenceService", "ServingRuntime", "HardwareProfile", "Route")


class ManifestError(WorkshopError):
    """A rendered object does not match its schema or the workshop's rules."""


@dataclass(frozen=True)
class L4Profile:
    """The L4 hardware profile: one 24 GB NVIDIA L4 per replica."""

    gpus: int = 1
    cpu: str = "4"
    memory: str = "24Gi"
    gpu_product: str = "NVIDIA-L4"
    taint_key: str = "nvidia.com/gpu"
    name: str = "nvidia-l4"  # the OpenShift AI HardwareProfile
    namespace: str = "redhat-ods-applications"

    def resources(self) -> dict:
        amounts = {"cpu": self.cpu, "memory": self.memory}
        if self.gpus:
            amounts["nvidia.com/gpu"] = str(self.gpus)
        return {"requests": dict(amounts), "limits": dict(amounts)}  # GPUs: requests = limits

    def scheduling(self) -> dict:
        if not self.gpus:
            return {}
        return {
            "tolerations": [{"key": self.taint_key, "operator": "Exists", "effect": "NoSchedule"}],
            "nodeSelector": {"nvidia.com/gpu.product": self.gpu_product},
        }


CPU_PROFILE = L4Profile(gpus=0, cpu="2", memory="4Gi", name="", namespace="")  # kind: no GPU


@dataclass(frozen=True)
class ModelDeployment:
    """One model of the GitOps model list: a name and the ModelCar it comes from."""

    name: str
    storage_uri: str = DEFAULT_MODELCAR
    namespace: str = "maas-models"
    max_model_len: int = 8192
    profile: L4Profile = field(default_factory=L4Profile)
    display_name: str = ""
    owner: str = SHARED_OWNER
    shared: bool = True  # reached through the gateway only; never exposed by a Route
    extra_args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.storage_uri.startswith("oci://"):
            raise ManifestError(f"storage_uri must be an oci:// ModelCar reference, got {self.storage_uri!r}")
        reference = self.storage_uri.removeprefix("oci://")
        if "@" not in reference and (":" not in reference.rsplit("/", 1)[-1] or reference.endswith(":latest")):
            raise ManifestError(f"pin the ModelCar of {self.name!r} by tag or digest (not latest): {self.storage_uri}")


def serving_runtime(name: str = DEFAULT_RUNTIME, namespace: str = "maas-models", image: str = VLLM_IMAGE,
                    extra_args: tuple[str, ...] = (), env: tuple[tuple[str, str], ...] = ()) -> dict:
    """The vLLM ServingRuntime every model InferenceService uses (as OpenShift AI's template shapes it)."""
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ServingRuntime",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {**workshop_labels(SHARED_OWNER, "serving-runtime"), "opendatahub.io/dashboard": "true"},
                     "annotations": {"opendatahub.io/recommended-accelerators": '["nvidia.com/gpu"]',
                                     "openshift.io/display-name": "vLLM (MaaS workshop)"}},
        "spec": {
            "annotations": {"prometheus.io/port": "8080", "prometheus.io/path": "/metrics"},
            "supportedModelFormats": [{"name": "vLLM", "autoSelect": True}],
            "multiModel": False,
            "containers": [{
                "name": "kserve-container",
                "image": image,
                "command": ["python3", "-m", "vllm.entrypoints.openai.api_server"],
                "args": ["--port=8080", "--model=/mnt/models", "--served-model-name={{.Name}}", *extra_args],
                "env": [{"name": "HF_HOME", "value": "/tmp/hf_home"}, {"name": "VLLM_NO_USAGE_STATS", "value": "1"},
                        *({"name": k, "value": v} for k, v in env)],
                "ports": [{"containerPort": 8080, "protocol": "TCP"}],
            }],
        },
    }


def inference_service(model: ModelDeployment, runtime: str = DEFAULT_RUNTIME, *, hardware_profile: bool = False,
                      dashboard: bool = False) -> dict:
    """One InferenceService serving a ModelCar (raw deployment mode, GPU request = limit).

    ``hardware_profile``: name the OpenShift AI profile (its webhook adds node selector and
    tolerations) instead of writing them here; ``dashboard``: show it in the OpenShift AI UI.
    """
    annotations = {DEPLOYMENT_MODE: "RawDeployment"}
    labels = workshop_labels(model.owner, "model", shared=model.shared)
    if hardware_profile and model.profile.gpus:
        annotations[HARDWARE_PROFILE_NAME] = model.profile.name
        annotations[HARDWARE_PROFILE_NAMESPACE] = model.profile.namespace
    if dashboard:
        labels["opendatahub.io/dashboard"] = "true"
        annotations["openshift.io/display-name"] = model.display_name or model.name
    predictor = {
        "minReplicas": 1,
        "maxReplicas": 1,
        "model": {
            "modelFormat": {"name": "vLLM"},
            "runtime": runtime,
            "storageUri": model.storage_uri,
            "args": [f"--max-model-len={model.max_model_len}", *model.extra_args],
            "resources": model.profile.resources(),
        },
    }
    if not (hardware_profile and model.profile.gpus):
        predictor.update(model.profile.scheduling())
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": model.name, "namespace": model.namespace, "labels": labels, "annotations": annotations},
        "spec": {"predictor": predictor},
    }


def hardware_profile(profile: L4Profile = L4Profile()) -> dict:
    """The OpenShift AI HardwareProfile (infrastructure.opendatahub.io/v1) of the L4 nodes."""
    return {
        "apiVersion": "infrastructure.opendatahub.io/v1",
        "kind": "HardwareProfile",
        "metadata": {
            "name": profile.name, "namespace": profile.namespace,
            "labels": workshop_labels(SHARED_OWNER, "hardware-profile"),
            "annotations": {"opendatahub.io/display-name": f"{profile.gpu_product.replace('-', ' ')} (24 GB)",
                            "opendatahub.io/description": "One NVIDIA L4 per replica: the MaaS workshop's models",
                            "opendatahub.io/disabled": "false"},
        },
        "spec": {
            "identifiers": [
                {"displayName": "CPU", "identifier": "cpu", "resourceType": "CPU",
                 "minCount": 1, "maxCount": 8, "defaultCount": int(profile.cpu)},
                {"displayName": "Memory", "identifier": "memory", "resourceType": "Memory",
                 "minCount": "8Gi", "maxCount": "48Gi", "defaultCount": profile.memory},
                {"displayName": "NVIDIA L4", "identifier": "nvidia.com/gpu", "resourceType": "Accelerator",
                 "minCount": profile.gpus, "maxCount": profile.gpus, "defaultCount": profile.gpus},
            ],
            "scheduling": {"type": "Node", "node": profile.scheduling()},
        },
    }


def _schema(kind: str) -> dict:
    return json.loads((SCHEMA_DIR / f"{kind}.json").read_text())


def validate(obj: dict) -> None:
    """Check a rendered object against its CRD-derived schema; unknown fields are errors."""
    kind = obj.get("kind")
    if kind not in KSERVE_SCHEMA_KINDS:
        raise ManifestError(f"no schema for kind {kind!r}; known: {', '.join(KSERVE_SCHEMA_KINDS)}")
    errors = sorted(jsonschema.Draft202012Validator(_schema(kind)).iter_errors(obj), key=lambda e: list(e.path))
    if errors:
        lines = [f"- {'.'.join(str(p) for p in e.path) or '(top)'}: {e.message}" for e in errors]
        raise ManifestError(f"{kind} {obj.get('metadata', {}).get('name')!r} is not valid:\n" + "\n".join(lines))


def to_yaml(*objects: dict) -> str:
    return "---\n".join(yaml.safe_dump(o, sort_keys=False) for o in objects)


MODELCAR_CONFIG_PATCH = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "inferenceservice-config", "namespace": "kserve"},
    "data": {"storageInitializer": json.dumps({"enableModelcar": True, "cpuModelcar": "10m", "memoryModelcar": "15Mi"})},
}


def render_manifests() -> dict[str, str]:
    """Every generated file of manifests/ (path relative to it -> YAML text), validated."""
    from .cluster.manifests import render_tree

    return render_tree()


def stale_manifests(root: Path) -> list[str]:
    """Files of manifests/ that differ from what the helpers render."""
    from .generated import stale_files

    return stale_files(root, render_manifests())


def write_manifests(root: Path) -> list[Path]:
    from .generated import write_files

    return write_files(root, render_manifests())
