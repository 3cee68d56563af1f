"""Time and peak memory of a piece of analysis, run in a fresh process so that both are its own.

A notebook's kernel already holds whatever earlier cells made (a DataFrame of ten million rows),
so its peak memory says nothing about the next step. A spawned process starts empty: what it
peaks at is the cost of the function it ran (plus the interpreter and the imports, ~0.1 GB).
"""
from __future__ import annotations

import multiprocessing
import resource
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any


def peak_memory_gb() -> float:
    """The peak resident memory of this process so far.

    Linux's ``VmHWM`` is the peak of this program's own memory; ``ru_maxrss`` would carry the peak of
    the process this one was forked from (a notebook kernel holding a month of rows) across ``exec``.
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e9  # kB
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e9 if sys.platform == "darwin" else peak * 1024 / 1e9  # macOS: bytes; elsewhere: KiB


def _timed(function: Callable[..., Any], *args: Any) -> tuple[Any, dict[str, float]]:
    started = time.perf_counter()
    result = function(*args)
    return result, {"seconds": time.perf_counter() - started, "peak_memory_gb": peak_memory_gb()}


def in_fresh_process(function: Callable[..., Any], *args: Any) -> tuple[Any, dict[str, float]]:
    """``function(*args)`` in a new process: its result, and the seconds and peak memory (GB) it took.

    The function and its arguments must be importable (a module-level function) and picklable.
    """
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_timed, function, *args).result()
