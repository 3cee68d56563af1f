"""The cluster platforms without a cluster: status reading, error messages, rendering, the wait loop.

The status objects below are SHAPED LIKE THE REAL API (from KServe's and Kubernetes' types as summarised
in shared CLUSTER.md), NOT CAPTURED FROM A CLUSTER: no apiserver can run where these tests were written.
A fake API connection is used only for the error paths of the wait loop.
"""
from __future__ import annotations

import copy
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

from helpers import kserve
from helpers.cluster import client as kube
from helpers.cluster import labels
from helpers.cluster import status as state
from helpers.errors import (
    ClusterConfigError, ClusterForbiddenError, GpuUnavailableError, HardwareProfileMissingError, ImagePullError,
    ModelNotFoundError, PlatformError, ServerStartError,
)
from helpers.platform import KubernetesPlatform, LocalPlatform, OpenShiftPlatform, Platform
from helpers.platform import kubernetes as k8s
from helpers.settings import get_settings

# -- status objects shaped like the real API (not captured from a cluster) -------------------------------
ISVC_READY = {
    "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
    "metadata": {"name": "granite", "namespace": "maas-models", "labels": labels.workshop_labels("platform-team")},
    "spec": {"predictor": {"model": {"storageUri": kserve.DEFAULT_MODELCAR}}},
    "status": {
        "url": "http://granite-maas-models.apps.example.com",
        "address": {"url": "http://granite-predictor.maas-models.svc.cluster.local"},
        "components": {"predictor": {"url": "http://granite-predictor.maas-models.svc.cluster.local"}},
        "conditions": [
            {"type": "IngressReady", "status": "True", "lastTransitionTime": "2026-08-01T10:00:00Z"},
            {"type": "PredictorReady", "status": "True", "lastTransitionTime": "2026-08-01T10:00:00Z"},
            {"type": "Ready", "status": "True", "lastTransitionTime": "2026-08-01T10:00:00Z"},
        ],
        "modelStatus": {"transitionStatus": "UpToDate",
                        "states": {"activeModelState": "Loaded", "targetModelState": "Loaded"}},
    },
}


def isvc_pending() -> dict:
    isvc = copy.deepcopy(ISVC_READY)
    isvc["status"] = {
        "conditions": [
            {"type": "PredictorReady", "status": "False", "reason": "MinimumReplicasUnavailable",
             "message": "Deployment does not have minimum availability."},
            {"type": "Ready", "status": "False", "reason": "MinimumReplicasUnavailable",
             "message": "Deployment does not have minimum availability."},
        ],
        "modelStatus": {"transitionStatus": "InProgress",
                        "states": {"activeModelState": "Pending", "targetModelState": "Pending"}},
    }
    return isvc


def pod(name: str = "granite-predictor-7c9d-abcde", **status) -> dict:
    return {"metadata": {"name": name, "labels": {state.ISVC_POD_LABEL: "granite"}},
            "status": {"phase": "Pending", **status}}


POD_NO_GPU = pod(conditions=[{
    "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
    "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu. preemption: 0/3 nodes are available: "
               "3 No preemption victims found for incoming pod."}])
POD_PULL_FAILS = pod(
    conditions=[{"type": "PodScheduled", "status": "True"}],
    initContainerStatuses=[{"name": "modelcar-init", "ready": False, "state": {"waiting": {
        "reason": "ImagePullBackOff",
        "message": 'Back-off pulling image "quay.io/redhat-ai-services/modelcar-catalog:granite-9b": '
                   "manifest unknown"}}}])
EVENT_NO_GPU = {"reason": "FailedScheduling", "type": "Warning",
                "message": "0/2 nodes are available: 2 Insufficient nvidia.com/gpu."}


# -- status reading ------------------------------------------------------------------------------------------
def test_a_ready_service_and_where_it_answers():
    found = state.diagnose(ISVC_READY, [])
    assert found.ready and found.problem is None
    assert found.internal_url == "http://granite-predictor.maas-models.svc.cluster.local"


def test_no_status_yet_is_pending_without_a_problem():
    isvc = {k: v for k, v in ISVC_READY.items() if k != "status"}
    found = state.diagnose(isvc, [])
    assert not found.ready and found.problem is None


def test_no_gpu_shows_on_the_pod_not_on_the_inference_service():
    assert state.service_state(isvc_pending()).problem.kind == "not-ready"
    found = state.diagnose(isvc_pending(), [POD_NO_GPU])
    assert found.problem.kind == "no-gpu" and not found.problem.final
    assert "Insufficient nvidia.com/gpu" in found.problem.message


def test_no_gpu_from_the_scheduler_event_when_the_pod_says_nothing_yet():
    found = state.diagnose(isvc_pending(), [pod()], [EVENT_NO_GPU])
    assert found.problem.kind == "no-gpu"


