"""The room bundle: set up a room's machines without the network.

A workshop room's Wi-Fi cannot serve thirty attendees a 2 GB install and a model training each. The
instructor builds one bundle, days before, on a machine that reaches PyPI, and copies it to each machine:

    python -m helpers instructor bundle --out DIR      build it (the wheels, the tiny model, the manifest)
    python -m helpers instructor bundle --verify DIR   every file's sha256, and that it fits this checkout
    MAAS_BUNDLE=DIR make setup                         set up from it: uv --no-index, the model copied, not trained

What a bundle holds:

    manifest.json                versions, requirement and recipe hashes, the builder's CPU, sha256 of every file
    locks/NAME.lock              the exact versions each requirements file resolved to (set-up's constraints)
    wheels/                      one wheelhouse for the three venvs and set-up's own tools (uv, pip, setuptools)
    model/parasol-tiny-HASH/     the trained tiny model, as the cache keeps it (keyed by its recipe hash)

Set-up refuses a bundle built from other requirements or another model recipe (it would install the wrong
versions or train anyway), one whose wheels are for another Python, and a damaged one (a sha256 differs).
Building resolves with the same pins and index options as scripts/setup.sh (uv, the machine's pip
find-links, ``TORCH_INDEX_URL``), so the venvs come out as an online set-up would make them.

Stdlib only at import: scripts/setup.sh runs ``python3 -m helpers.bundle verify|install-model DIR``
before any venv exists.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from .errors import SetupError
from .settings import get_settings

FORMAT = 1  # the manifest's layout; a reader of another format refuses the bundle
MANIFEST = "manifest.json"
WHEELS = "wheels"
LOCKS = "locks"
MODEL = "model"
REQUIREMENTS = ("requirements.txt", "requirements-serving.txt", "requirements-gateway.txt")
TOOLS = "setup-tools"  # the lock of what set-up installs before the venvs: uv, and uv venv's seed packages
BUILD_HINT = "build a new one on a machine with network: python -m helpers instructor bundle --out DIR"
GIB = 1024 ** 3
FREE_GIB_NEEDED = 6.0  # the full bundle is about 2.5 GiB; pip needs room for its temporary files too


class BundleError(SetupError):
    """The bundle is missing, damaged, or built for another checkout; the message says what to do."""


# -- what the project asks for ---------------------------------------------------------------

def project_requirements(root: Path | None = None) -> dict[str, Path]:
    """The three requirements files set-up installs, by name."""
    root = root or get_settings().root
    return {name: root / name for name in REQUIREMENTS}


def sha256_of(path: Path) -> str:
    """The file's sha256 (as ``sha256sum`` prints it; set-up keeps it in each venv's .requirements.sha256)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def setup_uv_version(root: Path | None = None) -> str:
    """The uv version scripts/setup.sh pins (``UV_VERSION=...``): one place for it."""
    text = ((root or get_settings().root) / "scripts" / "setup.sh").read_text()
    match = re.search(r"^UV_VERSION=(\S+)", text, re.MULTILINE)
    if not match:
        raise SetupError("scripts/setup.sh has no UV_VERSION= line: the bundle cannot pin uv")
    return match.group(1)


def setup_tools(root: Path | None = None) -> list[str]:
    """What set-up installs before the venvs: uv (pinned) and what ``uv venv --seed`` puts into a venv."""
    return [f"uv=={setup_uv_version(root)}", "pip", "setuptools>=68", "wheel"]


def model_recipe_hash() -> str:
    from .models.recipe import Recipe, recipe_hash

    return recipe_hash(Recipe())


def python_tag() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def platform_tag() -> str:
    return f"{sys.platform}-{platform.machine()}"


# -- the manifest ----------------------------------------------------------------------------

def file_records(folder: Path, progress=None) -> dict[str, dict]:
    """sha256 and size of every file under ``folder`` but the manifest, by relative path (sorted)."""
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)
    records = {}
    for i, path in enumerate(paths, 1):
        records[path.relative_to(folder).as_posix()] = {"sha256": sha256_of(path), "bytes": path.stat().st_size}
        if progress and (i % 50 == 0 or i == len(paths)):
            progress(f"  sha256 of {i}/{len(paths)} files")
    return records


def read_lock(path: Path) -> list[str]:
    """``name==version`` lines of a lock file (comments and options dropped)."""
    return [line.strip() for line in path.read_text().splitlines()
            if line.strip() and not line.lstrip().startswith(("#", "-"))]


