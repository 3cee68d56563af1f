"""What `make setup` leaves behind, checked on the venvs it built."""
from __future__ import annotations

import os
import subprocess

import pytest

from helpers.settings import get_settings


@pytest.mark.parametrize("venv", [".venv", ".venv-serving", ".venv-gateway"])
def test_a_venv_keeps_the_bytecode_it_compiles_even_where_the_environment_says_not_to(venv):
    """Set-up compiles nothing; first imports compile what they use and keep it (PYTHONDONTWRITEBYTECODE=1 in CI)."""
    python = get_settings().root / venv / "bin" / "python"
    if not python.exists():
        pytest.skip(f"{venv} is not built here (make setup builds it)")
    run = subprocess.run([str(python), "-c", "import sys; print(sys.dont_write_bytecode)"], capture_output=True,
                         text=True, timeout=300, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert run.stdout.strip() == "False", run.stderr