def test_a_modelcar_that_cannot_be_pulled_is_final():
    found = state.diagnose(isvc_pending(), [POD_PULL_FAILS])
    assert found.problem.kind == "image-pull" and found.problem.final
    assert "modelcar-init" in found.problem.message and "manifest unknown" in found.problem.message


def test_a_model_that_failed_to_load_is_final():
    isvc = isvc_pending()
    isvc["status"]["modelStatus"] = {
        "transitionStatus": "BlockedByFailedLoad",
        "states": {"activeModelState": "FailedToLoad", "targetModelState": "FailedToLoad"},
        "lastFailureInfo": {"reason": "ModelLoadFailed", "message": "CUDA out of memory", "exitCode": 1}}
    found = state.diagnose(isvc, [POD_NO_GPU])  # the model's own failure wins over a pod's
    assert found.problem.kind == "model-load" and found.problem.final
    assert found.problem.message == "ModelLoadFailed: CUDA out of memory (exit code 1)"


def test_progress_deadline_exceeded_is_final():
    isvc = isvc_pending()
    isvc["status"]["conditions"][0].update(reason="ProgressDeadlineExceeded",
                                           message='ReplicaSet "granite-predictor-7c9d" has timed out progressing.')
    assert state.diagnose(isvc, []).problem.final


