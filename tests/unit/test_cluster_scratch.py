"""Lab 6's synthetic month on a cluster (``helpers/cluster/scratch.py``): the attendee's scratch PostgreSQL.

The API answers are SHAPED LIKE THE REAL API (v1 Pod status, v1 Secret as the API returns it: ``data`` in
base64), NOT CAPTURED FROM A CLUSTER. The port-forward's tunnel is a real TCP connection to a server on
127.0.0.1 standing in for the scratch pod's PostgreSQL port (as in test_cluster_ledger.py).
"""
from __future__ import annotations

import base64
import socket

import pytest

from helpers import synthetic
from helpers.cluster import client as kube
from helpers.cluster import manifests, room, scratch
from helpers.errors import ClusterError, ClusterForbiddenError
from helpers.platform import KubernetesPlatform, OpenShiftPlatform
from tests.unit.test_cluster_gateway import FakeApi, api_status, connection
from tests.unit.test_cluster_ledger import PENDING, RUNNING, Handshake, echo_port, tunnels  # noqa: F401 (fixtures)

NS = "maas-ada"
PASSWORD = "scratch-not-a-real-password-7"
SECRET = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": manifests.SCRATCH_SECRET, "namespace": NS},
          "data": {scratch.PASSWORD_KEY: base64.b64encode(PASSWORD.encode()).decode(),
                   scratch.DSN_KEY: base64.b64encode(scratch.service_dsn(NS, PASSWORD).encode()).decode()}}
SCRATCH_RUNNING = {**RUNNING, "metadata": {"name": manifests.SCRATCH_POD, "namespace": NS}}


class ScratchApi(FakeApi):
    """The attendee's namespace with the scratch PostgreSQL's pod and Secret; the tunnel reaches ``pod_port``."""

    def __init__(self, pod: dict | None = SCRATCH_RUNNING, pod_port: int = 0, refuse_tunnel: int = 0,
                 secret: bool | int = True):
        super().__init__(None)
        self.pod, self.pod_port, self.refuse_tunnel, self.secret = pod, pod_port, refuse_tunnel, secret

    def read_namespaced_secret(self, name, namespace):
        self.calls.append(f"get secrets/{name}")
        if self.secret == 403:
            raise api_status(403, "Forbidden", f'secrets "{name}" is forbidden: User "ada" cannot get resource '
                                               f'"secrets" in API group "" in the namespace "{namespace}"')
        if not self.secret or name != manifests.SCRATCH_SECRET:
            raise api_status(404, "NotFound", f'secrets "{name}" not found')
        return self._model(SECRET, "V1Secret")

    def read_namespaced_pod(self, name, namespace):
        self.calls.append(f"get pods/{name}")
        if self.pod is None or name != manifests.SCRATCH_POD:
            raise api_status(404, "NotFound", f'pods "{name}" not found')
        return self._model(self.pod, "V1Pod")

    def connect_get_namespaced_pod_portforward(self, name, namespace, ports):
        raise AssertionError("only called through kubernetes.stream.portforward")


@pytest.fixture
def laptop(monkeypatch, tunnels):  # noqa: F811
    monkeypatch.setattr(kube, "in_cluster", lambda: False)
    monkeypatch.setattr(scratch, "_forwards", {})
    return tunnels


def platform(api: ScratchApi, cls=KubernetesPlatform):
    found = cls(connection=connection(api))
    found.namespace = NS  # the attendee's own namespace (MAAS_NAMESPACE)
    return found


# -- pure functions ------------------------------------------------------------------------------------------
def test_the_provisioned_secret_has_a_fresh_password_and_the_services_dsn():
    first, second = scratch.secret_object("ada", NS), scratch.secret_object("ada", NS)
    password = first["stringData"][scratch.PASSWORD_KEY]
    assert len(password) >= 32 and password != second["stringData"][scratch.PASSWORD_KEY]
    assert first["stringData"][scratch.DSN_KEY] == \
        f"postgresql://postgres:{password}@maas-scratch-postgres.maas-ada.svc.cluster.local:5432/postgres"
    assert first["metadata"]["labels"]["maas-workshop/owner"] == "ada"
    statefulset = manifests.scratch_postgres_objects("ada", NS)[0]
    env = statefulset["spec"]["template"]["spec"]["containers"][0]["env"][0]
    assert env["valueFrom"]["secretKeyRef"] == {"name": manifests.SCRATCH_SECRET, "key": scratch.PASSWORD_KEY}


def test_the_dsn_moves_to_the_port_forward_and_hides_its_password():
    dsn = scratch.at_local_port(scratch.service_dsn(NS, PASSWORD), 40555)
    assert dsn == f"postgresql://postgres:{PASSWORD}@127.0.0.1:40555/postgres"
    assert PASSWORD not in repr(dsn)
    with pytest.raises(ClusterError, match="no user and password.*provision"):
        scratch.at_local_port("postgresql://maas-scratch-postgres:5432/postgres", 1)


