"""Lab 6's read path to the cluster's ledger (``helpers/cluster/ledger.py``), without a cluster.

The API answers are SHAPED LIKE THE REAL API (v1 Pod status, v1 Secret, apps/v1 Deployment as
``manifests/base/gateway`` renders it; the kubernetes client's failed WebSocket handshake as its
``ws_client.portforward_call`` raises it), NOT CAPTURED FROM A CLUSTER. The port-forward's tunnel is a real
TCP connection to a server on 127.0.0.1 standing in for the pod's PostgreSQL port.
"""
from __future__ import annotations

import base64
import socket
import socketserver

import pytest
from kubernetes.client.exceptions import ApiException

from helpers import maas
from helpers.cluster import gateway as cluster_gateway
from helpers.cluster import ledger, manifests
from helpers.errors import ClusterConfigError, ClusterError, ClusterForbiddenError
from helpers.platform import KubernetesPlatform, OpenShiftPlatform
from helpers.settings import get_settings
from tests.unit.local_servers import serving
from tests.unit.test_cluster_gateway import NS, READY, FakeApi, api_status, connection

PASSWORD = "pg-not-a-real-password-42"
CLUSTER_DSN = f"postgresql://maas_reader:{PASSWORD}@maas-postgres.maas-models.svc.cluster.local:5432/maas"
SECRET = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": manifests.READER_SECRET, "namespace": NS},
          "data": {"MAAS_LEDGER_READER_DSN": base64.b64encode(CLUSTER_DSN.encode()).decode(),
                   "MAAS_LEDGER_READER_PASSWORD": base64.b64encode(PASSWORD.encode()).decode()}}
READY_CONDITION = {"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-20T10:00:00Z"}
RUNNING = {"metadata": {"name": manifests.POSTGRES_POD, "namespace": NS},
           "status": {"phase": "Running", "conditions": [READY_CONDITION], "containerStatuses": [
               {"name": "postgres", "ready": True, "restartCount": 0, "image": manifests.POSTGRES_IMAGE,
                "imageID": "", "state": {"running": {"startedAt": "2026-11-20T10:00:00Z"}}}]}}
STARTING = {**RUNNING, "status": {**RUNNING["status"], "conditions": [{**READY_CONDITION, "status": "False"}]}}
PENDING = {**RUNNING, "status": {"phase": "Pending"}}


def stable_deployment() -> dict:
    """The gateway Deployment as applied now: its Secret has a stable name (no kustomize hash)."""
    models = manifests.load_model_list().shared
    deployment = next(o for o in manifests.gateway_objects(NS, models) if o["kind"] == "Deployment")
    return {**deployment, "metadata": {**deployment["metadata"], "generation": 2}, "status": READY}


class Handshake(ApiException):
    """What ``kubernetes.stream.portforward`` raises when the API server refuses the WebSocket upgrade."""

    def __init__(self, code: int, text: str):
        super().__init__(status=0, reason=f"Handshake status {code} {text}")


class LedgerApi(FakeApi):
    """The gateway's namespace with its PostgreSQL pod and its Secret; the tunnel reaches ``pod_port``."""

    def __init__(self, pod: dict = RUNNING, pod_port: int = 0, refuse_tunnel: int = 0, secret: bool = True):
        super().__init__([stable_deployment()])
        self.pod, self.pod_port, self.refuse_tunnel, self.secret = pod, pod_port, refuse_tunnel, secret

    def read_namespaced_secret(self, name, namespace):
        self.calls.append(f"get secrets/{name}")
        if not self.secret or name != manifests.READER_SECRET:  # the gateway's own Secret is not the attendee's
            raise api_status(404, "NotFound", f'secrets "{name}" not found')
        return self._model(SECRET, "V1Secret")

    def read_namespaced_pod(self, name, namespace):
        self.calls.append(f"get pods/{name}")
        return self._model(self.pod, "V1Pod")

    def connect_get_namespaced_pod_portforward(self, name, namespace, ports):
        raise AssertionError("only called through kubernetes.stream.portforward")


class FakeForward:
    def __init__(self, port: int):
        self._socket = socket.create_connection(("127.0.0.1", port))

    def socket(self, port_number):
        assert port_number == manifests.POSTGRES_PORT
        return self._socket


@pytest.fixture
def echo_port():
    """A TCP server on 127.0.0.1 standing in for the pod's PostgreSQL port: it answers what it receives."""
    class Echo(socketserver.BaseRequestHandler):
        def handle(self):
            while data := self.request.recv(4096):
                self.request.sendall(b"pg:" + data)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    with serving(server) as port:
        yield port


