"""The instructor's toolkit on the real local platform: vLLM, the gateway and PostgreSQL.

One room of two attendees, through the CLI as an instructor types it: provision (twice: nothing new),
each attendee gets a key from the portal with their login from the sheet, check (probe keys, not
billed), reset one attendee with --yes (their old key gets 401, the other's still works, their labs
are pristine again), report, and check's exit code once the gateway is stopped.
"""
from __future__ import annotations

import json
import stat
import time
import uuid

import openai
import pytest

from helpers import maas, room
from helpers.cli import main
from helpers.labgen import solution_paths
from tests.integration.servers import gateway_serving

pytestmark = pytest.mark.integration

MODEL = "parasol-tiny"


@pytest.fixture(scope="module")
def gateway():
    with gateway_serving((MODEL,)) as gw:
        yield gw


@pytest.fixture
def room_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MAAS_ROOM_DIR", str(tmp_path / "room"))
    return tmp_path / "room"


def chat(key: str, url: str) -> str:
    client = openai.OpenAI(base_url=url, api_key=key, max_retries=0)
    return client.chat.completions.create(model=MODEL, max_tokens=4, temperature=0,
                                          messages=[{"role": "user", "content": "What is 3 + 4?"}]).choices[0].finish_reason


def usage_of(admin: maas.RoomAdmin, user: str) -> int:
    return sum(row["requests"] for row in admin.usage() if row["user_name"] == user)


def wait_for_usage(admin: maas.RoomAdmin, user: str, at_least: int, timeout_s: float = 10) -> int:
    deadline = time.monotonic() + timeout_s
    while usage_of(admin, user) < at_least and time.monotonic() < deadline:
        time.sleep(0.2)
    return usage_of(admin, user)


def test_a_room_is_provisioned_once_checked_and_one_attendee_reset(gateway, room_dir, capsys):
    admin = maas.admin(gateway)
    ann, ben = (f"ann-{uuid.uuid4().hex[:6]}", f"ben-{uuid.uuid4().hex[:6]}")
    assert main(["instructor", "provision", "--names", f"{ann},{ben}"]) == 0
    out = capsys.readouterr().out
    logins = room.read_sheet()
    assert set(logins) == {ann, ben} and all(login not in out for login in logins.values())  # never printed
    assert stat.S_IMODE(room.sheet_path().stat().st_mode) == 0o600
    sheet, users = room.sheet_path().read_bytes(), len(admin.users())
    labs = {p: p.stat().st_mtime_ns for p in room_dir.rglob("*.ipynb")}

    assert main(["instructor", "provision", "--names", f"{ann},{ben}"]) == 0  # twice: a no-op
    assert "no new login issued" in capsys.readouterr().out
    assert room.sheet_path().read_bytes() == sheet and len(admin.users()) == users
    assert {p: p.stat().st_mtime_ns for p in room_dir.rglob("*.ipynb")} == labs
    assert len(labs) == 2 * len(solution_paths())  # each attendee's copy of every lab

    keys = {}
    for user in (ann, ben):  # each attendee signs in with their line of the sheet and makes a key
        portal = maas.Portal(admin.base_url, logins[user], user)
        keys[user] = portal.create_application("lab5", [MODEL])["key"]
        assert chat(keys[user], gateway.url)
    assert wait_for_usage(admin, ann, 1) == 1

    admin.cap_user(ben, 0)  # ben may use no token this month: the probe is not counted against caps
    assert main(["instructor", "check"]) == 0
    table = capsys.readouterr().out
    assert f"access: {ann}" in table and f"access: {ben}" in table and "FAIL" not in table
    admin.cap_user(ben, None)
    time.sleep(1)  # the ledger is flushed every 200 ms: a billed probe would show by now
    assert usage_of(admin, ann) == 1 and "instructor-probe" not in admin.active_applications(ann)

    lab = sorted((room.attendee_dir(ann) / "labs").glob("*.ipynb"))[0]
    lab.write_text("{}")
    (room.attendee_dir(ann) / "results" / "lab00.json").write_text("{}")
    assert main(["instructor", "reset", "--user", ann]) == 0  # dry run
    plan = capsys.readouterr().out
    assert f"{ann}: lab5" in plan and str(lab) in plan and "lab00.json" in plan and ben not in plan
    assert chat(keys[ann], gateway.url)  # a dry run changes nothing

    assert main(["instructor", "reset", "--user", ann, "--yes"]) == 0
    capsys.readouterr()
    with pytest.raises(openai.AuthenticationError) as refused:
        chat(keys[ann], gateway.url)
    assert refused.value.status_code == 401
    assert chat(keys[ben], gateway.url)  # the other attendee's key still works
    assert room.labs_state(ann).pristine and not room.results_files(ann)
    assert main(["instructor", "reset", "--user", ann]) == 0  # idempotent: nothing left to do
    assert all(line.endswith(": 0") for line in capsys.readouterr().out.splitlines()[1:])

    assert wait_for_usage(admin, ann, 2) >= 2  # the dry run's request is flushed to the ledger
    assert wait_for_usage(admin, ben, 2) >= 2  # and so is ben's call after ann's reset
    assert main(["instructor", "report", "--json"]) == 0
    report = {row["attendee"]: row for row in json.loads(capsys.readouterr().out)["attendees"]}
    assert report[ann]["active_keys"] == 0 and report[ann]["requests"] >= 2  # the ledger is kept
    assert report[ben]["active_keys"] == 1 and report[ben]["tokens"] > 0

    assert main(["instructor", "reset", "--user", ann, "--yes", "--forget-usage"]) == 0  # now the ledger too
    capsys.readouterr()
    assert usage_of(admin, ann) == 0 and usage_of(admin, ben) >= 2

    maas.stop_gateway()  # one thing broken on purpose: check says so and exits 1
    assert main(["instructor", "check"]) == 1
    assert "gateway" in capsys.readouterr().out
