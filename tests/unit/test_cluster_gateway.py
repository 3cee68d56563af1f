"""The notebooks' gateway helpers on a cluster platform, without a cluster.

The API answers below are SHAPED LIKE THE REAL API (apps/v1 Deployment status, v1 Secret, v1 Service,
route.openshift.io/v1 Route, the apiserver's Status bodies for 403/404 as Kubernetes documents them),
NOT CAPTURED FROM A CLUSTER: no apiserver can run where these tests were written. They are turned into
the kubernetes client's own model objects (V1Deployment, V1Secret, ...) so the helpers read them through
the client's real serialisation; the gateway's Deployment is the one ``manifests/base/gateway`` renders,
with the Secret name kustomize's secretGenerator gives it. The gateway's liveness answer comes from a real
HTTP server on 127.0.0.1 (what a port-forward would expose).
"""
from __future__ import annotations

import base64
import copy
import http.server
import json
import secrets

import pytest
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from helpers import maas
from helpers.cluster import credentials
from helpers.cluster import client as kube
from helpers.cluster import gateway as cluster_gateway
from helpers.cluster import manifests
from helpers.errors import ClusterError, ClusterForbiddenError, ServerStartError
from helpers.platform import KubernetesPlatform, OpenShiftPlatform
from tests.unit.local_servers import serving

NS = "maas-models"
HASHED = "maas-gateway-secrets-4942bff5h5"  # a hashed name, as an overlay may give it: always read from the Deployment
ADMIN_KEY = "sk-admin-" + secrets.token_hex(16)  # made per run: no key-shaped literal in git


def rendered_deployment() -> dict:
    """The gateway Deployment of manifests/base/gateway, its Secret renamed (the helpers never guess the name)."""
    models = manifests.load_model_list().shared
    deployment = next(o for o in manifests.gateway_objects(NS, models) if o["kind"] == "Deployment")
    text = json.dumps(deployment).replace(f'"{manifests.SECRET_NAME}"', f'"{HASHED}"')
    return {**json.loads(text), "metadata": {**deployment["metadata"], "generation": 2}}


def with_status(**status) -> dict:
    deployment = rendered_deployment()
    deployment["status"] = status
    return deployment


AVAILABLE = {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
             "message": "Deployment has minimum availability.", "lastTransitionTime": "2026-11-20T10:00:00Z"}
PROGRESSED = {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
              "message": 'ReplicaSet "maas-gateway-5d8f7c9b6d" has successfully progressed.'}
READY = dict(observedGeneration=2, replicas=1, updatedReplicas=1, readyReplicas=1, availableReplicas=1,
             conditions=[AVAILABLE, PROGRESSED])
ROLLING_OUT = dict(observedGeneration=2, replicas=1, updatedReplicas=1, unavailableReplicas=1, conditions=[
    {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
     "message": "Deployment does not have minimum availability."},
    {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
     "message": 'ReplicaSet "maas-gateway-5d8f7c9b6d" is progressing.'}])
DEADLINE = dict(observedGeneration=2, replicas=1, updatedReplicas=1, unavailableReplicas=1, conditions=[
    {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
     "message": 'ReplicaSet "maas-gateway-5d8f7c9b6d" has timed out progressing.'}])
SECRET_VALUES = {"LITELLM_MASTER_KEY": ADMIN_KEY, "POSTGRESQL_PASSWORD": "pw", "MAAS_GATEWAY_DSN": "postgresql://x"}
SECRET = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {"name": HASHED, "namespace": NS},
          "data": {key: base64.b64encode(value.encode()).decode() for key, value in SECRET_VALUES.items()}}
SCOPED_KEY = "sk-scope-" + secrets.token_hex(16)  # the attendee's, in their own namespace (the instructor's Secret)
SCOPED_SECRET = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                 "metadata": {"name": credentials.SECRET, "namespace": "maas-ada"},
                 "data": {credentials.KEY: base64.b64encode(SCOPED_KEY.encode()).decode()}}
SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "maas-gateway", "namespace": NS},
           "spec": {"clusterIP": "172.30.12.7", "ports": [{"name": "http", "port": 4000, "targetPort": "http",
                                                           "protocol": "TCP"}]}}
ROUTE = {"apiVersion": "route.openshift.io/v1", "kind": "Route", "metadata": {"name": "maas-gateway", "namespace": NS},
         "spec": {"host": "maas-gateway-maas-models.apps.example.com",
                  "to": {"kind": "Service", "name": "maas-gateway"}}}
PULL_FAILS = {"metadata": {"name": "maas-gateway-5d8f7c9b6d-x2x7q", "namespace": NS},
              "status": {"phase": "Pending", "containerStatuses": [{
                  "name": "gateway", "ready": False, "restartCount": 0, "image": "maas-workshop/gateway:0.1.0",
                  "imageID": "", "state": {"waiting": {
                      "reason": "ImagePullBackOff",
                      "message": 'Back-off pulling image "image-registry.openshift-image-registry.svc:5000/'
                                 'maas-models/maas-gateway:0.1.0"'}}}]}}


def api_status(code: int, reason: str, message: str) -> ApiException:
    """An ApiException carrying the apiserver's Status body."""
    error = ApiException(status=code, reason=reason)
    error.body = json.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                             "message": message, "reason": reason, "code": code})
    return error


class FakeApi:
    """The API server's answers for the gateway's objects, as the client's model objects. Read verbs only:
    a helper that tried to create, patch or delete anything would fail with AttributeError."""

    def __init__(self, deployments: list[dict] | None, pods: list[dict] = (), secret_forbidden: bool = False):
        self.client = ApiClient()
        self.deployments = deployments  # one answer per read; the last one repeats; None: not deployed
        self.pods, self.secret_forbidden = list(pods), secret_forbidden
        self.calls: list[str] = []

    def _model(self, data: dict, kind: str):
        return self.client._ApiClient__deserialize(copy.deepcopy(data), kind)

    def read_namespaced_deployment(self, name, namespace):
        self.calls.append(f"get deployments/{name}")
        if self.deployments is None:
            raise api_status(404, "NotFound", f'deployments.apps "{name}" not found')
        answer = self.deployments.pop(0) if len(self.deployments) > 1 else self.deployments[0]
        return self._model(answer, "V1Deployment")

    def read_namespaced_secret(self, name, namespace):
        self.calls.append(f"get secrets/{name}")
        if self.secret_forbidden:
            raise api_status(403, "Forbidden", f'secrets "{name}" is forbidden: User "ada" cannot get resource '
                                               f'"secrets" in API group "" in the namespace "{namespace}"')
        if name == credentials.SECRET:
            return self._model(SCOPED_SECRET, "V1Secret")
        if name != HASHED:
            raise api_status(404, "NotFound", f'secrets "{name}" not found')
        return self._model(SECRET, "V1Secret")

    def read_namespaced_service(self, name, namespace):
        return self._model(SERVICE, "V1Service")

    def list_namespaced_pod(self, namespace, label_selector):
        self.calls.append(f"list pods -l {label_selector}")
        return self._model({"items": self.pods, "metadata": {}}, "V1PodList")

    def get_namespaced_custom_object(self, group, version, namespace, plural, name):
        return copy.deepcopy(ROUTE)  # custom objects come back as plain dicts


def connection(api: FakeApi) -> kube.Connection:
    return kube.Connection(api.client, api, api, None, "fake", api)


