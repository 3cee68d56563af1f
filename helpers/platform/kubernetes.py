"""The cluster platforms: each deployment is a KServe InferenceService.

``kubernetes``: any cluster with KServe (raw deployment mode) and NVIDIA L4 nodes; the
InferenceService carries the GPU toleration and node selector itself.
``openshift``: OpenShift AI; the model uses the platform's own ``vllm-cuda-runtime``
and names the L4 HardwareProfile, whose webhook adds tolerations and node selector.

Namespace, kubeconfig, hardware profile, owner label and timeouts come from the
settings (``MAAS_NAMESPACE``, ``MAAS_KUBECONFIG``, ``MAAS_HARDWARE_PROFILE``, ...).
Every wait is finite; a deployment that fails to become ready is deleted again.
"""
from __future__ import annotations

import shlex
import time
from dataclasses import replace
from pathlib import Path

import yaml

from .. import kserve
from ..cluster import client as kube
from ..cluster import status as state
from ..cluster.labels import OWNER, SHARED_OWNER, owner_selector
from ..errors import (
    ClusterAPIMissingError, ClusterError, ClusterForbiddenError, DeploymentNotFoundError, GpuUnavailableError,
    HardwareProfileMissingError, ImagePullError, ModelNotFoundError, PlatformError, ServerDiedError, ServerStartError,
    ServingRuntimeMissingError,
)
from ..settings import Settings, get_settings
from ..shell import shell_line
from .base import Deployment, Platform, ResourceUsage

KSERVE = ("serving.kserve.io", "v1beta1", "inferenceservices")
RUNTIMES = ("serving.kserve.io", "v1alpha1", "servingruntimes")
HARDWARE_PROFILES = ("infrastructure.opendatahub.io", "v1", "hardwareprofiles")
POD_METRICS = ("metrics.k8s.io", "v1beta1", "pods")
POLL_S = 5.0
SHARED_STATUS = "shared"  # a shared model's status: the platform team's, behind the gateway (not checked here)
GPU_GRACE_S = 90.0  # how long predictor pods may wait for a GPU before we say so (an autoscaler may add a node)


def resolve_modelcar(model: str | Path, root: Path, cpu_only: bool = False) -> str:
    """The ``oci://`` URI to deploy: given directly, or a model of the GitOps list (its kind list when
    ``cpu_only``: the tiny model in kind's registry) or of the catalog."""
    text = str(model)
    if text.startswith("oci://"):
        return text
    from ..cluster.manifests import _catalog_modelcars, load_model_list

    models = load_model_list(root / "manifests" / "models.yaml")
    listed = {m.name: m.storage_uri for m in (models.kind if cpu_only else models.shared)}
    uri = listed.get(text) or _catalog_modelcars().get(text)
    if uri and uri.startswith("oci://"):
        return uri
    raise ModelNotFoundError(
        f"on a cluster a model is deployed from a ModelCar image: {text!r} is neither an oci:// URI nor a model "
        "with a published ModelCar (manifests/models.yaml, catalog/validated_models.yaml). Push it to a registry "
        "the cluster can pull from (Lab 4: helpers.modelcar) and deploy 'oci://REGISTRY/REPOSITORY:TAG'.")


def service_port(service: dict) -> int:
    """Where a predictor Service answers: 8080 on the pod when headless (OpenShift AI 2.x), else its port."""
    spec = service.get("spec") or {}
    if spec.get("clusterIP") == "None":
        return 8080
    ports = spec.get("ports") or [{}]
    return int(ports[0].get("port", 80))


