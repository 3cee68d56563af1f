"""``instructor check``: the room's preflight, one verdict per line.

A line is ``ok``, ``warn`` (a lab may be slow or short of room) or ``FAIL`` (a lab would stop);
any ``FAIL`` makes the exit code 1. Each attendee's access is proven end to end with a probe key
the admin issues for them (never billed, no budget or cap: store migration 5), revoked right after.
"""
from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from . import room
from .settings import get_settings

GIB = 1024 ** 3
MEMORY_GIB = (2.0, 4.0)  # below the first: FAIL (vLLM and the gateway do not fit); below the second: warn
DISK_GIB = (2.0, 5.0)  # the labs write quantized models, ModelCar layers and a month of ledger


@dataclass(frozen=True)
class Line:
    check: str
    verdict: str  # ok, warn, FAIL
    detail: str


def ok(check: str, detail: str) -> Line:
    return Line(check, "ok", detail)


def fail(check: str, detail: str) -> Line:
    return Line(check, "FAIL", detail)


def by_threshold(check: str, value_gib: float, limits: tuple[float, float], what: str) -> Line:
    verdict = "FAIL" if value_gib < limits[0] else "warn" if value_gib < limits[1] else "ok"
    return Line(check, verdict, f"{value_gib:.1f} GiB {what} (need {limits[0]:g}, want {limits[1]:g})")


def setup_lines() -> list[Line]:
    """Venvs and the tiny model (what `make setup` makes)."""
    settings = get_settings()
    venvs = {name: settings.root / name / "bin" / "python" for name in (".venv", ".venv-gateway", ".venv-serving")}
    missing = [name for name, python in venvs.items() if not python.exists()]
    models = sorted(p.parent.name for p in settings.models_dir.glob("parasol-tiny-*/config.json"))
    return [fail("set-up: venvs", f"missing {', '.join(missing)}: run `make setup`") if missing
            else ok("set-up: venvs", ", ".join(venvs)),
            ok("set-up: tiny model", models[-1]) if models
            else fail("set-up: tiny model", f"none in {settings.models_dir}: run `python -m helpers build-model`")]


def bundle_line() -> Line:
    """The room bundle named by ``MAAS_BUNDLE``: does it fit this checkout's requirements and model recipe?

    Sizes only, not every sha256 (a pass over 2 GB): ``instructor bundle --verify DIR`` does that.
    """
    from . import bundle

    folder = bundle.from_environment()
    if folder is None:
        return ok("offline bundle", "none (MAAS_BUNDLE unset): set-up installs from PyPI and trains the model")
    try:
        manifest = bundle.verify(folder, hashes=False)
    except bundle.BundleError as error:
        return fail("offline bundle", str(error))
    return ok("offline bundle", f"{folder} fits this checkout: {bundle.summary(manifest)}")


def cpu_line() -> Line:
    from .environment import cpu_report

    report = cpu_report()
    served = report["vLLM serves on this CPU"]
    return Line("CPU", "ok" if "yes" in served else "FAIL", f"{report['cpu']}; vLLM kernels: {served}")


def resources_lines(folder: Path | None = None) -> list[Line]:
    folder = folder or get_settings().state_dir
    folder.mkdir(parents=True, exist_ok=True)
    return [by_threshold("free memory", psutil.virtual_memory().available / GIB, MEMORY_GIB, "available"),
            by_threshold("free disk", shutil.disk_usage(folder).free / GIB, DISK_GIB, f"free in {folder}")]


def completion_seconds(base_url: str, key: str, model: str) -> float:
    """One short chat completion; its time in seconds (raises on any refusal)."""
    import openai

    client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=60)
    started = time.perf_counter()
    client.chat.completions.create(model=model, max_tokens=4, temperature=0,
                                   messages=[{"role": "user", "content": "What is 2 + 2?"}])
    return time.perf_counter() - started


def models_line(platform) -> tuple[Line, list[str]]:
    ready = [d.name for d in platform.list() if d.ready]
    if not ready:
        return fail("models", "none ready: `python -m helpers up` (cluster: apply manifests/)"), []
    return ok("models", f"ready: {', '.join(ready)}"), ready


