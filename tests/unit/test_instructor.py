"""The instructor's toolkit offline: what reset and teardown would touch in a fixture room of 3 attendees.

The room's cluster objects (tests/data/room_fixture.json) are shaped as the Kubernetes API returns them
(written from the API's shapes, not captured from a cluster: none can run here). ``FixtureAPI`` answers
``RoomAPI``'s calls from them; ``FixtureAdmin`` stands in for the gateway's admin API, which the
integration test (tests/integration/test_instructor.py) exercises for real.
"""
from __future__ import annotations

import copy
import json
import os
import secrets
import stat
from pathlib import Path

import pytest

from helpers import instructor, preflight, room
from helpers.cli import main
from helpers.cluster import room as cluster_room
from helpers.platform import KubernetesPlatform, LocalPlatform

FIXTURE = Path(__file__).parent.parent / "data" / "room_fixture.json"
ATTENDEES = ["alice", "bob", "carol"]


def _matches(obj: dict, selector: str) -> bool:
    labels = obj["metadata"].get("labels") or {}
    return all(labels.get(k) == v for k, v in (term.split("=", 1) for term in selector.split(",") if term))


class FixtureAPI:
    """The fixture room behind ``RoomAPI``. ``honour_selector=False`` answers every object of a kind (as a
    server or proxy that dropped the label selector would): the room's own label checks must still hold."""

    def __init__(self, honour_selector: bool = True) -> None:
        self.objects = json.loads(FIXTURE.read_text())["objects"]
        self.honour_selector = honour_selector
        self.deleted: list[tuple[str, str | None, str]] = []

    def _same(self, obj: dict, kind: cluster_room.Kind, namespace: str | None) -> bool:
        return (obj["apiVersion"], obj["kind"]) == (kind.api_version, kind.kind) and \
            (not kind.namespaced or namespace is None or obj["metadata"].get("namespace") == namespace)

    def list(self, kind, namespace, selector):
        return [copy.deepcopy(o) for o in self.objects if self._same(o, kind, namespace)
                and (not self.honour_selector or _matches(o, selector))]

    def delete(self, kind, namespace, name):
        self.deleted.append((kind.kind, namespace, name))
        self.objects = [o for o in self.objects if not (self._same(o, kind, namespace) and o["metadata"]["name"] == name)]

    def apply(self, obj):
        """Server-side apply: an identical object is left alone (same resourceVersion)."""
        for i, existing in enumerate(self.objects):
            if (existing["kind"], existing["metadata"].get("namespace"), existing["metadata"]["name"]) == \
                    (obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"]):
                merged = {**existing, **{k: v for k, v in obj.items() if k != "metadata"},
                          "metadata": {**existing["metadata"], "labels": obj["metadata"].get("labels")}}
                if merged != existing:
                    merged["metadata"]["resourceVersion"] = str(int(existing["metadata"]["resourceVersion"]) + 1)
                    self.objects[i] = merged
                return merged
        created = copy.deepcopy(obj)
        created["metadata"]["resourceVersion"] = "1"
        self.objects.append(created)
        return created


class FixtureAdmin:
    """The gateway's admin API in memory (users, portal logins, applications)."""

    class _Login:
        def __init__(self, token: str) -> None:
            self.token = token

    def __init__(self) -> None:
        self.base_url = "http://127.0.0.1:4000/portal"
        self.users: dict[str, int] = {}
        self.apps = {"alice": ["chatbot", "summarizer"], "bob": ["lab5-app"], "carol": []}

    def register_user(self, name, team):
        self.users[name] = self.users.get(name, 0) + 1
        return self._Login(f"pt-fixture-{name}-{self.users[name]}")

    def active_applications(self, user):
        return list(self.apps.get(user, []))

    def revoke_all(self, user):
        revoked, self.apps[user] = self.apps.get(user, []), []
        return revoked

    scopes: dict[str, int]
    minted: dict[str, list[str]]

    def scope_key(self, scope):
        self.scopes = getattr(self, "scopes", {})
        self.scopes[scope] = self.scopes.get(scope, 0) + 1
        self.minted = getattr(self, "minted", {})
        self.minted.setdefault(scope, []).append("sk-scope-" + secrets.token_hex(16))
        return self.minted[scope][-1]

    def revoke_scope(self, scope):
        self.revoked = [*getattr(self, "revoked", []), scope]
        return True

    def ledger_csv(self):
        return "id,ts,user_name\n"


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("MAAS_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("MAAS_KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    return tmp_path


def cluster(honour_selector: bool = True) -> instructor.Room:
    return instructor.Room(KubernetesPlatform(), FixtureAPI(honour_selector))


EXPECTED_RESET = {
    "gateway keys (revoked)": ["alice: chatbot", "alice: summarizer", "bob: lab5-app"],
    "deployments (deleted)": ["InferenceService maas-alice/tiny-1", "InferenceService maas-alice/tiny-2",
                              "InferenceService maas-bob/tiny-1"],
    "results (deleted)": ["ConfigMap maas-alice/maas-results", "ConfigMap maas-bob/maas-results"],
    "secrets (deleted)": ["Secret maas-alice/maas-registry-auth", "Secret maas-bob/maas-registry-auth"],
}


@pytest.mark.parametrize("honour_selector", [True, False], ids=["selector", "selector-dropped"])
def test_the_dry_run_lists_exactly_the_labelled_objects_of_a_3_attendee_room(state, honour_selector):
    r = cluster(honour_selector)
    before = copy.deepcopy(r.cluster.objects)
    plan = instructor.reset_plan(r, ATTENDEES, admin=FixtureAdmin())
    steps = plan.pop(instructor.WORKBENCH_NOTEBOOKS)
    assert plan == EXPECTED_RESET
    commit = instructor.labs_commit()
    assert len(commit) == 40 and steps == [  # the notebooks: the exact step, in each attendee's workbench
        f"{user}: in the workbench of project maas-{user}, in the clone of the workshop: "
        f"git restore --source={commit} -- labs/" for user in ATTENDEES]
    listed = " ".join(sum(plan.values(), []))
    for never in ("my-own-experiment", "copied-from-alice", "kube-root-ca.crt", "builder-dockercfg", "workbench",
                  "carol-notes", "predictor", "granite", "maas-gateway", "hand-made-test"):
        assert never not in listed  # unlabelled, another owner's, shared, or owned by an InferenceService
    assert r.cluster.objects == before and not r.cluster.deleted  # a dry run changes nothing


def test_reset_of_one_attendee_deletes_theirs_only_and_twice_is_a_no_op(state):
    r, admin = cluster(honour_selector=False), FixtureAdmin()
    instructor.reset(r, ["bob"], admin=admin)
    assert sorted(r.cluster.deleted) == [("ConfigMap", "maas-bob", "maas-results"),
                                         ("InferenceService", "maas-bob", "tiny-1"),
                                         ("Secret", "maas-bob", "maas-registry-auth")]
    assert admin.apps == {"alice": ["chatbot", "summarizer"], "bob": [], "carol": []}
    names = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in r.cluster.objects}
    assert ("InferenceService", "maas-bob", "my-own-experiment") in names
    assert ("InferenceService", "maas-alice", "tiny-1") in names and ("Namespace", None, "maas-bob") in names
    again = instructor.reset_plan(r, ["bob"], admin=admin)
    assert len(again.pop(instructor.WORKBENCH_NOTEBOOKS)) == 1  # never done from here: said again
    assert all(not items for items in again.values())


@pytest.mark.parametrize("honour_selector", [True, False], ids=["selector", "selector-dropped"])
def test_teardown_lists_the_shared_models_the_attendee_bindings_then_the_attendee_namespaces(state,
                                                                                            honour_selector):
    plan = instructor.teardown_plan(cluster(honour_selector))
    assert plan["shared models (deleted)"] == ["maas-models/granite-3-1-2b-instruct",
                                               "maas-models/granite-3-1-8b-instruct-w4a16"]
    assert plan["attendee bindings in the gateway's namespace (deleted)"] == [
        "maas-models/maas-attendee-alice", "maas-models/maas-attendee-bob", "maas-models/maas-attendee-carol"]
    assert plan["attendee namespaces (deleted)"] == ["maas-alice", "maas-bob", "maas-carol"]
    assert plan["scoped admin keys (revoked)"] == ATTENDEES


def test_teardown_deletes_the_attendee_bindings_by_label_and_revokes_their_admin_keys(state):
    r, admin = cluster(honour_selector=False), FixtureAdmin()
    instructor.teardown(r, admin=admin)
    bindings = [(kind, name) for kind, ns, name in r.cluster.deleted if kind == "RoleBinding"]
    assert bindings == [("RoleBinding", f"maas-attendee-{user}") for user in ATTENDEES]
    kept = {(o["kind"], o["metadata"]["name"]) for o in r.cluster.objects if o["metadata"].get("namespace") == "maas-models"}
    assert {("RoleBinding", "ops-view"), ("RoleBinding", "maas-gateway-group-reader"),  # unlabelled; the platform's
            ("Role", "maas-attendee"), ("Deployment", "maas-gateway"), ("Secret", "maas-gateway-secrets")} <= kept
    assert not [o for o in r.cluster.objects if o["kind"] == "RoleBinding" and (o["metadata"].get("labels") or {})
                .get("app.kubernetes.io/component") == "attendee"]
    assert admin.revoked == ATTENDEES  # the gateway outlives the room: their keys stop working


def test_provision_twice_on_a_cluster_changes_nothing_the_second_time(state):
    r, admin = cluster(), FixtureAdmin()
    first = instructor.provision(r, ["alice", "dave"], admin=admin)
    assert first.new_logins == ["alice", "dave"] and admin.users == {"alice": 1, "dave": 1}
    assert first.cluster_objects["dave"] == ["Namespace -/maas-dave", "RoleBinding maas-dave/maas-attendee-admin",
                                             "ResourceQuota maas-dave/maas-attendee-quota",
                                             "Role maas-dave/maas-attendee-results",
                                             "RoleBinding maas-dave/maas-attendee-results",
                                             "Role maas-models/maas-attendee",
                                             "RoleBinding maas-models/maas-attendee-dave",
                                             "StatefulSet maas-dave/maas-scratch-postgres",  # Lab 6's synthetic
                                             "Service maas-dave/maas-scratch-postgres",  # month's PostgreSQL
                                             "Secret maas-dave/maas-scratch-postgres",  # its generated password
                                             "Secret maas-dave/maas-gateway-admin"]  # their scoped admin key
    scratch = next(o for o in r.cluster.objects if o["kind"] == "Secret"
                   and o["metadata"]["name"] == "maas-scratch-postgres" and o["metadata"]["namespace"] == "maas-dave")
    password = scratch["stringData"]["POSTGRESQL_ADMIN_PASSWORD"]
    assert len(password) >= 32 and scratch["stringData"]["MAAS_SCRATCH_DSN"] == \
        f"postgresql://postgres:{password}@maas-scratch-postgres.maas-dave.svc.cluster.local:5432/postgres"
    assert password not in repr(first)  # never in what provision reports
    secret = next(o for o in r.cluster.objects if o["kind"] == "Secret" and o["metadata"]["name"] == "maas-gateway-admin"
                  and o["metadata"]["namespace"] == "maas-dave")
    assert secret["stringData"] == {"MAAS_ADMIN_KEY": admin.minted["dave"][0]} and admin.scopes == {"dave": 1, "alice": 1}
    sheet = room.sheet_path()
    assert stat.S_IMODE(sheet.stat().st_mode) == 0o600
    objects, text = copy.deepcopy(r.cluster.objects), sheet.read_text()
    second = instructor.provision(r, ["alice", "dave"], admin=admin)
    assert not second.new_logins and second.sheet is None and admin.users == {"alice": 1, "dave": 1}
    assert admin.scopes == {"dave": 1, "alice": 1}  # no new key: the Secret is there
    assert r.cluster.objects == objects and sheet.read_text() == text


def test_check_on_the_fixture_cluster_names_the_gpus_models_and_what_is_missing(state):
    r = cluster()
    room.write_sheet({"alice": "pt-x", "erin": "pt-y"}, "http://portal")
    lines = {line.check: line for line in preflight.cluster_lines(r)}
    assert lines["GPU nodes"].verdict == "ok" and "ip-10-0-1-10: 1 x NVIDIA-L4" in lines["GPU nodes"].detail
    assert lines["shared models"].verdict == "ok"
    assert lines["runtime"].verdict == "FAIL" and "no-kubeconfig does not exist" in lines["runtime"].detail
    assert lines["attendee namespaces"].verdict == "FAIL" and "erin" in lines["attendee namespaces"].detail
    assert preflight.exit_code(list(lines.values())) == 1


def _local_attendee(name: str, owner_pid: int = 2 ** 22 + 17) -> LocalPlatform:
    room.copy_labs(name)
    platform = LocalPlatform()
    platform._write({"name": f"{name}-copy", "model": "m", "endpoint": "http://127.0.0.1:9/v1", "pid": owner_pid,
                     "create_time": 1.0, "port": 9, "log": "/dev/null", "owner": name})  # its server has exited
    return platform


def test_a_local_reset_restores_the_labs_and_deletes_only_what_it_created(state):
    platform = _local_attendee("alice")
    _local_attendee("bob")
    lab = sorted((room.attendee_dir("alice") / "labs").glob("*.ipynb"))[0]
    lab.write_text("{}")  # alice's work
    (room.attendee_dir("alice") / "labs" / "notes.txt").write_text("mine")
    (room.attendee_dir("alice") / "results" / "lab00.json").write_text("{}")
    (room.attendee_dir("bob") / "results" / "lab00.json").write_text("{}")
    r, admin = instructor.Room(platform), FixtureAdmin()
    plan = instructor.reset_plan(r, ["alice"], admin=admin)
    assert plan["deployments (deleted)"] == ["alice: alice-copy"]
    assert plan["notebooks (restored to labs/)"] == [str(lab)]
    assert plan["results (deleted)"] == [str(room.attendee_dir("alice") / "results" / "lab00.json")]
    instructor.reset(r, ["alice"], admin=admin)
    assert room.labs_state("alice").pristine and not room.results_files("alice")
    assert (room.attendee_dir("alice") / "labs" / "notes.txt").read_text() == "mine"  # not the toolkit's file
    assert [d.name for d in platform.list()] == ["bob-copy"] and room.results_files("bob")
    assert all(not items for items in instructor.reset_plan(r, ["alice"], admin=admin).values())


def test_attendee_names_and_the_cli_refuse_what_is_unclear(state, capsys):
    assert room.attendee_names(users=3) == ["attendee-01", "attendee-02", "attendee-03"]
    with pytest.raises(room.RoomError, match="lower-case"):
        room.attendee_names(names="Alice,bob")
    with pytest.raises(SystemExit):
        main(["instructor", "reset"])  # --user or --all is required
    assert main(["instructor", "reset", "--all"]) == 2
    assert "provision the room first" in capsys.readouterr().err


def test_the_sheet_is_read_back_and_never_world_readable(state):
    path = room.write_sheet({"bob": "pt-b", "alice": "pt-a"}, "http://127.0.0.1:4000/portal")
    assert room.read_sheet() == {"alice": "pt-a", "bob": "pt-b"}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_local_teardown_lists_the_models_the_attendee_folders_and_the_sheet(state):
    platform = _local_attendee("alice")
    room.write_sheet({"alice": "pt-a"}, "http://portal")
    plan = instructor.teardown_plan(instructor.Room(platform))
    assert plan["shared models (stopped)"] == ["alice-copy"]
    assert plan["attendee folders (removed)"] == [str(room.attendee_dir("alice"))]
    assert plan["room sheet (removed)"] == [str(room.sheet_path())]
    assert list(plan)[0] == "ledger (exported first)"
