"""A room of attendees on this machine: their folders, their pristine labs, the room sheet.

Everything lives under ``<state dir>/room/`` (MAAS_ROOM_DIR): ``attendees/<name>/labs`` (a copy of labs/, the
notebooks an attendee works in), ``attendees/<name>/results`` (what their labs record,
``MAAS_RESULTS_DIR``) and ``sheet.txt``, the only place portal logins are ever written
(mode 0600, never committed, never printed). The instructor toolkit only deletes or
restores files under an attendee's folder, which it created.
"""
from __future__ import annotations

import filecmp
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from .errors import WorkshopError
from .secretfiles import write_secret
from .settings import get_settings

ATTENDEE_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?")  # a namespace suffix and a gateway user name
SHEET_HEADER = "# The room's portal logins: hand each attendee their line once. Mode 0600; never commit it.\n"


class RoomError(WorkshopError):
    """The room cannot be set up or changed as asked; the message says what to do."""


def room_dir() -> Path:
    """``<state dir>/room``, or MAAS_ROOM_DIR (tests use their own)."""
    return Path(os.environ.get("MAAS_ROOM_DIR") or get_settings().state_dir / "room")


def sheet_path() -> Path:
    return room_dir() / "sheet.txt"


def attendee_dir(name: str) -> Path:
    return room_dir() / "attendees" / name


def pristine_labs() -> list[Path]:
    """The lab notebooks every attendee starts from (labs/ of this checkout)."""
    return sorted((get_settings().root / "labs").glob("*.ipynb"))


def attendee_names(users: int | None = None, names: str | None = None) -> list[str]:
    """``--users N`` (attendee-01 ...) or ``--names a,b,c``, checked: lower-case letters, digits and '-'."""
    if names:
        chosen = [n.strip() for n in names.split(",") if n.strip()]
    elif users:
        chosen = [f"attendee-{i:02d}" for i in range(1, users + 1)]
    else:
        raise RoomError("say who is in the room: --users N or --names alice,bob")
    bad = [n for n in chosen if not ATTENDEE_NAME.fullmatch(n)]
    if bad:
        raise RoomError(f"attendee names {bad}: use lower-case letters, digits and '-' (they name namespaces)")
    if len(set(chosen)) != len(chosen):
        raise RoomError(f"a name is given twice in {chosen}")
    return chosen


# -- the room sheet ------------------------------------------------------------------------

def read_sheet() -> dict[str, str]:
    """The attendees on the sheet and their logins (empty when there is no sheet)."""
    path = sheet_path()
    if not path.is_file():
        return {}
    logins = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, login = line.split(None, 1)[0], line.split()[-1]
            logins[name] = login
    return logins


def write_sheet(logins: dict[str, str], portal_url: str) -> Path:
    """Write the sheet (mode 0600 from its first byte): one line per attendee, login last."""
    lines = [SHEET_HEADER, f"# portal: {portal_url}\n"]
    lines += [f"{name:24} {login}\n" for name, login in sorted(logins.items())]
    return write_secret(sheet_path(), "".join(lines))


# -- an attendee's files -------------------------------------------------------------------

@dataclass(frozen=True)
class LabsState:
    """How an attendee's lab folder differs from the pristine labs/."""

    missing: list[Path]  # pristine notebooks absent from their folder
    changed: list[Path]  # their copies that differ from labs/ (their work)

    @property
    def pristine(self) -> bool:
        return not self.missing and not self.changed


def labs_state(name: str) -> LabsState:
    folder = attendee_dir(name) / "labs"
    missing, changed = [], []
    for lab in pristine_labs():
        copy = folder / lab.name
        if not copy.is_file():
            missing.append(copy)
        elif not filecmp.cmp(lab, copy, shallow=False):
            changed.append(copy)
    return LabsState(missing, changed)


def copy_labs(name: str) -> list[Path]:
    """Give an attendee the labs they lack (their own copies are never overwritten); the files written."""
    state = labs_state(name)
    (attendee_dir(name) / "results").mkdir(parents=True, exist_ok=True)
    for copy in state.missing:
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(get_settings().root / "labs" / copy.name, copy)
    return state.missing


def restore_labs(name: str) -> list[Path]:
    """Put back the pristine notebooks (missing or changed ones); other files in the folder stay."""
    state = labs_state(name)
    for copy in state.missing + state.changed:
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(get_settings().root / "labs" / copy.name, copy)
    return state.missing + state.changed


def results_files(name: str) -> list[Path]:
    """What the attendee's labs recorded (their results folder, and run-labs' summary if any)."""
    folder = attendee_dir(name) / "results"
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []


def remove_results(name: str) -> list[Path]:
    files = results_files(name)
    for path in files:
        path.unlink(missing_ok=True)
    return files


def provisioned() -> list[str]:
    """The attendees with a folder in this room."""
    folder = room_dir() / "attendees"
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
