"""The shared gateway in the cluster (``manifests/base/gateway``): where it answers, when it is ready, its
admin key. The notebooks reach it through ``helpers.maas`` exactly as they reach the local one.

It is shared by every attendee and applied by the platform team (``oc apply -k manifests/overlays/openshift``),
so nothing here creates, restarts or deletes it: the helpers find it and wait (finitely) until its Deployment
reports ready. Its admin key (in the Secret its Deployment names) is the platform team's and the instructor's;
an attendee's notebooks use the scoped admin key the instructor put in the attendee's own namespace
(``credentials``). Readiness is read from the
Deployment's status (generation, replicas, conditions) and its pods (an image that cannot be pulled, a crash).
"""
from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field

from ..errors import ClusterError, ClusterForbiddenError, ServerStartError
from . import client as kube
from . import status as state
from .labels import COMPONENT, PART_OF, WORKSHOP

NAME = "maas-gateway"  # Deployment, Service and Route (manifests/base/gateway, overlays/openshift)
PORT = 4000
ADMIN_KEY_ENV = "LITELLM_MASTER_KEY"  # the gateway container reads its admin key from this Secret reference
MODELS_ENV = "MAAS_GATEWAY_MODELS"  # the model names the gateway routes, rendered from manifests/models.yaml
POD_SELECTOR = f"{PART_OF}={WORKSHOP},{COMPONENT}=gateway"
POLL_S = 3.0


class GatewayNotDeployedError(ClusterError):
    """The shared gateway (or its Route) is not in the cluster: the platform team applies the manifests."""


@dataclass(frozen=True)
class ClusterGateway:
    """The shared gateway in the cluster: the one URL every application calls."""

    url: str  # OpenAI-compatible base URL, ending in /v1
    models: tuple[str, ...]
    namespace: str
    openshift: bool = False
    connection: kube.Connection | None = field(default=None, repr=False, compare=False)
    own_namespace: str = ""  # the attendee's namespace: where their scoped admin key is

    def admin_key(self) -> str:
        """The attendee's scoped admin key (their users and plans only), read now from the Secret the instructor
        put in their namespace (never stored in this object, never printed)."""
        from .credentials import scoped_admin_key

        return scoped_admin_key(self.connection, self.own_namespace or self.namespace)

    def platform_admin_key(self) -> str:
        """The gateway's own admin key (the instructor's), read now from the gateway's Secret."""
        return admin_key(self.connection, self.namespace, openshift=self.openshift)


def apply_command(openshift: bool) -> str:
    """What the platform team runs to put the gateway (and the shared models) in the cluster."""
    if openshift:
        return "python -m helpers cluster-secrets && oc apply -k manifests/overlays/openshift"
    return ("python -m helpers cluster-secrets && kubectl apply -k manifests/ "
            "(kind: kubectl apply -k manifests/overlays/kind)")


def not_deployed(what: str, namespace: str, openshift: bool) -> GatewayNotDeployedError:
    return GatewayNotDeployedError(
        f"no {what} in namespace {namespace!r}: the shared gateway is not deployed there. The platform team "
        f"deploys it once for everybody: `{apply_command(openshift)}` (the gateway image first: "
        "images/Containerfile.gateway). If it lives in another namespace, set MAAS_GATEWAY_NAMESPACE.")


def api_read(call, verb: str, resource: str, namespace: str, openshift: bool, missing: str):
    """One API read: a missing object is GatewayNotDeployedError; a refusal says which verb on which resource."""
    from kubernetes.client.exceptions import ApiException

    try:
        return call()
    except ApiException as exc:
        if exc.status == 404:
            raise not_deployed(missing, namespace, openshift) from exc
        raise kube.explain(exc.status or 0, str(exc.body or exc.reason), verb, resource, namespace) from exc


# -- pure functions on the API's plain dicts (tested without a cluster) -------------------------------------
def deployment_state(deployment: dict) -> tuple[bool, state.Problem | None]:
    """Ready when the controller has seen the latest spec and every wanted replica is updated and available;
    else the Deployment's own reason (ProgressDeadlineExceeded is final)."""
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    wanted = int(spec.get("replicas", 1))
    seen = int(status.get("observedGeneration") or 0) >= int((deployment.get("metadata") or {}).get("generation") or 0)
    ready = (seen and wanted > 0 and int(status.get("updatedReplicas") or 0) >= wanted
             and int(status.get("availableReplicas") or 0) >= wanted and state.is_true(status, "Available"))
    if ready:
        return True, None
    if wanted == 0:
        return False, state.Problem("scaled-down", "the gateway Deployment is scaled to 0 replicas", final=True)
    progressing = state.condition(status, "Progressing")
    if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
        return False, state.Problem("not-ready", f"Progressing: {progressing.get('message', '')}".strip(), final=True)
    available = state.condition(status, "Available")
    if available and available.get("status") == "False":
        return False, state.Problem("not-ready", f"Available: {available.get('reason', '')} "
                                                 f"{available.get('message', '')}".strip(), final=False)
    return False, None


