"""Each lab records its key figures here; tests and `run-labs` read them back.

Locally a JSON file per lab (``MAAS_RESULTS_DIR``). On a cluster platform (``PLATFORM`` openshift or
kubernetes) the figures also go to the attendee's own namespace (``helpers.cluster.results``: a ConfigMap
the instructor's ``report`` counts and ``reset`` deletes), written to the namespace and owner of the
platform's settings (``MAAS_NAMESPACE``, ``MAAS_OWNER``).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from .settings import get_settings


def _results_file(lab: str) -> Path:
    return get_settings().results_dir / f"{lab}.json"


def _plain(value):
    """JSON-friendly numbers (numpy scalars, NaN) and nested structures."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _record_on_cluster(lab: str, figures: dict) -> None:
    """On a cluster platform, the figures in the attendee's namespace too (errors say what to do)."""
    from .platform import KubernetesPlatform, get_platform

    platform = get_platform()
    if isinstance(platform, KubernetesPlatform):
        from .cluster import results as cluster_results

        cluster_results.record(platform.connection, platform.namespace, platform.settings.owner, lab, figures)


def record_figures(lab: str, **figures) -> dict:
    """Merge figures into the lab's results file (and, on a cluster, its ConfigMap); return everything so far."""
    path = _results_file(lab)
    path.parent.mkdir(parents=True, exist_ok=True)
    merged = {**read_figures(lab), **_plain(figures)}
    path.write_text(json.dumps(merged, indent=2, sort_keys=True))
    _record_on_cluster(lab, merged)
    return merged


def read_figures(lab: str) -> dict:
    path = _results_file(lab)
    return json.loads(path.read_text()) if path.is_file() else {}


def clear_figures(lab: str) -> None:
    _results_file(lab).unlink(missing_ok=True)
