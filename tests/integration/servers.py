"""What the integration modules share: model servers stay up from one module to the next.

A vLLM start costs about 27 s on 2 cores; the modules that serve parasol-tiny reuse the one already
running. The session fixture in tests/conftest.py stops everything at the end, even when tests fail.
"""
from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from helpers import maas
from helpers.gateway.proxy import Gateway
from helpers.models import MODEL_NAME
from helpers.platform import LocalPlatform

SECOND_MODEL = "parasol-tiny-2"  # test_gateway.py's second model: a key for one may not reach the other


@contextmanager
def starting_alongside(name: str) -> Iterator[None]:
    """parasol-tiny deployed as ``name`` in a thread while the block runs; waited for (and its error raised) at
    the end. A vLLM start keeps one core busy importing PyTorch, so two starts side by side take the time of one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        started = pool.submit(LocalPlatform().deploy, MODEL_NAME, name)
        yield
        started.result()


@contextmanager
def gateway_serving(models: tuple[str, ...]) -> Iterator[Gateway]:
    """The gateway in front of ``models`` (each deployed unless it is running); the gateway stops after."""
    platform = LocalPlatform()
    for name in models:
        platform.deploy(MODEL_NAME, name)
    try:
        yield maas.start_gateway(platform)
    finally:
        maas.stop_gateway()
