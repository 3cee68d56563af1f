"""Generate the attendee notebooks (labs/) from the solutions (solutions/).

A code cell tagged ``exercise`` becomes a TODO stub: its leading comment lines
(the instructions) stay, and every name the cell assigns at top
level is set to None, so the lab still runs top to bottom before it is solved;
the check cell after it then says "not yet". Outputs are always stripped.
Hints go in a markdown cell before the exercise, collapsed (``<details>``), never
in its comments: those stay in plain sight.
"""
from __future__ import annotations

import ast
from pathlib import Path

import nbformat

from .generated import stale_files, write_files
from .settings import get_settings

EXERCISE_TAG = "exercise"


def assigned_names(source: str) -> list[str]:
    """Names a cell binds at top level (assignments, imports, defs), in order."""
    names: list[str] = []
    for node in ast.parse(source).body:
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names += [n.id for n in ast.walk(target) if isinstance(n, ast.Name)]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
    return list(dict.fromkeys(names))


def stub_source(source: str) -> str:
    """The exercise version of a solution cell."""
    lines = source.splitlines()
    header = []
    for line in lines:
        if not line.startswith("#"):
            break
        header.append(line)
    names = assigned_names(source)
    if not names:
        raise ValueError(f"an exercise cell must assign a name to check; this one does not:\n{source}")
    body = [f"{name} = None  # TODO: replace None with your code" for name in names]
    return "\n".join(header + body)


def make_lab(solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    lab = nbformat.from_dict(solution)
    for cell in lab.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            if EXERCISE_TAG in cell.metadata.get("tags", []):
                cell.source = stub_source(cell.source)
    return lab


def render(solution_path: Path) -> str:
    """The lab notebook's text for one solution notebook."""
    lab = make_lab(nbformat.read(solution_path, as_version=4))
    return nbformat.writes(lab) + "\n"


def solution_paths() -> list[Path]:
    return sorted((get_settings().root / "solutions").glob("[0-9][0-9]_*.ipynb"))


def expected_labs() -> dict[str, str]:
    """Every lab notebook's text, by file name, as the solutions generate it."""
    return {path.name: render(path) for path in solution_paths()}


def _labs_dir() -> Path:
    return get_settings().root / "labs"


def lab_path(solution_path: Path) -> Path:
    """The attendee's notebook generated from a solution notebook."""
    return _labs_dir() / solution_path.name


def _orphans(expected: dict[str, str]) -> list[Path]:
    """Lab notebooks whose solution is gone."""
    return sorted(p for p in _labs_dir().glob("*.ipynb") if p.name not in expected)


def stale_labs() -> list[str]:
    """Lab notebooks that differ from what the solutions generate, are missing, or have no solution."""
    expected = expected_labs()
    return stale_files(_labs_dir(), expected) + [p.name for p in _orphans(expected)]


def generate_labs() -> list[Path]:
    """Write labs/ from solutions/ (and remove labs without a solution); returns the files written."""
    expected = expected_labs()
    for orphan in _orphans(expected):
        orphan.unlink()
    return write_files(_labs_dir(), expected)
