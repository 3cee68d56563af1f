"""Run the solution notebooks headless with papermill and write a summary.

    python -m helpers run-labs --labs 0,1 --platform local --out /tmp/labs
    python -m helpers run-labs --labs 1 --out /tmp/labs -p SWEEP_SECONDS=4   # override a parameter
    python -m helpers run-labs --two-pass     # what CI runs: labs/ as handed out, each exercise then solved
"""
from __future__ import annotations

import ast
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import cpu, labgen, results
from .errors import WorkshopError


@dataclass
class LabRun:
    lab: str  # "lab01"
    notebook: str
    status: str  # "passed" or "failed"
    seconds: float
    figures: dict = field(default_factory=dict)
    error: str | None = None


def lab_id(notebook: Path) -> str:
    """``01_vllm_performance.ipynb`` -> ``lab01``: the key its figures are recorded under."""
    return "lab" + notebook.name[:2]


def select_notebooks(labs: list[int] | None, unsolved: bool = False) -> list[Path]:
    """Solution notebooks (the attendee's labs/ when ``unsolved``) by lab number, all when None;
    unknown numbers are an error."""
    solutions = labgen.solution_paths()
    paths = [labgen.lab_path(p) for p in solutions] if unsolved else solutions
    available = {int(p.name[:2]): p for p in paths}
    if labs is None:
        return [available[n] for n in sorted(available)]
    unknown = sorted(set(labs) - set(available))
    if unknown:
        raise WorkshopError(f"no lab numbered {unknown}; available: {sorted(available)}")
    return [available[n] for n in labs]


CELL_TIMEOUT_S = 600  # per cell: the longest cell in CI takes about two minutes on 2 cores
KERNEL_START_TIMEOUT_S = 300  # a kernel starts in seconds; on a busy machine (CI's unit tests run at nice 19) in more


def failed_cell(executed: Path) -> str:
    """The cell that failed or ran out of time, by its id and first line (papermill's metadata in the
    executed notebook: the failed cell, else the last one started)."""
    import nbformat

    cells = nbformat.read(executed, as_version=4).cells if executed.is_file() else []
    state = [c.get("metadata", {}).get("papermill", {}) for c in cells]
    failed = [i for i, s in enumerate(state) if s.get("exception")]
    started = [i for i, s in enumerate(state) if s.get("start_time")]
    if not (failed or started):
        return "before any cell ran"
    cell = cells[(failed or started)[-1]]
    lines = cell.source.strip().splitlines()
    return f"cell {cell.get('id', '?')} (In [{cell.get('execution_count') or '?'}]: {lines[0][:80] if lines else ''})"


def parse_parameter(text: str) -> tuple[str, object]:
    """``NAME=VALUE`` from the command line: VALUE as a Python literal (``4``, ``[1, 4]``), else as text."""
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise WorkshopError(f"parameter {text!r}: write NAME=VALUE, e.g. -p SWEEP_SECONDS=4")
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return name, value


def two_pass_input(solution: Path, out_dir: Path) -> Path:
    """The attendee's notebook of ``solution`` with each exercise run as handed out, then solved
    (helpers/twopass.py), written next to the executed notebooks."""
    import nbformat

    from .twopass import two_pass_notebook

    combined = two_pass_notebook(nbformat.read(labgen.lab_path(solution), as_version=4),
                                 nbformat.read(solution, as_version=4))
    path = out_dir / f"{solution.stem}.two-pass.ipynb"
    nbformat.write(combined, path)
    return path


def run_lab(notebook: Path, platform: str, out_dir: Path, cell_timeout_s: int = CELL_TIMEOUT_S,
            parameters: dict[str, object] | None = None, source: Path | None = None) -> LabRun:
    """Execute one notebook into out_dir; each cell gets ``cell_timeout_s``.

    ``parameters`` override the notebook's parameters cell (papermill), e.g. shorter measurements in CI.
    ``source``: the file actually executed when it is not ``notebook`` itself (the two-pass notebook).
    """
    import papermill  # heavy import, only when running labs

    lab = lab_id(notebook)
    results.clear_figures(lab)
    started = time.perf_counter()
    executed = out_dir / notebook.name
    error = None
    try:
        papermill.execute_notebook(
            str(source or notebook), str(executed), parameters={**(parameters or {}), "PLATFORM": platform},
            kernel_name="python3", cwd=str(notebook.parent), progress_bar=False,
            execution_timeout=cell_timeout_s, start_timeout=KERNEL_START_TIMEOUT_S,
        )
    except Exception as exc:  # a failed check (PapermillExecutionError) or a cell past its time limit
        error = f"{failed_cell(executed)}: " + f"{type(exc).__name__}: {exc}"[-4000:]
    seconds = round(time.perf_counter() - started, 1)
    return LabRun(lab, notebook.name, "failed" if error else "passed", seconds, results.read_figures(lab), error)


def check_platform(platform: str) -> None:
    """Before anything runs: the platform exists and, on a cluster, can be reached with KServe installed.

    Raises (and so nothing is half-done) when there is no kubeconfig, no KServe, no runtime.
    """
    from .platform import Platform

    chosen = Platform.create(platform)
    preflight = getattr(chosen, "preflight", None)
    if preflight:
        preflight()


def run_labs(labs: list[int] | None, platform: str, out_dir: Path,
             parameters: dict[str, object] | None = None, unsolved: bool = False, two_pass: bool = False) -> dict:
    """Run the chosen labs in order; write and return ``out_dir/summary.json``.

    Solutions run with strict checks (a failed check raises). ``unsolved`` runs the attendee's labs/
    as handed out, TODOs left as they are: checks then say "not yet" and the lab must still run to its end.
    ``two_pass`` runs labs/ with each exercise first as handed out, then solved (helpers/twopass.py).
    """
    if unsolved and two_pass:
        raise WorkshopError("choose --unsolved or --two-pass: the two-pass run already holds the unsolved exercises")
    check_platform(platform)
    notebooks = select_notebooks(labs, unsolved)  # unknown lab numbers fail before anything is written
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    os.environ["MAAS_RESULTS_DIR"] = str(out_dir / "results")
    os.environ["MAAS_STRICT_CHECKS"] = "0" if unsolved else "1"
    os.environ["PLATFORM"] = platform
    runs = []
    for notebook in notebooks:
        print(f"running {notebook.name} on {platform} ...", flush=True)
        source = two_pass_input(notebook, out_dir) if two_pass else None
        run = run_lab(notebook, platform, out_dir, parameters=parameters, source=source)
        print(f"  {run.status} in {run.seconds:.0f} s", flush=True)
        runs.append(run)
    summary = {
        "platform": platform,
        "cpu": cpu.detect().summary(),  # the CPU that produced the figures and times (reference outputs name it)
        "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "unsolved": unsolved,
        "two_pass": two_pass,
        "parameters": parameters or {},
        "passed": all(r.status == "passed" for r in runs),
        "labs": [asdict(r) for r in runs],
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
