"""Shared test set-up: strict lab checks, and nothing left running afterwards."""
from __future__ import annotations

import os
import time

import pytest

os.environ["MAAS_STRICT_CHECKS"] = "1"  # check cells raise in tests (and in the notebooks run-labs executes)
os.environ.setdefault("PLATFORM", "local")


@pytest.fixture(scope="session", autouse=True)
def stop_everything_at_the_end():
    """Whatever a test started on the local platform is stopped, even when tests fail."""
    yield
    from helpers.maas import stop_gateway
    from helpers.platform import LocalPlatform
    from helpers.registry import stop_registry

    stop_gateway()
    LocalPlatform().undeploy_all()
    stop_registry()


def pytest_collection_modifyitems(items):
    """test_local_platform.py (it runs `helpers up`) runs first and test_server_deaths.py (it kills the server
    and runs `helpers down`) last of the integration tests: the modules between share one parasol-tiny, a
    vLLM start (about 27 s) saved each time."""
    first = [item for item in items if "integration/test_local_platform.py" in item.nodeid]
    last = [item for item in items if "integration/test_server_deaths.py" in item.nodeid]
    rest = [item for item in items if item not in first and item not in last]
    after = next((n for n, item in enumerate(rest) if "tests/notebooks/" in item.nodeid), len(rest))
    items[:] = first + rest[:after] + last + rest[after:]


_SECONDS: dict[str, float] = {}
_STARTED = time.monotonic()


def _group(nodeid: str) -> str:
    """unit / integration / notebooks, and each lab on its own."""
    if "test_lab_runs_and_passes[" in nodeid:
        return "lab " + nodeid.split("[", 1)[1].rstrip("]")
    parts = nodeid.split("/")
    return parts[1] if len(parts) > 2 else parts[0]


def pytest_runtest_logreport(report):
    _SECONDS[_group(report.nodeid)] = _SECONDS.get(_group(report.nodeid), 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    """Where the time went: CI's budget is read from this table."""
    terminalreporter.section("time by part")
    for group, seconds in sorted(_SECONDS.items(), key=lambda item: item[0]):
        terminalreporter.write_line(f"{group:32} {seconds:7.0f} s")
    terminalreporter.write_line(f"{'total':32} {sum(_SECONDS.values()):7.0f} s")
    terminalreporter.write_line(f"{'wall time of this run':32} {time.monotonic() - _STARTED:7.0f} s"
                                "  (less than the total when tests ran in parallel: make test's unit tests)")
