"""Shared test set-up: strict lab checks, and nothing left running afterwards."""
from __future__ import annotations

import os

import pytest

os.environ["MAAS_STRICT_CHECKS"] = "1"  # check cells raise in tests (and in nbval's kernels)
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
