"""Serving an ASGI app on a real loopback port for tests, benchmarks and `trackpulse demo`.

`serve_in_thread(app)` binds 127.0.0.1 on a free port, runs uvicorn in a daemon thread and yields
the base URL; leaving the context stops the server and joins the thread. Clients then talk to the
simulators over real HTTP, exactly as they would to the trackers.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


class SimulatorStartError(RuntimeError):
    """The simulator's server thread did not come up."""


class BackgroundServer:
    """A uvicorn server on an already-bound socket, run in a thread."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit this on Linux. Without it, uvicorn's separate header and body
        # writes meet Nagle plus the client's delayed ACK: ~40 ms per request on loopback.
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.bind((host, port))
        self.host, self.port = self._sock.getsockname()[:2]
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._sock]},
            daemon=True,
            name=f"sim-server-{self.port}",
        )

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> str:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise SimulatorStartError(f"simulator server on {self.base_url} did not start")
            time.sleep(0.005)
        return self.base_url

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        self._sock.close()


@contextmanager
def serve_in_thread(app: Any, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Run `app` on `host`:`port` (0 = a free port) and yield its base URL, e.g. http://127.0.0.1:51234."""
    server = BackgroundServer(app, host, port)
    try:
        yield server.start()
    finally:
        server.stop()
