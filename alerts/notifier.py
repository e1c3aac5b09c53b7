"""Delivery of stored alerts through apprise: retried, never sent twice.

::

    n = Notifier(settings)        # apprise URLs: settings.alert_urls and/or settings.alert_config
    n.deliver_pending() -> int    # one pass: send what is due, return how many got delivered
    n.run(stop)                   # loop until stop is set; n.wake() makes it look at once

How one alert is delivered (one short transaction per alert):

1. ``SELECT ... WHERE delivery_status = 'pending' AND next_attempt_at <= now()
   ... FOR UPDATE SKIP LOCKED LIMIT 1``: the row stays locked while it is
   being sent, so concurrent notifiers (other workers) skip it;
2. it is sent to every apprise target that routes it (see *Routing*) and that
   has not accepted it yet (``delivered_to`` holds the targets that did, so a
   retry after a partial failure does not repeat it to the others);
3. success everywhere: ``delivered`` (with ``delivered_at``), in the same
   transaction that held the lock; otherwise ``attempts + 1``, ``last_error``
   and ``next_attempt_at = now() + min(retry_max_s, retry_initial_s * 2^(attempts-1))``;
   the next alert is not held up by a failing one.

Remaining at-least-once window: if the process dies (or the database
connection drops) after a target accepted the HTTP request and before the
COMMIT of step 3 -- milliseconds -- the row is still pending after the restart
and that target gets the alert again.  Nothing else can repeat a delivery.
Each message ends with a stable key (``finsent alert ticker/XYZ/<window>/<rule>``)
that a receiver can de-duplicate on; apprise's JSON payload also carries the
title.

Routing (apprise tags): a URL without tags, or tagged ``all``/``always``,
receives every alert.  Otherwise it receives the alerts whose scope matches one
of its tags: the ticker (``aapl``), the topic as a slug (``fed-central-banks``),
or the kind (``ticker``, ``topic``).  Example apprise YAML
(``FINSENT_ALERT_CONFIG`` / ``alert_config`` in finsent.toml)::

    urls:
      - slack://T000/B000/XXXX:
          tag: AAPL, MSFT, NVDA          # the tech desk's watchlist
      - json://risk.example.com/hook     # everything

An alert that no target routes is marked ``unrouted`` (with no URL configured
at all, every alert is); it is stored and listed, never sent later.
"""

from __future__ import annotations

import hashlib
import logging
import os
import select
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import apprise
import psycopg2

from storage import alerts as store
from storage.db import WRITER_ROLE, LazyConnection, PgConnection, RetryPolicy, connect, first_line, retry_call
from stream.base.errors import UserError
from stream.base.labels import slug
from stream.base.redact import redact

if TYPE_CHECKING:
    from stream.base.settings import Settings

log = logging.getLogger("finsent.alerts.notifier")

CATCH_ALL_TAGS = frozenset({"all", "always"})
# a database error in the loop: start the next round on fresh connections after 1, 2, 4 ... 30 s
LOOP_RETRY = RetryPolicy(initial_s=1.0, max_s=30.0)


def alert_tags(scope_kind: str, scope: str) -> frozenset[str]:
    """The apprise tags that route an alert of this scope."""
    tags = {scope_kind}
    if scope_kind == "ticker":
        tags.add(scope.lower())
    elif scope_kind == "topic":
        tags.add(slug(scope))
    return frozenset(tags)


class AppriseService(Protocol):
    """What finsent uses of an apprise plugin (``apprise.plugins.NotifyBase``)."""

    tags: Any  # the plugin's tags (a set of strings, or None)

    def notify(self, body: str, title: str | None = None, notify_type: apprise.NotifyType = ...,
               body_format: apprise.NotifyFormat | None = None) -> bool: ...

    def url(self, privacy: bool = False) -> str: ...


@dataclass(frozen=True)
class Target:
    key: str  # stable id (hash of the full URL; never the secret itself)
    label: str  # URL with secrets hidden, for logs and reports
    tags: frozenset[str]
    service: AppriseService

    def routes(self, scope_kind: str, scope: str) -> bool:
        if not self.tags or self.tags & CATCH_ALL_TAGS:
            return True
        return bool(self.tags & alert_tags(scope_kind, scope))

    def send(self, title: str, body: str, notify_type: str = "warning") -> bool:
        try:
            return bool(
                self.service.notify(
                    body=body, title=title, notify_type=apprise.NotifyType(notify_type),
                    body_format=apprise.NotifyFormat.TEXT,
                )
            )
        except Exception as exc:  # noqa: BLE001 - a plugin bug must not kill the notifier
            log.warning("apprise target %s raised %s: %s", self.label, type(exc).__name__, exc)
            return False


