"""The instructor's toolkit: provision a room, reset one attendee or all, report progress, tear down.

The same verbs on the local platform (a room is this machine: attendee folders under the state
dir) and on a cluster (a namespace per attendee, the shared gateway and models). Gateway users,
keys and usage go through the gateway's admin API (``maas.RoomAdmin``) on both. Destructive verbs
are dry runs unless ``--yes``; they list exactly what they would delete or revoke, grouped by kind.
The preflight (``check``) lives in ``helpers.preflight``.
"""
from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from . import room
from .errors import WorkshopError
from .platform import KubernetesPlatform, get_platform
from .platform.base import Platform
from .settings import get_settings

TEAM = "workshop"  # the gateway team of every attendee (top consumers, chargeback)


@dataclass
class Room:
    """What the verbs act on: the platform, and on a cluster the API of its objects."""

    platform: Platform
    cluster: object | None = None  # cluster.room.RoomAPI; None on the local platform

    @property
    def local(self) -> bool:
        return self.cluster is None


def open_room(kind: str | None = None, cluster_api=None) -> Room:
    platform = get_platform(kind)
    if isinstance(platform, KubernetesPlatform):
        from .cluster.room import KubeRoomAPI

        return Room(platform, cluster_api or KubeRoomAPI(platform.connection))
    return Room(platform)


def gateway_of(platform: Platform):
    """The room's gateway: locally the running one (never started here), on a cluster the shared one."""
    if isinstance(platform, KubernetesPlatform):
        return platform.shared_gateway(timeout_s=30)
    from .gateway.proxy import running_gateway

    gateway = running_gateway()
    if gateway is None:
        raise room.RoomError("the gateway is not running on this machine: start the room first with "
                             "`python -m helpers up`")
    return gateway


def room_admin(platform: Platform):
    """The gateway's admin API with the gateway's own admin key (the instructor's; never an attendee's)."""
    from .maas import room_admin as admin

    return admin(gateway_of(platform))


# -- provision -----------------------------------------------------------------------------

@dataclass
class Provisioned:
    """What one ``provision`` run did (nothing, the second time)."""

    new_logins: list[str] = field(default_factory=list)
    labs_copied: dict[str, int] = field(default_factory=dict)
    cluster_objects: dict[str, list[str]] = field(default_factory=dict)
    sheet: Path | None = None

    @property
    def changed(self) -> bool:
        return bool(self.new_logins or any(self.labs_copied.values()))


def provision(r: Room, names: list[str], admin=None) -> Provisioned:
    """Per attendee: a gateway user with a portal login (issued once, onto the sheet), pristine labs
    (locally), a namespace with RBAC and quota (cluster). Run twice: nothing new."""
    done = Provisioned()
    admin = admin or room_admin(r.platform)
    logins = room.read_sheet()
    for name in names:
        if name not in logins:
            logins[name] = admin.register_user(name, TEAM).token
            done.new_logins.append(name)
        if r.local:
            done.labs_copied[name] = len(room.copy_labs(name))
        else:
            from .cluster import room as cluster_room

            done.cluster_objects[name] = (cluster_room.provision(r.cluster, name, r.platform.settings.gateway_namespace)
                                          + cluster_room.hand_over_admin_key(r.cluster, name, admin.scope_key))
    if done.new_logins:
        done.sheet = room.write_sheet(logins, admin.base_url.removesuffix("/portal") + "/portal")
    return done


# -- reset ---------------------------------------------------------------------------------

ResetPlan = dict[str, list[str]]  # kind -> what of that kind (one line each)


def _local_deployments(platform: Platform, user: str) -> list[str]:
    return [d.name for d in platform.list() if d.details.get("owner") == user]


WORKBENCH_NOTEBOOKS = "notebooks (NOT restored by reset: the attendee runs this in their workbench's terminal)"


def labs_commit() -> str:
    """The commit of this checkout: the pristine labs/ an attendee's notebooks go back to on a cluster."""
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=get_settings().root, capture_output=True, text=True,
                              timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "HEAD"
    return done.stdout.strip() or "HEAD"


def workbench_restore_step(user: str, commit: str) -> str:
    """The exact step that restores an attendee's labs/ inside their workbench (what a local reset does).

    Not done through the API: the notebooks live in the workbench's volume, a PersistentVolumeClaim the
    OpenShift AI dashboard made (no workshop labels: reset touches labelled objects only), ReadWriteOnce and
    mounted by the running workbench, with the attendee's clone of the workshop at a path of their choosing.
    ``git restore`` puts back the notebooks they changed or deleted and keeps the files they added.
    """
    from .cluster.room import namespace_of

    return (f"{user}: in the workbench of project {namespace_of(user)}, in the clone of the workshop: "
            f"git restore --source={commit} -- labs/")