def secret_reference(deployment: dict, env_name: str = ADMIN_KEY_ENV) -> tuple[str, str]:
    """(Secret name, key) the gateway container reads ``env_name`` from: read from the Deployment, never guessed
    (the base gives the Secret a stable name, for the attendee Role; an overlay may let kustomize hash it)."""
    for container in deployment["spec"]["template"]["spec"].get("containers") or []:
        for entry in container.get("env") or []:
            ref = (entry.get("valueFrom") or {}).get("secretKeyRef")
            if entry.get("name") == env_name and ref:
                return ref["name"], ref["key"]
    raise ClusterError(f"the gateway Deployment reads no {env_name} from a Secret: it was not deployed from "
                       "manifests/base/gateway; re-apply the manifests")


def routed_models(deployment: dict) -> tuple[str, ...]:
    """The model names the gateway routes (its MAAS_GATEWAY_MODELS, rendered from the GitOps model list)."""
    for container in deployment["spec"]["template"]["spec"].get("containers") or []:
        for entry in container.get("env") or []:
            if entry.get("name") == MODELS_ENV:
                return tuple(m for m in str(entry.get("value", "")).split(",") if m)
    return ()


def secret_value(secret: dict, key: str) -> str:
    """One value of a Secret as the API returns it (``data`` is base64; ``stringData`` is write-only)."""
    data = secret.get("data") or {}
    if key not in data:
        name = (secret.get("metadata") or {}).get("name", "?")
        raise ClusterError(f"the Secret {name!r} has no key {key!r}: regenerate it "
                           "(`python -m helpers cluster-secrets`, then apply the manifests again)")
    return base64.b64decode(data[key]).decode().strip()


def internal_url(namespace: str, port: int = PORT) -> str:
    return f"http://{NAME}.{namespace}.svc.cluster.local:{port}/v1"


# -- reads against the API server ----------------------------------------------------------------------------
def read_deployment(connection: kube.Connection, namespace: str, openshift: bool) -> dict:
    found = api_read(lambda: connection.apps.read_namespaced_deployment(NAME, namespace), "get", "deployments.apps",
                     namespace, openshift, f"Deployment {NAME!r}")
    return connection.api_client.sanitize_for_serialization(found)


def gateway_pod_problem(connection: kube.Connection, namespace: str) -> state.Problem | None:
    """Why the gateway's pods do not run (None when fine, or when we may not list them)."""
    try:
        with kube.call("list", "pods", namespace):
            pods = connection.core.list_namespaced_pod(namespace, label_selector=POD_SELECTOR).items
    except ClusterForbiddenError:
        return None
    for pod in pods:
        found = state.pod_problem(connection.api_client.sanitize_for_serialization(pod))
        if found:
            return found
    return None


def wait_ready(connection: kube.Connection, namespace: str, timeout_s: float, openshift: bool = False) -> dict:
    """Poll the gateway Deployment until it is ready (its dict); a final problem or the timeout raises."""
    cli = "oc" if openshift else "kubectl"
    deadline = time.monotonic() + timeout_s
    while True:
        deployment = read_deployment(connection, namespace, openshift)
        ready, problem = deployment_state(deployment)
        if ready:
            return deployment
        problem = gateway_pod_problem(connection, namespace) or problem
        if problem and problem.final:
            hint = (" Build and push the gateway image (images/Containerfile.gateway) to the registry the "
                    "overlay names." if problem.kind == "image-pull" else "")
            raise ServerStartError(f"the shared gateway in {namespace!r} cannot start: {problem.message}.{hint} "
                                   f"See `{cli} get deploy,pods -n {namespace} -l {POD_SELECTOR}`.")
        if time.monotonic() > deadline:
            why = f" Last state: {problem.message}." if problem else ""
            raise ServerStartError(
                f"the shared gateway in {namespace!r} was not ready after {timeout_s:.0f} s.{why} See `{cli} get "
                f"deploy,pods -n {namespace} -l {POD_SELECTOR}` and `{cli} logs -n {namespace} deploy/{NAME}`.")
        time.sleep(POLL_S)


