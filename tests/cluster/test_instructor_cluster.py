"""The instructor's whole cycle against a real cluster: skipped without a kubeconfig (or in-cluster config).

    MAAS_KUBECONFIG=~/.kube/config PLATFORM=openshift pytest -m cluster tests/cluster/test_instructor_cluster.py

Needs the manifests applied (the shared gateway and at least one shared model in MAAS_GATEWAY_NAMESPACE),
the right to create namespaces, RoleBindings and ResourceQuotas, to read the gateway's Secret, and the
gateway reachable from here (MAAS_CLUSTER_GATEWAY_URL for a port-forward). It creates two attendee
namespaces (maas-it-*), then resets and deletes them; it never runs ``teardown`` (that deletes the shared
models). Not run yet: no apiserver could run where it was written.
"""
from __future__ import annotations

import os
import uuid

import pytest

from helpers import instructor, maas, preflight, room
from helpers.cluster import client as kube
from helpers.cluster import results as cluster_results
from helpers.cluster import room as cluster_room
from helpers.settings import get_settings

_REASON = kube.no_cluster_reason(get_settings().kubeconfig)
pytestmark = [pytest.mark.cluster, pytest.mark.skipif(_REASON is not None, reason=f"no cluster: {_REASON}")]

KIND = os.environ.get("PLATFORM") if os.environ.get("PLATFORM") in ("kubernetes", "openshift") else "kubernetes"


@pytest.fixture
def the_room(tmp_path, monkeypatch):
    monkeypatch.setenv("MAAS_ROOM_DIR", str(tmp_path / "room"))
    r = instructor.open_room(KIND)
    names = [f"it-{uuid.uuid4().hex[:6]}", f"it-{uuid.uuid4().hex[:6]}"]
    yield r, names
    for name in names:  # the test's namespaces and bindings only, by name and label; its scoped keys revoked
        targets = [t for t in cluster_room.teardown_plan(r.cluster, r.platform.settings.gateway_namespace)
                   if (t.kind is cluster_room.NAMESPACE and t.name == cluster_room.namespace_of(name))
                   or (t.kind is cluster_room.ROLE_BINDING and t.name == f"maas-attendee-{name}")]
        cluster_room.delete(r.cluster, targets)
        instructor.room_admin(r.platform).revoke_scope(cluster_room.scope_of(name))


def test_provision_check_reset_report_on_a_cluster(the_room):
    r, names = the_room
    first = instructor.provision(r, names)
    assert first.new_logins == names and len(first.cluster_objects[names[0]]) == 8  # with the scoped admin key
    second = instructor.provision(r, names)
    assert not second.new_logins  # server-side apply of the same objects: nothing changes
    assert set(cluster_room.namespace_of(n) for n in names) <= set(cluster_room.attendee_namespaces(r.cluster))

    lines = {line.check: line for line in preflight.check(r)}
    assert lines[f"access: {names[0]}"].verdict == "ok", lines
    assert lines["shared models"].verdict == "ok"

    admin = instructor.room_admin(r.platform)
    gateway = instructor.gateway_of(r.platform)
    portal = maas.Portal(admin.base_url, room.read_sheet()[names[0]], names[0])
    key = portal.create_application("lab5", [gateway.models[0]])["key"]
    ns = cluster_room.namespace_of(names[0])
    for _ in range(2):  # a lab run twice: one ConfigMap, the lab's key updated (here as the instructor)
        cluster_results.record(r.platform.connection, ns, names[0], "lab04", {"image_mb": 12.5})
    cluster_results.record(r.platform.connection, ns, names[0], "lab05", {"gateway_models": ["x"]})
    assert instructor.labs_done(names[0], r) == ["lab04", "lab05"]
    plan = instructor.reset_plan(r, [names[0]])
    assert plan["gateway keys (revoked)"] == [f"{names[0]}: lab5"]
    assert plan["results (deleted)"] == [f"ConfigMap {ns}/{cluster_results.NAME}"]
    instructor.reset(r, [names[0]])
    again = instructor.reset_plan(r, [names[0]])
    assert len(again.pop(instructor.WORKBENCH_NOTEBOOKS)) == 1  # said, never done from here
    assert all(not items for items in again.values()) and instructor.labs_done(names[0], r) == []
    import openai

    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=gateway.url, api_key=key, max_retries=0).chat.completions.create(
            model=gateway.models[0], max_tokens=2, messages=[{"role": "user", "content": "hi"}])
    report = instructor.report(r)
    assert {row["attendee"] for row in report["attendees"]} == set(names)
