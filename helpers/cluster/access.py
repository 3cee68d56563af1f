"""What an attendee's notebooks do through the API, as the RBAC rules that allow it.

On a cluster the notebooks of Labs 5 and 6 read the shared gateway (its readiness and model list from its
Deployment, its port from its Service, its public address from its Route on OpenShift) and Lab 6 reads the
ledger through a port-forward to the gateway's PostgreSQL pod, as the read-only ``maas_reader`` (its DSN from
the Secret ``maas-ledger-reader``). The gateway's own Secret (admin key, the database owner's password) is
not theirs: their admin key is a scoped one, in their own namespace. Every API call the
helpers make there lives in ``ATTENDEE_MODULES``; ``tests/unit/test_attendee_rbac.py`` reads the calls from
their source and checks that these rules allow exactly those calls, so a new call without a rule (or a rule
without a call) fails the test.

In their own namespace the attendee is ``admin`` (they deploy models there). What the helpers themselves do
there (``OWN_NAMESPACE_MODULES``: the lab's figures, for the instructor's report; their scoped admin key; Lab 6's
scratch PostgreSQL) is
granted again by its own Role, ``own_namespace_rules``, checked the same way: the helpers keep working if
``admin`` is narrowed. Every Role is bound to the attendee and to the service accounts of their namespace (the
workbench's, see ``helpers.cluster.manifests.attendee_subjects``).
"""
from __future__ import annotations

ATTENDEE_MODULES = ("helpers/cluster/gateway.py", "helpers/cluster/ledger.py")
OWN_NAMESPACE_MODULES = ("helpers/cluster/results.py", "helpers/cluster/credentials.py", "helpers/cluster/scratch.py",
                         "helpers/cluster/ledger.py")  # the scratch PostgreSQL's port-forward is the ledger's


def rule(group: str, resource: str, verbs: list[str], names: list[str] | None = None) -> dict:
    """One RBAC rule; ``names`` limits it to those objects (a ``list`` cannot be limited by name)."""
    found = {"apiGroups": [group], "resources": [resource], "verbs": verbs}
    return {**found, "resourceNames": names} if names else found


def attendee_rules() -> list[dict]:
    """The Role ``maas-attendee`` in the gateway's namespace, named object by named object where RBAC allows."""
    from .gateway import NAME
    from .manifests import POSTGRES_POD, READER_SECRET

    return [
        rule("apps", "deployments", ["get"], [NAME]),  # readiness, the routed models, which Secret it reads
        rule("", "services", ["get"], [NAME]),  # the gateway's port
        rule("route.openshift.io", "routes", ["get"], [NAME]),  # its address from a laptop (OpenShift)
        rule("", "secrets", ["get"], [READER_SECRET]),  # the read-only ledger role's DSN (Lab 6); never the gateway's
        rule("", "pods", ["list"]),  # why the gateway's pods do not start (by label: not limited by name)
        rule("", "pods", ["get"], [POSTGRES_POD]),  # is PostgreSQL running (Lab 6)
        # Lab 6's port-forward: a WebSocket upgrade (GET), authorized as `create` too since Kubernetes 1.35
        rule("", "pods/portforward", ["create", "get"], [POSTGRES_POD]),
    ]


def own_namespace_rules() -> list[dict]:
    """The Role ``maas-attendee-results`` in the attendee's namespace: the lab's figures, server-side applied, the
    attendee's scoped admin key, and Lab 6's scratch PostgreSQL (its Secret, its pod, a port-forward to it)."""
    from .credentials import SECRET
    from .manifests import SCRATCH_POD, SCRATCH_SECRET
    from .results import NAME

    return [
        rule("", "configmaps", ["patch"], [NAME]),  # server-side apply of the results ConfigMap
        rule("", "configmaps", ["create"]),  # the first apply creates it (a create cannot be limited by name)
        rule("", "secrets", ["get"], [SECRET, SCRATCH_SECRET]),  # the scoped admin key; the scratch server's DSN
        rule("", "pods", ["get"], [SCRATCH_POD]),  # is the scratch PostgreSQL running (Lab 6)
        # the synthetic month from a laptop: a WebSocket upgrade (GET), authorized as `create` too since 1.35
        rule("", "pods/portforward", ["create", "get"], [SCRATCH_POD]),
    ]