@pytest.fixture
def liveness_server():
    """A real HTTP server answering the gateway's liveness path, as a port-forward to it would."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/health/liveliness" else 404)
            self.end_headers()
            self.wfile.write(b'"I\'m alive!"')

        def log_message(self, *args):
            pass

    with serving(http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)) as port:
        yield f"http://127.0.0.1:{port}/v1"


@pytest.fixture
def outside_the_cluster(monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setattr(cluster_gateway, "POLL_S", 0.0)


# -- reading the Deployment ----------------------------------------------------------------------------------
def test_readiness_is_read_from_the_deployment_status():
    assert cluster_gateway.deployment_state(with_status(**READY)) == (True, None)
    ready, problem = cluster_gateway.deployment_state(with_status(**ROLLING_OUT))
    assert not ready and not problem.final and "MinimumReplicasUnavailable" in problem.message
    stale = with_status(**{**READY, "observedGeneration": 1})  # the controller has not seen the new spec yet
    assert cluster_gateway.deployment_state(stale) == (False, None)
    assert cluster_gateway.deployment_state(with_status()) == (False, None)  # just created: no status yet
    ready, problem = cluster_gateway.deployment_state(with_status(**DEADLINE))
    assert not ready and problem.final and "timed out progressing" in problem.message


def test_the_admin_key_comes_from_the_secret_the_deployment_names():
    deployment = rendered_deployment()
    assert cluster_gateway.secret_reference(deployment) == (HASHED, "LITELLM_MASTER_KEY")
    assert cluster_gateway.routed_models(deployment) == tuple(m.name for m in manifests.load_model_list().shared)
    api = FakeApi([with_status(**READY)])
    assert cluster_gateway.admin_key(connection(api), NS) == ADMIN_KEY
    assert api.calls == ["get deployments/maas-gateway", f"get secrets/{HASHED}"]


# -- errors that say what to do ------------------------------------------------------------------------------
@pytest.mark.parametrize("cls, command", [(OpenShiftPlatform, "oc apply -k manifests/overlays/openshift"),
                                          (KubernetesPlatform, "kubectl apply -k manifests/")])
def test_no_gateway_deployed_names_the_apply_to_run(cls, command, outside_the_cluster):
    platform = cls(connection=connection(FakeApi(None)))
    with pytest.raises(cluster_gateway.GatewayNotDeployedError,
                       match=f"(?s)no Deployment 'maas-gateway' in namespace 'maas-models'.*{command}"):
        maas.start_gateway(platform)


def test_reading_the_admin_key_forbidden_names_the_verb_and_the_resource(outside_the_cluster):
    api = FakeApi([with_status(**READY)], secret_forbidden=True)
    with pytest.raises(ClusterForbiddenError, match="may not get secrets in namespace 'maas-models'"):
        cluster_gateway.admin_key(connection(api), NS)


def test_a_gateway_image_that_cannot_be_pulled_fails_at_once(outside_the_cluster):
    api = FakeApi([with_status(**ROLLING_OUT)], pods=[PULL_FAILS])
    with pytest.raises(ServerStartError, match="(?s)ImagePullBackOff.*images/Containerfile.gateway"):
        cluster_gateway.wait_ready(connection(api), NS, timeout_s=60)


def test_a_gateway_that_never_gets_ready_times_out(outside_the_cluster):
    api = FakeApi([with_status(**ROLLING_OUT)])
    with pytest.raises(ServerStartError, match="not ready after 0 s.*MinimumReplicasUnavailable"):
        cluster_gateway.wait_ready(connection(api), NS, timeout_s=0.0)


# -- where the notebook reaches it ---------------------------------------------------------------------------
def test_the_url_from_a_workbench_a_laptop_on_openshift_and_a_port_forward(tmp_path, monkeypatch, outside_the_cluster):
    conn = connection(FakeApi([with_status(**READY)]))
    assert cluster_gateway.url(conn, NS, openshift=True) == "https://maas-gateway-maas-models.apps.example.com/v1"
    with pytest.raises(ClusterError, match="kubectl port-forward -n maas-models svc/maas-gateway 4000:4000"):
        cluster_gateway.url(conn, NS, openshift=False)
    assert cluster_gateway.url(conn, NS, False, "http://127.0.0.1:4000") == "http://127.0.0.1:4000/v1"
    token = tmp_path / "token"
    token.write_text("x")
    monkeypatch.setattr(kube, "IN_CLUSTER_TOKEN", token)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "172.30.0.1")
    assert cluster_gateway.url(conn, NS, openshift=True) == "http://maas-gateway.maas-models.svc.cluster.local:4000/v1"


def test_an_address_this_notebook_cannot_reach_is_an_error_not_a_hang():
    unreachable = "cannot reach the gateway of 'maas-models' at http://127.0.0.1:9/v1.*port-forward"
    with pytest.raises(ClusterError, match=unreachable):
        cluster_gateway.check_reachable("http://127.0.0.1:9/v1", NS, timeout_s=2)


# -- the notebooks' calls, unchanged ----------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [KubernetesPlatform, OpenShiftPlatform])
def test_notebook_calls_use_the_shared_gateway_and_never_stop_it(cls, liveness_server, monkeypatch,
                                                                 outside_the_cluster):
    monkeypatch.setenv("MAAS_CLUSTER_GATEWAY_URL", liveness_server)  # a port-forward from this laptop
    api = FakeApi([with_status(), with_status(**ROLLING_OUT), with_status(**READY)])
    platform = cls(connection=connection(api))
    gateway = maas.start_gateway(platform)
    assert gateway.url == liveness_server and gateway.namespace == NS
    assert "granite-3-1-2b-instruct" in gateway.models
    assert api.calls.count("get deployments/maas-gateway") == 3  # waited through the rollout
    console = maas.admin(gateway)  # the attendee's: their scoped key, never the gateway's own
    assert console.token == SCOPED_KEY and SCOPED_KEY not in repr(console) + repr(gateway)
    assert console.base_url == liveness_server.removesuffix("/v1") + "/portal"
    assert f"get secrets/{credentials.SECRET}" in api.calls and f"get secrets/{HASHED}" not in api.calls
    assert maas.room_admin(gateway).token == ADMIN_KEY  # the instructor's: the gateway's Secret
    assert maas.stop_gateway(gateway) == []  # shared: never torn down
    assert not any(call.split()[0] not in ("get", "list") for call in api.calls)


def test_an_attendee_who_may_not_read_the_deployment_waits_on_the_gateways_own_answer(liveness_server, monkeypatch,
                                                                                        outside_the_cluster):
    """RBAC refuses `get deployments.apps` in the shared namespace: readiness from the gateway's liveness answer;
    the attendee's scoped admin key comes from their own namespace; the gateway's own key needs the Deployment."""
    monkeypatch.setenv("MAAS_CLUSTER_GATEWAY_URL", liveness_server)

    class NoDeploymentRights(FakeApi):
        def read_namespaced_deployment(self, name, namespace):
            message = (f'deployments.apps "{name}" is forbidden: User "ada" cannot get resource "deployments" in '
                       f'API group "apps" in the namespace "{namespace}"')
            raise api_status(403, "Forbidden", message)

    gateway = maas.start_gateway(OpenShiftPlatform(connection=connection(NoDeploymentRights([]))))
    assert gateway.url == liveness_server and gateway.models == ()
    assert maas.admin(gateway).token == SCOPED_KEY
    with pytest.raises(ClusterForbiddenError, match="may not get deployments.apps in namespace 'maas-models'"):
        maas.room_admin(gateway)


def test_no_scoped_admin_key_in_the_attendees_namespace_says_who_puts_it_there():
    class NoScopedKey(FakeApi):
        def read_namespaced_secret(self, name, namespace):
            self.calls.append(f"get secrets/{name} -n {namespace}")
            raise api_status(404, "NotFound", f'secrets "{name}" not found')

    api = NoScopedKey([])
    with pytest.raises(ClusterError, match="(?s)no Secret 'maas-gateway-admin' in namespace 'maas-ada'.*"
                                           "instructor provision"):
        credentials.scoped_admin_key(connection(api), "maas-ada")
    assert api.calls == ["get secrets/maas-gateway-admin -n maas-ada"]