def load_targets(settings: Settings) -> list[Target]:
    """Every apprise service of ``alert_urls`` and ``alert_config``; UserError on a bad one."""
    ap = apprise.Apprise()
    for secret in settings.alert_urls:
        if not ap.add(secret.get_secret_value()):
            raise UserError(f"not a valid apprise URL: {redact(secret.get_secret_value())} "
                            "(see https://github.com/caronc/apprise/wiki)")
    if settings.alert_config:
        path = Path(settings.alert_config).expanduser()
        if not path.is_file():
            raise UserError(f"apprise config file not found: {path}")
        cfg = apprise.AppriseConfig()
        if not cfg.add(str(path.resolve())):
            raise UserError(f"cannot read apprise config {path}")
        before = len(ap)
        ap.add(cfg)
        if len(ap) == before:
            raise UserError(f"apprise config {path} defines no valid URL")
    out = []
    services: list[AppriseService] = list(ap.find(tag=apprise.common.MATCH_ALL_TAG))
    for svc in services:
        full = svc.url(privacy=False)
        key = hashlib.sha256(full.encode("utf-8")).hexdigest()[:16]
        tags = frozenset(str(t).lower() for t in (svc.tags or ()))
        out.append(Target(key, target_label(svc.url(privacy=True), key), tags, svc))
    return out


def target_label(private_url: str, key: str) -> str:
    """What logs, errors and the alerts table show of a target: apprise's privacy URL cut to
    scheme and host (paths and query strings may hold tokens: json://host/<token>,
    ``?-X-Api-Key=...`` headers, which the privacy URL keeps), plus the target's key."""
    try:
        parts = urlsplit(private_url)
        label = f"{parts.scheme}://{parts.netloc}"
        if parts.path.strip("/") or parts.query:
            label += "/..."
    except ValueError:
        label = "<target>"
    return f"{label} #{key[:8]}"


def backoff_s(attempts: int, initial: float, maximum: float) -> float:
    """Delay before the next try after ``attempts`` failed ones (1, 2, 4, ... capped): the alert's
    delivery schedule, stored in ``next_attempt_at`` (the same doubling as storage's retries)."""
    return RetryPolicy(initial_s=initial, max_s=maximum).delay(attempts)


