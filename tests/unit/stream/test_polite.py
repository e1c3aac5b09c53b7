"""Polite polling (stream/sources/polite.py): Retry-After in both forms (hypothesis), the per-feed schedule
with jitter and backoff, the per-host rate limit."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from itertools import pairwise

import pytest
from hypothesis import given, strategies as st

from stream.sources.polite import MAX_RETRY_AFTER_S, HostLimiter, Schedule, host_of, parse_retry_after

NOW = datetime(2024, 8, 1, 20, 0, tzinfo=UTC)


@pytest.mark.parametrize("value, seconds", [
    ("120", 120.0), (" 0 ", 0.0), ("86400", 86400.0), ("999999999", MAX_RETRY_AFTER_S),
    ("Thu, 01 Aug 2024 20:02:00 GMT", 120.0),  # an HTTP-date: from now
    ("Thu, 01 Aug 2024 19:00:00 GMT", 0.0),  # already past: now
    (None, None), ("", None), ("soon", None), ("-5", None), ("1.5", None), ("١٢٠", None),  # Arabic-Indic digits
])
def test_retry_after_seconds_or_http_date(value, seconds):
    assert parse_retry_after(value, NOW) == seconds


@given(st.text(max_size=60))
def test_retry_after_of_any_text_is_none_or_a_bounded_wait(text):
    got = parse_retry_after(text, NOW)
    assert got is None or 0.0 <= got <= MAX_RETRY_AFTER_S


@given(st.integers(min_value=0, max_value=10**15))
def test_retry_after_delay_seconds(n):
    assert parse_retry_after(str(n), NOW) == min(float(n), MAX_RETRY_AFTER_S)


@given(st.integers(min_value=-10**6, max_value=10**6))
def test_retry_after_http_date_is_the_time_until_it(delta):
    when = NOW + timedelta(seconds=delta)
    assert parse_retry_after(format_datetime(when, usegmt=True), NOW) == min(max(0.0, float(delta)), MAX_RETRY_AFTER_S)


def test_schedule_after_success_is_the_interval_with_jitter():
    s = Schedule(100.0, jitter=0.1, rng=random.Random(1))
    waits = [s.after_success(1000.0) - 1000.0 for _ in range(500)]
    assert all(90.0 <= w <= 110.0 for w in waits)
    assert max(waits) - min(waits) > 10  # really spread: feeds do not poll in step
    assert Schedule(100.0, jitter=0.0).after_success(5.0) == 105.0


def test_backoff_doubles_from_the_interval_up_to_the_cap():
    s = Schedule(60.0, jitter=0.0, backoff_max_s=600.0)
    assert [s.backoff(n) for n in range(1, 7)] == [60, 120, 240, 480, 600, 600]
    assert [s.after_failure(0.0, n) for n in (1, 2)] == [60.0, 120.0]
    assert Schedule(900.0, backoff_max_s=600.0, jitter=0.0).backoff(3) == 900  # never below the interval


def test_a_failure_waits_at_least_what_retry_after_says():
    s = Schedule(60.0, jitter=0.2, backoff_max_s=3600.0, rng=random.Random(2))
    assert s.after_failure(0.0, 1, retry_after=1800.0) == 1800.0  # the server's wait beats the backoff
    assert 60.0 <= s.after_failure(0.0, 1, retry_after=5.0) <= 72.0  # the backoff beats a short one
    assert s.after_failure(0.0, 1, retry_after=10**9) == MAX_RETRY_AFTER_S


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.slept.append(round(s, 6))
        self.t += s


def test_host_limiter_spaces_requests_to_one_host():
    clock = FakeClock()
    limiter = HostLimiter(lambda h: 10.0 if h == "www.sec.gov" else 1.0, clock=clock, sleep=clock.sleep)
    edgar = "https://www.sec.gov/cgi-bin/browse-edgar?action=getcurrent&type=8-K"
    for _ in range(3):
        limiter.wait(edgar)
    assert clock.slept == [0.1, 0.1]  # EDGAR: 10 requests per second, no more
    limiter.wait("https://www.prnewswire.com/rss/news-releases-list.rss")  # another host: no wait
    assert clock.slept == [0.1, 0.1]
    limiter.wait("https://www.prnewswire.com/rss/other.rss")  # the same host again: one second
    assert clock.slept == [0.1, 0.1, 1.0]
    clock.t += 5  # time passed: a free slot
    limiter.wait(edgar)
    assert clock.slept == [0.1, 0.1, 1.0]
    assert limiter.wait("/tmp/feed.xml") == 0.0 and host_of("/tmp/feed.xml") == ""


@given(st.lists(st.floats(min_value=0, max_value=3), max_size=30), st.floats(min_value=0.5, max_value=20))
def test_host_limiter_never_exceeds_the_rate(gaps, rate):
    clock = FakeClock()
    limiter = HostLimiter(lambda h: rate, clock=clock, sleep=clock.sleep)
    starts = []
    for gap in gaps:
        clock.t += gap
        limiter.wait("http://127.0.0.1:9/x")
        starts.append(clock.t)
    assert all(b - a >= 1 / rate - 1e-9 for a, b in pairwise(starts))
