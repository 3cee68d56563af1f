"""Files generated from a source of truth and committed: labs/ (from solutions/)
and manifests/ (from helpers/kserve.py). One way to find and rewrite stale ones."""
from __future__ import annotations

from pathlib import Path


def stale_files(root: Path, files: dict[str, str]) -> list[str]:
    """Names (relative to root) whose file is missing or differs from its text."""
    return [name for name, text in files.items()
            if not (root / name).is_file() or (root / name).read_text() != text]


def write_files(root: Path, files: dict[str, str]) -> list[Path]:
    """Write every file; returns their paths."""
    written = []
    for name, text in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        written.append(target)
    return written
