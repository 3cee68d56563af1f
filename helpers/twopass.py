"""One run of a lab that checks both what the attendee gets and its solution: what CI executes.

The notebook executed is the attendee's labs/NN as handed out, with each exercise run twice in one kernel:

* **the attendee's pass**: the TODO cell as handed out, then every later cell that reads what it leaves
  behind (the names it assigns and, transitively, the names those cells assign: its "downstream"), in the
  state an attendee who skipped the exercise would have. Checks are not strict: they must say "Not yet",
  and nothing may raise;
* **the solved pass**: the solution's cell (from solutions/NN), then the same downstream cells in the solved
  state, checks strict.

Every other cell runs once, so the servers, benchmarks and evaluations of a lab are paid for once. (What this
leaves out: a cell that depends on an unsolved exercise only through a file or a server, never a name. The
full unsolved run, top to bottom, is ``pytest -m unsolved``: about as long as the solutions' run.)
"""
from __future__ import annotations

import ast
import os

import nbformat

from .labgen import EXERCISE_TAG

ATTENDEE_TAG = "attendee-pass"  # cells of the attendee's pass (and the two that switch state around each)
_MISSING = object()
_attendee: dict[str, object] = {}  # the attendee's values of the downstream names, kept between passes
_solved: dict[str, object] = {}  # the solved values put aside during one attendee pass
_strict: list[str | None] = []


def bound_names(source: str) -> set[str]:
    """Names a cell binds at top level (assignments, loops, with, imports, defs), not inside functions."""
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            return
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            return
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    return names


def read_names(source: str) -> set[str]:
    """The names a cell reads from the notebook's namespace (a function's own parameters and locals, and a
    comprehension's loop variables, are not)."""
    return _free_reads(ast.parse(source))


def _free_reads(node: ast.AST) -> set[str]:
    if isinstance(node, ast.Name):
        return {node.id} if isinstance(node.ctx, ast.Load) else set()
    reads = set().union(*(_free_reads(child) for child in ast.iter_child_nodes(node)))
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        local = {a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg)}
        local |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        return reads - local
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        return reads - {n.id for g in node.generators for n in ast.walk(g.target) if isinstance(n, ast.Name)}
    return reads


def _is_python(cell: nbformat.NotebookNode) -> bool:
    return cell.cell_type == "code" and not cell.source.lstrip().startswith(("%", "!"))


def _code(source: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = [ATTENDEE_TAG]
    return cell


def _attendee_pass(cell: nbformat.NotebookNode, names: set[str]) -> list[nbformat.NotebookNode]:
    """The cell between two switches of state: the attendee's values in, then the solved ones back."""
    listed = sorted(names)
    copy = _code(cell.source)
    return [_code(f"from helpers import twopass\ntwopass.enter(globals(), {listed!r})"), copy,
            _code(f"twopass.leave(globals(), {listed!r})")]


def two_pass_notebook(lab: nbformat.NotebookNode, solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The lab with each exercise and its downstream cells run first as the attendee has them, then solved."""
    solved_cells = {cell.get("id"): cell for cell in solution.cells}
    out = nbformat.from_dict({**lab, "cells": []})
    downstream: set[str] = set()
    for cell in lab.cells:
        if not _is_python(cell):
            out.cells.append(cell)
            continue
        if EXERCISE_TAG in cell.metadata.get("tags", []):
            solved = solved_cells[cell.get("id")]
            downstream |= bound_names(cell.source) | bound_names(solved.source)
            out.cells += _attendee_pass(cell, downstream) + [solved]
        elif read_names(cell.source) & downstream:
            downstream |= bound_names(cell.source)
            out.cells += _attendee_pass(cell, downstream) + [cell]
        else:
            out.cells.append(cell)
    return out


def enter(namespace: dict, names: list[str]) -> None:
    """Before an attendee-pass cell: the downstream names take the attendee's values (unbound if the
    attendee's run never bound them), checks stop being strict."""
    _solved.clear()
    for name in names:
        _solved[name] = namespace.get(name, _MISSING)
        value = _attendee.get(name, _MISSING)
        if value is _MISSING:
            namespace.pop(name, None)
        else:
            namespace[name] = value
    _strict.append(os.environ.get("MAAS_STRICT_CHECKS"))
    os.environ["MAAS_STRICT_CHECKS"] = "0"


def leave(namespace: dict, names: list[str]) -> None:
    """After it: keep what the attendee's run left, put the solved values back, checks as before."""
    for name in names:
        value = namespace.get(name, _MISSING)
        if value is _MISSING:
            _attendee.pop(name, None)
        else:
            _attendee[name] = value
        solved = _solved.get(name, _MISSING)
        if solved is _MISSING:
            namespace.pop(name, None)
        else:
            namespace[name] = solved
    strict = _strict.pop() if _strict else None
    if strict is None:
        os.environ.pop("MAAS_STRICT_CHECKS", None)
    else:
        os.environ["MAAS_STRICT_CHECKS"] = strict
