"""A model server that dies is reported as dead, with what its log says, not as a mysterious HTTP 500.

Last of the integration tests (tests/conftest.py sorts them there): they kill the parasol-tiny the other
modules shared, so no vLLM start (about 27 s) is spent on a server that is about to die. Two real deaths on
any CPU, in this order: the engine is killed the way the kernel's OOM killer would kill it (vLLM's API
server and its engine are separate processes, ``VLLM::EngineCore``), then the API server itself.
`python -m helpers down` afterwards leaves nothing running.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys

import psutil
import pytest

from helpers.client import ask
from helpers.errors import ServerDiedError
from helpers.models import MODEL_NAME, ensure_tiny_model
from helpers.platform import LocalPlatform
from helpers.platform.base import Deployment

pytestmark = pytest.mark.integration


def helpers_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "helpers", *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def doomed() -> Deployment:
    """The running parasol-tiny (started if this module runs alone); `helpers down` stops everything after."""
    ensure_tiny_model(show_progress=False)
    deployment = LocalPlatform().deploy(MODEL_NAME, "parasol-tiny")
    assert ask(deployment, "What is 2 + 2?")  # alive and answering first
    yield deployment
    down = helpers_cli("down")
    assert down.returncode == 0, down.stderr
    assert LocalPlatform().list() == []
    assert not psutil.pid_exists(deployment.details["pid"]) or \
        psutil.Process(deployment.details["pid"]).status() == psutil.STATUS_ZOMBIE


def _engine_of(pid: int) -> psutil.Process:
    engines = [p for p in psutil.Process(pid).children(recursive=True) if p.name() == "VLLM::EngineCore"]
    assert len(engines) == 1, f"expected one engine process under the API server {pid}, found {engines}"
    return engines[0]


def test_a_dead_engine_is_reported_with_its_log(doomed):
    engine = _engine_of(doomed.details["pid"])
    engine.send_signal(signal.SIGKILL)
    psutil.wait_procs([engine], timeout=10)
    died = r"(?s)(has a failed engine|is no longer running).*Undeploy and redeploy.*(EngineCore|engine core)"
    with pytest.raises(ServerDiedError, match=died):
        ask(doomed, "What is 2 + 2?")
    with pytest.raises(ServerDiedError, match=died):
        LocalPlatform().get("parasol-tiny")


def test_a_dead_server_gets_a_clear_error(doomed):
    """After the engine: the API server goes too (if it has not gone by itself)."""
    server = psutil.Process(doomed.details["pid"])
    if server.is_running() and server.status() != psutil.STATUS_ZOMBIE:
        server.kill()
    psutil.wait_procs([server], timeout=10)
    with pytest.raises(ServerDiedError, match="no longer running"):
        ask(doomed, "What is 1 + 1?")
    listing = json.loads(helpers_cli("status", "--json").stdout)
    assert [d["status"] for d in listing["deployments"] if d["name"] == "parasol-tiny"] == ["dead"]
