"""One feed request: a conditional GET with a User-Agent, timeouts and a size cap (``requests``).

:func:`fetch` returns the document (200) or "not modified" (304), or raises :class:`FetchError` with a
short stable ``reason`` (``timeout``, ``too_large``, ``http_429``, ``http_503``, ``http_404``,
``connection``, ``missing``, ...) and, for 429 and 503, the server's ``Retry-After`` in seconds.  A
path or ``file://`` URL is read from disk (the same size cap), as ``finsent ingest rss FILE`` always did.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import requests
import urllib3

from stream.sources.polite import parse_retry_after

CHUNK = 65536


@dataclass(frozen=True)
class Fetched:
    status: int  # 200, or 304 (not modified: body empty)
    body: bytes = b""
    etag: str | None = None
    modified: str | None = None  # Last-Modified, sent back as If-Modified-Since


class FetchError(Exception):
    """A failed request: ``reason`` is a short stable code, the message says more."""

    def __init__(self, reason: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.retry_after = retry_after


def is_remote(url: str) -> bool:
    return urlsplit(url).scheme.lower() in ("http", "https")


def fetch(url: str, *, user_agent: str, timeout_s: float, max_bytes: int, etag: str | None = None,
          modified: str | None = None, session: requests.Session | None = None) -> Fetched:
    """GET ``url`` (conditional on ``etag`` / ``modified``), at most ``max_bytes``, within ``timeout_s``
    (to connect, for each read, and for the whole download)."""
    if not is_remote(url):
        return _read_file(url, max_bytes)
    headers = {"User-Agent": user_agent, "Accept": "application/atom+xml, application/rss+xml, application/xml, "
                                                   "text/xml;q=0.9, */*;q=0.5",
               "Accept-Encoding": "gzip, deflate"}
    if etag:
        headers["If-None-Match"] = etag
    if modified:
        headers["If-Modified-Since"] = modified
    started = time.monotonic()
    get = (session or requests).get
    try:
        with get(url, headers=headers, timeout=(timeout_s, timeout_s), stream=True) as resp:
            if resp.status_code == 304:
                return Fetched(304, etag=resp.headers.get("ETag") or etag,
                               modified=resp.headers.get("Last-Modified") or modified)
            if resp.status_code in (429, 503):
                wait = parse_retry_after(resp.headers.get("Retry-After"))
                raise FetchError(f"http_{resp.status_code}", f"HTTP {resp.status_code} {resp.reason or ''}".strip()
                                 + (f", Retry-After {wait:.0f} s" if wait is not None else ""), wait)
            if resp.status_code >= 400:
                raise FetchError(f"http_{resp.status_code}", f"HTTP {resp.status_code} {resp.reason or ''}".strip())
            declared = resp.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise FetchError("too_large", f"the document is {int(declared)} bytes (at most {max_bytes})")
            body = bytearray()
            # read1: whatever has arrived (decompressed), so a server that trickles bytes meets the deadline
            while chunk := resp.raw.read1(CHUNK, decode_content=True):
                body += chunk
                if len(body) > max_bytes:
                    raise FetchError("too_large", f"the document is larger than {max_bytes} bytes")
                if time.monotonic() - started > timeout_s:
                    raise FetchError("timeout", f"the download took longer than {timeout_s:g} s")
            return Fetched(200, bytes(body), resp.headers.get("ETag"), resp.headers.get("Last-Modified"))
    except (requests.Timeout, urllib3.exceptions.TimeoutError):
        raise FetchError("timeout", f"no answer within {timeout_s:g} s") from None
    except (requests.exceptions.ContentDecodingError, urllib3.exceptions.DecodeError) as exc:
        raise FetchError("bad_encoding", f"cannot decode the response: {_first(exc)}") from None
    except (requests.ConnectionError, urllib3.exceptions.ProtocolError) as exc:
        raise FetchError("connection", f"cannot connect: {_first(exc)}") from None
    except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
        raise FetchError("request", _first(exc)) from None


def _read_file(url: str, max_bytes: int) -> Fetched:
    path = Path(unquote(urlsplit(url).path)) if url.lower().startswith("file://") else Path(url)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise FetchError("too_large", f"{path} is {size} bytes (at most {max_bytes})")
        return Fetched(200, path.read_bytes())
    except FileNotFoundError:
        raise FetchError("missing", f"no such file: {path}") from None
    except OSError as exc:
        raise FetchError("unreadable", f"{path}: {exc.strerror or exc}") from None


def _first(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