def read_secret_value(connection: kube.Connection, namespace: str, secret_name: str, key: str,
                      openshift: bool = False) -> str:
    """One value of one Secret (a 403 says: get secrets; a missing Secret names the apply to run)."""
    secret = api_read(lambda: connection.core.read_namespaced_secret(secret_name, namespace), "get", "secrets",
                      namespace, openshift, f"Secret {secret_name!r}")
    return secret_value(connection.api_client.sanitize_for_serialization(secret), key)


def admin_key(connection: kube.Connection, namespace: str, openshift: bool = False) -> str:
    """The admin key, read from the Secret the gateway Deployment names (a 403 says: get secrets)."""
    secret_name, key = secret_reference(read_deployment(connection, namespace, openshift))
    return read_secret_value(connection, namespace, secret_name, key, openshift)


def url(connection: kube.Connection, namespace: str, openshift: bool, override: str = "") -> str:
    """Where this notebook reaches the gateway: MAAS_CLUSTER_GATEWAY_URL when set; in a pod (a workbench)
    the in-cluster Service; outside the cluster its Route on OpenShift, else a port-forward it names."""
    if override:
        return state.openai_base(override)
    try:
        service = api_read(lambda: connection.core.read_namespaced_service(NAME, namespace), "get", "services",
                           namespace, openshift, f"Service {NAME!r}")
        ports = (connection.api_client.sanitize_for_serialization(service).get("spec") or {}).get("ports") or [{}]
        port = int(ports[0].get("port", PORT))
    except ClusterForbiddenError:
        port = PORT  # an attendee may not read the platform team's Service: the port the manifests give it
    if kube.in_cluster():
        return internal_url(namespace, port)
    if openshift:
        route = api_read(lambda: connection.custom.get_namespaced_custom_object(
            "route.openshift.io", "v1", namespace, "routes", NAME), "get", "routes.route.openshift.io", namespace,
            openshift, f"Route {NAME!r}")
        host = (route.get("spec") or {}).get("host")
        if host:
            return f"https://{host}/v1"
        raise ClusterError(f"the Route {NAME!r} in {namespace!r} has no host yet: wait for the router to admit it "
                           f"(`oc get route {NAME} -n {namespace}`)")
    raise ClusterError(
        f"this notebook runs outside the cluster and plain Kubernetes gives the gateway no public address. Run "
        f"`kubectl port-forward -n {namespace} svc/{NAME} {port}:{port}` in a terminal and set "
        f"MAAS_CLUSTER_GATEWAY_URL=http://127.0.0.1:{port}/v1 (or an Ingress URL), or run the notebook in a "
        "workbench in the cluster.")


def check_reachable(base_url: str, namespace: str, timeout_s: float = 10.0, wait_s: float = 0.0) -> None:
    """Liveness requests from this notebook, retried for up to ``wait_s``: the address works from here, not
    only inside the cluster."""
    import requests

    probe = base_url.removesuffix("/v1") + "/health/liveliness"
    deadline = time.monotonic() + wait_s
    while True:
        try:
            requests.get(probe, timeout=timeout_s).raise_for_status()
            return
        except requests.RequestException as exc:
            if time.monotonic() >= deadline:
                raise ClusterError(
                    f"this notebook cannot reach the gateway of {namespace!r} at {base_url} ({exc}). From a laptop: "
                    f"`kubectl port-forward -n {namespace} svc/{NAME} {PORT}:{PORT}` and "
                    f"MAAS_CLUSTER_GATEWAY_URL=http://127.0.0.1:{PORT}/v1; a Route with a self-signed certificate "
                    "needs REQUESTS_CA_BUNDLE pointing at the cluster's CA.") from exc
        time.sleep(POLL_S)


def connect(connection: kube.Connection, namespace: str, timeout_s: float, openshift: bool = False,
            override_url: str = "", own_namespace: str = "") -> ClusterGateway:
    """The shared gateway, ready and reachable from here (it is never started or restarted by a notebook).

    Readiness comes from its Deployment; an attendee who may not read the platform team's Deployment waits
    on the gateway's own liveness answer instead (same timeout), and sees no model list."""
    try:
        deployment: dict | None = wait_ready(connection, namespace, timeout_s, openshift)
    except ClusterForbiddenError:
        deployment = None
    base = url(connection, namespace, openshift, override_url)
    check_reachable(base, namespace, wait_s=0.0 if deployment else timeout_s)
    return ClusterGateway(base, routed_models(deployment) if deployment else (), namespace, openshift, connection,
                          own_namespace)
