"""Each lab's time, in README's lab table and each lab's header, regenerated from a run of the labs.

Two times, never mixed:
- **machine time**, measured: the seconds ``run-labs`` took to execute the solution (its summary.json);
- **reading and typing**, estimated from the notebook itself: the words of its markdown at a reading
  speed, the lines of code to read, and a few minutes per exercise (the assumptions are constants here).

    python -m helpers lab-times /tmp/labs/summary.json   # rewrites README.md and solutions/, then labs/
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from . import labgen
from .errors import WorkshopError
from .runlabs import lab_id

WORDS_PER_MINUTE = 150  # ASSUMPTION: reading technical prose in a second language, with the plots
CODE_LINES_PER_MINUTE = 10  # ASSUMPTION: reading code an attendee runs without writing
MINUTES_PER_EXERCISE = 4  # ASSUMPTION: reading the hints, typing and running a solution, the check
HEADER = re.compile(r"\*\*(?:Estimated time|Time):\*\*.*?(?= \*\*Prerequisites|\n|$)")
TABLE_HEADER = "| # | Notebook | What you do |"


@dataclass(frozen=True)
class LabTime:
    lab: str  # "lab02"
    machine_s: float | None  # measured by run-labs; None: not in the summary, or it failed
    attendee_min: int  # estimated
    words: int
    code_lines: int
    exercises: int

    def machine_text(self) -> str:
        if self.machine_s is None:
            return "not measured"
        return f"{self.machine_s / 60:.1f} min" if self.machine_s >= 60 else f"{self.machine_s:.0f} s"


def attendee_minutes(notebook: nbformat.NotebookNode) -> tuple[int, int, int, int]:
    """Estimated reading and typing minutes, from the words of the markdown, the code lines and the exercises."""
    words = sum(len(HEADER.sub("", c.source).split()) for c in notebook.cells if c.cell_type == "markdown")
    code = [c for c in notebook.cells if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", [])]
    exercises = sum(labgen.EXERCISE_TAG in c.metadata.get("tags", []) for c in code)
    lines = sum(1 for c in code if labgen.EXERCISE_TAG not in c.metadata.get("tags", [])
                for line in c.source.splitlines() if line.strip() and not line.lstrip().startswith("#"))
    minutes = words / WORDS_PER_MINUTE + lines / CODE_LINES_PER_MINUTE + exercises * MINUTES_PER_EXERCISE
    return max(5, 5 * math.ceil(minutes / 5)), words, lines, exercises  # to the next 5 minutes


def read_summary(path: Path) -> dict:
    """A run-labs summary.json; a run of attendee labs (``--unsolved``) measures no solution and is refused."""
    if not path.is_file():
        raise WorkshopError(f"{path} does not exist: run `python -m helpers run-labs --out DIR` first, then pass "
                            "DIR/summary.json")
    summary = json.loads(path.read_text())
    if summary.get("unsolved"):
        raise WorkshopError(f"{path} is a run of the unsolved labs: time the solutions (run-labs without --unsolved)")
    return summary


def lab_times(summary: dict, solutions: list[Path] | None = None) -> list[LabTime]:
    """Every solution's times: machine seconds from the summary (passed labs only), the estimate from the notebook."""
    measured = {lab["lab"]: lab["seconds"] for lab in summary["labs"] if lab["status"] == "passed"}
    times = []
    for path in solutions or labgen.solution_paths():
        minutes, words, lines, exercises = attendee_minutes(nbformat.read(path, as_version=4))
        times.append(LabTime(lab_id(path), measured.get(lab_id(path)), minutes, words, lines, exercises))
    return times


def run_label(summary: dict) -> str:
    """Where and how the machine times were measured."""
    parameters = summary.get("parameters") or {}
    shown = ", ".join(f"{name}={value}" for name, value in parameters.items()) or "the notebooks' defaults"
    return (f"measured by `run-labs` on {summary.get('cpu', 'an unrecorded CPU')}"
            f"{' at ' + summary['finished'] if summary.get('finished') else ''} with {shown}")


def short_label(summary: dict) -> str:
    """The run, in a few words, for a lab's header (README's table note has the details)."""
    cpu = summary.get("cpu", "an unrecorded CPU").split(";")[0]
    return f"measured by `run-labs` on {cpu}" + (", with CI's shorter parameters" if summary.get("parameters") else "")


def header_line(time: LabTime, label: str) -> str:
    """The time line of a lab's first markdown cell."""
    return (f"**Time:** about {time.attendee_min} minutes of reading and typing (estimated); "
            f"{time.machine_text()} of machine time ({label}).")


def rewrite_header(notebook: nbformat.NotebookNode, line: str) -> bool:
    """Replace the time line of the first markdown cell; False if it has none."""
    first = next((c for c in notebook.cells if c.cell_type == "markdown"), None)
    if first is None or not HEADER.search(first.source):
        return False
    first.source = HEADER.sub(lambda _: line, first.source, count=1)
    return True


def rewrite_table(readme: str, times: list[LabTime], label: str) -> str:
    """README's lab table with two time columns (machine: measured; reading and typing: estimated)."""
    by_number = {int(t.lab[3:]): t for t in times}
    lines = readme.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith(TABLE_HEADER))
    except StopIteration:
        raise WorkshopError(f"README.md has no lab table starting with {TABLE_HEADER!r}") from None
    lines[start] = TABLE_HEADER + " Machine time (measured) | Reading and typing (estimated) |"
    lines[start + 1] = "|---|----------|-------------|---|---|"
    end = start + 2
    while end < len(lines) and lines[end].startswith("|"):
        cells = lines[end].split(" | ")
        number = int(cells[0].strip("| "))
        what = cells[:3]
        time = by_number.get(number)
        machine, attendee = (time.machine_text(), f"{time.attendee_min} min") if time else ("not measured", "?")
        lines[end] = " | ".join(what + [machine, attendee]) + " |"
        end += 1
    note = (f"Machine time: {label}. Reading and typing: estimated from each notebook ({WORDS_PER_MINUTE} words "
            f"of prose a minute, {CODE_LINES_PER_MINUTE} lines of code a minute, {MINUTES_PER_EXERCISE} minutes an "
            "exercise). Regenerate both: `python -m helpers lab-times DIR/summary.json` after `run-labs --out DIR`.")
    if end < len(lines) - 1 and lines[end] == "" and lines[end + 1].startswith("Machine time:"):
        lines[end + 1] = note
    else:
        lines[end:end] = ["", note]
    return "\n".join(lines) + ("\n" if readme.endswith("\n") else "")


def write_lab_times(summary_path: Path, readme: Path, solutions: list[Path] | None = None) -> list[LabTime]:
    """Rewrite README's lab table and each solution's time line from a run; then regenerate labs/."""
    summary = read_summary(summary_path)
    paths = solutions or labgen.solution_paths()
    times = lab_times(summary, paths)
    label = run_label(summary)
    for path, time in zip(paths, times):
        notebook = nbformat.read(path, as_version=4)
        if rewrite_header(notebook, header_line(time, short_label(summary))):
            nbformat.write(notebook, path)
    readme.write_text(rewrite_table(readme.read_text(), times, label))
    if solutions is None:
        labgen.generate_labs()
    return times