def test_a_reset_keeps_the_scratch_postgres_and_its_secret():
    for obj in [*manifests.scratch_postgres_objects("ada", NS), scratch.secret_object("ada", NS)]:
        assert room.is_workshops(obj, "ada") and not room.resettable(obj, "ada"), obj["kind"]


# -- through the helpers' real code --------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [KubernetesPlatform, OpenShiftPlatform])
def test_from_a_laptop_the_scratch_server_is_reached_through_a_port_forward_to_its_pod(cls, echo_port, laptop):  # noqa: F811
    api = ScratchApi(pod_port=echo_port)
    dsn = scratch.server_dsn(connection(api), NS, cls.openshift)
    assert dsn.startswith(f"postgresql://postgres:{PASSWORD}@127.0.0.1:") and PASSWORD not in repr(dsn)
    port = int(dsn.split("@127.0.0.1:")[1].split("/")[0])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(b"startup")
        assert client.recv(100) == b"pg:startup"
    assert laptop[0] == (manifests.SCRATCH_POD, NS, str(manifests.POSTGRES_PORT))  # that pod, in their namespace
    assert api.calls == [f"get secrets/{manifests.SCRATCH_SECRET}", f"get pods/{manifests.SCRATCH_POD}"]
    assert scratch.server_dsn(connection(api), NS) == dsn  # one port-forward per process


def test_in_a_workbench_the_scratch_server_is_its_service(monkeypatch, laptop):
    monkeypatch.setattr(kube, "in_cluster", lambda: True)
    dsn = scratch.server_dsn(connection(ScratchApi()), NS)
    assert dsn == scratch.service_dsn(NS, PASSWORD) and PASSWORD not in repr(dsn)
    assert not laptop  # no port-forward


def test_on_a_cluster_platform_the_synthetic_month_goes_to_the_scratch_server(laptop):
    """``synthetic.load_into_postgres`` picks the scratch server (no local PostgreSQL is looked for): its errors."""
    with pytest.raises(ClusterError, match="no Secret 'maas-scratch-postgres' in namespace 'maas-ada'.*instructor "
                                           "provision --names"):
        synthetic.fresh_database("synthetic", platform(ScratchApi(secret=False)))
    with pytest.raises(ClusterError, match="no pod 'maas-scratch-postgres-0'.*instructor provision"):
        synthetic.fresh_database("synthetic", platform(ScratchApi(pod=None)))
    pending = {**PENDING, "metadata": SCRATCH_RUNNING["metadata"]}
    with pytest.raises(ClusterError, match="cannot take the synthetic month: its pod is Pending.*oc get pod "
                                           "maas-scratch-postgres-0 -n maas-ada"):
        synthetic.load_into_postgres(None, platform=platform(ScratchApi(pod=pending), OpenShiftPlatform))
    assert not laptop


def test_forbidden_reads_and_a_refused_port_forward_name_the_verb(laptop):
    with pytest.raises(ClusterForbiddenError, match="may not get secrets/maas-scratch-postgres"):
        synthetic.fresh_database("synthetic", platform(ScratchApi(secret=403)))
    with pytest.raises(ClusterForbiddenError, match="may not create pods/portforward \\(maas-scratch-postgres-0\\)"):
        synthetic.fresh_database("synthetic", platform(ScratchApi(refuse_tunnel=403)))


def test_the_scratch_pod_fits_the_attendee_quota():
    """A ResourceQuota on requests.cpu, requests.memory and limits.memory refuses a pod that leaves one unset."""
    from kubernetes.utils import parse_quantity

    objects = manifests.attendee_objects("ada", NS)
    hard = next(o for o in objects if o["kind"] == "ResourceQuota")["spec"]["hard"]
    statefulset = next(o for o in objects if o["kind"] == "StatefulSet")
    assert statefulset["metadata"]["name"] == manifests.SCRATCH_NAME and statefulset["spec"]["replicas"] == 1
    pod = statefulset["spec"]["template"]["spec"]
    assert all(v.get("emptyDir") for v in pod["volumes"])  # no PersistentVolumeClaim: a sample, made again
    resources = pod["containers"][0]["resources"]
    for key in ("requests.cpu", "requests.memory", "limits.memory"):
        kind, resource = key.split(".")
        assert parse_quantity(resources[kind][resource]) <= parse_quantity(hard[key]) / 4, key  # leaves room
    assert pod["containers"][0]["image"] == manifests.POSTGRES_IMAGE  # the gateway's pinned image (by digest)