def problem_error(name: str, namespace: str, problem: state.Problem, openshift: bool) -> ClusterError | ServerStartError:
    """The error for a deployment that cannot become ready, saying what to do."""
    cli = "oc" if openshift else "kubectl"
    pods = f"{cli} get pods -n {namespace} -l {state.ISVC_POD_LABEL}={name}"
    if problem.kind == "no-gpu":
        return GpuUnavailableError(
            f"{name!r} is pending: no node has a free NVIDIA GPU ({problem.message}). Undeploy a model you no longer "
            f"need, check your quota (`{cli} describe resourcequota -n {namespace}`), or ask the platform team for "
            "a GPU node; the gateway's shared models need no GPU of yours.")
    if problem.kind == "unschedulable":
        return GpuUnavailableError(f"{name!r} cannot be scheduled: {problem.message}. See `{pods}` and "
                                   f"`{cli} describe` the pod; ask the platform team about the node taints.")
    if problem.kind == "image-pull":
        return ImagePullError(
            f"{name!r} cannot pull its image: {problem.message}. Check that the ModelCar exists "
            "(`skopeo inspect docker://REGISTRY/REPOSITORY:TAG`) and, for a private registry, that a pull secret "
            "is linked (OpenShift AI: an OCI connection named in the opendatahub.io/connections annotation).")
    return ServerStartError(f"{name!r} failed to start: {problem.message}. Logs: "
                            f"`{cli} logs -n {namespace} -l {state.ISVC_POD_LABEL}={name} -c kserve-container`.")


