"""Error paths of the local platform. A fake server command is used only here."""
import json
import sys

import pytest

from helpers import processes
from helpers.errors import (
    DeploymentNotFoundError, ModelNotFoundError, PlatformError, PortInUseError, ServerDiedError, ServerStartError,
)
from helpers.platform import LocalPlatform, Platform, get_platform


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """A platform with its own state folder, so real deployments are untouched."""
    monkeypatch.setenv("MAAS_STATE_DIR", str(tmp_path / "state"))
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    return LocalPlatform(), model


def test_unknown_platform_lists_the_known_ones():
    with pytest.raises(PlatformError, match="unknown platform 'openshfit'; available: kubernetes, local, openshift"):
        get_platform("openshfit")
    assert isinstance(Platform.create("local"), LocalPlatform)


def test_unknown_model(isolated):
    platform, _ = isolated
    with pytest.raises(ModelNotFoundError, match="unknown model 'llama-4'"):
        platform.deploy("llama-4", "llama")


def test_a_server_that_dies_at_start_shows_its_log(isolated, tmp_path, monkeypatch):
    platform, model = isolated
    fake = tmp_path / "fake-python"
    fake.write_text("#!/bin/sh\necho 'RuntimeError: no memory for the KV cache'\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("MAAS_SERVING_PYTHON", str(fake))
    platform = LocalPlatform()
    with pytest.raises(ServerStartError, match="(?s)exited while starting.*no memory for the KV cache"):
        platform.deploy(model, "doomed", timeout_s=30)
    assert platform.list() == []  # nothing left behind after a failed start


def test_a_taken_port_is_refused_before_starting(isolated):
    platform, model = isolated
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with pytest.raises(PortInUseError):
            platform.deploy(model, "m", port=listener.getsockname()[1])


def test_unknown_and_dead_deployments(isolated, tmp_path):
    platform, model = isolated
    with pytest.raises(DeploymentNotFoundError, match="no deployment named 'nope'"):
        platform.get("nope")
    handle = processes.start([sys.executable, "-c", "import time; time.sleep(30)"], tmp_path / "x.log")
    record = {"name": "gone", "model": str(model), "endpoint": "http://127.0.0.1:1/v1", "pid": handle.pid,
              "create_time": handle.create_time, "port": 1, "log": str(tmp_path / "x.log"), "dtype": "float32",
              "started_at": 0}
    platform.records_dir.mkdir(parents=True)
    (platform.records_dir / "gone.json").write_text(json.dumps(record))
    assert platform.get("gone").ready
    processes.stop(handle)
    assert [d.status for d in platform.list()] == ["dead"]
    with pytest.raises(ServerDiedError, match="is no longer running. Undeploy and redeploy it"):
        platform.get("gone")
    assert platform.undeploy("gone") is False and platform.list() == []
