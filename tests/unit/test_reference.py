"""Reference outputs: executed notebooks as HTML, with no secret left and the CPU named."""
from __future__ import annotations

import json
import secrets

import nbformat
import pytest

from helpers import reference
from helpers.errors import WorkshopError
from helpers.secretfiles import write_secret

# made per run, shaped as the workshop makes them: no key-shaped literal in git
ADMIN_KEY = "sk-admin-" + secrets.token_hex(16)
APP_KEY = "sk-maas-" + secrets.token_hex(16)
PORTAL_TOKEN = "pt-" + secrets.token_hex(16)
DB_PASSWORD = secrets.token_hex(16)


@pytest.fixture
def run_dir(tmp_path):
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print(app['key'])")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text=f"your key: {APP_KEY}\nadmin {ADMIN_KEY}\n"),
        nbformat.v4.new_output("execute_result", data={
            "text/plain": f"postgresql://maas:{DB_PASSWORD}@127.0.0.1:5432/maas",
            "text/html": f"<td>{PORTAL_TOKEN}</td><td>password={DB_PASSWORD}</td>"}, execution_count=1),
        nbformat.v4.new_output("error", ename="OSError", evalue=f"login {DB_PASSWORD} refused", traceback=["x"]),
    ]
    notebook.cells = [nbformat.v4.new_markdown_cell("# Lab 5"), cell]
    folder = tmp_path / "run"
    folder.mkdir()
    nbformat.write(notebook, folder / "05_gateway.ipynb")
    (folder / "summary.json").write_text(json.dumps({
        "platform": "local", "cpu": "AMD EPYC: class avx2", "finished": "2026-11-24 08:00 UTC", "unsolved": False,
        "parameters": {}, "labs": [{"lab": "lab05", "notebook": "05_gateway.ipynb", "status": "passed", "seconds": 70}]}))
    return folder


@pytest.fixture
def state_dir(tmp_path):
    state = tmp_path / "state"
    write_secret(state / "gateway" / "master_key", ADMIN_KEY)
    write_secret(state / "postgres" / "credentials.json", json.dumps({"user": "maas-workshop", "password": DB_PASSWORD}))
    (state / "logs").mkdir()
    (state / "logs" / "public.txt").write_text("not-a-secret-but-long")  # readable by others: not a secret file
    return state


def test_the_pages_keep_no_secret_and_name_the_cpu(run_dir, state_dir, tmp_path):
    assert reference.known_secrets(state_dir) == {ADMIN_KEY, DB_PASSWORD}
    pages = reference.export(run_dir, tmp_path / "out", state_dir)
    page = pages[0].read_text()
    for secret in (ADMIN_KEY, APP_KEY, PORTAL_TOKEN, DB_PASSWORD):
        assert secret not in page
    assert page.count(reference.REDACTED) >= 4 and not reference.leaks(page, {ADMIN_KEY, DB_PASSWORD})
    assert "AMD EPYC: class avx2" in page and "05_gateway.ipynb" in page
    assert (tmp_path / "out" / "index.html").is_file()
    assert APP_KEY in (run_dir / "05_gateway.ipynb").read_text()  # the notebook itself is left as it was


def test_an_unknown_secret_of_a_known_shape_is_caught_by_its_shape():
    key_part, password = secrets.token_hex(10), secrets.token_hex(7)  # made per run, known to nobody
    text = f"key sk-maas-{key_part} and https://bob:{password}@registry.local/v2"
    redacted = reference.redact(text)
    assert key_part not in redacted and password not in redacted
    assert reference.leaks(text) and not reference.leaks(redacted)


def test_a_run_of_unsolved_labs_or_no_run_is_refused(run_dir, tmp_path):
    with pytest.raises(WorkshopError, match="no summary.json"):
        reference.export(tmp_path / "nothing", tmp_path / "out")
    summary = json.loads((run_dir / "summary.json").read_text())
    (run_dir / "summary.json").write_text(json.dumps({**summary, "unsolved": True}))
    with pytest.raises(WorkshopError, match="unsolved"):
        reference.export(run_dir, tmp_path / "out")