def reset_plan(r: Room, users: list[str], forget_usage: bool = False, admin=None) -> ResetPlan:
    """Exactly what ``reset`` would revoke or delete, grouped by kind."""
    admin = admin or room_admin(r.platform)
    plan: ResetPlan = {"gateway keys (revoked)": [], "deployments (deleted)": [], "results (deleted)": [],
                       "notebooks (restored to labs/)": []}
    for user in users:
        plan["gateway keys (revoked)"] += [f"{user}: {app}" for app in admin.active_applications(user)]
        if r.local:
            plan["deployments (deleted)"] += [f"{user}: {d}" for d in _local_deployments(r.platform, user)]
            plan["results (deleted)"] += [str(p) for p in room.results_files(user)]
            state = room.labs_state(user)
            plan["notebooks (restored to labs/)"] += [str(p) for p in state.missing + state.changed]
        else:
            from .cluster import room as cluster_room

            for target in cluster_room.reset_plan(r.cluster, user):
                group = {cluster_room.CONFIG_MAP: "results (deleted)",
                         cluster_room.SECRET: "secrets (deleted)"}.get(target.kind, "deployments (deleted)")
                plan.setdefault(group, []).append(f"{target.kind.kind} {target}")
    if not r.local:  # notebooks live in each workbench's volume: the step to run there, not done from here
        plan.pop("notebooks (restored to labs/)")
        commit = labs_commit()
        plan[WORKBENCH_NOTEBOOKS] = [workbench_restore_step(user, commit) for user in users]
    if forget_usage:
        plan["usage (deleted: ledger rows, rollups, refusal counts)"] = list(users)
    return plan


def reset(r: Room, users: list[str], forget_usage: bool = False, admin=None) -> ResetPlan:
    """Do the reset (keys first: an attendee's old key stops working before anything else changes)."""
    admin = admin or room_admin(r.platform)
    plan = reset_plan(r, users, forget_usage, admin)
    for user in users:
        admin.revoke_all(user)
        if r.local:
            for name in _local_deployments(r.platform, user):
                r.platform.undeploy(name)
            room.remove_results(user)
            room.restore_labs(user)
        else:
            from .cluster import room as cluster_room

            cluster_room.delete(r.cluster, cluster_room.reset_plan(r.cluster, user))
        if forget_usage:
            admin.forget_usage(user)
    return plan


def room_users(r: Room, all_users: bool, user: str | None) -> list[str]:
    """``--user U`` (must be in the room) or ``--all`` (everyone on the sheet)."""
    known = sorted(room.read_sheet())
    if all_users:
        if not known:
            raise room.RoomError(f"no room sheet at {room.sheet_path()}: provision the room first")
        return known
    if not user:
        raise room.RoomError("say whom to reset: --user NAME or --all")
    if user not in known:
        raise room.RoomError(f"{user!r} is not in this room (attendees: {', '.join(known) or 'none'})")
    return [user]


# -- report --------------------------------------------------------------------------------


def labs_done(user: str, r: Room) -> list[str]:
    """The labs whose results an attendee's runs recorded (``labNN`` files of helpers.results)."""
    if r.local:
        return sorted({p.stem for p in room.results_files(user) if p.stem.startswith("lab") and p.suffix == ".json"})
    from .cluster import room as cluster_room

    maps = r.cluster.list(cluster_room.CONFIG_MAP, cluster_room.namespace_of(user),
                          f"{cluster_room.owner_selector(user)},{cluster_room.COMPONENT}=results")
    return sorted({key for m in maps if cluster_room.is_workshops(m, user) for key in (m.get("data") or {})
                   if key.startswith("lab")})


def report(r: Room, admin=None) -> dict:
    """Each attendee's labs done, tokens, requests, cost and live keys; the room's top consumers."""
    admin = admin or room_admin(r.platform)
    usage: dict[str, dict] = {}
    for row in admin.usage():
        total = usage.setdefault(row["user_name"], {"requests": 0, "tokens": 0, "cost_usd": 0.0})
        total["requests"] += int(row["requests"])
        total["tokens"] += int(row["prompt_tokens"]) + int(row["completion_tokens"])
        total["cost_usd"] += float(row["cost_usd"])
    attendees = []
    for user in sorted(room.read_sheet()):
        done = labs_done(user, r)
        keys = [a for a in admin.active_applications(user) if a != "instructor-probe"]
        attendees.append({"attendee": user, "labs_done": len(done), "labs": ",".join(done),
                          **usage.get(user, {"requests": 0, "tokens": 0, "cost_usd": 0.0}),
                          "active_keys": len(keys)})
    return {"attendees": attendees, "top_consumers": top_consumers(r, admin)}