@pytest.fixture
def tunnels(monkeypatch):
    """``kubernetes.stream.portforward`` replaced: a real TCP connection, or the API server's refusal."""
    opened = []

    def portforward(method, name, namespace, ports):
        api = method.__self__
        opened.append((name, namespace, ports))
        if api.refuse_tunnel:
            raise Handshake(api.refuse_tunnel, "Forbidden")
        return FakeForward(api.pod_port)

    import kubernetes.stream

    monkeypatch.setattr(kubernetes.stream, "portforward", portforward)
    monkeypatch.setattr(ledger, "_forwards", {})
    return opened


# -- pure functions ------------------------------------------------------------------------------------------
def test_the_dsn_points_at_the_port_forward_and_opens_read_only_sessions():
    dsn = ledger.local_dsn(CLUSTER_DSN, 40123)
    assert dsn.startswith(f"postgresql://maas_reader:{PASSWORD}@127.0.0.1:40123/maas?")
    import psycopg

    assert psycopg.conninfo.conninfo_to_dict(dsn)["options"] == "-c default_transaction_read_only=on"
    with pytest.raises(ClusterError, match="no user and password"):
        ledger.local_dsn("postgresql://maas-postgres:5432/maas", 1)


def test_the_postgres_pod_is_read_from_its_status():
    assert ledger.pod_not_running(RUNNING) is None
    assert "Pending" in ledger.pod_not_running(PENDING)
    assert "not ready" in ledger.pod_not_running(STARTING)
    pulling = {**PENDING, "status": {"phase": "Pending", "containerStatuses": [{
        "name": "postgres", "ready": False, "state": {"waiting": {"reason": "ImagePullBackOff",
                                                                   "message": "Back-off pulling image"}}}]}}
    assert "ImagePullBackOff" in ledger.pod_not_running(pulling)


# -- the port-forward, through the helpers' real code ------------------------------------------------------
@pytest.mark.parametrize("cls", [KubernetesPlatform, OpenShiftPlatform])
def test_lab6_reads_the_ledger_through_a_port_forward_to_the_postgres_pod(cls, echo_port, tunnels):
    api = LedgerApi(pod_port=echo_port)
    dsn = maas.ledger_dsn(cls(connection=connection(api)))
    port = int(dsn.split("@127.0.0.1:")[1].split("/")[0])
    for attempt in (b"first", b"second"):  # each connection gets its own tunnel
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            client.sendall(attempt)
            assert client.recv(100) == b"pg:" + attempt
    assert tunnels[0] == (manifests.POSTGRES_POD, NS, str(manifests.POSTGRES_PORT))
    assert len(tunnels) == 3  # the check at start, then one per connection
    assert api.calls == [f"get secrets/{manifests.READER_SECRET}", f"get pods/{manifests.POSTGRES_POD}"]  # the reader's
    assert maas.ledger_dsn(cls(connection=connection(api))) == dsn  # one port-forward per process
    assert PASSWORD not in repr(ledger._forwards) + repr(list(ledger._forwards.values()))


def test_a_refused_port_forward_names_the_verb_and_the_pod(tunnels):
    with pytest.raises(ClusterForbiddenError, match="may not create pods/portforward \\(maas-postgres-0\\)"):
        maas.ledger_dsn(KubernetesPlatform(connection=connection(LedgerApi(refuse_tunnel=403))))


def test_no_secret_a_forbidden_secret_and_a_pod_not_running_say_what_to_do(tunnels):
    missing = "no Secret 'maas-ledger-reader'.*cluster-secrets"
    with pytest.raises(cluster_gateway.GatewayNotDeployedError, match=missing):
        maas.ledger_dsn(KubernetesPlatform(connection=connection(LedgerApi(secret=False))))

    class SecretForbidden(LedgerApi):
        def read_namespaced_secret(self, name, namespace):
            raise api_status(403, "Forbidden", f'secrets "{name}" is forbidden: User "ada" cannot get resource '
                                               f'"secrets" in API group "" in the namespace "{namespace}"')

    with pytest.raises(ClusterForbiddenError, match="may not get secrets in namespace 'maas-models'"):
        maas.ledger_dsn(KubernetesPlatform(connection=connection(SecretForbidden())))
    with pytest.raises(ClusterError, match="its pod is Pending.*oc get pod maas-postgres-0 -n maas-models"):
        maas.ledger_dsn(OpenShiftPlatform(connection=connection(LedgerApi(pod=PENDING))))
    assert not tunnels


def test_no_kubeconfig_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = get_settings().__class__(**{**get_settings().__dict__, "kubeconfig": ""})
    with pytest.raises(ClusterConfigError, match="no Kubernetes configuration.*oc login"):
        maas.ledger_dsn(KubernetesPlatform(settings=settings))