def test_completion_line(platform, models: list[str]) -> Line:
    """The time of one completion straight to the first model (locally; behind the gateway on a cluster)."""
    from .client import LOCAL_API_KEY

    if not models:
        return fail("test completion", "no model to ask")
    try:
        seconds = completion_seconds(platform.get(models[0]).endpoint, LOCAL_API_KEY, models[0])
    except Exception as error:  # noqa: BLE001 - any failure is the verdict
        return fail("test completion", f"{models[0]}: {str(error)[:160]}")
    return Line("test completion", "ok" if seconds < 10 else "warn", f"{models[0]} answered in {seconds:.2f} s")


def gateway_lines(platform, models: list[str]) -> list[Line]:
    """The gateway, then each attendee's access through it with a probe key (revoked after)."""
    from .instructor import gateway_of
    from .maas import room_admin as admin_of

    try:
        gateway = gateway_of(platform)
    except Exception as error:  # noqa: BLE001
        return [fail("gateway", str(error)[:200])]
    lines = [ok("gateway", f"up at {gateway.url} (models {', '.join(gateway.models)})")]
    admin = admin_of(gateway)
    attendees = sorted(room.read_sheet())
    if not attendees:
        return lines + [Line("attendees", "warn", "no room sheet: `python -m helpers instructor provision`")]
    served = [m for m in models if m in gateway.models] or list(gateway.models)[:1]
    for user in attendees:
        lines.append(access_line(admin, gateway.url, user, served[:1]))
    return lines


def access_line(admin, url: str, user: str, models: list[str]) -> Line:
    check = f"access: {user}"
    if not models:
        return fail(check, "the gateway serves no model")
    try:
        key = admin.probe_key(user, models)
        try:
            seconds = completion_seconds(url, key, models[0])
        finally:
            admin.revoke_probe_key(user)
    except Exception as error:  # noqa: BLE001
        return fail(check, str(error)[:200])
    return ok(check, f"probe key -> {models[0]} in {seconds:.2f} s (not billed)")


def cluster_lines(r) -> list[Line]:
    """GPU nodes and their product, the serving runtime, the shared models, the attendee namespaces."""
    from .cluster import room as cluster_room

    lines = []
    nodes = r.cluster.list(cluster_room.NODE, None, "")
    gpus = [(n["metadata"]["name"], (n["metadata"].get("labels") or {}).get("nvidia.com/gpu.product", "?"),
             (n.get("status", {}).get("allocatable") or {}).get("nvidia.com/gpu", "0")) for n in nodes]
    gpus = [g for g in gpus if g[2] not in ("0", 0)]
    settings = r.platform.settings
    lines.append(ok("GPU nodes", "; ".join(f"{n}: {c} x {p}" for n, p, c in gpus)) if gpus or settings.gpus_per_model == 0
                 else fail("GPU nodes", "no node has allocatable nvidia.com/gpu (GPU operator installed?)"))
    try:
        r.platform.preflight()
        lines.append(ok("runtime", f"KServe and ServingRuntime {r.platform.runtime}"))
    except Exception as error:  # noqa: BLE001
        lines.append(fail("runtime", str(error)[:200]))
    from .cluster import status

    shared = cluster_room.shared_models(r.cluster, settings.gateway_namespace)
    not_ready = [o["metadata"]["name"] for o in shared if not status.service_state(o).ready]
    lines.append(fail("shared models", f"not ready: {', '.join(not_ready)}") if not_ready or not shared
                 else ok("shared models", ", ".join(o["metadata"]["name"] for o in shared)))
    have = set(cluster_room.attendee_namespaces(r.cluster))
    lacking = [u for u in room.read_sheet() if cluster_room.namespace_of(u) not in have]
    lines.append(fail("attendee namespaces", f"missing for {', '.join(lacking)}: provision again") if lacking
                 else ok("attendee namespaces", f"{len(have)} found"))
    return lines


def check(r) -> list[Line]:
    """Every line of the preflight, in the order a room is set up."""
    if r.local:
        lines = setup_lines() + [bundle_line(), cpu_line()] + resources_lines()
        models, ready = models_line(r.platform)
        lines += [models, test_completion_line(r.platform, ready)]
    else:
        lines = cluster_lines(r)
        ready = []  # the gateway names the shared models it routes to
    return lines + gateway_lines(r.platform, ready)


def exit_code(lines: list[Line]) -> int:
    return 1 if any(line.verdict == "FAIL" for line in lines) else 0


def rows(lines: list[Line]) -> list[dict]:
    return [asdict(line) for line in lines]
