"""Validation is total: any bytes give a NewsItem or an InvalidRecord with a stable reason,
and whatever is accepted can be encoded as UTF-8 and JSON (jsonb: no NaN, no NUL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from stream.core.pipeline import scored_message
from stream.messages.raw_message import (
    MAX_ID_CHARS,
    MAX_INT_DIGITS,
    MAX_JSON_DEPTH,
    MAX_JSON_VALUES,
    MAX_TICKERS,
    InvalidRecord,
    NewsItem,
    parse_message,
    parse_record,
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
REASONS = {
    "empty", "oversized", "not_utf8", "not_json", "not_object", "missing_title", "empty_title", "bad_type",
    "missing_published_at", "bad_timestamp", "absurd_timestamp", "too_deep", "too_many_fields", "bad_number",
    "bad_id", "too_many_tickers",
}

# every code point, lone surrogates and U+0000 included
ANY_CHAR = st.characters(codec=None, exclude_categories=())
ANY_TEXT = st.text(ANY_CHAR, max_size=40)
NUMBERS = st.one_of(
    st.integers(min_value=-(10 ** 80), max_value=10 ** 80),
    st.floats(allow_nan=True, allow_infinity=True),
)
JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), NUMBERS, ANY_TEXT),
    lambda children: st.one_of(st.lists(children, max_size=5), st.dictionaries(ANY_TEXT, children, max_size=5)),
    max_leaves=30,
)
TITLES = st.one_of(
    ANY_TEXT,
    st.text(st.sampled_from(" \t\n\u200b\u200c\u200d\u2060\ufeff\u00a0\u202e\u0000<>b/"), max_size=12),
    st.just("Acme beats estimates"),
)
TIMES = st.one_of(
    st.just("2026-11-22T10:00:00Z"), st.just("2026-11-22 09:00:00"), st.just("9999-12-31T23:59:59-23:59"),
    st.just("0001-01-01T00:00:00+23:59"), ANY_TEXT, NUMBERS, st.none(),
)


def check_storable(item: NewsItem) -> None:
    """What later stages do with an accepted item never fails."""
    assert isinstance(item, NewsItem)
    msg = item.to_message()
    text = json.dumps(msg, ensure_ascii=False, allow_nan=False)  # jsonb: no NaN / Infinity
    text.encode("utf-8")  # no lone surrogate
    assert "\\u0000" not in json.dumps(msg) and "\x00" not in text  # PostgreSQL: no NUL
    assert item.title.strip() and item.model_text.strip()
    assert 0 < len(item.id) <= MAX_ID_CHARS
    for value in (item.title, item.summary, item.source, item.url, item.id, *item.tickers):
        if value is not None:
            value.encode("utf-8")
    again = parse_record(text.encode("utf-8"), now=NOW)  # what is produced to Kafka parses again, the same
    assert again == item


def outcome(raw: bytes):
    try:
        item = parse_record(raw, now=NOW)
    except InvalidRecord as exc:
        assert exc.reason in REASONS, exc.reason
        return exc.reason
    check_storable(item)
    return item


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_any_bytes_give_an_item_or_a_reason(raw):
    outcome(raw)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSONISH)
def test_any_json_value_gives_an_item_or_a_reason(value):
    outcome(json.dumps(value).encode())  # Python writes NaN/Infinity and \ud800 escapes: hostile JSON


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    title=TITLES, published=TIMES,
    optional=st.dictionaries(st.sampled_from(["id", "summary", "source", "url", "tickers"]),
                             st.one_of(ANY_TEXT, st.lists(ANY_TEXT, max_size=4), NUMBERS, st.none())),
    extra=st.dictionaries(ANY_TEXT, JSONISH, max_size=4),
)
def test_near_valid_messages_are_stored_or_refused_with_a_reason(title, published, optional, extra):
    msg = {**extra, **optional, "title": title, "published_at": published}
    outcome(json.dumps(msg).encode())
    # the same object given directly (replay of CSV/Parquet rows goes through parse_message)
    try:
        check_storable(parse_message(msg, now=NOW))
    except InvalidRecord as exc:
        assert exc.reason in REASONS


def base(**kw) -> dict:
    return {"published_at": "2026-11-22T10:00:00Z", "title": "Acme beats estimates", **kw}


def nested(depth: int):
    value = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("raw, expected", [
    (b"[" * 100_000 + b"]" * 100_000, "too_deep"),  # was RecursionError
    (b'{"a":' * 5000 + b"1" + b"}" * 5000, "too_deep"),
    (json.dumps(base(x=nested(MAX_JSON_DEPTH + 1))).encode(), "too_deep"),
    (b'{"title":"x","published_at":"2026-11-22T10:00:00Z","n":' + b"9" * 5000 + b"}", "bad_number"),  # was ValueError
    (json.dumps(base(n=10 ** MAX_INT_DIGITS)).encode(), "bad_number"),
    (json.dumps(base(**{f"k{i}": i for i in range(MAX_JSON_VALUES)})).encode(), "too_many_fields"),
    (json.dumps(base(tags=list(range(MAX_JSON_VALUES + 1)))).encode(), "too_many_fields"),
    (json.dumps(base(title="\u200b\u200c\u200d\ufeff\u2060")).encode(), "empty_title"),
    (json.dumps(base(title="\u00a0 \u3000\t")).encode(), "empty_title"),
    (json.dumps(base(title="\ud800")).encode(), "empty_title"),  # only a lone surrogate
    (json.dumps(base(title="<b></b> <br/>")).encode(), "empty_title"),
    (json.dumps(base(title="https://example.com/a")).encode(), "empty_title"),
    (json.dumps(base(published_at="9999-12-31T23:59:59-23:59")).encode(), "absurd_timestamp"),  # was OverflowError
    (json.dumps(base(published_at="0001-01-01T00:00:00+23:59")).encode(), "absurd_timestamp"),
    (json.dumps(base(id="x" * (MAX_ID_CHARS + 1))).encode(), "bad_id"),
    (json.dumps(base(tickers=[f"T{i}" for i in range(MAX_TICKERS + 1)])).encode(), "too_many_tickers"),
    (b'{"title":"a","title":5,"published_at":"2026-11-22T10:00:00Z"}', "bad_type"),  # last duplicate key wins
    (b'{"title":"x","published_at":NaN}', "missing_published_at"),
    (b"\xed\xa0\x80", "not_utf8"),  # an encoded surrogate is not UTF-8
    (b"", "not_json"),
    (b"null", "not_object"),
])
def test_hostile_records_have_stable_reasons(raw, expected):
    with pytest.raises(InvalidRecord) as exc:
        parse_record(raw, now=NOW)
    assert exc.value.reason == expected


def test_non_finite_numbers_become_null_and_lone_surrogates_are_dropped():
    raw = (b'{"title":"Acme \\ud800beats\\udfff","published_at":"2026-11-22T10:00:00Z",'
           b'"a":NaN,"b":1e400,"c":-Infinity,"d":[Infinity, 1.5],"e\\udc00":{"f":"\\ud83d\\ude00"}}')
    item = parse_record(raw, now=NOW)
    assert item.title == "Acme beats"
    assert item.extra == {"a": None, "b": None, "c": None, "d": [None, 1.5], "e": {"f": "\U0001F600"}}
    check_storable(item)


def test_limits_themselves_are_accepted():
    item = parse_record(json.dumps(base(x=nested(MAX_JSON_DEPTH - 2), n=10 ** (MAX_INT_DIGITS - 1),
                                        id="i" * MAX_ID_CHARS)).encode(), now=NOW)
    check_storable(item)
    assert parse_record(b"\xef\xbb\xbf" + json.dumps(base()).encode(), now=NOW).title == "Acme beats estimates"


def test_invisible_optional_fields_are_absent_and_scored_message_encodes():
    item = parse_record(json.dumps(base(summary="\u200b", source=" \ufeff", url="\u2060")).encode(), now=NOW)
    assert (item.summary, item.source, item.url) == (None, None, None)
    from types import SimpleNamespace

    pred = SimpleNamespace(topic="t", topic_score=0.5, sentiment="neutral", p_negative=0.2, p_neutral=0.6,
                           p_positive=0.2, sentiment_score=0.0)
    from stream.core.pipeline import article_row

    json.loads(scored_message(article_row(item, pred, "v")))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=MAX_JSON_DEPTH + 1, max_value=200_000))
def test_any_nesting_depth_is_refused_not_raised(depth):
    for opener, closer in ((b"[", b"]"), (b'{"k":', b"}")):
        raw = b'{"title":"x","published_at":"2026-11-22T10:00:00Z","n":' + opener * depth + b"0" + closer * depth + b"}"
        if len(raw) > (1 << 20):
            continue
        with pytest.raises(InvalidRecord) as exc:
            parse_record(raw, now=NOW)
        assert exc.value.reason == "too_deep"
