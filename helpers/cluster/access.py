"""What an attendee's notebooks do through the API, as the RBAC rules that allow it.

On a cluster the notebooks of Labs 5 and 6 read the shared gateway (its readiness and model list from its
Deployment, its port from its Service, its public address from its Route on OpenShift, its admin key from its
Secret) and Lab 6 reads the ledger through a port-forward to the gateway's PostgreSQL pod. Every API call the
helpers make there lives in ``ATTENDEE_MODULES``; ``tests/unit/test_attendee_rbac.py`` reads the calls from
their source and checks that these rules allow exactly those calls, so a new call without a rule (or a rule
without a call) fails the test.

In their own namespace the attendee is ``admin`` (they deploy models there). What the helpers themselves write
there on every lab (``OWN_NAMESPACE_MODULES``: the lab's figures, for the instructor's report) is granted again by
its own Role, ``own_namespace_rules``, checked the same way: the helpers keep working if ``admin`` is narrowed.
"""
from __future__ import annotations

ATTENDEE_MODULES = ("helpers/cluster/gateway.py", "helpers/cluster/ledger.py")
OWN_NAMESPACE_MODULES = ("helpers/cluster/results.py",)


def rule(group: str, resource: str, verbs: list[str], names: list[str] | None = None) -> dict:
    """One RBAC rule; ``names`` limits it to those objects (a ``list`` cannot be limited by name)."""
    found = {"apiGroups": [group], "resources": [resource], "verbs": verbs}
    return {**found, "resourceNames": names} if names else found


def attendee_rules() -> list[dict]:
    """The Role ``maas-attendee`` in the gateway's namespace, named object by named object where RBAC allows."""
    from .gateway import NAME
    from .manifests import POSTGRES_POD, SECRET_NAME

    return [
        rule("apps", "deployments", ["get"], [NAME]),  # readiness, the routed models, which Secret it reads
        rule("", "services", ["get"], [NAME]),  # the gateway's port
        rule("route.openshift.io", "routes", ["get"], [NAME]),  # its address from a laptop (OpenShift)
        rule("", "secrets", ["get"], [SECRET_NAME]),  # the admin key (Lab 5), the ledger's credentials (Lab 6)
        rule("", "pods", ["list"]),  # why the gateway's pods do not start (by label: not limited by name)
        rule("", "pods", ["get"], [POSTGRES_POD]),  # is PostgreSQL running (Lab 6)
        # Lab 6's port-forward: a WebSocket upgrade (GET), authorized as `create` too since Kubernetes 1.35
        rule("", "pods/portforward", ["create", "get"], [POSTGRES_POD]),
    ]


def own_namespace_rules() -> list[dict]:
    """The Role ``maas-attendee-results`` in the attendee's namespace: the lab's figures, server-side applied."""
    from .results import NAME

    return [
        rule("", "configmaps", ["patch"], [NAME]),  # server-side apply of the results ConfigMap
        rule("", "configmaps", ["create"]),  # the first apply creates it (a create cannot be limited by name)
    ]
