import json

import nbformat
import pytest

from helpers import labgen


def test_stub_keeps_the_instructions_and_sets_every_assigned_name_to_none():
    source = "# Exercise: do it\n# Hint: like this\nclient = make()\nreply, extra = client.go(), 1"
    stub = labgen.stub_source(source)
    assert stub.splitlines() == [
        "# Exercise: do it", "# Hint: like this",
        "client = None  # TODO: replace None with your code",
        "reply = None  # TODO: replace None with your code",
        "extra = None  # TODO: replace None with your code",
    ]


def test_an_exercise_must_assign_something():
    with pytest.raises(ValueError, match="must assign a name"):
        labgen.stub_source("# Exercise\nprint('hi')")


def test_labs_are_generated_from_the_current_solutions():
    assert labgen.solution_paths(), "no solution notebooks found"
    assert labgen.stale_labs() == [], "run: python -m helpers make-labs"


@pytest.mark.parametrize("path", labgen.solution_paths(), ids=lambda p: p.name)
def test_solutions_are_committed_clean_and_their_labs_compile(path):
    solution = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in solution.cells if c.cell_type == "code"), "strip outputs"
    assert any("parameters" in c.metadata.get("tags", []) for c in solution.cells), "papermill needs a parameters cell"
    lab = labgen.make_lab(solution)
    exercises = [c for c in lab.cells if labgen.EXERCISE_TAG in c.metadata.get("tags", [])]
    assert exercises, "each lab has at least one exercise"
    for cell in exercises:
        compile(cell.source, path.name, "exec")
        assert "TODO" in cell.source


def test_check_functions_say_not_yet_for_an_unsolved_exercise(monkeypatch, capsys):
    from helpers.checks import check_chat_reply, check_done
    from helpers.errors import CheckFailed

    monkeypatch.setenv("MAAS_STRICT_CHECKS", "0")
    assert check_chat_reply(None) is False
    assert "Not yet" in capsys.readouterr().out
    monkeypatch.setenv("MAAS_STRICT_CHECKS", "1")
    with pytest.raises(CheckFailed):
        check_done(None, "ratio", "compute it")


@pytest.mark.parametrize("path", labgen.solution_paths(), ids=lambda p: p.name)
def test_hints_are_collapsed_markdown_not_comments_the_lab_keeps(path):
    """An exercise's comments stay in the lab, so a hint there is never collapsed: hints go in <details>."""
    cells = nbformat.read(path, as_version=4).cells
    for index, cell in enumerate(cells):
        if labgen.EXERCISE_TAG in cell.metadata.get("tags", []):
            assert "# Hint" not in cell.source, f"cell {index}: move the hint into a <details> markdown cell before it"
            before = cells[index - 1]
            if "<details>" in before.source:
                assert before.cell_type == "markdown" and before.source.count("<details>") == before.source.count(
                    "</details>"), f"cell {index - 1}: unbalanced <details>"