def cpu_record() -> dict:
    """The builder's CPU: the tiny model was trained on it (its SIMD kernels round differently)."""
    from . import cpu

    model, flags = cpu._cpuinfo()
    simd = sorted(f for f in flags if f.startswith(("avx", "amx")) or f in ("fma", "f16c", "sse4_2"))
    try:
        isa = cpu.detect().isa
    except SetupError:
        isa = "below avx2"
    return {"model": model, "class": isa, "flags": simd}


def make_manifest(folder: Path, requirements: dict[str, Path], model: dict, progress=None) -> dict:
    """The manifest of a bundle folder whose locks, wheels and model are in place."""
    records = file_records(folder, progress)
    locks = {p.stem: read_lock(p) for p in sorted((folder / LOCKS).glob("*.lock"))}
    return {
        "format": FORMAT,
        "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "project_commit": _git_commit(),
        "python": python_tag(),
        "platform": platform_tag(),
        "cpu": cpu_record(),
        "requirements": {name: sha256_of(path) for name, path in requirements.items()},
        "versions": locks,
        "model": model,
        "files": records,
        "file_count": len(records),
        "total_bytes": sum(r["bytes"] for r in records.values()),
    }


def write_manifest(folder: Path, manifest: dict) -> Path:
    path = folder / MANIFEST
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path


def read_manifest(bundle: Path) -> dict:
    path = Path(bundle) / MANIFEST
    if not path.is_file():
        raise BundleError(f"{bundle} is not a room bundle (no {MANIFEST}): {BUILD_HINT}")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise BundleError(f"{path} is damaged ({error}): copy the bundle again, or {BUILD_HINT}") from None
    if manifest.get("format") != FORMAT:
        raise BundleError(f"{bundle} has manifest format {manifest.get('format')}, this checkout reads {FORMAT}: "
                          f"{BUILD_HINT}")
    return manifest


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=40"], cwd=get_settings().root,
                              capture_output=True, text=True, timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# -- verification ----------------------------------------------------------------------------

def fit_problems(manifest: dict, requirements: dict[str, Path]) -> list[str]:
    """Why the bundle does not fit this checkout and machine (empty: it fits)."""
    problems = []
    if manifest["python"] != python_tag() or manifest["platform"] != platform_tag():
        problems.append(f"its wheels are for Python {manifest['python']} on {manifest['platform']}, this machine "
                        f"runs Python {python_tag()} on {platform_tag()}")
    for name, path in requirements.items():
        built, here = manifest["requirements"].get(name), sha256_of(path)
        if built is None:
            problems.append(f"it has no wheels for {name}")
        elif built != here:
            problems.append(f"{name} has changed since it was built (bundle sha256 {built[:12]}, "
                            f"this checkout {here[:12]})")
    built, here = manifest["model"]["recipe_hash"], model_recipe_hash()
    if built != here:
        problems.append(f"its tiny model is recipe {built}, this checkout's is {here} (the recipe or the "
                        "training code changed)")
    return problems


def damaged_files(bundle: Path, manifest: dict, hashes: bool = True, progress=None) -> list[str]:
    """Files missing, of another size, or (``hashes``) of another sha256 than the manifest says."""
    damaged = []
    items = list(manifest["files"].items())
    for i, (name, record) in enumerate(items, 1):
        path = bundle / name
        if not path.is_file():
            damaged.append(f"{name} (missing)")
        elif path.stat().st_size != record["bytes"]:
            damaged.append(f"{name} (size {path.stat().st_size}, manifest {record['bytes']})")
        elif hashes and sha256_of(path) != record["sha256"]:
            damaged.append(f"{name} (sha256 differs from the manifest)")
        if progress and hashes and (i % 100 == 0 or i == len(items)):
            progress(f"  checked {i}/{len(items)} files")
    return damaged


