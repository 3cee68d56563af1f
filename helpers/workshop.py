"""``make workshop``: serve the model and the gateway, then open JupyterLab on Lab 0.

Works as root (containers, cloud VMs: JupyterLab then needs ``--allow-root``) and
as a normal user. A start that fails stops what this command started and
leaves alone what was already running.
"""
from __future__ import annotations

import os
import subprocess
import sys
from typing import Callable

from .settings import get_settings

FIRST_LAB = "labs/00_origin_story.ipynb"


def jupyter_command(as_root: bool) -> list[str]:
    """JupyterLab on the labs, listening on loopback only."""
    command = [sys.executable, "-m", "jupyter", "lab", "--ip", "127.0.0.1", FIRST_LAB]
    return command + ["--allow-root"] if as_root else command


def running_services() -> set[str]:
    """Names of what the workshop has running now: deployments, the gateway, PostgreSQL."""
    from .gateway.postgres import running_postgres
    from .gateway.proxy import running_gateway
    from .platform import LocalPlatform

    names = {f"deployment:{d.name}" for d in LocalPlatform().list() if d.ready}
    names |= {"gateway"} if running_gateway() else set()
    return names | ({"postgres"} if running_postgres() else set())


def stop_services(names: set[str]) -> None:
    """Stop the named services (gateway first: it holds connections to the others)."""
    from .gateway.postgres import stop_postgres
    from .gateway.proxy import stop_gateway
    from .platform import LocalPlatform

    if "gateway" in names:
        stop_gateway()
    for name in sorted(n.removeprefix("deployment:") for n in names if n.startswith("deployment:")):
        LocalPlatform().undeploy(name)
    if "postgres" in names:
        stop_postgres()


def run_workshop(start_services: Callable[[], object]) -> int:
    """Start the services, then JupyterLab in the foreground; clean up after a failed start."""
    before = running_services()
    try:
        start_services()
    except BaseException:
        started = running_services() - before
        stop_services(started)
        print(f"the start failed; stopped what it had started ({', '.join(sorted(started)) or 'nothing'})",
              file=sys.stderr)
        raise
    started = running_services() - before
    command = jupyter_command(as_root=os.geteuid() == 0)
    print(f"JupyterLab on {FIRST_LAB} (Ctrl-C twice to stop it) ...", flush=True)
    try:
        code = subprocess.run(command, cwd=get_settings().root).returncode
    except KeyboardInterrupt:
        code = 0
    if code not in (0, 130, -2):
        stop_services(started)
        print(f"JupyterLab exited with code {code}; stopped what this command started "
              f"({', '.join(sorted(started)) or 'nothing'}).", file=sys.stderr)
        return code
    print("The model server and the gateway keep running for the labs: `make down` stops them.")
    return 0
