"""Lab times: README's table and each lab's time line rewritten from a run-labs summary."""
from __future__ import annotations

import json

import nbformat
import pytest

from helpers import labtimes
from helpers.errors import WorkshopError

README = """# Workshop

| # | Notebook | What you do | Time |
|---|----------|-------------|------|
| 0 | `00_origin_story` | the story | 15 min |
| 2 | `02_quantization` | shrink it | 25 min |

`labs/` holds the attendee versions.
"""


def notebook(path, words: int, code_lines: int, exercises: int, header: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(f"# Lab\n\n{header} **Prerequisites:** Lab 1.\n\nmore"),
                nbformat.v4.new_markdown_cell(" ".join(["word"] * words)),
                nbformat.v4.new_code_cell("\n".join(f"x{i} = {i}" for i in range(code_lines)))]
    for _ in range(exercises):
        nb.cells.append(nbformat.v4.new_code_cell("# do it\ny = 1", metadata={"tags": ["exercise"]}))
    nbformat.write(nb, path)


@pytest.fixture
def workshop(tmp_path):
    notebook(tmp_path / "00_origin_story.ipynb", 1_500, 50, 1, "**Estimated time:** 15 minutes.")
    notebook(tmp_path / "02_quantization.ipynb", 300, 10, 0, "**Estimated time:** 25 minutes.")
    (tmp_path / "README.md").write_text(README)
    summary = {"platform": "local", "cpu": "AMD EPYC: class avx2", "finished": "2026-11-24 08:00 UTC",
               "unsolved": False, "parameters": {},
               "labs": [{"lab": "lab00", "notebook": "00_origin_story.ipynb", "status": "passed", "seconds": 81.4},
                        {"lab": "lab02", "notebook": "02_quantization.ipynb", "status": "failed", "seconds": 9.0}]}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    return tmp_path


def test_the_table_and_headers_show_measured_machine_time_and_estimated_reading(workshop):
    paths = [workshop / "00_origin_story.ipynb", workshop / "02_quantization.ipynb"]
    times = labtimes.write_lab_times(workshop / "summary.json", workshop / "README.md", paths)
    # 1,500 + 5 words at 150/min, 50 lines at 10/min, one exercise at 4 min: 19.05 -> 20
    assert [(t.lab, t.machine_s, t.attendee_min) for t in times] == [("lab00", 81.4, 20), ("lab02", None, 5)]
    readme = (workshop / "README.md").read_text()
    assert "| 0 | `00_origin_story` | the story | 1.4 min | 20 min |" in readme
    assert "| 2 | `02_quantization` | shrink it | not measured | 5 min |" in readme  # a failed lab is no measurement
    assert "Machine time (measured) | Reading and typing (estimated) |" in readme and "AMD EPYC" in readme
    first = nbformat.read(paths[0], as_version=4).cells[0].source
    assert "**Time:** about 20 minutes of reading and typing (estimated); 1.4 min of machine time" in first
    assert "Estimated time" not in first and first.endswith("**Prerequisites:** Lab 1.\n\nmore")
    again = labtimes.write_lab_times(workshop / "summary.json", workshop / "README.md", paths)  # idempotent
    assert again == times and (workshop / "README.md").read_text() == readme


def test_an_unsolved_run_or_a_missing_summary_is_refused(workshop):
    with pytest.raises(WorkshopError, match="run-labs"):
        labtimes.read_summary(workshop / "nothing.json")
    summary = json.loads((workshop / "summary.json").read_text())
    (workshop / "summary.json").write_text(json.dumps({**summary, "unsolved": True}))
    with pytest.raises(WorkshopError, match="unsolved"):
        labtimes.read_summary(workshop / "summary.json")
