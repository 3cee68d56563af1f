"""Reference outputs for instructors: the executed solutions of a run-labs folder as HTML pages.

    python -m helpers run-labs --out /tmp/labs               # execute the solutions
    python -m helpers reference-outputs /tmp/labs --out ~/maas-reference

Each page is one executed solution converted with nbconvert, with a banner naming the CPU and the
run that produced it. Secrets are stripped first: every secret value the workshop keeps in its state
folder (the gateway's admin key, the database and registry passwords) and every key-shaped string
(``sk-...`` keys, ``pt-...`` portal tokens, passwords in connection strings) become ``[redacted]``;
then the pages are scanned again and refused if anything key-shaped is left. The pages go to a
folder of their own, never into the notebooks (``reference-outputs/`` in the checkout is gitignored).
"""
from __future__ import annotations

import html
import json
import re
from pathlib import Path

import nbformat

from .errors import WorkshopError
from .settings import get_settings

REDACTED = "[redacted]"
# Key-shaped: the gateway's application keys (sk-maas-...), its admin key (sk-admin-...), any sk- key,
# portal tokens (pt-...), a password in a connection string or URL, password= / "password": values.
KEY_SHAPED = [
    re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"),
    re.compile(r"\bpt-[A-Za-z0-9_-]{16,}"),
    re.compile(r"(?<=://)[^\s/:@\"']+:[^\s/@\"']+(?=@)"),  # user:password@ in a DSN or URL
    re.compile(r"(?i)(?<=password=)[^\s&\"'<]+"),
    re.compile(r"(?i)(?<=\"password\": \")[^\"]+"),
    re.compile(r"(?i)(?<=&#34;password&#34;: &#34;)[^&]+"),  # the same, once escaped into HTML
]
SECRET_FIELD = re.compile(r"(?i)pass|key|token|secret|auth")  # in a JSON secret file: the fields to hide (not a user)
MIN_SECRET_LENGTH = 8  # shorter values (a user name like "maas") are not secrets worth hunting for


def known_secrets(state_dir: Path | None = None) -> set[str]:
    """Secret values the workshop keeps on this machine: files under the state folder that only their owner
    may read (``secretfiles.write_secret`` writes every one with mode 0600), whole, or a JSON file's
    password, key, token and auth fields (a user name is not a secret)."""
    state_dir = state_dir or get_settings().state_dir
    values: set[str] = set()
    databases = {p.parent for p in state_dir.rglob("PG_VERSION")} if state_dir.is_dir() else set()
    for path in state_dir.rglob("*") if state_dir.is_dir() else []:
        try:
            if (not path.is_file() or path.stat().st_mode & 0o077 or path.stat().st_size > 65_536
                    or any(folder in path.parents for folder in databases)):  # PostgreSQL's own files
                continue
            text = path.read_text().strip()
        except (OSError, UnicodeDecodeError):
            continue
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = text
        found = ([v for k, v in parsed.items() if SECRET_FIELD.search(k)] if isinstance(parsed, dict)
                 else [parsed] if isinstance(parsed, str) else [])
        values |= {v for v in found if isinstance(v, str) and len(v) >= MIN_SECRET_LENGTH and "\n" not in v}
    return values


def redact(text: str, secrets: set[str] = frozenset()) -> str:
    """``text`` with every known secret and every key-shaped string replaced by ``[redacted]``."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    for pattern in KEY_SHAPED:
        text = pattern.sub(REDACTED, text)
    return text


def leaks(text: str, secrets: set[str] = frozenset()) -> list[str]:
    """What still looks like a secret in ``text`` (empty: nothing)."""
    found = [secret for secret in secrets if secret in text]
    for pattern in KEY_SHAPED:
        found += [m for m in pattern.findall(text) if m != REDACTED]
    return found


def _redact_notebook(notebook: nbformat.NotebookNode, secrets: set[str]) -> None:
    """Redact sources and outputs in place (text, HTML, JSON and error outputs; images are left as they are)."""
    for cell in notebook.cells:
        cell.source = redact(cell.source, secrets)
        for output in cell.get("outputs", []):
            if "text" in output:
                output.text = redact(output.text, secrets)
            if "traceback" in output:
                output.traceback = [redact(line, secrets) for line in output.traceback]
            if "evalue" in output:
                output.evalue = redact(output.evalue, secrets)
            for kind, value in output.get("data", {}).items():
                if isinstance(value, str) and not kind.startswith("image/"):
                    output.data[kind] = redact(value, secrets)


def banner(run: dict, notebook: str) -> str:
    """What the page says about where it came from."""
    lab = next((lab for lab in run.get("labs", []) if lab["notebook"] == notebook), {})
    parameters = ", ".join(f"{k}={v}" for k, v in (run.get("parameters") or {}).items()) or "the defaults"
    return (f"<div style='border:2px solid #c9190b;padding:8px;margin:8px 0;font-family:sans-serif'>"
            f"<b>Reference output</b> of <code>solutions/{html.escape(notebook)}</code>, executed by "
            f"<code>run-labs</code> on <b>{html.escape(run.get('cpu', 'an unrecorded CPU'))}</b>"
            f"{' at ' + html.escape(run['finished']) if run.get('finished') else ''}, platform "
            f"{html.escape(run.get('platform', '?'))}, parameters {html.escape(parameters)}: "
            f"{html.escape(str(lab.get('status', '?')))} in {lab.get('seconds', '?')} s. Speeds and sizes are this "
            "CPU's; secrets are redacted.</div>")


def export(run_dir: Path, out_dir: Path, state_dir: Path | None = None) -> list[Path]:
    """Write one HTML page per executed notebook of ``run_dir`` (and an index) into ``out_dir``."""
    from nbconvert import HTMLExporter

    summary = run_dir / "summary.json"
    if not summary.is_file():
        raise WorkshopError(f"{run_dir} has no summary.json: run `python -m helpers run-labs --out {run_dir}` first")
    run = json.loads(summary.read_text())
    if run.get("unsolved"):
        raise WorkshopError(f"{run_dir} holds the unsolved labs: reference outputs come from a run of the solutions")
    notebooks = sorted(run_dir.glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise WorkshopError(f"{run_dir} holds no executed notebook")
    secrets = known_secrets(state_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter(template_name="lab")
    written = []
    for path in notebooks:
        notebook = nbformat.read(path, as_version=4)
        _redact_notebook(notebook, secrets)
        body, _ = exporter.from_notebook_node(notebook)
        body = body.replace("<body", "<body data-reference-output", 1)
        body = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + banner(run, path.name), body, count=1)
        found = leaks(body, secrets)
        if found:
            raise WorkshopError(f"{path.name}: {len(found)} key-shaped string(s) survived redaction; nothing written "
                                "for it. Report this: the redaction rules in helpers/reference.py miss a shape")
        page = out_dir / f"{path.stem}.html"
        page.write_text(body)
        written.append(page)
    index = "".join(f"<li><a href='{p.name}'>{html.escape(p.stem)}</a></li>" for p in written)
    (out_dir / "index.html").write_text(f"<html><body><h1>Reference outputs</h1>{banner(run, '')}<ul>{index}</ul>"
                                        "</body></html>")
    return written
