"""uvicorn serving the dashboard's app on 127.0.0.1: in the foreground (``finsent dashboard``) or in a
thread on a free port (the dashboard's tests, its README screenshot, its page-load benchmark)."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from stream.dashboard import HOST


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def uvicorn_server(app, port: int, grace_s: float = 3) -> uvicorn.Server:
    """The one uvicorn set-up of the dashboard: 127.0.0.1, warnings only, no access log, lifespan on."""
    config = uvicorn.Config(app, host=HOST, port=port, log_level="warning", access_log=False,
                            timeout_graceful_shutdown=grace_s, lifespan="on")
    return uvicorn.Server(config)


class ServerThread:
    """uvicorn serving an app on 127.0.0.1:<free port> in a thread, as ``finsent dashboard`` does."""

    def __init__(self, app):
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.server = uvicorn_server(app, self.port, grace_s=2)
        self.thread = threading.Thread(target=self.server.run, name="dashboard-test-server", daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the dashboard server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
