"""The dashboard's request parameters: any input is either accepted within bounds or a ParamError."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings, strategies as st

from stream.dashboard import params as P

NOW = datetime(2026, 5, 4, 12, 30, tzinfo=UTC)
KEYS = ("kind", "scope", "range", "since", "until", "bucket", "limit", "sentiment", "order", "after", "prefix", "x")
VALUES = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["1h", "1d", "7d", "30d", "99d", "ticker", "topic", "all", "$aapl", "AAPL", "minute", "day",
                     "2026-05-01", "2026-05-04T09:30:00Z", "2026-05-04T09:30:00+02:00", "1e9", "-1", "0", "500",
                     "9999-12-31", "0001-01-01T00:00:00", "2026-13-01", " 5", "auto", "5min"]),
)


def test_ranges_and_defaults():
    r = P.time_range({}, NOW)
    assert (r.since, r.until) == (NOW - timedelta(days=1), NOW)
    r = P.time_range({"range": "1h", "until": "2026-05-01T10:00:00Z"}, NOW)
    assert r.since == datetime(2026, 5, 1, 9, tzinfo=UTC)
    r = P.time_range({"since": "2026-05-01", "until": "2026-05-02T00:00:00+02:00"}, NOW)
    assert r.since == datetime(2026, 5, 1, tzinfo=UTC)
    assert r.until == datetime(2026, 5, 1, 22, tzinfo=UTC)  # offsets become UTC


@pytest.mark.parametrize("query, message", [
    ({"range": "2w"}, "range: must be one of"),
    ({"range": "1d", "since": "2026-05-01"}, "either range or since"),
    ({"since": "yesterday"}, "not an ISO 8601"),
    ({"since": "2026-05-02", "until": "2026-05-01"}, "until must be after since"),
    ({"since": "2024-01-01", "until": "2026-01-01"}, "more than 400 days"),
    ({"since": "1800-01-01"}, "out of range"),
])
def test_bad_ranges_say_why(query, message):
    with pytest.raises(P.ParamError, match=message):
        P.time_range(query, NOW)


def test_scopes_are_normalized_and_checked():
    assert P.scope_param({"kind": "ticker", "scope": " $aapl "}) == ("ticker", "AAPL")
    assert P.scope_param({"kind": "topic", "scope": "Fed, Central Banks"}) == ("topic", "Fed, Central Banks")
    assert P.scope_param({}) == ("all", "all")
    for bad in ({"kind": "ticker"}, {"kind": "ticker", "scope": "A'; DROP TABLE x"}, {"kind": "sector", "scope": "x"},
                {"kind": "topic", "scope": "x" * 81}):
        with pytest.raises(P.ParamError):
            P.scope_param(bad)


def test_unknown_parameters_and_control_characters_are_rejected():
    with pytest.raises(P.ParamError, match="unknown parameter"):
        P.check_known({"kind": "all", "limt": "5"}, ("kind", "limit"))
    with pytest.raises(P.ParamError, match="control characters"):
        P.check_known({"scope": "a\x00b"}, ("scope",))


def test_bucket_bounds_the_number_of_points():
    r = P.time_range({"range": "30d"}, NOW)
    assert P.bucket_param({}, r)[0] == "day"
    assert P.bucket_param({"bucket": "hour"}, r)[1] == timedelta(hours=1)
    with pytest.raises(P.ParamError, match="more than 5000 points"):
        P.bucket_param({"bucket": "minute"}, r)


def test_limits_and_ids():
    assert P.int_param({"limit": "20"}, "limit", 5, 1, 100) == 20
    for bad in ("0", "101", "ten", "1.5", ""):
        with pytest.raises(P.ParamError):
            P.int_param({"limit": bad}, "limit", 5, 1, 100)
    assert P.positive_id("42") == 42
    for bad in ("0", "-3", "x", str(2**63)):
        with pytest.raises(P.ParamError):
            P.positive_id(bad)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=6))
def test_any_query_is_either_valid_within_bounds_or_a_param_error(query):
    """What the API endpoints do with a query string: never another exception, never an unbounded result."""
    try:
        P.check_known(query, KEYS[:-1])
        kind, scope = P.scope_param(query, required=False)
        rng = P.time_range(query, NOW)
        bucket, width = P.bucket_param(query, rng)
        limit = P.int_param(query, "limit", 50, 1, 500)
        sentiment = P.choice(query, "sentiment", P.SENTIMENTS, None)
    except P.ParamError as exc:
        assert str(exc)
        return
    assert "x" not in query
    assert kind in P.SCOPE_KINDS and len(scope) <= 80
    assert P.MIN_TIME - P.MAX_SPAN <= rng.since < rng.until <= P.MAX_TIME
    assert rng.since.tzinfo is not None and rng.span <= P.MAX_SPAN
    assert rng.span / width <= P.MAX_POINTS and bucket in P.BUCKET_CHOICES
    assert 1 <= limit <= 500 and sentiment in (None, *P.SENTIMENTS)