def top_consumers(r: Room, admin, n: int = 5) -> list[dict]:
    """This month's top consumers: from the monthly rollups (helpers.rollups) locally, the admin API on a cluster."""
    if r.local:
        from . import rollups
        from .gateway import postgres

        table = rollups.top_consumers(postgres.dsn(), n=n).reset_index()
        return [{"user_name": row.user_name, "tokens": int(row.tokens), "cost_usd": round(float(row.cost_usd), 6),
                 "share_of_tokens": round(float(row.share_of_tokens), 3)} for row in table.itertuples()]
    return [{"user_name": row["user_name"], "tokens": int(row["tokens"]), "cost_usd": float(row["cost_usd"])}
            for row in admin.top_consumers(n)]


# -- teardown ------------------------------------------------------------------------------

def teardown_plan(r: Room) -> ResetPlan:
    if r.local:
        return {"ledger (exported first)": [str(room.room_dir() / "exports")],
                "shared models (stopped)": [d.name for d in r.platform.list()],
                "attendee folders (removed)": [str(room.attendee_dir(u)) for u in room.provisioned()],
                "room sheet (removed)": [str(room.sheet_path())] if room.sheet_path().is_file() else []}
    from .cluster import room as cluster_room

    targets = cluster_room.teardown_plan(r.cluster, r.platform.settings.gateway_namespace)
    return {"ledger (exported first)": [str(room.room_dir() / "exports")],
            "shared models (deleted)": [str(t) for t in targets if t.kind is cluster_room.INFERENCE_SERVICE],
            "attendee bindings in the gateway's namespace (deleted)":
                [str(t) for t in targets if t.kind is cluster_room.ROLE_BINDING],
            "attendee namespaces (deleted)": [str(t) for t in targets if t.kind is cluster_room.NAMESPACE],
            "scoped admin keys (revoked)": cluster_room.room_attendees(r.cluster)}


def export_ledger(r: Room, admin=None) -> Path:
    """The whole ledger as CSV under the room's exports (before anything goes)."""
    text = (admin or room_admin(r.platform)).ledger_csv()
    path = room.room_dir() / "exports" / f"ledger-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def teardown(r: Room, admin=None) -> Path:
    """Export the ledger, then stop/delete the shared models and remove the attendees' places (on a cluster their
    bindings in the gateway's namespace too, and their scoped admin keys stop working)."""
    admin = admin or room_admin(r.platform)
    exported = export_ledger(r, admin)
    if r.local:
        for name in [d.name for d in r.platform.list()]:
            r.platform.undeploy(name)
        for user in room.provisioned():
            shutil.rmtree(room.attendee_dir(user))
        room.sheet_path().unlink(missing_ok=True)
    else:
        from .cluster import room as cluster_room

        attendees = cluster_room.room_attendees(r.cluster)
        cluster_room.delete(r.cluster, cluster_room.teardown_plan(r.cluster, r.platform.settings.gateway_namespace))
        for attendee in attendees:  # their keys stop working: the gateway outlives the room
            admin.revoke_scope(cluster_room.scope_of(attendee))
    return exported


# -- output --------------------------------------------------------------------------------

def table(rows: list[dict]) -> str:
    """Rows as an aligned text table (columns from the first row)."""
    if not rows:
        return "(none)"
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(str(row.get(c, ""))) for row in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(row.get(c, "")).ljust(widths[c]) for c in columns) for row in rows]
    return "\n".join(line.rstrip() for line in lines)


def as_csv(rows: list[dict]) -> str:
    if not rows:
        return ""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def plan_text(plan: ResetPlan) -> str:
    lines = []
    for kind, items in plan.items():
        lines.append(f"{kind}: {len(items)}")
        lines += [f"  - {item}" for item in items]
    return "\n".join(lines)


def as_json(value) -> str:
    return json.dumps(value, indent=2, default=str)


__all__ = ["Room", "open_room", "provision", "reset_plan", "reset", "report", "teardown_plan", "teardown",
           "WorkshopError"]
