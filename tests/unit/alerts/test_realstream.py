"""The real-archive quality replay counts a ticker's own sentiment, as the worker does (issue 22)."""

from __future__ import annotations

from datetime import UTC, datetime

from alerts.detector import DetectorConfig
from alerts.realstream import ScoredItem, replay_scored
from stream.base.settings import AlertSettings
from stream.messages.raw_message import NewsItem

ENTRY = {"p_neutral": 0.05, "source": "entity"}


def _scored(toward: dict | None) -> ScoredItem:
    item = NewsItem("a1", datetime(2015, 10, 14, 15, tzinfo=UTC), "Walmart cuts forecast, Target gains",
                    tickers=("WMT", "TGT"))
    return ScoredItem(item, "negative", 0.9, -0.85, "Company", toward)


def _negative_counts(run) -> dict[str, int]:
    counts = run.detector.store.counts
    return {tk: sum(c[1] for c in counts[("ticker", tk)].values()) for tk in ("WMT", "TGT")}


def test_each_ticker_counts_the_sentiment_toward_it():
    toward = {"WMT": {**ENTRY, "sentiment": "negative", "p_negative": 0.9, "p_positive": 0.05, "sentiment_score": -0.85},
              "TGT": {**ENTRY, "sentiment": "positive", "p_negative": 0.05, "p_positive": 0.9, "sentiment_score": 0.85}}
    a = AlertSettings()
    run = replay_scored([_scored(toward)], DetectorConfig.scales_from_settings(a), a)
    assert [e.id for e in run.negatives[("ticker", "WMT")]] == ["a1"]
    assert ("ticker", "TGT") not in run.negatives
    assert _negative_counts(run) == {"WMT": 1, "TGT": 0}


def test_without_ticker_sentiment_every_ticker_takes_the_headline():
    a = AlertSettings()
    run = replay_scored([_scored(None)], DetectorConfig.scales_from_settings(a), a)
    assert {k[1] for k in run.negatives if k[0] == "ticker"} == {"WMT", "TGT"}
    assert _negative_counts(run) == {"WMT": 1, "TGT": 1}
