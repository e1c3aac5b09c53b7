"""Links found at ingest travel with the news.raw message (issue 24 point 5, issue 25): a consumer whose
linker has the message's reference version takes them as they are, any other links the text again."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from stream.core.kafka_io import encode_item
from stream.linking import Linker
from stream.messages.raw_message import parse_message, parse_record

NOW = datetime(2024, 3, 5, tzinfo=UTC)
MSG = {"id": "x1", "published_at": "2024-03-04T14:00:00Z", "title": "Acme Rockets and $KO rally; Initrode flat",
       "tickers": ["zzz"]}


class Counting:
    """A linker that counts how often it is asked to link a text."""

    def __init__(self, inner: Linker) -> None:
        self.inner = inner
        self.calls = 0

    def link(self, text, at=None):
        self.calls += 1
        return self.inner.link(text, at)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def linker(**aliases: str) -> Counting:
    return Counting(Linker(aliases or {"Acme Rockets": "ACME"}))


def test_the_consumer_reuses_the_links_of_its_own_reference_version_and_gets_the_same_item():
    ingest, worker = linker(), linker()
    item = parse_message(dict(MSG), extractor=ingest, now=NOW)
    assert ingest.calls == 1 and item.links_version == ingest.version
    again = parse_record(encode_item(item), extractor=worker, now=NOW)
    assert worker.calls == 0  # linked once, at ingest
    assert again == item and again.tickers == ("ZZZ", "ACME", "KO")


def test_another_reference_version_or_no_links_means_the_text_is_linked_again():
    item = parse_message(dict(MSG), extractor=linker(), now=NOW)
    other = linker(**{"Initrode": "INTR"})  # the user added an alias: another version
    assert other.version != item.links_version
    again = parse_record(encode_item(item), extractor=other, now=NOW)
    assert other.calls == 1 and "INTR" in again.tickers
    bare = linker()
    assert parse_message(dict(MSG), extractor=bare, now=NOW).tickers == item.tickers and bare.calls == 1


def test_carried_links_that_are_not_well_formed_are_ignored_and_the_text_is_linked():
    item = parse_message(dict(MSG), extractor=linker(), now=NOW)
    good = item.to_message()
    for broken in ([{"ticker": "KO", "start": 0, "end": 999, "text": "x", "rule": "cashtag"}],  # span off the text
                   [{"ticker": "KO", "start": 0, "end": 2, "text": "x", "rule": "made_up"}],  # unknown rule
                   [{"ticker": 7, "start": 0, "end": 2, "text": "x", "rule": "cashtag"}],
                   [{"ticker": "KO", "start": True, "end": 2, "text": "x", "rule": "cashtag"}],
                   "KO", None):
        worker = linker()
        again = parse_record(json.dumps({**good, "links": broken}).encode(), extractor=worker, now=NOW)
        assert worker.calls == 1 and again.tickers == item.tickers, broken


def test_the_watchlist_is_the_consumers_own_even_with_carried_links():
    item = parse_message(dict(MSG), extractor=linker(), now=NOW)
    watching = Counting(Linker({"Acme Rockets": "ACME"}, watchlist=["KO"]))
    assert watching.version == item.links_version  # a watchlist marks links, it does not find them
    again = parse_record(encode_item(item), extractor=watching, now=NOW)
    assert watching.calls == 0 and again.tickers == ("KO",)
    assert {lk["ticker"] for lk in again.ticker_links if lk.get("watch") is False} == {"ZZZ", "ACME"}
    assert "watch" not in json.dumps(again.to_message())  # the consumer's marks do not travel


def test_the_reference_version_follows_the_tables_and_the_users_aliases_only():
    assert Linker().version == Linker(watchlist=["AAPL"]).version
    assert Linker({"Acme": "ACME"}).version == Linker({"Acme": "ACME"}).version != Linker({"Acme": "ACMX"}).version
    assert Linker(aliases=[("Foo", "FOO", "N")], symbols={"FOO": "FOO"}).version != Linker().version


def test_other_scalars_of_a_replayed_row_are_encoded_with_str_instead_of_failing():
    from datetime import date
    from decimal import Decimal

    item = parse_message({**MSG, "price": Decimal("12.50"), "session": date(2024, 3, 4)}, extractor=linker(), now=NOW)
    msg = json.loads(encode_item(item))  # json.dumps refused a Decimal: the replay used to stop there
    assert msg["price"] == "12.50" and msg["session"] == "2024-03-04"
