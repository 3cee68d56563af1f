"""Secrets never world-readable on disk and never on a command line (where `ps` shows them)."""
from __future__ import annotations

import os
import secrets
import shutil
import stat
import subprocess

import pytest

from helpers import bench, registry
from helpers.secretfiles import write_secret

FAKE_KEY = "sk-maas-" + secrets.token_hex(16)  # made per run: no key-shaped literal in git


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_secret_file_is_private_from_its_first_byte_whatever_the_umask(tmp_path):
    previous = os.umask(0)  # a umask that would leave a plain write_text world-readable
    try:
        path = write_secret(tmp_path / "sub" / "key", "s3cret")
    finally:
        os.umask(previous)
    assert mode(path) == 0o600 and path.read_text() == "s3cret"


def test_rewriting_a_loose_file_replaces_it_whole_and_private(tmp_path):
    path = tmp_path / "key"
    path.write_text("old")
    path.chmod(0o644)
    write_secret(path, "new")
    assert mode(path) == 0o600 and path.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["key"]  # no temporary file left behind


def test_a_failed_write_leaves_no_temporary_file(tmp_path):
    with pytest.raises(TypeError):
        write_secret(tmp_path / "key", None)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_htpasswd_reads_the_password_from_stdin_not_argv(tmp_path):
    command = registry.htpasswd_command("workshop")
    assert FAKE_KEY not in " ".join(command) and "-i" in command[1] and "b" not in command[1]
    if not shutil.which("htpasswd"):
        pytest.skip("htpasswd (apache2-utils) is not installed")
    path = tmp_path / "htpasswd"
    registry._write_htpasswd(registry.RegistryCredentials("workshop", FAKE_KEY), path)
    assert mode(path) == 0o600 and path.read_text().startswith("workshop:$2y$")
    verify = subprocess.run(["htpasswd", "-iv", str(path), "workshop"], input=FAKE_KEY, capture_output=True, text=True)
    assert verify.returncode == 0, verify.stderr


def test_guidellm_gets_the_key_from_its_environment_not_argv(tmp_path):
    command = bench.guidellm_command("http://127.0.0.1:4000", "/m", tmp_path, bench.BenchConfig(), model="m")
    env = bench.guidellm_env(FAKE_KEY)
    assert not any(FAKE_KEY in arg for arg in command) and "api_key" not in " ".join(command)
    assert env[bench.API_KEY_ENV] == FAKE_KEY and bench.API_KEY_ENV not in bench.guidellm_env(None)
    shown = bench.shown_command(command, api_key=True)
    assert FAKE_KEY not in shown and shown.startswith(bench.API_KEY_ENV + "=")


def test_guidellm_reads_that_variable_into_its_backend(monkeypatch):
    """The variable name is GuideLLM's own: its run arguments are pydantic settings with this prefix."""
    scenario = pytest.importorskip("guidellm.schemas.benchmark").BenchmarkScenario
    monkeypatch.setenv(bench.API_KEY_ENV, FAKE_KEY)
    args = scenario.create(scenario=None, spec={
        "backend": {"kind": "openai_http", "target": "http://127.0.0.1:4000", "model": "m"},
        "profile": {"kind": "concurrent", "streams": 1}, "data": [{"kind": "synthetic_text", "prompt_tokens": 8, "output_tokens": 8}]})
    assert args.spec.backend.api_key.get_secret_value() == FAKE_KEY
