"""A small real room bundle end to end: built with uv and pip from PyPI, installed with the network unused.

The same code as ``python -m helpers instructor bundle`` with a one-package requirements file instead of the
three venvs' (2.5 GiB): uv resolves it, pip fetches the wheel, the tiny model's cache entry is copied in, the
manifest written. Then, as set-up does with ``MAAS_BUNDLE``: verify, ``uv pip install --no-index`` into a new
venv with an empty uv cache, the model copied into an empty model cache and found there without training.
A damaged wheel is then refused. About 10 s (it needs PyPI and set-up's uv; the model must be built).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from helpers import bundle
from helpers.models import ensure_tiny_model

pytestmark = pytest.mark.integration

PIN = "six==1.17.0"  # one small pure-Python wheel


def run(command: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, f"{' '.join(command)}\n{done.stdout}\n{done.stderr}"
    return done


def test_a_small_bundle_is_built_then_installed_offline(tmp_path, monkeypatch):
    built_model = ensure_tiny_model(show_progress=False)  # the room's model (trained by make setup)
    requirements = {"requirements-tiny.txt": tmp_path / "requirements-tiny.txt"}
    requirements["requirements-tiny.txt"].write_text(f"{PIN}\n")

    started = time.perf_counter()
    manifest = bundle.build(tmp_path / "bundle", requirements, tools=[], progress=lambda line: None)
    build_seconds = time.perf_counter() - started
    folder = tmp_path / "bundle"
    assert manifest["versions"] == {"requirements-tiny": [PIN]}
    assert [p.name for p in (folder / "wheels").glob("*.whl")] == ["six-1.17.0-py2.py3-none-any.whl"]
    assert manifest["model"]["recipe_hash"] == built_model.recipe_hash
    assert not (tmp_path / "bundle.partial").exists()
    assert bundle.verify(folder, requirements) == manifest

    # on the attendee's machine: empty caches, no package index
    env = {**os.environ, "UV_CACHE_DIR": str(tmp_path / "uv-cache"), "UV_NO_CONFIG": "1"}
    uv = bundle.find_uv()
    run([uv, "venv", "-q", "-p", sys.executable, str(tmp_path / "venv")], env)
    run([uv, "pip", "install", "-q", "-p", str(tmp_path / "venv" / "bin" / "python"), "--no-index",
         "--find-links", str(folder / "wheels"), "-r", str(requirements["requirements-tiny.txt"]),
         "--constraint", str(folder / "locks" / "requirements-tiny.lock")], env)
    assert run([str(tmp_path / "venv" / "bin" / "python"), "-c", "import six; print(six.__version__)"]
               ).stdout.strip() == "1.17.0"

    monkeypatch.setenv("MAAS_CACHE_DIR", str(tmp_path / "model-cache"))
    monkeypatch.setenv("MAAS_STATE_DIR", str(tmp_path / "state"))
    bundle.install_model(folder)
    started = time.perf_counter()
    info = ensure_tiny_model(show_progress=False)
    assert time.perf_counter() - started < 30  # copied; training takes minutes
    assert (info.recipe_hash, info.held_out_accuracy) == (built_model.recipe_hash, built_model.held_out_accuracy)

    wheel = next((folder / "wheels").glob("*.whl"))
    data = bytearray(wheel.read_bytes())
    data[len(data) // 2] ^= 0x01
    wheel.write_bytes(bytes(data))
    with pytest.raises(bundle.BundleError, match=f"wheels/{wheel.name} \\(sha256 differs"):
        bundle.verify(folder, requirements)
    print(f"small bundle built in {build_seconds:.1f} s")
