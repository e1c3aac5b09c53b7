"""news.raw parsing and validation: every malformed case has a reason."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from stream.messages.raw_message import (
    MAX_RECORD_BYTES,
    InvalidRecord,
    TickerExtractor,
    merge_tickers,
    model_text,
    normalize_text,
    parse_record,
    stable_id,
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def rec(**kw):
    base = {"published_at": "2026-11-22T10:00:00Z", "title": "Acme beats estimates"}
    base.update(kw)
    return json.dumps(base).encode()


def reason(raw):
    with pytest.raises(InvalidRecord) as exc:
        parse_record(raw, now=NOW)
    return exc.value.reason


def test_valid_record_roundtrip_keeps_extra_fields():
    item = parse_record(rec(id="a1", summary="Q3 <b>strong</b>", source="wire", url="http://x/1",
                            tickers=["acme"], lang="en", score=3), now=NOW)
    assert item.id == "a1"
    assert item.published_at == datetime(2026, 11, 22, 10, tzinfo=UTC)
    assert item.tickers == ("ACME",)
    assert item.extra == {"lang": "en", "score": 3}
    assert item.model_text == "Acme beats estimates. Q3 strong"
    again = parse_record(json.dumps(item.to_message()).encode(), now=NOW)
    assert again == item


@pytest.mark.parametrize("raw, expected", [
    (b"{not json", "not_json"),
    (b"\xff\xfe\x00garbage", "not_utf8"),
    (b"[1, 2, 3]", "not_object"),
    (b'"just a string"', "not_object"),
    (rec(title=None), "missing_title"),
    (json.dumps({"published_at": "2026-11-22T10:00:00Z"}).encode(), "missing_title"),
    (rec(title="   "), "empty_title"),
    (rec(title=42), "bad_type"),
    (rec(tickers="AAPL", summary=7), "bad_type"),
    (rec(tickers=[1, 2]), "bad_type"),
    (rec(id=123), "bad_type"),
    (rec(published_at="yesterday-ish"), "bad_timestamp"),
    (rec(published_at=1700000000), "bad_type"),
    (rec(published_at="1989-12-31T23:59:59Z"), "absurd_timestamp"),
    (rec(published_at="2026-11-23T12:00:01Z"), "absurd_timestamp"),
    (rec(published_at=None), "missing_published_at"),
    (b" " * (MAX_RECORD_BYTES + 1), "oversized"),
    (None, "empty"),
])
def test_invalid_records_have_reasons(raw, expected):
    assert reason(raw) == expected


def test_timestamps_are_normalised_to_utc():
    item = parse_record(rec(published_at="2026-11-22T12:30:00+02:00"), now=NOW)
    assert item.published_at == datetime(2026, 11, 22, 10, 30, tzinfo=UTC)
    naive = parse_record(rec(published_at="2026-11-22 09:00:00"), now=NOW)
    assert naive.published_at.tzinfo is not None and naive.published_at.hour == 9
    inside = parse_record(rec(published_at=(NOW + timedelta(hours=23)).isoformat()), now=NOW)
    assert inside.published_at > NOW


def test_stable_id_for_messages_without_id():
    a = parse_record(rec(source="wire", url="http://x/1"), now=NOW)
    b = parse_record(rec(source="wire", url="http://x/1", title="other title"), now=NOW)
    c = parse_record(rec(source="wire", url="http://x/2"), now=NOW)
    assert a.id == b.id != c.id
    no_url = parse_record(rec(source="wire"), now=NOW)
    assert no_url.id == stable_id("wire", None, "Acme  beats estimates")


def test_cashtags_and_aliases_merge_with_given_tickers():
    ex = TickerExtractor({"Apple": "AAPL", "Alphabet Inc": "GOOGL"})
    item = parse_record(rec(title="$msft and Apple rally; Alphabet Inc. flat; costs $5 more; pineapple",
                            tickers=["TSLA", "msft"]), extractor=ex, now=NOW)
    assert item.tickers == ("TSLA", "MSFT", "AAPL", "GOOGL")


def test_alias_csv(tmp_path):
    p = tmp_path / "aliases.csv"
    p.write_text("ticker,alias\nNVDA,Nvidia\nNVDA,NVIDIA Corp\n")
    ex = TickerExtractor.from_csv(p)
    assert ex.extract("Nvidia tops; NVIDIA Corp says") == ["NVDA", "NVDA"]


def test_normalisation():
    assert normalize_text("AT&amp;T &lt;b&gt; up <i>5%</i> see https://t.co/x  now") == "AT&T up 5% see now"
    assert model_text("Title.", "Title.") == "Title."
    assert merge_tickers(["$aapl", "AAPL", "", "bad ticker!"]) == ("AAPL",)


def test_nul_characters_are_removed_everywhere():
    item = parse_record(rec(title="Acme\u0000 beats", summary="x\u0000y", meta={"k\u0000": ["v\u0000"]}), now=NOW)
    assert item.title == "Acme beats" and item.summary == "xy" and item.extra == {"meta": {"k": ["v"]}}


def test_ciks_link_their_tickers_spanning_the_company_name():
    from stream.messages.raw_message import parse_message

    item = parse_message({"published_at": "2026-11-22T10:00:00Z", "title": "Apple files an 8-K on results",
                          "ciks": ["0000320193", 1999999]}, now=NOW)
    assert item.tickers == ("AAPL",)
    assert item.ticker_links == ({"ticker": "AAPL", "start": 0, "end": 5, "text": "Apple", "rule": "cik"},)  # no 'name' twin
    elsewhere = parse_message({"published_at": "2026-11-22T10:00:00Z", "title": "A filing", "ciks": [320193]}, now=NOW)
    assert elsewhere.ticker_links == ({"ticker": "AAPL", "start": 0, "end": 0, "text": "", "rule": "cik"},)


@pytest.mark.parametrize("extra, why", [
    ({"ciks": "320193"}, "bad_type"), ({"ciks": [True]}, "bad_type"), ({"ciks": [[1]]}, "bad_type"),
    ({"ciks": list(range(1, 102))}, "too_many_tickers"),
    ({"given_topic": "Bankruptcy"}, "bad_topic"), ({"given_topic": 5}, "bad_topic"),
    ({"flags": "bankruptcy"}, "bad_type"), ({"flags": [1]}, "bad_type"),
])
def test_source_fields_are_checked(extra, why):
    assert reason(rec(**extra)) == why


def test_source_fields_travel_in_extra():
    item = parse_record(rec(ciks=["320193"], given_topic="Earnings", flags=["bankruptcy"]), now=NOW)
    assert item.to_message()["ciks"] == ["320193"] and item.to_message()["given_topic"] == "Earnings"
    assert parse_record(json.dumps(item.to_message()).encode(), now=NOW).ticker_links == item.ticker_links
