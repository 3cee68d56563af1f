"""Background server processes: start with a log, find free ports, stop by PID.

Only processes this workshop started are ever stopped: each is identified by
its PID *and* its start time, so a recycled PID is never signalled.
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import psutil

from .errors import PortInUseError


@dataclass(frozen=True)
class ProcessHandle:
    """A process we started: its PID and the time the kernel says it started."""

    pid: int
    create_time: float

    def process(self) -> psutil.Process | None:
        """The live process, or None when it is gone (or the PID was reused)."""
        try:
            proc = psutil.Process(self.pid)
            if abs(proc.create_time() - self.create_time) > 1.0 or proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc
        except psutil.NoSuchProcess:
            return None

    def is_alive(self) -> bool:
        return self.process() is not None


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Nobody listens there (a closed server's TIME_WAIT connections don't count: servers reuse)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


_handed_out: set[int] = set()  # ports given to servers that may not listen yet
_handed_out_lock = threading.Lock()


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now, chosen by the kernel, never handed out twice."""
    with _handed_out_lock:
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((host, 0))
                port = sock.getsockname()[1]
            if port not in _handed_out:
                _handed_out.add(port)
                return port


def claim_port(port: int | None, host: str = "127.0.0.1") -> int:
    """The given port if it is free (clear error if not), else a free one."""
    if port is None:
        return free_port(host)
    if not port_is_free(port, host):
        owner = _port_owner(port)
        raise PortInUseError(
            f"port {port} on {host} is already taken{owner}. "
            "Stop what uses it, pick another port, or leave the port out to get a free one."
        )
    return port


def sticky_port(path: Path, port: int | None, host: str = "127.0.0.1") -> int:
    """Claim ``port``, else the port saved in ``path`` last time if it is still free, else a free one; saved.

    Servers keep their address across restarts: applications keep their endpoint, and the
    gateway finds PostgreSQL where it was.
    """
    if port is None and path.is_file():
        saved = int(path.read_text())
        port = saved if port_is_free(saved, host) else None
    port = claim_port(port, host)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(str(port))
    return port


def _port_owner(port: int) -> str:
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                return f" by PID {conn.pid} ({psutil.Process(conn.pid).name()})"
    except (psutil.Error, PermissionError):
        pass
    return ""


def start(command: list[str], log_path: Path, env: dict[str, str] | None = None) -> ProcessHandle:
    """Start a command in its own process group, output appended to log_path."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # its own group: we can stop it with its children
        )
    return ProcessHandle(pid=proc.pid, create_time=psutil.Process(proc.pid).create_time())


def wait_until(handle: ProcessHandle, probe: Callable[[], bool], timeout_s: float, interval_s: float = 0.5) -> str:
    """Poll ``probe`` until it answers True: "ready"; "exited" if the process died first; else "timeout"."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not handle.is_alive():
            return "exited"
        if probe():
            return "ready"
        time.sleep(interval_s)
    return "timeout"


def handle_of(record: dict) -> ProcessHandle:
    return ProcessHandle(record["pid"], record["create_time"])


def write_record(path: Path, handle: ProcessHandle, **fields) -> None:
    """Record a server we started (its PID, start time and what clients need) for other processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"pid": handle.pid, "create_time": handle.create_time, **fields}))


def live_record(path: Path) -> dict | None:
    """The record of a server we started, if that very process still runs."""
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    return record if handle_of(record).is_alive() else None


def stop_recorded(path: Path) -> bool:
    """Stop the server a record names, with its process group, and forget it; True if something was stopped."""
    if not path.is_file():
        return False
    stopped = stop(handle_of(json.loads(path.read_text())))
    path.unlink(missing_ok=True)
    return stopped


def group_members(handle: ProcessHandle) -> list[psutil.Process]:
    """Every live process of the group we started, even after its leader died.

    ``start`` puts each server in its own process group (pgid = its PID), so
    children that outlive a killed leader are still found, and only ours are:
    while any member lives, the kernel does not hand the group's ID to anyone
    else, and a live process with our PID but another start time means the
    group is gone and the PID was recycled.
    """
    try:
        if abs(psutil.Process(handle.pid).create_time() - handle.create_time) > 1.0:
            return []
    except psutil.NoSuchProcess:
        pass
    members = []
    for proc in psutil.process_iter():
        try:
            if (os.getpgid(proc.pid) == handle.pid and proc.create_time() >= handle.create_time - 1.0
                    and proc.status() != psutil.STATUS_ZOMBIE):
                members.append(proc)
        except (psutil.Error, ProcessLookupError):
            pass
    return members


def stop(handle: ProcessHandle, timeout_s: float = 20.0) -> bool:
    """Stop a process we started and everything in its group; True if something was stopped."""
    family = group_members(handle)
    if not family:
        _reap(handle.pid)
        return False
    for member in family:
        _signal(member, signal.SIGTERM)
    _, alive = psutil.wait_procs(family, timeout=timeout_s)
    for member in alive:
        _signal(member, signal.SIGKILL)
    psutil.wait_procs(alive, timeout=5)
    _reap(handle.pid)
    return True


def _signal(proc: psutil.Process, sig: int) -> None:
    try:
        proc.send_signal(sig)
    except psutil.NoSuchProcess:
        pass


def _reap(pid: int) -> None:
    """Collect the exit status when the process is our own child (no zombie left)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def tree_memory_bytes(handle: ProcessHandle) -> int:
    """Resident memory of a process and all its children (vLLM runs an engine child)."""
    total = 0
    for member in group_members(handle):
        try:
            total += member.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def tree_cpu_percent(handle: ProcessHandle, interval_s: float = 1.0) -> float:
    """CPU used by a process tree over an interval, in percent of one core."""
    family = group_members(handle)
    for member in family:
        try:
            member.cpu_percent(None)  # starts the measurement
        except psutil.NoSuchProcess:
            pass
    time.sleep(interval_s)
    total = 0.0
    for member in family:
        try:
            total += member.cpu_percent(None)
        except psutil.NoSuchProcess:
            pass
    return total


_ERROR_LINE = re.compile(r"\b[A-Z]\w*(Error|Exception): ")
_COLOURS = re.compile(r"\x1b\[[0-9;]*m")  # vLLM colours its log levels


def root_cause(log_path: Path) -> str | None:
    """The first error a log reports (later lines are usually its consequences); warnings that quote an
    error (vLLM's "ulimit ... OSError: [Errno 24]" advice) are not one."""
    if not log_path.is_file():
        return None
    with open(log_path, errors="replace") as log:
        for line in log:
            plain = _COLOURS.sub("", line)
            if not re.search(r"\bWARNING\b", plain) and _ERROR_LINE.search(plain):
                return plain.strip()
    return None


def describe_log(log_path: Path, lines: int = 30) -> str:
    """The root cause (when one is found) and the tail of a server log, for error messages."""
    cause = root_cause(log_path)
    head = f"First error: {cause}\n" if cause else ""
    return f"{head}Last lines of {log_path}:\n{log_tail(log_path, lines)}"


def log_tail(log_path: Path, lines: int = 30) -> str:
    """The last lines of a log file, for error messages."""
    if not log_path.is_file():
        return "(no log written)"
    with open(log_path, errors="replace") as log:
        return "".join(deque(log, maxlen=lines))
