"""Lab 6's read path to the usage ledger in the cluster: a port-forward to the gateway's PostgreSQL.

The ledger lives in the PostgreSQL of the gateway's namespace, which takes traffic from the gateway's pods
only (NetworkPolicy ``maas-postgres-from-gateway-only``). The notebook reaches it the way `kubectl
port-forward` does, through the API server to the StatefulSet's one pod (the attendee Role names that pod and
no other), on a port of 127.0.0.1 of this machine. The credentials are the ones the gateway itself uses (the
``MAAS_GATEWAY_DSN`` of the Secret its Deployment names), read through the API: never printed, never on a
command line. The DSN handed to pandas points at 127.0.0.1 and opens read-only sessions.
"""
from __future__ import annotations

import re
import socket
import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from ..errors import ClusterError
from ..gateway import reader
from ..gateway.postgres import Dsn
from . import client as kube
from . import gateway
from .manifests import POSTGRES_POD, POSTGRES_PORT, READER_SECRET
from .status import pod_problem

READ_ONLY = "-c default_transaction_read_only=on"


# -- pure functions (tested without a cluster) ----------------------------------------------------------------
def at_local_port(cluster_dsn: str, port: int, no_login_hint: str, query: str = "") -> Dsn:
    """A cluster DSN pointed at a port-forward on 127.0.0.1 (same login and database; ``query`` replaces its
    options); ``no_login_hint`` says what to do when the DSN has no user and password."""
    parts = urlsplit(cluster_dsn)
    credentials = parts.netloc.rpartition("@")[0]
    if not credentials:
        raise ClusterError(f"the DSN has no user and password: {no_login_hint}")
    return Dsn(urlunsplit((parts.scheme, f"{credentials}@127.0.0.1:{port}", parts.path, query, "")))


def local_dsn(cluster_dsn: str, port: int) -> Dsn:
    """The reader's DSN pointed at a port-forward on 127.0.0.1, its sessions read-only by default."""
    query = [(k, v) for k, v in parse_qsl(urlsplit(cluster_dsn).query) if k != "options"] + [("options", READ_ONLY)]
    # quote, not quote_plus: libpq decodes %20 in a URI, not +
    return at_local_port(cluster_dsn, port, f"regenerate the {READER_SECRET} Secret (`python -m helpers "
                         "cluster-secrets`, then apply the manifests again)", urlencode(query, quote_via=quote))


def pod_not_running(pod: dict) -> str | None:
    """Why the PostgreSQL pod cannot take a port-forward (None when it runs and is ready)."""
    status = pod.get("status") or {}
    problem = pod_problem(pod)
    if problem:
        return problem.message
    if status.get("phase") != "Running":
        return f"its pod is {status.get('phase', 'not started')}"
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    return None if ready.get("status") == "True" else "its pod is running but not ready yet"


def handshake_status(exc: Exception) -> int:
    """The HTTP status of a refused port-forward (the client reports the WebSocket handshake in its reason)."""
    status = getattr(exc, "status", 0) or 0
    found = re.search(r"Handshake status (\d{3})", str(getattr(exc, "reason", "")))
    return status or (int(found.group(1)) if found else 0)


# -- the port-forward ---------------------------------------------------------------------------------------
def _pump(source, target) -> None:
    """Copy bytes one way until either side closes."""
    try:
        while chunk := source.recv(65536):
            target.sendall(chunk)
    except OSError:
        pass
    finally:
        for end in (source, target):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@dataclass
class PortForward:
    """127.0.0.1:<port> on this machine to a PostgreSQL pod (the gateway's by default; the attendee's scratch one
    for Lab 6's synthetic month), one API-server tunnel per connection."""

    connection: kube.Connection = field(repr=False)
    namespace: str
    pod: str = POSTGRES_POD
    dsn: str = field(default="", repr=False)  # on 127.0.0.1, with the credentials: never shown
    listener: socket.socket = field(default_factory=lambda: socket.create_server(("127.0.0.1", 0)), repr=False)

    @property
    def port(self) -> int:
        return self.listener.getsockname()[1]

    def tunnel(self):
        """A socket to the pod's PostgreSQL port through the API server (a refusal says which verb is missing)."""
        from kubernetes.client.exceptions import ApiException
        from kubernetes.stream import portforward

        try:
            forward = portforward(self.connection.core.connect_get_namespaced_pod_portforward, self.pod,
                                  self.namespace, ports=str(POSTGRES_PORT))
        except ApiException as exc:
            raise kube.explain(handshake_status(exc), str(exc.body or exc.reason), "create",
                               f"pods/portforward ({self.pod})", self.namespace) from exc
        return forward.socket(POSTGRES_PORT)

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            try:
                remote = self.tunnel()
            except ClusterError:
                client.close()
                continue
            for source, target in ((client, remote), (remote, client)):
                threading.Thread(target=_pump, args=(source, target), daemon=True).start()

    def start(self) -> "PortForward":
        self.tunnel().close()  # one tunnel now: a refusal is an error here, not a lost connection later
        threading.Thread(target=self._serve, name=f"{self.pod} port-forward :{self.port}", daemon=True).start()
        return self

    def close(self) -> None:
        self.listener.close()


_forwards: dict[tuple[str, str], PortForward] = {}  # one per cluster context and namespace, for this process


def require_postgres_running(connection: kube.Connection, namespace: str, openshift: bool) -> None:
    pod = gateway.api_read(lambda: connection.core.read_namespaced_pod(POSTGRES_POD, namespace), "get", "pods",
                           namespace, openshift, f"PostgreSQL pod {POSTGRES_POD!r}")
    why = pod_not_running(connection.api_client.sanitize_for_serialization(pod))
    if why:
        cli = "oc" if openshift else "kubectl"
        raise ClusterError(f"the gateway's PostgreSQL in {namespace!r} cannot be read: {why}. See `{cli} get pod "
                           f"{POSTGRES_POD} -n {namespace}` and `{cli} logs {POSTGRES_POD} -n {namespace}`.")


def ledger_dsn(connection: kube.Connection, namespace: str, openshift: bool = False) -> str:
    """A DSN on 127.0.0.1 for the cluster's ledger (the read-only role, read-only sessions), through a port-forward
    that lives as long as this Python process; made once per cluster context and namespace."""
    key = (connection.context, namespace)
    if key not in _forwards:
        cluster_dsn = gateway.read_secret_value(connection, namespace, READER_SECRET, reader.DSN_KEY, openshift)
        require_postgres_running(connection, namespace, openshift)
        forward = PortForward(connection, namespace).start()
        forward.dsn = local_dsn(cluster_dsn, forward.port)
        _forwards[key] = forward
    return _forwards[key].dsn
