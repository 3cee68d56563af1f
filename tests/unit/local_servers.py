"""Real servers on 127.0.0.1 standing in for a cluster's endpoints in unit tests (a port-forward's far end)."""
from __future__ import annotations

import contextlib
import socketserver
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def serving(server: socketserver.BaseServer) -> Iterator[int]:
    """Serve ``server`` in a thread; yields its port; shuts it down afterwards, even when the test fails."""
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