def test_crash_loops_are_reported_with_the_container():
    crashing = pod(containerStatuses=[{"name": "kserve-container", "state": {"waiting": {
        "reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}}}])
    found = state.diagnose(isvc_pending(), [crashing])
    assert found.problem.kind == "crash" and "kserve-container" in found.problem.message


def test_pod_metrics_are_summed_over_containers():
    metrics = {"kind": "PodMetrics", "containers": [
        {"name": "kserve-container", "usage": {"cpu": "1500m", "memory": "20Gi"}},
        {"name": "modelcar", "usage": {"cpu": "250000n", "memory": "4Mi"}}]}
    memory, cpu = state.pod_usage(metrics)
    assert memory == 20 * 2**30 + 4 * 2**20 and cpu == pytest.approx(150.025)


def test_headless_predictor_services_answer_on_8080():
    assert k8s.service_port({"spec": {"clusterIP": "None", "ports": [{"port": 80}]}}) == 8080
    assert k8s.service_port({"spec": {"clusterIP": "10.0.0.7", "ports": [{"port": 80, "targetPort": 8080}]}}) == 80
    assert state.openai_base(state.predictor_service_url("granite", "maas-models")) == \
        "http://granite-predictor.maas-models.svc.cluster.local:8080/v1"


# -- errors that say what to do --------------------------------------------------------------------------------
def test_forbidden_names_the_verb_the_resource_and_the_fix():
    error = kube.explain(403, 'inferenceservices.serving.kserve.io is forbidden: User "ada" cannot create ...',
                         "create", "inferenceservices.serving.kserve.io", "maas-ada")
    assert isinstance(error, ClusterForbiddenError)
    assert "may not create inferenceservices.serving.kserve.io in namespace 'maas-ada'" in str(error)
    assert "add-role-to-user edit" in str(error)


def test_expired_credentials_and_a_refused_hardware_profile():
    assert isinstance(kube.explain(401, "Unauthorized", "list", "pods", "x"), ClusterConfigError)
    refused = kube.explain(400, 'admission webhook "hardwareprofile.opendatahub.io" denied the request: '
                                "hardware profile 'nvidia-l4' not found", "create", "inferenceservices", "x")
    assert isinstance(refused, HardwareProfileMissingError) and "MAAS_HARDWARE_PROFILE" in str(refused)


def test_a_missing_object_is_told_apart_from_a_missing_crd():
    assert kube.object_not_found('{"kind":"Status","message":"inferenceservices.serving.kserve.io \\"granite\\" '
                                 'not found","reason":"NotFound"}', "granite")
    assert not kube.object_not_found("404 page not found", "granite")


@pytest.mark.parametrize("kind, error, words", [
    ("no-gpu", GpuUnavailableError, "no node has a free NVIDIA GPU"),
    ("image-pull", ImagePullError, "skopeo inspect"),
    ("model-load", ServerStartError, "logs -n maas-models"),
])
def test_each_problem_becomes_an_error_with_a_next_step(kind, error, words):
    found = k8s.problem_error("granite", "maas-models", state.Problem(kind, "details", True), openshift=True)
    assert isinstance(found, error) and words in str(found)


@pytest.fixture
def no_cluster(tmp_path, monkeypatch):
    """No kubeconfig anywhere, not in a pod."""
    for name in ("KUBECONFIG", "MAAS_KUBECONFIG", "KUBERNETES_SERVICE_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("kind", ["kubernetes", "openshift"])
def test_without_a_kubeconfig_every_call_says_how_to_log_in(no_cluster, kind):
    platform = Platform.create(kind)
    with pytest.raises(ClusterConfigError, match="(?s)no Kubernetes configuration.*oc login.*MAAS_KUBECONFIG"):
        platform.list()


@pytest.mark.parametrize("kind", ["kubernetes", "openshift"])
def test_run_labs_without_a_kubeconfig_exits_2_and_writes_nothing(no_cluster, kind):
    out = no_cluster / "labs-out"
    env = {**os.environ, "MAAS_STATE_DIR": str(no_cluster / "state")}
    result = subprocess.run([sys.executable, "-m", "helpers", "run-labs", "--platform", kind, "--out", str(out)],
                            capture_output=True, text=True, env=env, cwd=get_settings().root, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "error: no Kubernetes configuration" in result.stderr and "oc login" in result.stderr
    assert not out.exists() and not (no_cluster / "state").exists()  # nothing half-done


def test_run_labs_as_the_issue_writes_it_without_a_kubeconfig(no_cluster):
    """`python -m helpers run-labs --platform openshift`, no --out: the same message, exit 2, no folder made."""
    env = {**os.environ, "MAAS_STATE_DIR": str(no_cluster / "state")}
    result = subprocess.run([sys.executable, "-m", "helpers", "run-labs", "--platform", "openshift"],
                            capture_output=True, text=True, env=env, cwd=get_settings().root, timeout=120)
    assert result.returncode == 2 and "error: no Kubernetes configuration" in result.stderr, result.stderr
    assert not (no_cluster / "state").exists()


# -- platforms and what they create ----------------------------------------------------------------------------
def test_three_kinds_and_local_is_unchanged():
    assert {"local", "kubernetes", "openshift"} <= set(Platform._registry)
    assert isinstance(Platform.create("local"), LocalPlatform)
    assert type(Platform.create("kubernetes")) is KubernetesPlatform
    assert isinstance(Platform.create("openshift"), OpenShiftPlatform)


def test_settings_choose_namespace_runtime_and_profile(monkeypatch):
    monkeypatch.setenv("MAAS_NAMESPACE", "maas-ada")
    monkeypatch.setenv("MAAS_OWNER", "Ada Lovelace")
    monkeypatch.setenv("MAAS_HARDWARE_PROFILE", "l4-small")
    platform = OpenShiftPlatform()
    isvc = platform.render(platform.model_deployment(kserve.DEFAULT_MODELCAR, "granite", 4096, None, 1))
    meta = isvc["metadata"]
    assert meta["namespace"] == "maas-ada" and meta["labels"][labels.OWNER] == "ada-lovelace"
    assert labels.SHARED not in meta["labels"]  # an attendee's own model
    assert meta["annotations"][kserve.HARDWARE_PROFILE_NAME] == "l4-small"
    assert isvc["spec"]["predictor"]["model"]["runtime"] == "vllm-cuda-runtime"
    assert "tolerations" not in isvc["spec"]["predictor"]  # the profile's webhook adds them


def test_vanilla_kubernetes_writes_tolerations_and_gpu_request_equal_to_limit():
    platform = KubernetesPlatform()
    isvc = platform.render(platform.model_deployment(kserve.DEFAULT_MODELCAR, "granite", 8192, None, 1))
    predictor = isvc["spec"]["predictor"]
    assert isvc["metadata"]["annotations"] == {kserve.DEPLOYMENT_MODE: "RawDeployment"}
    assert predictor["tolerations"][0]["key"] == "nvidia.com/gpu"
    resources = predictor["model"]["resources"]
    assert resources["requests"]["nvidia.com/gpu"] == resources["limits"]["nvidia.com/gpu"] == "1"


def test_models_resolve_to_published_modelcars_only():
    root = get_settings().root
    assert k8s.resolve_modelcar("granite-3-1-2b-instruct", root) == kserve.DEFAULT_MODELCAR
    assert k8s.resolve_modelcar("granite-3.1-8b-instruct", root).endswith(":granite-3.1-8b-instruct")
    assert k8s.resolve_modelcar("parasol-tiny", root, cpu_only=True) == "oci://localhost:5001/modelcars/parasol-tiny:v1"
    with pytest.raises(ModelNotFoundError, match="ModelCar image"):
        k8s.resolve_modelcar("parasol-tiny", root)  # on GPUs: only what a registry the cluster reaches holds
    with pytest.raises(PlatformError, match="chooses its own ports"):
        KubernetesPlatform().deploy("granite-3-1-2b-instruct", "granite", port=8000)


# -- the wait loop's error paths, on a fake API (error paths only) ----------------------------------------------
class _FakeApi:
    """An in-memory stand-in for the API server's answers: one InferenceService, its pods."""

    def __init__(self, pods: list[dict]):
        self.objects: dict[str, dict] = {}
        self.pods = pods
        self.deleted: list[str] = []

    def get_namespaced_custom_object(self, group, version, namespace, plural, name):
        from kubernetes.client.exceptions import ApiException

        if plural == "inferenceservices" and name in self.objects:
            return self.objects[name]
        if plural == "servingruntimes":
            return {"metadata": {"name": name}}
        if plural == "hardwareprofiles":
            return {"metadata": {"name": name}}
        error = ApiException(status=404, reason="Not Found")
        error.body = f'{{"message": "{plural}.{group} \\"{name}\\" not found"}}'
        raise error

    def create_namespaced_custom_object(self, group, version, namespace, plural, body):
        self.objects[body["metadata"]["name"]] = {**body, "status": isvc_pending()["status"]}
        return body

    def delete_namespaced_custom_object(self, group, version, namespace, plural, name):
        self.deleted.append(name)
        self.objects.pop(name)

    def list_namespaced_pod(self, namespace, label_selector):
        return SimpleNamespace(items=self.pods)

    def list_namespaced_event(self, namespace, field_selector):
        return SimpleNamespace(items=[])


def _fake_platform(cls, pods: list[dict]) -> tuple[KubernetesPlatform, _FakeApi]:
    api = _FakeApi(pods)
    connection = kube.Connection(SimpleNamespace(sanitize_for_serialization=lambda o: o), api, api, None, "fake")
    return cls(connection=connection), api


@pytest.mark.parametrize("cls", [KubernetesPlatform, OpenShiftPlatform])
def test_pending_for_a_gpu_raises_and_removes_the_deployment(cls, monkeypatch):
    monkeypatch.setattr(k8s, "POLL_S", 0.0)
    monkeypatch.setattr(k8s, "GPU_GRACE_S", 0.0)
    platform, api = _fake_platform(cls, [POD_NO_GPU])
    with pytest.raises(GpuUnavailableError, match="describe resourcequota"):
        platform.deploy("granite-3-1-2b-instruct", "granite", timeout_s=30)
    assert api.deleted == ["granite"] and api.objects == {}


def test_an_image_pull_failure_raises_at_once(monkeypatch):
    monkeypatch.setattr(k8s, "POLL_S", 0.0)
    platform, api = _fake_platform(KubernetesPlatform, [POD_PULL_FAILS])
    with pytest.raises(ImagePullError, match="manifest unknown"):
        platform.deploy("oci://quay.io/redhat-ai-services/modelcar-catalog:granite-9b", "granite", timeout_s=30)
    assert api.deleted == ["granite"]


def test_a_deployment_that_never_gets_ready_times_out(monkeypatch):
    monkeypatch.setattr(k8s, "POLL_S", 0.01)
    platform, api = _fake_platform(KubernetesPlatform, [pod()])
    with pytest.raises(ServerStartError, match="not ready after 0 s.*MAAS_CLUSTER_TIMEOUT_S"):
        platform.deploy("granite-3-1-2b-instruct", "granite", timeout_s=0.05)
    assert api.objects == {}


def test_the_same_name_with_another_model_is_refused():
    platform, api = _fake_platform(KubernetesPlatform, [])
    api.objects["granite"] = copy.deepcopy(ISVC_READY)
    with pytest.raises(PlatformError, match="already serves"):
        platform.deploy("oci://quay.io/redhat-ai-services/modelcar-catalog:granite-3.1-8b-instruct", "granite")
    assert api.deleted == []


def test_a_local_model_needs_a_registry_the_cluster_pulls_from(tmp_path, monkeypatch):
    monkeypatch.delenv("MAAS_CLUSTER_REGISTRY", raising=False)
    model = tmp_path / "quantized"
    model.mkdir()
    (model / "config.json").write_text("{}")
    with pytest.raises(ModelNotFoundError, match="MAAS_CLUSTER_REGISTRY"):
        KubernetesPlatform().modelcar_for(model, "parasol-tiny-w4a16")
    with pytest.raises(ModelNotFoundError, match="unknown model"):
        KubernetesPlatform().modelcar_for(tmp_path / "nothing", "x")


def test_a_full_quota_is_not_mistaken_for_missing_rights():
    from helpers.errors import QuotaExceededError

    body = ('inferenceservices.serving.kserve.io "copy-2" is forbidden: exceeded quota: maas-attendee-quota, '
            "requested: requests.nvidia.com/gpu=1, used: requests.nvidia.com/gpu=1, limited: requests.nvidia.com/gpu=1")
    error = kube.explain(403, body, "create", "inferenceservices.serving.kserve.io", "maas-ada")
    assert isinstance(error, QuotaExceededError) and "Undeploy something first" in str(error)