def verify(bundle: Path, requirements: dict[str, Path] | None = None, hashes: bool = True, progress=None) -> dict:
    """The bundle's manifest if it fits this checkout and is intact; else ``BundleError`` saying what to do.

    ``hashes=False`` compares sizes only (seconds instead of a pass over 2 GB): the preflight's quick look.
    """
    bundle = Path(bundle)
    manifest = read_manifest(bundle)
    problems = fit_problems(manifest, requirements or project_requirements())
    if problems:
        raise BundleError(f"the bundle {bundle} was built for another checkout: " + "; ".join(problems) +
                          f". It would not set this checkout up as an online set-up would: {BUILD_HINT} "
                          "(or check out the commit it was built from: " + manifest["project_commit"] + ")")
    damaged = damaged_files(bundle, manifest, hashes, progress)
    if damaged:
        shown = "; ".join(damaged[:5]) + (f"; and {len(damaged) - 5} more" if len(damaged) > 5 else "")
        raise BundleError(f"the bundle {bundle} is damaged: {len(damaged)} file(s) differ from its manifest: "
                          f"{shown}. Copy the bundle again from the original (then `python -m helpers instructor "
                          f"bundle --verify DIR`), or {BUILD_HINT}")
    return manifest


def summary(manifest: dict) -> str:
    """One line about a bundle, for the preflight and the build's last words."""
    return (f"{manifest['file_count']} files, {manifest['total_bytes'] / GIB:.2f} GiB; tiny model recipe "
            f"{manifest['model']['recipe_hash']}; built {manifest['built_at']} for Python {manifest['python']} "
            f"on a CPU of class {manifest['cpu']['class']}")


def from_environment() -> Path | None:
    """The bundle named by ``MAAS_BUNDLE`` (set-up's and the preflight's), if any."""
    value = os.environ.get("MAAS_BUNDLE", "").strip()
    return Path(value).expanduser() if value else None


# -- installing the model from a bundle ------------------------------------------------------

def install_model(bundle: Path) -> Path:
    """Copy the bundle's tiny model into the model cache, where ``ensure_tiny_model`` finds it (no training)."""
    from .models import cached_model_dir

    manifest = read_manifest(bundle)
    target = cached_model_dir(manifest["model"]["recipe_hash"])
    if (target / "workshop_model.json").is_file():
        return target
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(Path(bundle) / manifest["model"]["folder"], partial)
    partial.rename(target)
    return target


# -- building --------------------------------------------------------------------------------

def machine_find_links(python: str = sys.executable) -> list[str]:
    """The wheel folders pip is configured with (a machine's local CPU build of torch): set-up's ``uv_links``."""
    out = subprocess.run([python, "-m", "pip", "config", "get", "global.find-links"], capture_output=True,
                         text=True).stdout
    return [d for d in out.split() if Path(d).is_dir()]


def find_uv(root: Path | None = None) -> str:
    """Set-up's uv (.venv-uv), else one on PATH."""
    local = (root or get_settings().root) / ".venv-uv" / "bin" / "uv"
    found = str(local) if local.is_file() else shutil.which("uv")
    if not found:
        raise SetupError("uv is not installed: run `make setup` first (it installs uv into .venv-uv)")
    return found


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SetupError(f"{what} failed (exit {result.returncode}): {result.stderr.strip()[-1500:]}\n"
                         f"command: {' '.join(command)}")


def resolve(uv: str, source: Path, lock: Path, links: list[str]) -> list[str]:
    """The exact versions ``source`` (a requirements file) resolves to, as set-up's uv would install them."""
    command = [uv, "pip", "compile", "-q", str(source), "-p", sys.executable, "--no-header", "--no-annotate",
               "-o", str(lock)]
    for link in links:
        command += ["--find-links", link]
    _run(command, f"resolving {source.name}")
    return read_lock(lock)


def _wheel_key(name: str, version: str) -> tuple[str, str]:
    return re.sub(r"[-_.]+", "-", name).lower(), version.lower()


def wheels_present(folder: Path) -> set[tuple[str, str]]:
    """(name, version) of the wheels already in the wheelhouse (names normalized as PEP 503 does)."""
    present = set()
    for wheel in folder.glob("*.whl"):
        name, version = wheel.name.split("-")[:2]
        present.add(_wheel_key(name, version))
    return present


def fetch_wheels(pins: list[str], wheels: Path, links: list[str]) -> int:
    """Wheels for ``pins`` (``name==version``) into ``wheels``; sdists are built into wheels here, so that set-up
    needs no build tools offline. Pins already there are skipped; returns how many were fetched."""
    present = wheels_present(wheels)
    missing = [pin for pin in pins if _wheel_key(*pin.split("==", 1)) not in present]
    if not missing:
        return 0
    todo = wheels.parent / ".todo.txt"
    todo.write_text("\n".join(missing) + "\n")
    command = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-r", str(todo), "-w", str(wheels),
               "--find-links", str(wheels)]
    for link in links:
        command += ["--find-links", link]
    _run(command, "fetching wheels")
    todo.unlink()
    return len(missing)


