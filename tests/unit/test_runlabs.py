"""A lab that fails or runs past its per-cell time limit is reported with the cell named."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from helpers import runlabs

KERNEL = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}


def notebook(path: Path, cells: dict[str, str]) -> Path:
    """A lab with a parameters cell, then one code cell per (id, source)."""
    nb = nbformat.v4.new_notebook(metadata=KERNEL)
    nb.cells = [nbformat.v4.new_code_cell("PLATFORM = 'local'", metadata={"tags": ["parameters"]})]
    nb.cells += [nbformat.v4.new_code_cell(source, id=cell_id) for cell_id, source in cells.items()]
    nbformat.write(nb, path)
    return path


@pytest.fixture(autouse=True)
def results_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MAAS_RESULTS_DIR", str(tmp_path / "results"))


def test_a_cell_past_its_time_limit_is_named(tmp_path):
    lab = notebook(tmp_path / "98_slow.ipynb", {"one": "x = 1", "slow": "import time\ntime.sleep(60)", "two": "y = 2"})
    run = runlabs.run_lab(lab, "local", tmp_path, cell_timeout_s=3)
    assert run.status == "failed" and run.seconds < 45
    assert run.error.startswith("cell slow (In [") and "import time" in run.error and "timed out" in run.error


def test_a_failing_cell_is_named(tmp_path):
    lab = notebook(tmp_path / "97_broken.ipynb", {"one": "x = 1", "broken": "raise ValueError('the check failed')",
                                                  "two": "y = 2"})
    run = runlabs.run_lab(lab, "local", tmp_path, cell_timeout_s=30)
    assert run.status == "failed" and run.error.startswith("cell broken (In [4]: raise ValueError")
    assert "the check failed" in run.error


def test_a_lab_that_passes_has_no_error(tmp_path):
    run = runlabs.run_lab(notebook(tmp_path / "96_fine.ipynb", {"one": "x = 1"}), "local", tmp_path, cell_timeout_s=30)
    assert (run.status, run.error) == ("passed", None)


def test_parameters_override_the_parameters_cell(tmp_path):
    cells = {"check": "assert (SECONDS, LEVELS, NAME) == (4, [1, 4], 'tiny'), (SECONDS, LEVELS, NAME)"}
    lab = notebook(tmp_path / "95_params.ipynb", cells)
    parameters = dict(runlabs.parse_parameter(text) for text in ("SECONDS=4", "LEVELS=[1, 4]", "NAME=tiny"))
    run = runlabs.run_lab(lab, "local", tmp_path, cell_timeout_s=30, parameters=parameters)
    assert (run.status, run.error) == ("passed", None)


@pytest.mark.parametrize("text", ["SECONDS", "=4", "two words=1"])
def test_a_malformed_parameter_says_how_to_write_it(text):
    with pytest.raises(runlabs.WorkshopError, match="write NAME=VALUE"):
        runlabs.parse_parameter(text)


def test_unsolved_runs_select_the_attendee_notebooks_of_the_same_labs():
    solutions = runlabs.select_notebooks([0, 4])
    labs = runlabs.select_notebooks([0, 4], unsolved=True)
    assert [p.parent.name for p in solutions] == ["solutions"] * 2 and [p.parent.name for p in labs] == ["labs"] * 2
    assert [p.name for p in labs] == [p.name for p in solutions] and all(p.is_file() for p in labs)
    with pytest.raises(runlabs.WorkshopError, match="no lab numbered"):
        runlabs.select_notebooks([9], unsolved=True)
