"""Pure parts of the dashboard: target addresses scrubbed from errors, bucket alignment, JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, strategies as st

from storage.dashboard import ceil_to, floor_to, scrub_targets
from stream.dashboard.server import dumps


def test_delivery_errors_lose_their_target_addresses():
    err = "delivery failed to json://hook:s3cret@10.0.0.7:8000/finsent, slack://T000/B000/XXXX"
    out = scrub_targets(err)
    assert out == "delivery failed to <target> <target>"
    assert scrub_targets(None) is None and scrub_targets("timeout") == "timeout"


@given(st.from_regex(r"[a-z][a-z0-9+.\-]{0,9}", fullmatch=True),
       st.text(alphabet=st.characters(blacklist_categories=("Zs", "Cc", "Zl", "Zp")), min_size=1, max_size=40),
       st.text(max_size=20))
def test_no_url_survives_scrubbing(scheme, rest, prefix):
    text = f"{prefix} failed: {scheme}://{rest}"
    assert f"{scheme}://{rest}" not in scrub_targets(text)


@given(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)),
       st.sampled_from([timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15), timedelta(hours=1),
                        timedelta(days=1)]))
def test_ranges_widen_to_whole_buckets(ts, width):
    lo, hi = floor_to(ts, width), ceil_to(ts, width)
    assert lo <= ts <= hi and hi - lo in (timedelta(0), width)
    assert floor_to(lo, width) == lo == ceil_to(lo, width)


def test_json_times_are_utc_with_z():
    t = datetime(2025, 3, 13, 15, 7, tzinfo=timezone(timedelta(hours=2)))
    assert json.loads(dumps({"t": t})) == {"t": "2025-03-13T13:07:00Z"}


class _FakeConn:
    def __init__(self) -> None:
        self.closed = 0

    def cursor(self):
        from contextlib import nullcontext

        return nullcontext(object())

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        self.closed = 1


def test_pool_replaces_connections_idle_longer_than_the_server_keeps_them(monkeypatch):
    """The analyst role has idle_session_timeout: an old pooled connection must not be handed out."""
    import stream.dashboard.server as server

    made: list[_FakeConn] = []

    def new(self):
        made.append(_FakeConn())
        return made[-1]

    monkeypatch.setattr(server.ReadPool, "_new", new)
    clock = [1000.0]
    monkeypatch.setattr(server.time, "monotonic", lambda: clock[0])
    pool = server.ReadPool("postgresql://x", "public", size=2)
    with pool.cursor():
        pass
    with pool.cursor():  # reused while fresh
        pass
    assert len(made) == 1
    clock[0] += pool.max_idle_s + 1
    with pool.cursor():
        pass
    assert len(made) == 2 and made[0].closed and not made[1].closed
    assert pool._open == 1
