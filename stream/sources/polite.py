"""Polite polling: when a feed is polled next, and how often one host is asked.

* :func:`parse_retry_after`: an HTTP ``Retry-After`` value (seconds or an HTTP date) in seconds;
* :class:`Schedule`: a feed's next poll: its interval with jitter after a success; after failures
  the project's one backoff rule (``storage.db.RetryPolicy``: the interval, doubling, at most
  ``feeds.backoff_max_s``), never earlier than a ``Retry-After``;
* :class:`HostLimiter`: at most N requests per second to one host (SEC EDGAR publishes 10).

Pure apart from the clock and ``sleep`` they are given.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from storage.db import RetryPolicy

MAX_RETRY_AFTER_S = 86400.0  # a longer Retry-After is read as a day


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait by a ``Retry-After`` header (RFC 9110: delay-seconds or an HTTP-date), from 0 to
    :data:`MAX_RETRY_AFTER_S`; None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return min(float(text[:12]), MAX_RETRY_AFTER_S)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # an HTTP-date is GMT
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    try:
        delay = (when - now).total_seconds()
    except OverflowError:
        return None
    return min(max(delay, 0.0), MAX_RETRY_AFTER_S)


@dataclass
class Schedule:
    """When one feed is polled next (times in seconds, on the caller's clock)."""

    interval_s: float
    jitter: float = 0.1  # share of the interval added or taken at random
    backoff_max_s: float = 3600.0
    rng: random.Random = field(default_factory=random.Random)

    def after_success(self, now: float) -> float:
        return now + self.interval_s * (1.0 + self.rng.uniform(-self.jitter, self.jitter))

    def backoff(self, failures: int) -> float:
        """The wait after ``failures`` consecutive failures (1, 2, ...): the interval, doubling, capped."""
        policy = RetryPolicy(initial_s=self.interval_s, max_s=max(self.backoff_max_s, self.interval_s))
        return policy.delay(failures)

    def after_failure(self, now: float, failures: int, retry_after: float | None = None) -> float:
        """The backoff (plus up to ``jitter`` of it, so failing feeds do not retry in step), and never
        before the server's ``Retry-After``."""
        wait = self.backoff(failures) * (1.0 + self.rng.uniform(0.0, self.jitter))
        return now + max(wait, min(retry_after or 0.0, MAX_RETRY_AFTER_S))


def host_of(url: str) -> str:
    """The host a request to ``url`` goes to ("" for a local file)."""
    return (urlsplit(url).hostname or "").lower() if "://" in url else ""


class HostLimiter:
    """At most ``rate_of(host)`` requests per second to each host: :meth:`wait` sleeps until the host's
    next free slot, then takes it."""

    def __init__(self, rate_of: Callable[[str], float], *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], object] = time.sleep) -> None:
        self.rate_of = rate_of
        self.clock = clock
        self.sleep = sleep
        self._next: dict[str, float] = {}

    def wait(self, url: str) -> float:
        """Sleep as long as the host of ``url`` needs; the seconds slept (0 for a local file)."""
        host = host_of(url)
        if not host:
            return 0.0
        now = self.clock()
        slot = max(now, self._next.get(host, now))
        delay = slot - now
        if delay > 0:
            self.sleep(delay)
        self._next[host] = slot + 1.0 / self.rate_of(host)
        return delay