class Notifier:
    """Sends pending alerts of ``settings.schema``; see the module docstring."""

    def __init__(self, settings: Settings, *, role: str | None = WRITER_ROLE, targets: list[Target] | None = None):
        self.settings = settings
        self.schema = settings.schema
        self.a = settings.alerts
        self.role = role
        self.targets = load_targets(settings) if targets is None else targets
        self._db = LazyConnection(
            lambda: connect(self.settings.dsn, self.schema, role=self.role, application_name="finsent-notifier")
        )
        self._listen = LazyConnection(self._open_listen)
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)
        self.sent = 0  # successful target deliveries by this instance (tests, metrics)
        self._running: tuple[threading.Thread, threading.Event] | None = None  # start()'s thread

    # -- connections -------------------------------------------------------------
    def _open_listen(self) -> PgConnection:
        conn = connect(self.settings.dsn, self.schema, autocommit=True, application_name="finsent-notifier-listen")
        try:
            with conn.cursor() as cur:
                store.listen(cur)
        except BaseException:
            conn.close()
            raise
        return conn

    def close(self) -> None:
        self._db.close()
        self._listen.close()

    def __del__(self) -> None:
        for fd in (getattr(self, "_r", None), getattr(self, "_w", None)):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass

    # -- delivery ------------------------------------------------------------------
    def wake(self) -> None:
        """Look at the alerts table now (thread-safe, cheap)."""
        try:
            os.write(self._w, b"x")
        except BlockingIOError:
            pass

    def deliver_pending(self, limit: int | None = None) -> int:
        """Try every due pending alert once; return how many became delivered."""
        delivered = 0
        tried = 0
        while limit is None or tried < limit:
            outcome = self._deliver_one()
            if outcome is None:
                break
            tried += 1
            delivered += outcome
        return delivered

    def _deliver_one(self) -> int | None:
        """One alert: None when nothing is due, else 1 if it got delivered, 0 if not."""
        conn = self._db.get()
        try:
            with conn.cursor() as cur:
                due = store.lock_next_due(cur)
                if due is None:
                    conn.rollback()
                    return None
                alert_id, kind, scope, title, message = due.id, due.scope_kind, due.scope, due.title, due.message
                attempts, done = due.attempts, due.delivered_to
                routed = [t for t in self.targets if t.routes(kind, scope)]
                if not routed:
                    why = "no apprise URL configured" if not self.targets else "no apprise URL routes this scope"
                    store.mark_unrouted(cur, alert_id, why)
                    conn.commit()
                    log.info("alert %s (%s %s) not sent: %s", alert_id, kind, scope, why)
                    return 0
                errors = []
                for t in routed:
                    if t.key in done:
                        continue
                    if t.send(title, message):
                        done.append(t.key)
                        self.sent += 1
                    else:
                        errors.append(t.label)
                attempts += 1
                if not errors:
                    store.mark_delivered(cur, alert_id, attempts, done)
                    conn.commit()
                    log.info("alert %s delivered: %s (%d target(s), attempt %d)", alert_id, title, len(routed), attempts)
                    return 1
                delay = backoff_s(attempts, self.a.retry_initial_s, self.a.retry_max_s)
                err = "delivery failed to " + ", ".join(errors)
                store.schedule_retry(cur, alert_id, attempts, done, err, delay)
                conn.commit()
                log.warning("alert %s: %s (attempt %d); next try in %.1fs", alert_id, err, attempts, delay)
                return 0
        except psycopg2.Error:
            try:
                conn.rollback()
            except psycopg2.Error:
                pass
            raise

    def seconds_until_due(self) -> float | None:
        """Seconds until the earliest pending alert is due (<= 0: now); None if none."""
        conn = self._db.get()
        with conn.cursor() as cur:
            due = store.seconds_until_due(cur)
        conn.rollback()
        return due

    # -- the loop --------------------------------------------------------------------
    def _wait(self, timeout: float) -> None:
        listen = self._listen.get()
        rlist = [self._r, listen]
        ready, _, _ = select.select(rlist, [], [], max(0.0, timeout))
        if self._r in ready:
            try:
                while os.read(self._r, 4096):
                    pass
            except BlockingIOError:
                pass
        if listen in ready:
            listen.poll()
            listen.notifies.clear()

    def run(self, stop: threading.Event) -> None:
        """Deliver until ``stop`` is set (call :meth:`wake` after setting it to stop at once)."""
        log.info(
            "notifier: %d apprise target(s) for schema %s%s",
            len(self.targets), self.schema,
            "" if self.targets else " (alerts will be marked unrouted)",
        )

        def one_round() -> None:
            if stop.is_set():
                return
            self.deliver_pending()
            due = self.seconds_until_due()
            timeout = self.a.poll_s if due is None else min(self.a.poll_s, max(due, 0.0) + 0.01)
            if not stop.is_set():
                self._wait(timeout)

        def on_retry(exc: BaseException, attempt: int, delay: float) -> None:
            log.warning("notifier: database error (%s); retrying in %.1fs", first_line(exc), delay)
            self.close()  # whatever failed, start the next round on fresh connections

        while not stop.is_set():
            retry_call(one_round, policy=LOOP_RETRY, retryable=lambda e: isinstance(e, psycopg2.Error),
                       on_retry=on_retry, give_up=lambda exc, attempts, elapsed: None, stop_event=stop,
                       sleep=stop.wait)
        self.close()

    def start(self) -> tuple[threading.Thread, threading.Event]:
        """Run in a daemon thread (the worker's, or a benchmark's); returns (thread, stop event).
        :meth:`stop` ends it."""
        stop = threading.Event()
        t = threading.Thread(target=self.run, args=(stop,), name="finsent-notifier", daemon=True)
        t.start()
        self._running = (t, stop)
        return t, stop

    def stop(self, timeout: float = 10.0) -> None:
        """End the thread :meth:`start` started: set its stop event, wake it, wait up to ``timeout`` s."""
        if self._running is None:
            return
        t, stop = self._running
        self._running = None
        stop.set()
        self.wake()
        t.join(timeout=timeout)


def send_test(settings: Settings) -> list[tuple[str, bool]]:
    """Send a test notification to every configured target: [(label, ok)]."""
    targets = load_targets(settings)
    if not targets:
        raise UserError(
            "no apprise URL configured: set FINSENT_ALERT_URLS (comma-separated apprise URLs) "
            "or alert_urls / alert_config in finsent.toml"
        )
    body = (
        "This is a test notification from finsent. Spike alerts will look like this:\n"
        "title 'Negative news spike: TICKER', then the counts, the baseline, the z-score and the top "
        f"three negative headlines with links.\nSent from {socket.gethostname()}, schema {settings.schema}."
    )
    return [(t.label, t.send("finsent test notification", body, "info")) for t in targets]
