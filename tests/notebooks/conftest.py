"""The labs start from a clean machine: what the integration tests left running is stopped first.

(A parasol-tiny that served the integration tests' hundreds of requests, hang-ups included, measured
Lab 1's throughput lower: vLLM against the naive loop 0.9x and 1.3x in two runs, 2.0x from a fresh server.)
"""
from __future__ import annotations

import pytest


@pytest.fixture(scope="module", autouse=True)
def nothing_running_before_the_labs():
    from helpers.maas import stop_gateway
    from helpers.platform import LocalPlatform

    stop_gateway()
    LocalPlatform().undeploy_all()
    yield
