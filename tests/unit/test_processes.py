import socket
import sys

import psutil
import pytest

from helpers import processes
from helpers.errors import PortInUseError


def test_a_taken_port_gets_a_clear_error():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert not processes.port_is_free(port)
        with pytest.raises(PortInUseError, match=f"port {port} on 127.0.0.1 is already taken"):
            processes.claim_port(port)


def test_a_free_port_is_chosen_when_none_is_given():
    port = processes.claim_port(None)
    assert processes.port_is_free(port)


def test_stop_ends_the_process_and_its_children(tmp_path):
    script = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"
    handle = processes.start([sys.executable, "-c", script], tmp_path / "p.log")
    proc = handle.process()
    deadline = __import__("time").time() + 10
    while not proc.children() and __import__("time").time() < deadline:
        pass
    children = proc.children(recursive=True)
    assert children, "the test process should have started a child"
    assert processes.stop(handle) is True
    assert not handle.is_alive()
    assert not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children)
    assert processes.stop(handle) is False  # stopping twice is harmless


def test_a_recycled_pid_is_never_ours(tmp_path):
    handle = processes.start([sys.executable, "-c", "import time; time.sleep(30)"], tmp_path / "p.log")
    try:
        impostor = processes.ProcessHandle(handle.pid, handle.create_time - 100)
        assert impostor.process() is None and processes.stop(impostor) is False
        assert handle.is_alive()
    finally:
        processes.stop(handle)


def test_log_tail(tmp_path):
    log = tmp_path / "server.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert processes.log_tail(log, 3) == "line 97\nline 98\nline 99\n"
    assert processes.log_tail(tmp_path / "missing.log") == "(no log written)"


def test_the_first_error_of_a_log_is_its_root_cause(tmp_path):
    log = tmp_path / "vllm.log"
    log.write_text(
        "(APIServer) WARNING fd limit errors like `OSError: [Errno 24] Too many open files`\n"
        "(Worker) ERROR RuntimeError: int8_scaled_mm_with_quant: expect A to be bfloat16 or half.\n"
        "(APIServer) ERROR vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue.\n"
    )
    assert processes.root_cause(log).endswith("RuntimeError: int8_scaled_mm_with_quant: expect A to be bfloat16 or half.")
    assert processes.describe_log(log).startswith("First error: (Worker) ERROR RuntimeError")
    assert processes.root_cause(tmp_path / "none.log") is None


def test_a_coloured_warning_that_quotes_an_error_is_not_the_root_cause(tmp_path):
    """vLLM's log as it is written: levels in ANSI colours (a Lab 0 start failure was reported by this warning)."""
    log = tmp_path / "vllm.log"
    log.write_text(
        "\x1b[0;36m(APIServer pid=1)\x1b[0;0m \x1b[33mWARNING\x1b[0m \x1b[90m11-24 13:39:54\x1b[0m Found ulimit of 20000 "
        "... This can cause fd limit errors like `OSError: [Errno 24] Too many open files`.\n"
        "\x1b[0;36m(Worker pid=2)\x1b[0;0m \x1b[31mERROR\x1b[0m ValueError: not enough memory for the KV cache\n"
    )
    assert processes.root_cause(log) == "(Worker pid=2) ERROR ValueError: not enough memory for the KV cache"


def test_a_record_finds_its_live_server_and_stop_recorded_forgets_it(tmp_path):
    record = tmp_path / "run" / "server.json"
    handle = processes.start([sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "s.log")
    try:
        processes.write_record(record, handle, port=1234)
        assert processes.live_record(record) == {"pid": handle.pid, "create_time": handle.create_time, "port": 1234}
        assert processes.wait_until(handle, lambda: True, timeout_s=5) == "ready"
        assert processes.wait_until(handle, lambda: False, timeout_s=0.3, interval_s=0.1) == "timeout"
        assert processes.stop_recorded(record) is True
        assert not record.exists() and processes.live_record(record) is None
        assert processes.wait_until(handle, lambda: True, timeout_s=1) == "exited"
        assert processes.stop_recorded(record) is False
    finally:
        processes.stop(handle)
