"""A model server whose engine dies must be reported as dead, with what its log says, not as a
mysterious HTTP 500 or connection error. A real death on any CPU: vLLM's API server and its engine
are separate processes (``VLLM::EngineCore``); the engine is killed the way the kernel's OOM killer
would kill it, and the API server is left running without it."""
import signal

import psutil
import pytest

from helpers import processes
from helpers.client import ask
from helpers.errors import ServerDiedError
from helpers.models import ensure_tiny_model
from helpers.platform import LocalPlatform

pytestmark = pytest.mark.integration

NAME = "engine-dies"


def _engine_of(pid: int) -> psutil.Process:
    engines = [p for p in psutil.Process(pid).children(recursive=True) if p.name() == "VLLM::EngineCore"]
    assert len(engines) == 1, f"expected one engine process under the API server {pid}, found {engines}"
    return engines[0]


def test_a_dead_engine_is_reported_with_its_log():
    platform = LocalPlatform()
    deployment = platform.deploy(ensure_tiny_model(show_progress=False).path, NAME)
    created = psutil.Process(deployment.details["pid"]).create_time()
    try:
        assert ask(deployment, "What is 2 + 2?")  # alive and answering first
        _engine_of(deployment.details["pid"]).send_signal(signal.SIGKILL)
        died = r"(?s)(has a failed engine|is no longer running).*Undeploy and redeploy.*(EngineCore|engine core)"
        with pytest.raises(ServerDiedError, match=died):
            ask(deployment, "What is 2 + 2?")
        with pytest.raises(ServerDiedError, match=died):
            platform.get(NAME)
    finally:
        platform.undeploy(NAME)
    assert NAME not in [d.name for d in platform.list()]
    assert not processes.ProcessHandle(deployment.details["pid"], created).is_alive()
