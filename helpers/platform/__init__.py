"""Pick the platform the labs run on: ``get_platform()`` reads ``PLATFORM``."""
from __future__ import annotations

from ..settings import get_settings
from .base import Deployment, Platform, ResourceUsage
from .kubernetes import KubernetesPlatform, OpenShiftPlatform
from .local import LocalPlatform

__all__ = ["Deployment", "KubernetesPlatform", "LocalPlatform", "OpenShiftPlatform", "Platform", "ResourceUsage",
           "get_platform", "usage_table"]


def get_platform(kind: str | None = None) -> Platform:
    """The platform of that kind (default: the ``PLATFORM`` setting, else local)."""
    return Platform.create(kind or get_settings().platform)


def usage_table(platform: Platform, names: list[str], interval_s: float = 2.0):
    """Memory and CPU of each deployment, as a DataFrame (one row per name)."""
    import pandas as pd

    rows = []
    for name in names:
        usage = platform.usage(name, interval_s)
        rows.append({"deployment": name, "memory_gib": usage.memory_bytes / 2**30, "cpu_percent": usage.cpu_percent})
    return pd.DataFrame(rows).set_index("deployment")
