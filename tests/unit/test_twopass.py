"""CI's one run per lab: the attendee's notebook as handed out, each exercise then solved (helpers/twopass.py)."""
from __future__ import annotations

import nbformat
import pytest

from helpers import labgen, runlabs
from helpers.twopass import ATTENDEE_TAG, bound_names, read_names, two_pass_notebook

KERNEL = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
SOLUTION = {
    "params": "PLATFORM = 'local'",
    "setup": "base = 40",
    "exercise": "# Exercise: add 2 to base\nanswer = base + 2",
    "check": "from helpers.checks import check_done\ncheck_done(answer, 'answer', 'add 2')",
    "uses": "total = None if answer is None else answer * 10\nprint('total', total)",
    "later": "assert total in (None, 420), total\nfinal = total",
    "free": "def f(answer):\n    return answer\nunrelated = f(1)",
}


def pair(tmp_path):
    """A solution notebook and the lab labgen makes of it."""
    solution = nbformat.v4.new_notebook(metadata=KERNEL)
    tags = {"params": ["parameters"], "exercise": [labgen.EXERCISE_TAG]}
    solution.cells = [nbformat.v4.new_code_cell(src, id=cid, metadata={"tags": tags.get(cid, [])})
                      for cid, src in SOLUTION.items()]
    return labgen.make_lab(solution), solution


@pytest.mark.parametrize("path", labgen.solution_paths(), ids=lambda p: p.stem)
def test_putting_the_solutions_code_into_the_todos_gives_the_solutions_cells_back(path):
    solution = nbformat.read(path, as_version=4)
    lab = nbformat.read(labgen.lab_path(path), as_version=4)
    by_id = {cell.id: cell for cell in solution.cells}
    filled = [by_id[cell.id].source if labgen.EXERCISE_TAG in cell.metadata.get("tags", []) else cell.source
              for cell in lab.cells]
    assert [c.id for c in lab.cells] == [c.id for c in solution.cells]
    assert filled == [c.source for c in solution.cells]
    assert [c.cell_type for c in lab.cells] == [c.cell_type for c in solution.cells]


def test_the_downstream_of_an_exercise_is_what_reads_its_names(tmp_path):
    lab, solution = pair(tmp_path)
    combined = two_pass_notebook(lab, solution)
    attendee = [c.source for c in combined.cells if ATTENDEE_TAG in c.metadata.get("tags", [])
                and not c.source.startswith(("from helpers import twopass", "twopass.leave"))]
    assert attendee == [lab.cells[2].source, SOLUTION["check"], SOLUTION["uses"], SOLUTION["later"]]
    assert lab.cells[2].source.endswith("answer = None  # TODO: replace None with your code")
    solved = [c.source for c in combined.cells if ATTENDEE_TAG not in c.metadata.get("tags", [])]
    assert solved == list(SOLUTION.values())  # the solution, every cell once, in order


def test_names_read_and_bound_leave_out_function_locals():
    assert read_names("def f(answer):\n    x = answer + y\n    return x\n[z for z in items]") == {"y", "items"}
    assert bound_names("for i in range(3):\n    j = i\nimport os.path as p\nwith open(f) as fh:\n    pass") == \
        {"i", "j", "p", "fh"}


def test_both_passes_run_in_one_kernel_and_the_attendees_checks_say_not_yet(tmp_path, monkeypatch):
    monkeypatch.setenv("MAAS_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("MAAS_STRICT_CHECKS", "1")
    lab, solution = pair(tmp_path)
    source = tmp_path / "90_pair.two-pass.ipynb"
    nbformat.write(two_pass_notebook(lab, solution), source)
    run = runlabs.run_lab(tmp_path / "90_pair.ipynb", "local", tmp_path, cell_timeout_s=60, source=source)
    assert (run.status, run.error) == ("passed", None)
    cells = nbformat.read(tmp_path / "90_pair.ipynb", as_version=4).cells
    text = ["".join(o.get("text", "") for o in c.get("outputs", [])) for c in cells]
    assert "Not yet: answer is still None" in "".join(text) and "total None" in "".join(text)
    assert "✅ answer is set" in "".join(text) and "total 420" in "".join(text)


def test_a_downstream_cell_that_breaks_unsolved_fails_the_run(tmp_path, monkeypatch):
    monkeypatch.setenv("MAAS_RESULTS_DIR", str(tmp_path / "results"))
    lab, solution = pair(tmp_path)
    for notebook in (lab, solution):  # the attendee's None reaches arithmetic: what an unsolved run would hit
        notebook.cells[4].source = "total = answer * 10"
    source = tmp_path / "91_broken.two-pass.ipynb"
    nbformat.write(two_pass_notebook(lab, solution), source)
    run = runlabs.run_lab(tmp_path / "91_broken.ipynb", "local", tmp_path, cell_timeout_s=60, source=source)
    assert run.status == "failed" and "TypeError" in run.error and "total = answer * 10" in run.error
