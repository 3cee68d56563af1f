"""The room bundle's manifest and its checks, on small real folders (no network, no pip).

A bundle is refused when a file is damaged (its sha256 differs), missing or cut short, when it was built
from other requirements or another model recipe, or for another Python; set-up's own entry point runs on
the system Python alone (before any venv exists). tests/integration/test_bundle.py builds a real one.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import bundle, preflight
from helpers.cli import main
from helpers.models import INFO_FILE, MODEL_NAME, ensure_tiny_model, recipe_hash, Recipe

ROOT = Path(__file__).resolve().parents[2]
WHEEL = "tiny_pkg-1.0-py3-none-any.whl"


def make_bundle(folder: Path, requirements: dict[str, Path]) -> dict:
    """A bundle folder by hand: one lock, one 'wheel' (bytes), the model's build record; then its manifest."""
    digest = recipe_hash(Recipe())
    (folder / bundle.WHEELS).mkdir(parents=True)
    (folder / bundle.WHEELS / WHEEL).write_bytes(b"PK\x03\x04 not a real zip, but real bytes " * 100)
    (folder / bundle.LOCKS).mkdir()
    (folder / bundle.LOCKS / "requirements.lock").write_text("tiny-pkg==1.0\n")
    model_dir = folder / bundle.MODEL / f"{MODEL_NAME}-{digest}"
    model_dir.mkdir(parents=True)
    (model_dir / INFO_FILE).write_text(json.dumps({
        "name": MODEL_NAME, "path": "/elsewhere", "recipe_hash": digest, "recipe": {}, "held_out_accuracy": 0.96,
        "held_out_questions": 488, "train_seconds": 210.0, "parameters": 1_300_000}))
    model = {"name": MODEL_NAME, "recipe_hash": digest, "folder": f"{bundle.MODEL}/{model_dir.name}",
             "held_out_accuracy": 0.96}
    manifest = bundle.make_manifest(folder, requirements, model)
    bundle.write_manifest(folder, manifest)
    return manifest


@pytest.fixture
def requirements(tmp_path) -> dict[str, Path]:
    """Copies of the project's three requirements files (a test may change them)."""
    folder = tmp_path / "checkout"
    folder.mkdir()
    for name in bundle.REQUIREMENTS:
        shutil.copy(ROOT / name, folder / name)
    return {name: folder / name for name in bundle.REQUIREMENTS}


@pytest.fixture
def room_bundle(tmp_path, requirements) -> Path:
    make_bundle(tmp_path / "bundle", requirements)
    return tmp_path / "bundle"


def test_the_manifest_records_every_file_with_its_sha256_and_the_total(room_bundle, requirements):
    manifest = json.loads((room_bundle / bundle.MANIFEST).read_text())
    wheel = room_bundle / bundle.WHEELS / WHEEL
    assert manifest["files"][f"wheels/{WHEEL}"] == {"sha256": hashlib.sha256(wheel.read_bytes()).hexdigest(),
                                                    "bytes": wheel.stat().st_size}
    assert set(manifest["files"]) == {f"wheels/{WHEEL}", "locks/requirements.lock",
                                      f"model/{MODEL_NAME}-{recipe_hash(Recipe())}/{INFO_FILE}"}
    assert manifest["total_bytes"] == sum(p.stat().st_size for p in room_bundle.rglob("*")
                                          if p.is_file() and p.name != bundle.MANIFEST)
    assert manifest["requirements"]["requirements.txt"] == hashlib.sha256(
        requirements["requirements.txt"].read_bytes()).hexdigest()  # what set-up writes to .requirements.sha256
    assert manifest["versions"] == {"requirements": ["tiny-pkg==1.0"]}
    assert manifest["cpu"]["class"] in ("avx2", "avx512", "avx512_bf16") and "avx2" in manifest["cpu"]["flags"]
    assert bundle.verify(room_bundle, requirements)["model"]["recipe_hash"] == recipe_hash(Recipe())


def test_a_corrupted_file_of_the_same_size_is_refused_by_its_sha256(room_bundle, requirements):
    wheel = room_bundle / bundle.WHEELS / WHEEL
    data = bytearray(wheel.read_bytes())
    data[100] ^= 0xFF  # one bit flipped on the USB stick: same size, other content
    wheel.write_bytes(bytes(data))
    with pytest.raises(bundle.BundleError) as refused:
        bundle.verify(room_bundle, requirements)
    message = str(refused.value)
    assert "damaged" in message and f"wheels/{WHEEL} (sha256 differs" in message
    assert "Copy the bundle again" in message and "instructor bundle --out" in message
    bundle.verify(room_bundle, requirements, hashes=False)  # the quick look compares sizes only: it passes


def test_a_missing_or_cut_short_file_is_refused_even_by_the_quick_look(room_bundle, requirements):
    wheel = room_bundle / bundle.WHEELS / WHEEL
    wheel.write_bytes(wheel.read_bytes()[:-10])
    with pytest.raises(bundle.BundleError, match=r"size \d+, manifest \d+"):
        bundle.verify(room_bundle, requirements, hashes=False)
    wheel.unlink()
    with pytest.raises(bundle.BundleError, match=r"\(missing\)"):
        bundle.verify(room_bundle, requirements, hashes=False)


