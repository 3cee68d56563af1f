"""The labs start from a quiet, clean machine: the unit tests running alongside (`make test`) are waited
for, and what the integration tests left running is stopped first.

(A parasol-tiny that served the integration tests' hundreds of requests, hang-ups included, measured
Lab 1's throughput lower: vLLM against the naive loop 0.9x and 1.3x in two runs, 2.0x from a fresh server.)
"""
from __future__ import annotations

import os
import time

import psutil
import pytest

from helpers import processes

UNIT_TESTS_PID = "MAAS_UNIT_TESTS_PID"  # scripts/test.sh: the unit tests' pytest, at nice 19


def _unit_tests() -> processes.ProcessHandle | None:
    pid = int(os.environ.get(UNIT_TESTS_PID) or 0)
    try:
        return processes.ProcessHandle(pid, psutil.Process(pid).create_time()) if pid else None
    except psutil.NoSuchProcess:
        return None


def wait_for_unit_tests(timeout_s: float = 900) -> float:
    """Wait until the unit tests started alongside have finished (the labs measure throughput); seconds waited."""
    unit_tests = _unit_tests()
    started = time.monotonic()
    while unit_tests and unit_tests.is_alive() and time.monotonic() - started < timeout_s:
        time.sleep(1)
    return time.monotonic() - started


@pytest.fixture(scope="module", autouse=True)
def nothing_running_before_the_labs():
    from helpers.maas import stop_gateway
    from helpers.platform import LocalPlatform

    waited = wait_for_unit_tests()
    if waited >= 1:
        print(f"\nwaited {waited:.0f} s for the unit tests running alongside to finish")
    stop_gateway()
    LocalPlatform().undeploy_all()
    yield
