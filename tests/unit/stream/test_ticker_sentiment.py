"""Per-company sentiment, the pure pieces (model/ticker_sentiment.py): links found in the raw text ->
spans in the model text -> the engine's entity queries -> one stored entry per ticker; the fallback to
the headline; the worker's batch step on a tiny checkpoint with an entity head."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from hypothesis import given, strategies as st

from alerts.simulator import Detector
from model import ort
from model.engine import load_engine
from model.entities import EntityQuery
from model.null import NullEngine
from model.prediction import EntitySentiment
from model.ticker_sentiment import (
    cashtag_spans,
    check_entry,
    checked,
    entity_queries,
    per_ticker,
    predict_per_ticker,
    sentiment_toward,
    takes_entities,
    ticker_spans,
)
from stream.core.pipeline import BatchProcessor, RawRecord, article_row, scored_message
from stream.messages.raw_message import parse_message
from tests.support.tiny_model import make_tiny_checkpoint

AT = "2025-03-13T15:00:00Z"


def item(title: str, summary: str | None = None, tickers=()):
    msg = {"title": title, "published_at": AT, "tickers": list(tickers)}
    if summary is not None:
        msg["summary"] = summary
    return parse_message(msg)


# ------------------------------------------------------------------ links -> spans in the model text
def test_each_tickers_spans_are_its_mentions_in_the_model_text():
    it = item("Walmart cuts forecast, Target gains")
    assert it.tickers == ("WMT", "TGT")
    spans = ticker_spans(it.model_text, it.ticker_links, it.tickers)
    assert spans == {"WMT": ((0, 7),), "TGT": ((23, 29),)}


def test_spans_follow_the_model_text_not_the_raw_text_the_linker_read():
    # HTML entities, tags and a URL: the model text is shorter than "title summary", so the linker's
    # offsets are wrong there; every mention is found again in the text the model reads
    it = item("Walmart &amp; Target: <b>Walmart</b> slumps https://x.example/a?b=c while $TGT rallies",
              "Target beats; Walmart lags.")
    text = it.model_text
    assert text == "Walmart & Target: Walmart slumps https://t.co while $TGT rallies. Target beats; Walmart lags."
    spans = ticker_spans(text, it.ticker_links, it.tickers)
    assert [text[s:e] for s, e in spans["WMT"]] == ["Walmart"] * 3  # a repeated mention: every occurrence
    assert [text[s:e] for s, e in spans["TGT"]] == ["Target", "$TGT", "Target"]  # name and cashtag merged
    assert all(s < e for v in spans.values() for s, e in v) and spans["TGT"] == tuple(sorted(set(spans["TGT"])))
    # the raw offsets of the linker would have pointed elsewhere: the mapping is not the identity
    raw = [(lk["start"], lk["end"]) for lk in it.ticker_links if lk["ticker"] == "WMT"]
    assert set(raw) != set(spans["WMT"])


def test_a_given_ticker_the_text_does_not_name_has_no_span():
    it = item("Fed holds rates steady", tickers=["AAPL"])
    assert it.tickers == ("AAPL",)
    assert entity_queries(it.model_text, it.ticker_links, it.tickers) == [EntityQuery(())]


def test_link_texts_are_cleaned_like_the_model_text_and_odd_links_are_skipped():
    text = "AT&T and Verizon slide"
    links = [{"ticker": "T", "text": "AT&amp;T", "rule": "name"},  # an entity in the raw text
             {"ticker": "VZ", "text": "Verizon", "rule": "name"},
             {"ticker": "XOM", "text": "Verizon", "rule": "name", "watch": False},  # not one of the tickers
             {"ticker": None, "entity": "Vodafone", "text": "slide"},  # an unlisted entity
             "not a link", {"ticker": "VZ", "text": None}, {"ticker": "VZ", "rule": "given"}]
    assert ticker_spans(text, links, ["T", "VZ"]) == {"T": ((0, 4),), "VZ": ((9, 16),)}
    assert ticker_spans(text, links, []) == {}


# ------------------------------------------------------------------ entries
def test_per_ticker_entries_in_ticker_order():
    wmt = EntitySentiment("negative", 0.8, 0.15, 0.05, -0.75, "entity")
    tgt = EntitySentiment("positive", 0.1, 0.2, 0.7, 0.6, "entity")
    assert per_ticker(["WMT", "TGT"], (wmt, tgt)) == {"WMT": wmt.to_dict(), "TGT": tgt.to_dict()}
    assert per_ticker(["WMT", "TGT"], (wmt,)) is None  # not one answer per ticker: nothing stored
    assert per_ticker([], ()) is None


def test_check_entry_refuses_what_the_buckets_could_not_count():
    good = {"sentiment": "negative", "p_negative": 0.9, "p_neutral": 0.05, "p_positive": 0.05,
            "sentiment_score": -1.0000001, "source": "entity"}
    assert check_entry("WMT", good)["sentiment_score"] == -1.0  # clamped
    for bad in ({**good, "sentiment": "bearish"}, {**good, "source": "guess"}, {**good, "p_neutral": math.nan},
                {k: v for k, v in good.items() if k != "p_positive"}, "negative"):
        with pytest.raises((ValueError, TypeError)):
            check_entry("WMT", bad)
    assert checked({"WMT": good, "ZZZ": good}, ["WMT", "TGT"]) == {"WMT": check_entry("WMT", good)}
    with pytest.raises(ValueError):
        checked(["WMT"], ["WMT"])


def test_sentiment_toward_falls_back_to_the_headline():
    entries = {"WMT": {"sentiment": "negative", "sentiment_score": -0.7}}
    assert sentiment_toward(entries, "WMT", "positive", 0.4) == ("negative", -0.7)
    assert sentiment_toward(entries, "TGT", "positive", 0.4) == ("positive", 0.4)  # no entry for it
    assert sentiment_toward(None, "WMT", "neutral", 0.0) == ("neutral", 0.0)  # stored before 0007


def test_the_in_memory_detector_counts_each_ticker_by_its_own_sentiment():
    det = Detector()
    t = datetime(2025, 3, 13, 15, 0, 30, tzinfo=UTC)
    entries = {"WMT": {"sentiment": "negative", "sentiment_score": -0.8},
               "TGT": {"sentiment": "positive", "sentiment_score": 0.7}}
    det.add(t, ["WMT", "TGT", "COST"], "Earnings", "positive", 0.3, ticker_sentiment=entries)
    m = int(t.timestamp()) // 60 * 60
    rows = {(k, s): (a, n, round(sc, 6)) for b, k, s, a, n, sc in det.store.minute_counts(m, m + 60, ("ticker", "topic", "all"))}
    assert rows[("ticker", "WMT")] == (1, 1, -0.8)
    assert rows[("ticker", "TGT")] == (1, 0, 0.7)
    assert rows[("ticker", "COST")] == (1, 0, 0.3)  # no entry: the headline's
    assert rows[("topic", "Earnings")] == rows[("all", "all")] == (1, 0, 0.3)


# ------------------------------------------------------------------ with an engine
@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    """A tiny random checkpoint with an entity head, on the ONNX (the CPU default) and torch fp32 paths."""
    root = tmp_path_factory.mktemp("tiny-entity")
    ck = make_tiny_checkpoint(root / "ck", seed=3, entity=True)[0]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(ort.ENV_CACHE, str(root / "onnx-cache"))
        return {path: load_engine(ck, "cpu", cpu_path=path, warmup=False) for path in ("onnx", "fp32")}


def test_engines_that_take_entities_and_one_that_does_not(engines):
    assert all(takes_entities(e) for e in engines.values())
    assert not takes_entities(NullEngine())
    preds, per = predict_per_ticker(NullEngine(), ["Walmart cuts forecast, Target gains"], [[]], [["WMT", "TGT"]])
    assert len(preds) == 1 and per == [None]


@pytest.mark.parametrize("path", ["onnx", "fp32"])
def test_one_call_scores_the_headlines_and_each_ticker(engines, path):
    engine = engines[path]
    items = [item("Walmart cuts forecast, Target gains"), item("Fed holds rates steady", tickers=["AAPL"]),
             item("Markets are calm"), item("Target recalls toys; Target shares slide")]
    texts = [it.model_text for it in items]
    preds, per = predict_per_ticker(engine, texts, [it.ticker_links for it in items], [it.tickers for it in items])
    assert [p.sentiment for p in preds] == [p.sentiment for p in engine.predict(texts)]  # headlines as before
    wmt, tgt = per[0]["WMT"], per[0]["TGT"]
    assert wmt["source"] == tgt["source"] == "entity" and wmt["sentiment_score"] != tgt["sentiment_score"]
    # an entity absent from the text: the headline's own sentiment
    assert per[1] == {"AAPL": {"sentiment": preds[1].sentiment, "p_negative": preds[1].p_negative,
                               "p_neutral": preds[1].p_neutral, "p_positive": preds[1].p_positive,
                               "sentiment_score": preds[1].sentiment_score, "source": "headline"}}
    assert per[2] is None  # no ticker, nothing to store
    assert per[3]["TGT"]["source"] == "entity"
    # each entry is the engine's answer for the spans of the ticker's mentions (both "Target"s)
    direct = engine.predict([texts[3]], entities=[[EntityQuery(((0, 6), (21, 27)))]])[0].entities[0]
    assert per[3]["TGT"]["sentiment_score"] == pytest.approx(direct.sentiment_score, abs=1e-6)
    # batch invariance: an item scored alone gets the same per-ticker sentiment as in the batch
    alone = predict_per_ticker(engine, texts[:1], [items[0].ticker_links], [items[0].tickers])[1][0]
    for t in ("WMT", "TGT"):
        assert alone[t]["sentiment"] == per[0][t]["sentiment"]
        assert alone[t]["sentiment_score"] == pytest.approx(per[0][t]["sentiment_score"], abs=2e-3)


class _Writer:
    def __init__(self):
        self.rows = []

    def write_batch(self, rows):
        from storage.writer import WriteResult

        self.rows += rows
        return WriteResult(list(rows), 0)


def test_the_batch_step_stores_and_publishes_each_tickers_sentiment(engines):
    import json

    engine = engines["onnx"]
    writer = _Writer()
    bp = BatchProcessor(engine, writer)
    recs = [RawRecord(json.dumps({"id": f"a{i}", "title": t, "published_at": AT}).encode(), offset=i)
            for i, t in enumerate(["Walmart cuts forecast, Target gains", "Markets are calm"])]
    res = bp.process(recs)
    a0, a1 = res.inserted
    assert set(a0.ticker_sentiment) == {"WMT", "TGT"} and a1.ticker_sentiment is None
    it = parse_message(json.loads(recs[0].value))
    want = engine.predict([it.model_text], entities=[entity_queries(it.model_text, it.ticker_links, it.tickers)])[0]
    assert [a0.ticker_sentiment[t]["sentiment_score"] for t in ("WMT", "TGT")] == pytest.approx(
        [e.sentiment_score for e in want.entities], abs=1e-6)
    msg = json.loads(scored_message(a0))
    assert msg["ticker_sentiment"]["WMT"]["sentiment"] == a0.ticker_sentiment["WMT"]["sentiment"]
    assert "ticker_sentiment" not in json.loads(scored_message(a1))
    # a stand-in engine without entities=: no per-ticker sentiment, the rows fall back to the headline
    row = article_row(it, NullEngine().predict([it.model_text])[0], "null")
    assert row.ticker_sentiment is None


def test_a_given_ticker_is_found_by_its_cashtag_as_tokenised_archives_write_it():
    # StockNet: "$ wfc"; the archive gives the ticker, the linker links no surface: before, the entity was
    # absent and every such ticker took the headline's sentiment
    text = "get more info on $ wfc $ cphc , not $wfcx nor $WFC.B ; $WFC."
    spans = ticker_spans(text, [{"ticker": "WFC", "rule": "given"}], ["WFC"])["WFC"]
    assert [text[a:b] for a, b in spans] == ["$ wfc", "$WFC"]
    other = "buy $BRK.B now"
    assert [other[a:b] for a, b in cashtag_spans(other, "BRK.B")] == ["$BRK.B"]


def test_a_bare_symbol_is_not_a_mention_and_linked_surfaces_come_first():
    assert ticker_spans("a rally in tech", [{"ticker": "A", "rule": "given"}], ["A"]) == {"A": ()}
    text = "Apple ($AAPL) beats"
    links = [{"ticker": "AAPL", "rule": "name", "text": "Apple"}]
    assert [text[a:b] for a, b in ticker_spans(text, links, ["AAPL"])["AAPL"]] == ["Apple"]


@given(st.text(max_size=80), st.text(alphabet=st.characters(codec="ascii"), max_size=8))
def test_cashtag_spans_are_cashtags_of_the_ticker_in_the_text(text, ticker):
    for a, b in cashtag_spans(text, ticker):
        found = text[a:b]
        assert found.startswith("$") and found[1:].strip().lower() == ticker.lower() and ticker
