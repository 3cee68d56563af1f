"""Read the state of an InferenceService and its predictor pods: pure functions on
the plain dicts the Kubernetes API returns (``ApiClient().sanitize_for_serialization``
or a custom-objects call), so they are tested without a cluster.

Where the truth is (see shared CLUSTER.md): ``.status.conditions`` (``Ready`` from
``PredictorReady`` and ``IngressReady``), ``.status.modelStatus`` (transition and
last failure), and, for "no GPU for it", the predictor *pods* (PodScheduled=False,
reason Unschedulable, "Insufficient nvidia.com/gpu"), never the InferenceService.
"""
from __future__ import annotations

from dataclasses import dataclass

GPU_RESOURCE = "nvidia.com/gpu"
ISVC_POD_LABEL = "serving.kserve.io/inferenceservice"
IMAGE_PULL_REASONS = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"})
CRASH_REASONS = frozenset({"CrashLoopBackOff", "CreateContainerConfigError", "CreateContainerError"})
FAILED_MODEL_STATES = frozenset({"FailedToLoad"})
FAILED_TRANSITIONS = frozenset({"BlockedByFailedLoad", "InvalidSpec"})


@dataclass(frozen=True)
class Problem:
    """Why a deployment is not ready: a kind the platform maps to an error, and the API's words."""

    kind: str  # "no-gpu" | "unschedulable" | "image-pull" | "crash" | "model-load" | "invalid-spec" | "not-ready"
    message: str
    final: bool  # True: waiting longer will not help


@dataclass(frozen=True)
class ServiceState:
    """What one InferenceService says about itself."""

    name: str
    ready: bool
    url: str | None  # external URL (status.url) when the platform made one
    internal_url: str | None  # status.address.url: the in-cluster address
    problem: Problem | None


def condition(status: dict | None, kind: str) -> dict | None:
    """The condition of that type in a ``.status``, or None."""
    for entry in (status or {}).get("conditions") or []:
        if entry.get("type") == kind:
            return entry
    return None


def is_true(status: dict | None, kind: str) -> bool:
    found = condition(status, kind)
    return bool(found) and str(found.get("status")) == "True"


def _model_status_problem(model_status: dict) -> Problem | None:
    failure = model_status.get("lastFailureInfo") or {}
    states = model_status.get("states") or {}
    transition = model_status.get("transitionStatus")
    if states.get("activeModelState") in FAILED_MODEL_STATES or states.get("targetModelState") in FAILED_MODEL_STATES \
            or transition in FAILED_TRANSITIONS:
        reason = failure.get("reason") or transition or "FailedToLoad"
        text = f"{reason}: {failure.get('message') or 'the model failed to load'}"
        if failure.get("exitCode") is not None:
            text += f" (exit code {failure['exitCode']})"
        return Problem("invalid-spec" if transition == "InvalidSpec" else "model-load", text, final=True)
    return None


def service_state(isvc: dict) -> ServiceState:
    """Ready or not, where it answers, and the problem its status reports (if any)."""
    status = isvc.get("status") or {}
    name = isvc.get("metadata", {}).get("name", "?")
    ready = is_true(status, "Ready")
    problem = None if ready else _model_status_problem(status.get("modelStatus") or {})
    if problem is None and not ready:
        for kind in ("PredictorReady", "Ready"):
            found = condition(status, kind)
            if found and found.get("status") == "False" and (found.get("reason") or found.get("message")):
                final = found.get("reason") == "ProgressDeadlineExceeded"
                problem = Problem("not-ready", f"{kind}: {found.get('reason', '')} {found.get('message', '')}".strip(),
                                  final)
                break
    address = (status.get("address") or {}).get("url")
    return ServiceState(name, ready, status.get("url"), address, problem)


def _waiting_problem(statuses: list[dict] | None) -> Problem | None:
    for container in statuses or []:
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        text = f"container {container.get('name')!r}: {reason}: {waiting.get('message', '')}".strip()
        if reason in IMAGE_PULL_REASONS:
            return Problem("image-pull", text, final=True)
        if reason in CRASH_REASONS:
            return Problem("crash", text, final=reason != "CrashLoopBackOff")
    return None


def pod_problem(pod: dict) -> Problem | None:
    """The reason a predictor pod does not run: no GPU, unschedulable, an image it cannot pull, a crash."""
    status = pod.get("status") or {}
    scheduled = condition(status, "PodScheduled")
    if scheduled and scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
        message = scheduled.get("message", "")
        kind = "no-gpu" if f"Insufficient {GPU_RESOURCE}" in message else "unschedulable"
        return Problem(kind, message, final=False)
    return (_waiting_problem(status.get("initContainerStatuses"))
            or _waiting_problem(status.get("containerStatuses")))


def event_problem(events: list[dict]) -> Problem | None:
    """A FailedScheduling event for lack of GPUs (the scheduler's own words), if any."""
    for event in events:
        message = event.get("message") or ""
        if event.get("reason") == "FailedScheduling":
            kind = "no-gpu" if f"Insufficient {GPU_RESOURCE}" in message else "unschedulable"
            return Problem(kind, message, final=False)
    return None


def diagnose(isvc: dict, pods: list[dict], events: list[dict] = ()) -> ServiceState:
    """The InferenceService's own state, completed by what its predictor pods say.

    A pod problem wins over a generic "not ready": it names the cause (no GPU,
    image pull) where the InferenceService shows only MinimumReplicasUnavailable.
    """
    state = service_state(isvc)
    if state.ready or (state.problem and state.problem.kind in ("model-load", "invalid-spec")):
        return state
    for pod in pods:
        found = pod_problem(pod)
        if found:
            return ServiceState(state.name, False, state.url, state.internal_url, found)
    found = event_problem(list(events))
    return ServiceState(state.name, False, state.url, state.internal_url, found or state.problem)


def predictor_service_url(name: str, namespace: str, port: int = 8080) -> str:
    """The in-cluster address of a raw-mode predictor (OpenShift AI 2.x makes its Service headless: port 8080)."""
    return f"http://{name}-predictor.{namespace}.svc.cluster.local:{port}"


def openai_base(url: str) -> str:
    """An OpenAI-compatible base URL (ending in /v1) from a service URL."""
    return url.rstrip("/") + ("" if url.rstrip("/").endswith("/v1") else "/v1")


def pod_usage(metrics: dict) -> tuple[int, float]:
    """Memory (bytes) and CPU (percent of one core) of a PodMetrics object (metrics.k8s.io/v1beta1)."""
    memory, cpu = 0, 0.0
    for container in metrics.get("containers") or []:
        usage = container.get("usage") or {}
        memory += parse_quantity_bytes(usage.get("memory", "0"))
        cpu += parse_cpu_cores(usage.get("cpu", "0")) * 100
    return memory, cpu


_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_DECIMAL = {"k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def parse_quantity_bytes(text: str) -> int:
    """``"1536Mi"`` -> bytes."""
    for suffix, factor in {**_BINARY, **_DECIMAL}.items():
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * factor)
    return int(float(text or 0))


def parse_cpu_cores(text: str) -> float:
    """``"250m"`` / ``"123456789n"`` / ``"2"`` -> cores."""
    scale = {"n": 1e-9, "u": 1e-6, "m": 1e-3}
    if text and text[-1] in scale:
        return float(text[:-1]) * scale[text[-1]]
    return float(text or 0)