def fetch_torch_cpu(requirements: dict[str, Path], wheels: Path, index_url: str) -> None:
    """With ``TORCH_INDEX_URL`` (a laptop without a local CPU build): torch from PyTorch's index first, as set-up does."""
    pins = {line.split("#")[0].strip() for path in requirements.values() for line in path.read_text().splitlines()
            if line.startswith("torch==")}
    for pin in sorted(pins):
        _run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", pin, "-d", str(wheels),
              "--index-url", index_url], f"downloading {pin} from {index_url}")


def add_model(folder: Path, progress) -> dict:
    """The tiny model's cache entry (trained first if this machine has none: a few minutes)."""
    from .models import cached_model_dir, ensure_tiny_model

    info = ensure_tiny_model()
    source = cached_model_dir(info.recipe_hash)
    relative = f"{MODEL}/{source.name}"
    shutil.copytree(source, folder / relative)
    progress(f"  {info.name} recipe {info.recipe_hash} (held-out exact match {info.held_out_accuracy:.1%})")
    return {"name": info.name, "recipe_hash": info.recipe_hash, "folder": relative,
            "held_out_accuracy": info.held_out_accuracy}


def build(out: Path, requirements: dict[str, Path] | None = None, tools: list[str] | None = None,
          progress=print) -> dict:
    """Build a bundle into ``out`` (a new folder); returns its manifest.

    Written into ``out.partial`` and renamed at the end: a folder named ``out`` is always a whole bundle.
    """
    out = Path(out).resolve()
    requirements = requirements or project_requirements()
    tools = setup_tools() if tools is None else tools
    if out.exists() and any(out.iterdir()):
        raise BundleError(f"{out} exists and is not empty: give a new folder (or delete that one)")
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    (partial / WHEELS).mkdir(parents=True)
    (partial / LOCKS).mkdir()
    free = shutil.disk_usage(partial).free / GIB
    if free < FREE_GIB_NEEDED and requirements == project_requirements():
        raise BundleError(f"{free:.1f} GiB free in {partial.parent}; the bundle needs about {FREE_GIB_NEEDED:g} "
                          "GiB while it is built: free some space or choose another --out")
    started = time.perf_counter()
    uv, links = find_uv(), machine_find_links()
    torch_index = os.environ.get("TORCH_INDEX_URL", "")
    if torch_index:
        progress(f"torch's CPU build from {torch_index}")
        fetch_torch_cpu(requirements, partial / WHEELS, torch_index)
    sources = dict(requirements)
    if tools:
        sources[TOOLS + ".txt"] = partial / f".{TOOLS}.in"
        sources[TOOLS + ".txt"].write_text("\n".join(tools) + "\n")
    for i, (name, source) in enumerate(sources.items(), 1):
        lock = partial / LOCKS / f"{Path(name).stem}.lock"
        progress(f"[{i}/{len(sources)}] {name}: resolving with uv ({time.perf_counter() - started:.0f} s)")
        pins = resolve(uv, source, lock, [str(partial / WHEELS), *links])
        fetched = fetch_wheels(pins, partial / WHEELS, links)
        progress(f"  {len(pins)} packages, {fetched} wheels fetched ({time.perf_counter() - started:.0f} s)")
    (partial / f".{TOOLS}.in").unlink(missing_ok=True)
    progress("the tiny model")
    model = add_model(partial, progress)
    progress("the manifest: sha256 of every file")
    manifest = make_manifest(partial, requirements, model, progress)
    write_manifest(partial, manifest)
    if out.exists():
        out.rmdir()
    partial.rename(out)
    progress(f"bundle ready in {time.perf_counter() - started:.0f} s: {out} ({summary(manifest)})")
    return manifest


# -- python -m helpers.bundle: for scripts/setup.sh, before the venvs exist ------------------

def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] not in ("verify", "install-model"):
        print("usage: python -m helpers.bundle verify|install-model DIR", file=sys.stderr)
        return 2
    verb, bundle = args[0], Path(args[1]).expanduser().resolve()
    try:
        if verb == "verify":
            manifest = verify(bundle, progress=lambda line: print(line, flush=True))
            print(f"bundle ok: {bundle} ({summary(manifest)})")
        else:
            print(f"tiny model from the bundle: {install_model(bundle)}")
    except SetupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
