"""Secret files (passwords, keys, htpasswd): readable by their owner only, from the first byte.

Writing a file and chmod-ing it afterwards leaves a moment in which it has the umask's mode (often
world-readable). ``write_secret`` never does: the text goes into a temporary file that ``mkstemp``
creates with mode 0600 in the same folder, which then replaces the target in one rename (readers see
the old file or the new one, never half of it).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_secret(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` with mode 0600 (creating its folder); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # mode 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
