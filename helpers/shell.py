"""Commands as the labs show them: one copy-pasteable shell line.

Paths inside the workshop folder are made relative to it (run the line from there); a secret only
ever appears as a shell variable (``"$MAAS_API_KEY"``), never as its value.
"""
from __future__ import annotations

import shlex
from pathlib import Path


def shorten(text: str, root: Path | None = None) -> str:
    """``text`` with the workshop folder's absolute paths made relative to it."""
    if root is None:
        from .settings import get_settings

        root = get_settings().root
    return text.replace(f"{root}/", "")


def shell_line(command: list[str], env: dict[str, str] | None = None, secrets: dict[str, str] | None = None,
               root: Path | None = None) -> str:
    """``VAR=value ... command`` as one shell line; ``secrets`` maps a variable the command reads to the
    shell variable holding its value (``{"OPENAI_API_KEY": "MAAS_API_KEY"}``)."""
    words = [f"{name}={shlex.quote(value)}" for name, value in (env or {}).items()]
    words += [f'{name}="${variable}"' for name, variable in (secrets or {}).items()]
    return shorten(" ".join([*words, shlex.join(command)]), root)
