"""A feed server on 127.0.0.1 for the tests, and a guard that keeps a test on the loopback.

:class:`FeedServer` serves documents by path (query included) with conditional GET (``ETag`` /
``Last-Modified`` -> 304) and misbehaves on demand: any status with headers (429 + ``Retry-After``), a
delay before the answer (a timeout), a body trickled byte by byte, a huge body.  It records every
request (path, headers, monotonic time).

:func:`loopback_only`: while it is active, a socket of this process may connect only to a loopback
address and names other than ``localhost`` are not even looked up (nothing in the tests may reach the
internet, whatever a catalogue says).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = "application/rss+xml; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None  # answer 304 to If-None-Match with it
    last_modified: str | None = None  # answer 304 to If-Modified-Since with it
    delay_s: float = 0.0  # wait before answering
    trickle_s: float = 0.0  # wait between the bytes of the body
    declare_length: bool = True  # send Content-Length


@dataclass(frozen=True)
class Hit:
    path: str
    headers: dict[str, str]
    at: float  # time.monotonic()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a handler still sleeping (a timeout test) does not hold up the test

    def handle_error(self, request, client_address) -> None:  # a client that gave up: not an error here
        pass


class FeedServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: list[Hit] = []
        self._lock = threading.Lock()
        self._httpd: _Server | None = None

    def __enter__(self) -> FeedServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:  # the http.server API
                with server._lock:
                    server.hits.append(Hit(self.path, {k.lower(): v for k, v in self.headers.items()},
                                           time.monotonic()))
                    route = server.routes.get(self.path)
                if route is None:
                    self._answer(404, b"not found", {"Content-Type": "text/plain"})
                    return
                if route.delay_s:
                    time.sleep(route.delay_s)
                cached = {}
                if route.etag:
                    cached["ETag"] = route.etag
                if route.last_modified:
                    cached["Last-Modified"] = route.last_modified
                if (route.etag and self.headers.get("If-None-Match") == route.etag) or (
                        route.last_modified and self.headers.get("If-Modified-Since") == route.last_modified):
                    self._answer(304, b"", cached)
                    return
                self._answer(route.status, route.body, {"Content-Type": route.content_type, **cached,
                                                        **route.headers}, route)

            def _answer(self, status: int, body: bytes, headers: dict[str, str], route: Route | None = None) -> None:
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    if route is None or route.declare_length:
                        self.send_header("Content-Length", str(len(body)))
                    else:
                        self.send_header("Connection", "close")
                    self.end_headers()
                    if route is not None and route.trickle_s:
                        for i in range(len(body)):
                            self.wfile.write(body[i:i + 1])
                            self.wfile.flush()
                            time.sleep(route.trickle_s)
                    elif status != 304:
                        self.wfile.write(body)
                    if route is not None and not route.declare_length:
                        self.close_connection = True
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self._httpd = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._httpd.serve_forever, name="feed-server", daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    @property
    def port(self) -> int:
        assert self._httpd is not None
        return self._httpd.server_address[1]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def serve(self, path: str, body: bytes | str = b"", **route) -> str:
        """Serve ``body`` (and the ``Route`` options) at ``path``; its URL."""
        self.routes[path] = Route(body.encode("utf-8") if isinstance(body, str) else body, **route)
        return self.url(path)

    def requests_to(self, path: str) -> list[Hit]:
        with self._lock:
            return [h for h in self.hits if h.path == path]


_LOCAL_NAMES = {"localhost", "127.0.0.1", "::1", "ip6-localhost"}


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0]).is_loopback
    except ValueError:
        return False


@contextmanager
def loopback_only() -> Iterator[None]:
    """Refuse (AssertionError) any connection of this process to an address off the loopback."""
    real_connect, real_connect_ex, real_getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo

    def check(sock: socket.socket, address) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(str(address[0])):
            raise AssertionError(f"a test tried to connect to {address[0]}: only the loopback is allowed")

    def connect(sock, address):
        check(sock, address)
        return real_connect(sock, address)

    def connect_ex(sock, address):
        check(sock, address)
        return real_connect_ex(sock, address)

    def getaddrinfo(host, *args, **kwargs):
        if host is not None and str(host) not in _LOCAL_NAMES and not _is_loopback(str(host)):
            raise AssertionError(f"a test tried to look up {host}: only the loopback is allowed")
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = connect, connect_ex, getaddrinfo
    try:
        yield
    finally:
        socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = (real_connect, real_connect_ex,
                                                                              real_getaddrinfo)
