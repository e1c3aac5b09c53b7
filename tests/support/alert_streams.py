"""Helpers shared by the alert tests and the benchmarks (not used at run time).

* :func:`article_rows`: generated messages (with ``truth``) -> ``storage.writer.ArticleRow``
  scored by the generator's ground truth, so database tests need no model.
* :class:`Receiver`: a real HTTP endpoint on 127.0.0.1 that records what apprise's
  ``json://`` URLs post to it (``free_port`` is the dashboard's, re-exported here).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from alerts.service import AlertService
from storage.writer import ArticleRow, Writer
from stream.dashboard.serve import free_port


def article_rows(messages: Iterable[dict], model_version: str = "ground-truth"):
    """ArticleRows scored with the generator's truth (p_negative varies a little, deterministically, by id)."""
    out = []
    for m in messages:
        truth = m["truth"]
        jitter = int(hashlib.sha1(m["id"].encode()).hexdigest()[:4], 16) / 0xFFFF * 0.09
        p = _probs(truth["sentiment"], jitter)
        # a rivalry's truth has a sentiment per ticker (generate.Rivalry): the entity head's, as if perfect
        per_ticker = {t: dict(zip(("p_negative", "p_neutral", "p_positive"), q), sentiment=s, source="entity",
                              sentiment_score=q[2] - q[0])
                      for t, s in (truth.get("ticker_sentiment") or {}).items() for q in [_probs(s, jitter)]} or None
        out.append(ArticleRow(
            id=m["id"],
            published_at=datetime.fromisoformat(m["published_at"].replace("Z", "+00:00")),
            source=m.get("source"), url=m.get("url"), title=m["title"], tickers=list(m.get("tickers") or []),
            topic=truth["topic"], topic_score=0.9, sentiment=truth["sentiment"],
            p_negative=p[0], p_neutral=p[1], p_positive=p[2], sentiment_score=p[2] - p[0],
            model_version=model_version, extra={}, ticker_sentiment=per_ticker,
        ))
    return out


def _probs(sentiment: str, jitter: float) -> tuple[float, float, float]:
    if sentiment == "negative":
        return 0.9 + jitter, 0.07 - jitter * 0.5, 0.03 - jitter * 0.5
    if sentiment == "positive":
        return 0.03, 0.07, 0.9
    return 0.05, 0.9, 0.05


class Receiver:
    """Records POSTs: ``requests`` = [(path, parsed JSON, perf_counter time, wall time)].

    ``status`` is the HTTP status it answers (set 500 to make deliveries fail).
    """

    def __init__(self, port: int | None = None, status: int = 200):
        self.port = port or free_port()
        self.status = status
        self.requests: list[tuple[str, dict, float, float]] = []
        self.accepted: list[tuple[str, dict, float, float]] = []
        self._cond = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}"

    def start(self) -> Receiver:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # the http.server API
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                t, wall = time.perf_counter(), time.time()
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"_raw": raw.decode("utf-8", "replace")}
                status = outer.status
                with outer._cond:
                    outer.requests.append((self.path, body, t, wall))
                    if 200 <= status < 300:
                        outer.accepted.append((self.path, body, t, wall))
                    outer._cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):  # quiet
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_for(self, n: int, timeout: float) -> bool:
        """Wait until ``n`` requests were accepted (2xx)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.accepted) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def event_time(m: dict) -> datetime:
    return datetime.fromisoformat(m["published_at"].replace("Z", "+00:00"))


def store_and_observe(settings, messages, *, batch: int = 300, replay: bool = False, notify: bool = True,
                      source: str = "p0", restart_every: int | None = None, writer=None):
    """Write generated messages batch by batch (ground-truth scores) and call ``observe`` after each,
    as the worker does; ``restart_every``: a fresh AlertService every N batches.  Returns the new alerts."""
    msgs = list(messages)
    own_writer = writer is None
    writer = writer or Writer(settings.dsn, settings.schema)
    svc = AlertService(settings)
    out = []
    try:
        for k, i in enumerate(range(0, len(msgs), batch)):
            if restart_every and k and k % restart_every == 0:
                svc.close()
                svc = AlertService(settings)
            chunk = msgs[i:i + batch]
            writer.write_batch(article_rows(chunk))
            out += svc.observe({source: max(event_time(m) for m in chunk)}, replay=replay, notify=notify)
    finally:
        svc.close()
        if own_writer:
            writer.close()
    return out