class KubernetesPlatform(Platform):
    """Models as KServe InferenceServices on a Kubernetes cluster with L4 GPU nodes."""

    kind = "kubernetes"
    openshift = False
    default_runtime = kserve.DEFAULT_RUNTIME

    def __init__(self, settings: Settings | None = None, connection: kube.Connection | None = None) -> None:
        self.settings = settings or get_settings()
        self.namespace = self.settings.namespace
        self.runtime = self.settings.serving_runtime or self.default_runtime
        self._connection = connection

    # -- plumbing ------------------------------------------------------------
    @property
    def connection(self) -> kube.Connection:
        """The API connection, made on first use (a clear error without a kubeconfig)."""
        if self._connection is None:
            self._connection = kube.connect(self.settings.kubeconfig)
        return self._connection

    def _to_dict(self, obj) -> dict:
        return self.connection.api_client.sanitize_for_serialization(obj)

    def _get(self, api: tuple[str, str, str], name: str, namespace: str | None = None) -> dict | None:
        """A custom object, or None when it does not exist (an error naming the CRD when its kind is unknown)."""
        from kubernetes.client.exceptions import ApiException

        namespace = namespace or self.namespace
        try:
            return self.connection.custom.get_namespaced_custom_object(*api[:2], namespace, api[2], name)
        except ApiException as exc:
            body = str(exc.body or "")
            if exc.status == 404 and kube.object_not_found(body, name):
                return None
            if exc.status == 404:
                raise ClusterAPIMissingError(
                    f"the cluster does not serve {api[2]}.{api[0]}/{api[1]}: install "
                    f"{'OpenShift AI (HardwareProfile)' if api == HARDWARE_PROFILES else 'KServe'} first "
                    "(kind: scripts/kind-setup.sh; OpenShift AI: enable KServe in the DataScienceCluster).") from exc
            raise kube.explain(exc.status or 0, body, "get", f"{api[2]}.{api[0]}/{name}", namespace) from exc

    def preflight(self) -> None:
        """Connect, and check that KServe and the serving runtime are there (errors say what to install)."""
        kube.require_apis(self.connection)
        self._require_runtime()

    def _require_runtime(self) -> None:
        if self._get(RUNTIMES, self.runtime) is None:
            cli = "oc" if self.openshift else "kubectl"
            fix = (f"oc process -n redhat-ods-applications vllm-cuda-runtime-template | oc apply -n {self.namespace} -f -"
                   if self.runtime == kserve.OPENSHIFT_AI_RUNTIME else "kubectl apply -k manifests/")
            raise ServingRuntimeMissingError(
                f"the ServingRuntime {self.runtime!r} does not exist in namespace {self.namespace!r}: create it "
                f"(`{fix}`), set MAAS_SERVING_RUNTIME to one that exists (`{cli} get servingruntimes -n "
                f"{self.namespace}`), or set MAAS_NAMESPACE to the namespace that has it.")

    def _require_hardware_profile(self, profile: kserve.L4Profile) -> None:
        try:
            found = self._get(HARDWARE_PROFILES, profile.name, profile.namespace)
        except ClusterForbiddenError:
            return  # attendees may not read profiles; OpenShift AI's webhook refuses a missing one (HTTP 400)
        if found is None:
            raise HardwareProfileMissingError(
                f"the hardware profile {profile.name!r} does not exist in {profile.namespace!r}: ask the platform "
                "team to apply manifests/overlays/openshift/hardware-profile-nvidia-l4.yaml, or set "
                "MAAS_HARDWARE_PROFILE to one that exists (`oc get hardwareprofiles -A`).")

    # -- rendering -----------------------------------------------------------
    def model_deployment(self, uri: str, name: str, max_model_len: int, dtype: str | None, gpus: int) -> kserve.ModelDeployment:
        profile = kserve.L4Profile(name=self.settings.hardware_profile,
                                   namespace=self.settings.hardware_profile_namespace)
        if gpus != profile.gpus:
            profile = replace(profile, gpus=gpus) if gpus else replace(kserve.CPU_PROFILE)
        owner = self.settings.owner
        return kserve.ModelDeployment(name, uri, self.namespace, max_model_len, profile, owner=owner,
                                      shared=owner == SHARED_OWNER,
                                      extra_args=(f"--dtype={dtype}",) if dtype else ())

    def render(self, model: kserve.ModelDeployment) -> dict:
        """The InferenceService this platform creates, validated against the CRD-derived schema."""
        isvc = kserve.inference_service(model, self.runtime, hardware_profile=self.openshift, dashboard=self.openshift)
        kserve.validate(isvc)
        return isvc

    # -- Platform ------------------------------------------------------------
    def deploy(self, model: str | Path, name: str, *, max_model_len: int = 8192, dtype: str | None = None,
               gpus: int | None = None, timeout_s: float | None = None, port: int | None = None) -> Deployment:
        """Create the InferenceService for ``model`` as ``name`` and wait until it is ready.

        Deploying the same ModelCar under the same name again returns the existing one: each
        model is served once. A deployment that fails to become ready is deleted again.
        """
        if port is not None:
            raise PlatformError("a cluster chooses its own ports; deploy without port= (the endpoint says where)")
        gpus = self.settings.gpus_per_model if gpus is None else gpus
        uri = self.modelcar_for(model, name, cpu_only=gpus == 0)
        spec = self.model_deployment(uri, name, max_model_len, dtype, gpus)
        existing = self._get(KSERVE, name)
        if existing is not None:
            current = existing["spec"]["predictor"].get("model", {}).get("storageUri")
            if current != uri:
                raise PlatformError(f"{name!r} already serves {current}; undeploy it first "
                                    f"(platform.undeploy({name!r})) or choose another name.")
            return self.wait_ready(name, timeout_s or self.settings.cluster_timeout_s, delete_on_failure=False)
        self._require_runtime()
        if self.openshift and spec.profile.gpus:
            self._require_hardware_profile(spec.profile)
        body = self.render(spec)
        with kube.call("create", "inferenceservices.serving.kserve.io", self.namespace):
            self.connection.custom.create_namespaced_custom_object(*KSERVE[:2], self.namespace, KSERVE[2], body)
        return self.wait_ready(name, timeout_s or self.settings.cluster_timeout_s, delete_on_failure=True)

    def modelcar_for(self, model: str | Path, name: str, cpu_only: bool = False) -> str:
        """The ModelCar to deploy: an ``oci://`` URI, a listed model's, or a local model folder pushed as one.

        A local folder (the tiny model, Lab 2's quantized copies) reaches the cluster through a registry it
        pulls from (``MAAS_CLUSTER_REGISTRY``: on OpenShift its internal registry), pinned by digest.
        """
        try:
            return resolve_modelcar(model, self.settings.root, cpu_only)
        except ModelNotFoundError as unresolved:
            from ..models import resolve_model

            folder = resolve_model(model)  # a clear error when it is no model at all
            if not self.settings.cluster_registry:
                raise ModelNotFoundError(
                    f"{model!r} is a model on this machine; the cluster can only pull it as a ModelCar. Set "
                    "MAAS_CLUSTER_REGISTRY to a registry you can push to and the cluster pulls from (OpenShift: "
                    "`oc registry info`/<namespace> after `oc registry login`), or deploy an oci:// URI.") from unresolved
            return self.publish_modelcar(folder, name)

    def modelcar_registry(self):
        """The registry this cluster pulls ModelCars from (MAAS_CLUSTER_REGISTRY, as its nodes reach it:
        MAAS_CLUSTER_REGISTRY_PULL), with the login from MAAS_CLUSTER_REGISTRY_AUTHFILE or the environment."""
        from ..registry import cluster_registry

        return cluster_registry(self.settings)

    def publish_modelcar(self, folder: Path, name: str) -> str:
        """Package a model folder as a ModelCar, push it to MAAS_CLUSTER_REGISTRY, return its pinned URI."""
        from ..modelcar import build_modelcar, push

        hub = self.modelcar_registry()
        image = build_modelcar(folder, self.settings.state_dir / "modelcars" / name, "v1")
        reference = hub.reference(f"modelcars/{name}", image.digest.split(":", 1)[1][:12])
        return hub.modelcar_uri(reference, push(image, reference, hub.authfile))

    def observe(self, name: str) -> state.ServiceState:
        """The InferenceService's state completed by its predictor pods and their events."""
        isvc = self._get(KSERVE, name)
        if isvc is None:
            raise DeploymentNotFoundError(f"no InferenceService {name!r} in namespace {self.namespace!r}")
        with kube.call("list", "pods", self.namespace):
            pods = self.connection.core.list_namespaced_pod(
                self.namespace, label_selector=f"{state.ISVC_POD_LABEL}={name}").items
        pod_dicts = [self._to_dict(p) for p in pods]
        events: list[dict] = []
        if pod_dicts and not any(state.pod_problem(p) for p in pod_dicts):
            with kube.call("list", "events", self.namespace):
                for pod in pod_dicts[:3]:
                    events += [self._to_dict(e) for e in self.connection.core.list_namespaced_event(
                        self.namespace, field_selector=f"involvedObject.name={pod['metadata']['name']}").items]
        return state.diagnose(isvc, pod_dicts, events)

    def wait_ready(self, name: str, timeout_s: float, delete_on_failure: bool = False) -> Deployment:
        """Poll until ready; raise at once on a final problem, after a grace period when no GPU frees up."""
        deadline = time.monotonic() + timeout_s
        gpu_since: float | None = None
        last: state.ServiceState | None = None
        try:
            while True:
                last = self.observe(name)
                if last.ready:
                    return self.get(name)
                problem = last.problem
                if problem and problem.final:
                    raise problem_error(name, self.namespace, problem, self.openshift)
                if problem and problem.kind in ("no-gpu", "unschedulable"):
                    gpu_since = gpu_since or time.monotonic()
                    if time.monotonic() - gpu_since > GPU_GRACE_S:
                        raise problem_error(name, self.namespace, problem, self.openshift)
                else:
                    gpu_since = None
                if time.monotonic() > deadline:
                    why = f" Last state: {problem.message}" if problem else ""
                    raise ServerStartError(
                        f"{name!r} was not ready after {timeout_s:.0f} s.{why} Pulling a ModelCar and loading a "
                        "model take minutes on a cold node: raise MAAS_CLUSTER_TIMEOUT_S, or see "
                        f"`{'oc' if self.openshift else 'kubectl'} get isvc,pods -n {self.namespace}`.")
                time.sleep(POLL_S)
        except BaseException:
            if delete_on_failure:
                self.undeploy(name)  # nothing half-done
            raise

    def _service_endpoint(self, name: str, isvc: dict) -> tuple[str, dict]:
        """The OpenAI base URL for this notebook, and how to reach the model from elsewhere."""
        from kubernetes.client.exceptions import ApiException

        service_name = f"{name}-predictor"
        try:
            service = self._to_dict(self.connection.core.read_namespaced_service(service_name, self.namespace))
            port = service_port(service)
        except ApiException:
            port = 8080
        internal = state.openai_base(state.predictor_service_url(name, self.namespace, port))
        external = (isvc.get("status") or {}).get("url")
        cli = "oc" if self.openshift else "kubectl"
        details = {"namespace": self.namespace, "internal_url": internal,
                   "external_url": state.openai_base(external) if external and external.startswith("https") else None,
                   "port_forward": f"{cli} port-forward -n {self.namespace} svc/{service_name} 8080:{port}",
                   "owner": (isvc["metadata"].get("labels") or {}).get(OWNER)}
        if kube.in_cluster() or not details["external_url"]:
            return internal, details  # a workbench in the cluster; from a laptop: the port-forward in details
        return details["external_url"], details

    def _to_deployment(self, isvc: dict, observed: state.ServiceState | None = None) -> Deployment:
        name = isvc["metadata"]["name"]
        observed = observed or state.service_state(isvc)
        status = "ready" if observed.ready else ("failed" if observed.problem and observed.problem.final else "pending")
        uri = isvc["spec"]["predictor"].get("model", {}).get("storageUri", "")
        endpoint, details = self._service_endpoint(name, isvc)
        details["problem"] = observed.problem.message if observed.problem else None
        details["digest"] = uri.rsplit("@", 1)[1] if "@sha256:" in uri else None
        return Deployment(name, uri, endpoint, status, details)

    def undeploy(self, name: str) -> bool:
        isvc = self._get(KSERVE, name)
        if isvc is None:
            return False
        labels = isvc["metadata"].get("labels") or {}
        if not labels.get(OWNER):
            raise PlatformError(f"{name!r} in {self.namespace!r} was not created by the workshop (no {OWNER} label); "
                                "delete it yourself if you mean to.")
        with kube.call("delete", "inferenceservices.serving.kserve.io", self.namespace):
            self.connection.custom.delete_namespaced_custom_object(*KSERVE[:2], self.namespace, KSERVE[2], name)
        return True

    def list(self) -> list[Deployment]:
        with kube.call("list", "inferenceservices.serving.kserve.io", self.namespace):
            items = self.connection.custom.list_namespaced_custom_object(
                *KSERVE[:2], self.namespace, KSERVE[2], label_selector=owner_selector()).get("items", [])
        return [self._to_deployment(i) for i in sorted(items, key=lambda i: i["metadata"]["name"])]

    def get(self, name: str) -> Deployment:
        isvc = self._get(KSERVE, name)
        if isvc is None:
            known = ", ".join(d.name for d in self.list()) or "none"
            raise DeploymentNotFoundError(f"no deployment named {name!r} in namespace {self.namespace!r} "
                                          f"(deployed: {known}). Deploy it first, or set MAAS_NAMESPACE.")
        observed = self.observe(name)
        if not observed.ready:
            why = observed.problem.message if observed.problem else "not ready yet"
            raise ServerDiedError(f"{name!r} is not ready: {why}. Wait for it (platform.wait_ready) or undeploy "
                                  "and redeploy it.")
        return self._to_deployment(isvc, observed)

    def usage(self, name: str, interval_s: float = 1.0) -> ResourceUsage:
        """Memory and CPU of the predictor pods from the pod metrics API (metrics-server's own window)."""
        from kubernetes.client.exceptions import ApiException

        self.get(name)
        try:
            items = self.connection.custom.list_namespaced_custom_object(
                *POD_METRICS[:2], self.namespace, POD_METRICS[2],
                label_selector=f"{state.ISVC_POD_LABEL}={name}").get("items", [])
        except ApiException as exc:
            if exc.status == 404:
                raise PlatformError("the pod metrics API (metrics.k8s.io) is not available on this cluster: "
                                    "install metrics-server, or read usage from the OpenShift console") from exc
            raise kube.explain(exc.status or 0, str(exc.body), "list", "pods.metrics.k8s.io", self.namespace) from exc
        memory, cpu = 0, 0.0
        for item in items:
            m, c = state.pod_usage(item)
            memory, cpu = memory + m, cpu + c
        return ResourceUsage(memory, cpu)

    def shared_gateway(self, timeout_s: float | None = None):
        """The shared gateway the manifests deploy (``MAAS_GATEWAY_NAMESPACE``), ready and reachable from this
        notebook; it is never started, restarted or stopped from here (every attendee uses it)."""
        from ..cluster import gateway

        return gateway.connect(self.connection, self.settings.gateway_namespace,
                               self.settings.gateway_timeout_s if timeout_s is None else timeout_s,
                               self.openshift, self.settings.cluster_gateway_url, self.namespace)

    def shared_models(self) -> list[Deployment]:
        """The models the shared gateway routes (the GitOps list it was rendered from), in its order. They live in
        the gateway's namespace and take traffic from the gateway only: ``endpoint`` says where they are served,
        not an address this notebook may call."""
        from ..cluster import gateway

        namespace = self.settings.gateway_namespace
        names = gateway.routed_models(gateway.read_deployment(self.connection, namespace, self.openshift))
        return [Deployment(name, "the GitOps model list (manifests/models.yaml)",
                           state.openai_base(state.predictor_service_url(name, namespace)), SHARED_STATUS,
                           {"namespace": namespace, "reached_through": "the gateway only"}) for name in names]

    def ledger_dsn(self) -> str:
        """A read-only DSN on 127.0.0.1 for the shared gateway's ledger, through a port-forward to its PostgreSQL."""
        from ..cluster import ledger

        return ledger.ledger_dsn(self.connection, self.settings.gateway_namespace, self.openshift)

    def scratch_database(self, name: str) -> str:
        """Database ``name`` made anew on the scratch PostgreSQL of this attendee's namespace (Lab 6's synthetic
        month): by its Service from a workbench, through a port-forward from a laptop."""
        from ..cluster import scratch

        return scratch.fresh_database(self.connection, self.namespace, name, self.openshift)

    def gateway_url(self) -> str:
        """The gateway's OpenAI base URL from here: in a pod its Service, else its Route (OpenShift) or
        MAAS_CLUSTER_GATEWAY_URL (a port-forward)."""
        from ..cluster import gateway

        return gateway.url(self.connection, self.settings.gateway_namespace, self.openshift,
                           self.settings.cluster_gateway_url)

    def server_command(self, name: str) -> str:
        """What the cluster runs for ``name``: its ServingRuntime's container command, arguments and plain
        environment values, then the InferenceService's own arguments, which KServe appends to the runtime's
        (``MergeRuntimeContainers`` in kserve/kserve pkg/utils: "Args and Env will be combined")."""
        isvc = self._get(KSERVE, name)
        if isvc is None:
            raise DeploymentNotFoundError(f"no deployment named {name!r} in namespace {self.namespace!r}.")
        model = isvc["spec"]["predictor"].get("model", {})
        runtime_name = model.get("runtime") or self.runtime
        try:
            runtime = self._get(RUNTIMES, runtime_name) or {}
        except ClusterForbiddenError:
            cli = "oc" if self.openshift else "kubectl"
            return (f"# the ServingRuntime {runtime_name!r} is not readable with your login (`{cli} get servingruntime "
                    f"{runtime_name} -n {self.namespace} -o yaml` shows its command); KServe appends:\n"
                    + shlex.join(model.get("args", [])))
        containers = (runtime.get("spec") or {}).get("containers") or [{}]
        container = next((c for c in containers if c.get("name") == "kserve-container"), containers[0])
        args = [arg.replace("{{.Name}}", name) for arg in container.get("args", [])]
        env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}  # never a secret's
        return shell_line([*container.get("command", []), *args, *model.get("args", [])], env)

    def render_yaml(self, model: str | Path, name: str, max_model_len: int = 8192) -> str:
        """The InferenceService ``deploy`` would create, as YAML (no cluster needed)."""
        uri = self.modelcar_for(model, name, cpu_only=self.settings.gpus_per_model == 0)
        return yaml.safe_dump(self.render(self.model_deployment(uri, name, max_model_len, None,
                                                                self.settings.gpus_per_model)), sort_keys=False)


class OpenShiftPlatform(KubernetesPlatform):
    """OpenShift AI: its vLLM NVIDIA GPU runtime, the L4 hardware profile, shown in its dashboard."""

    kind = "openshift"
    openshift = True
    default_runtime = kserve.OPENSHIFT_AI_RUNTIME