def test_a_bundle_built_from_other_requirements_is_refused(room_bundle, requirements):
    path = requirements["requirements-gateway.txt"]
    path.write_text(path.read_text().replace("litellm[proxy]==1.106.0", "litellm[proxy]==1.107.0"))
    with pytest.raises(bundle.BundleError) as refused:
        bundle.verify(room_bundle, requirements, hashes=False)
    message = str(refused.value)
    assert "built for another checkout" in message and "requirements-gateway.txt has changed" in message
    assert "requirements.txt has changed" not in message  # names the file that changed, only it
    assert "python -m helpers instructor bundle --out DIR" in message


def test_a_bundle_with_another_model_recipe_or_python_is_refused(room_bundle, requirements):
    path = room_bundle / bundle.MANIFEST
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps({**manifest, "model": {**manifest["model"], "recipe_hash": "0123456789ab"}}))
    with pytest.raises(bundle.BundleError, match=r"tiny model is recipe 0123456789ab, this checkout's is "):
        bundle.verify(room_bundle, requirements)
    path.write_text(json.dumps({**manifest, "python": "3.12"}))
    with pytest.raises(bundle.BundleError, match=r"wheels are for Python 3.12 .* this machine runs Python 3\.\d+"):
        bundle.verify(room_bundle, requirements)


def test_a_folder_without_a_manifest_is_not_a_bundle(tmp_path, requirements):
    with pytest.raises(bundle.BundleError, match="not a room bundle"):
        bundle.verify(tmp_path, requirements)
    (tmp_path / bundle.MANIFEST).write_text('{"format": 1, "files": {')
    with pytest.raises(bundle.BundleError, match="damaged"):
        bundle.verify(tmp_path, requirements)


def test_building_into_a_folder_that_holds_files_is_refused(tmp_path):
    (tmp_path / "keep.txt").write_text("an instructor's notes")
    with pytest.raises(bundle.BundleError, match="not empty"):
        bundle.build(tmp_path)
    assert (tmp_path / "keep.txt").read_text() == "an instructor's notes"


def test_the_model_comes_from_the_bundle_into_the_cache_and_is_not_trained(room_bundle, tmp_path, monkeypatch):
    monkeypatch.setenv("MAAS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MAAS_STATE_DIR", str(tmp_path / "state"))
    target = bundle.install_model(room_bundle)
    assert target == tmp_path / "cache" / "models" / f"{MODEL_NAME}-{recipe_hash(Recipe())}"
    info = ensure_tiny_model(show_progress=False)  # training would take minutes and change train_seconds
    assert info.train_seconds == 210.0 and info.path == str(tmp_path / "state" / "models" / target.name)


def test_the_preflight_says_whether_the_bundle_fits(tmp_path, monkeypatch):
    monkeypatch.delenv("MAAS_BUNDLE", raising=False)
    assert preflight.bundle_line().verdict == "ok"
    project = bundle.project_requirements()
    make_bundle(tmp_path / "fits", project)
    monkeypatch.setenv("MAAS_BUNDLE", str(tmp_path / "fits"))
    line = preflight.bundle_line()
    assert line.verdict == "ok" and "fits this checkout" in line.detail and recipe_hash(Recipe()) in line.detail
    stale = {**project, "requirements.txt": tmp_path / "old-requirements.txt"}
    stale["requirements.txt"].write_text("torch==2.12.0\n")
    make_bundle(tmp_path / "stale", stale)
    monkeypatch.setenv("MAAS_BUNDLE", str(tmp_path / "stale"))
    line = preflight.bundle_line()
    assert line.verdict == "FAIL" and "requirements.txt has changed" in line.detail
    assert preflight.exit_code([line]) == 1


def test_the_instructor_command_verifies(room_bundle, capsys):
    # room_bundle was made from copies equal to the project's files: it fits this checkout
    assert main(["instructor", "bundle", "--verify", str(room_bundle)]) == 0
    assert "bundle ok" in capsys.readouterr().out
    (room_bundle / bundle.LOCKS / "requirements.lock").write_text("tiny-pkg==6.6\n")  # same size, other pin
    assert main(["instructor", "bundle", "--verify", str(room_bundle)]) == 2
    assert "locks/requirements.lock (sha256 differs" in capsys.readouterr().err


def test_set_ups_entry_point_runs_on_the_system_python_alone(room_bundle):
    """scripts/setup.sh checks the bundle before any venv exists: the standard library must do."""
    python = shutil.which("python3") or sys.executable
    done = subprocess.run([python, "-I", "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                           "from helpers.bundle import main; sys.exit(main(['verify', sys.argv[2]]))",
                           str(ROOT), str(room_bundle)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "bundle ok" in done.stdout
    (room_bundle / bundle.WHEELS / WHEEL).write_bytes(b"x")
    done = subprocess.run([python, "-I", "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                           "from helpers.bundle import main; sys.exit(main(['verify', sys.argv[2]]))",
                           str(ROOT), str(room_bundle)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "damaged" in done.stderr


def test_wheel_names_are_matched_to_pins_as_pip_normalizes_them(tmp_path):
    for name in ("Jinja2-3.1.6-py3-none-any.whl", "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl",
                 "typing_extensions-4.15.0-py3-none-any.whl"):
        (tmp_path / name).write_bytes(b"")
    present = bundle.wheels_present(tmp_path)
    for pin in ("jinja2==3.1.6", "torch==2.13.0+cpu", "typing-extensions==4.15.0"):
        assert bundle._wheel_key(*pin.split("==")) in present
    assert bundle._wheel_key("torch", "2.13.0") not in present
