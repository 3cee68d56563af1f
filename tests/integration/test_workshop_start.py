"""`make workshop` (python -m helpers workshop): root or not, and a failed start leaves nothing running."""
import os
import shutil

import pytest

from helpers import workshop
from helpers.gateway.postgres import cluster_dir, running_postgres, start_postgres

pytestmark = pytest.mark.integration


def test_jupyterlab_is_allowed_to_run_as_root_only_when_we_are_root():
    assert "--allow-root" in workshop.jupyter_command(as_root=True)
    assert "--allow-root" not in workshop.jupyter_command(as_root=False)
    assert workshop.jupyter_command(as_root=os.geteuid() == 0)[-1:] != ["--ip"]  # a complete command line


def test_a_failed_start_stops_what_it_had_started(tmp_path, monkeypatch):
    monkeypatch.setenv("MAAS_STATE_DIR", str(tmp_path / "state"))  # a machine of its own: nothing else touched

    def start_then_fail():
        start_postgres()
        assert running_postgres() is not None
        raise RuntimeError("the model server could not start")

    try:
        with pytest.raises(RuntimeError, match="could not start"):
            workshop.run_workshop(start_then_fail)
        assert running_postgres() is None
    finally:
        shutil.rmtree(cluster_dir(), ignore_errors=True)  # as root it lives in /var/tmp, outside tmp_path
