"""An attendee's scoped admin key on a cluster: a Secret in their own namespace, put there by the instructor.

Labs 5 and 6 have the attendee act as the platform team (register developers, set plans, caps and blocks).
On a shared cluster they do it with an admin key of their own scope (``helpers.gateway.scopes``): it manages
the users and plans it made and nothing else, so one attendee cannot block another or read the gateway's
admin key. ``python -m helpers instructor provision`` issues it and applies this Secret; the attendee Role of
their namespace (``helpers.cluster.access.own_namespace_rules``) allows reading this one Secret.
"""
from __future__ import annotations

from ..errors import ClusterError
from . import client as kube
from .labels import workshop_labels

SECRET = "maas-gateway-admin"  # in the attendee's namespace; the attendee Role names it
KEY = "MAAS_ADMIN_KEY"


def secret_object(attendee: str, namespace: str, key: str) -> dict:
    """The Secret the instructor applies (server-side; the API server stores ``stringData`` as ``data``)."""
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": SECRET, "namespace": namespace, "labels": workshop_labels(attendee, "attendee")},
            "stringData": {KEY: key}}


def scoped_admin_key(connection: kube.Connection, namespace: str) -> str:
    """The attendee's scoped admin key, read now from their namespace (never stored, never printed)."""
    from kubernetes.client.exceptions import ApiException

    from .gateway import secret_value

    try:
        found = connection.core.read_namespaced_secret(SECRET, namespace)
    except ApiException as exc:
        if exc.status == 404:
            raise ClusterError(
                f"no Secret {SECRET!r} in namespace {namespace!r}: your admin key for Labs 5 and 6 is not there. The "
                f"instructor puts it there (`python -m helpers instructor provision --names <you>`); check that "
                f"MAAS_NAMESPACE ({namespace}) is your own namespace.") from exc
        raise kube.explain(exc.status or 0, str(exc.body or exc.reason), "get", f"secrets/{SECRET}", namespace) from exc
    return secret_value(connection.api_client.sanitize_for_serialization(found), KEY)
