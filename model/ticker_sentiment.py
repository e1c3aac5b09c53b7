"""Per-company sentiment for the worker and ``finsent rescore``: ticker links -> entity queries -> one
sentiment per ticker.  Pure (no I/O).

The linker (:mod:`stream.linking`) finds each ticker's mentions in ``"title summary"`` (raw text); the
model reads another text, :func:`stream.messages.text.model_input` (HTML decoded, tags and URLs replaced,
whitespace folded), and takes an entity as its mentions' spans in *that* text
(:class:`model.entities.EntityQuery`).  So a ticker's spans are found again in the model text: every
occurrence (:func:`model.entities.find_mentions`) of every link's surface text (cleaned as the model text
is), merged over all the links of the ticker.  A ticker with no span there (a ``given`` ticker the text
does not name, a link whose text the cleaning removed) is an absent entity: the engine gives it the
headline's sentiment (``source`` "headline").

The result, per article, is ``articles.ticker_sentiment``: ``{ticker: {sentiment, p_negative, p_neutral,
p_positive, sentiment_score, source}}`` for each of its tickers (see ``storage/migrations/0007``).

In the ``model`` layer (tests/unit/test_layering.py): it reads the model's entity types and the linker's
links, and the storage layer (rescore) uses it.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from model.entities import EntityQuery, Span, find_mentions
from stream.base.labels import SENTIMENTS
from stream.messages.text import clean

__all__ = ["ENTRY_FIELDS", "SOURCES", "cashtag_spans", "check_entry", "checked", "entity_queries", "per_ticker",
           "predict_per_ticker", "sentiment_toward", "takes_entities", "ticker_spans"]

SPANS_VERSION = 2  # how mentions are found (2: cashtags of tickers no link names); caches of entries key on it
ENTRY_FIELDS = ("sentiment", "p_negative", "p_neutral", "p_positive", "sentiment_score", "source")
SOURCES = ("entity", "headline")  # the entity head's answer | the headline's (absent entity, or no head)


def ticker_spans(model_text: str, links: Iterable[Mapping[str, Any]], tickers: Sequence[str]) -> dict[str, tuple[Span, ...]]:
    """For each of ``tickers`` (in order), the sorted, distinct spans in ``model_text`` of every occurrence
    of the surface text of each of its links (``articles.ticker_links`` entries; links without text, such
    as ``given`` ones, add nothing)."""
    found: dict[str, set[Span]] = {t: set() for t in tickers}
    for lk in links:
        if not isinstance(lk, Mapping):
            continue
        spans = found.get(lk.get("ticker"))  # type: ignore[arg-type]
        surface = lk.get("text")
        if spans is None or not isinstance(surface, str):
            continue
        spans.update(find_mentions(model_text, clean(surface)))
    for t, spans in found.items():
        if not spans:  # a ticker the text names by no linked surface, e.g. one an archive gives
            spans.update(cashtag_spans(model_text, t))
    return {t: tuple(sorted(s)) for t, s in found.items()}


def cashtag_spans(model_text: str, ticker: str) -> tuple[Span, ...]:
    """The spans of ``ticker``'s cashtag in ``model_text``, any case, also as tokenised archives write it
    ("$AAPL", "$aapl", "$ aapl" in StockNet); never the bare symbol (too many symbols are words)."""
    if not ticker:
        return ()
    pattern = re.compile(r"\$\s?" + re.escape(ticker) + r"(?!\w|\.\w)", re.IGNORECASE)
    return tuple(m.span() for m in pattern.finditer(model_text))


def entity_queries(model_text: str, links: Iterable[Mapping[str, Any]], tickers: Sequence[str]) -> list[EntityQuery]:
    """One :class:`EntityQuery` per ticker, in the order of ``tickers`` (see :func:`ticker_spans`)."""
    spans = ticker_spans(model_text, links, tickers)
    return [EntityQuery(spans[t]) for t in tickers]


def per_ticker(tickers: Sequence[str], entities: Sequence[Any]) -> dict[str, dict] | None:
    """``{ticker: entry}`` from a prediction's entity sentiments (one per ticker, in order), or None when the
    prediction carries none (an engine without ``entities=``: the row then falls back to the headline)."""
    if not tickers or len(entities) != len(tickers):
        return None
    return {t: {f: getattr(e, f) for f in ENTRY_FIELDS} for t, e in zip(tickers, entities)}


def check_entry(ticker: str, entry: Any) -> dict:
    """One stored entry, checked: a known sentiment and source, finite probabilities, the score clamped to
    [-1, 1] (fp16 softmax may overshoot by an ulp).  ``ValueError`` otherwise."""
    if not isinstance(entry, Mapping):
        raise ValueError(f"ticker {ticker}: sentiment entry must be an object, got {type(entry).__name__}")
    if entry.get("sentiment") not in SENTIMENTS:
        raise ValueError(f"ticker {ticker}: sentiment must be one of {SENTIMENTS}, got {entry.get('sentiment')!r}")
    if entry.get("source") not in SOURCES:
        raise ValueError(f"ticker {ticker}: source must be one of {SOURCES}, got {entry.get('source')!r}")
    out: dict[str, Any] = {"sentiment": entry["sentiment"]}
    for f in ("p_negative", "p_neutral", "p_positive", "sentiment_score"):
        v = float(entry.get(f))  # type: ignore[arg-type]
        if not math.isfinite(v):
            raise ValueError(f"ticker {ticker}: {f} is not finite")
        out[f] = v
    out["sentiment_score"] = min(1.0, max(-1.0, out["sentiment_score"]))
    out["source"] = entry["source"]
    return out


def checked(entries: Any, tickers: Sequence[str]) -> dict[str, dict]:
    """``entries`` (``{ticker: entry}``) as stored: each entry checked (:func:`check_entry`), only for
    ``tickers`` (the article's; an entry of another ticker would count nowhere)."""
    if not isinstance(entries, Mapping):
        raise ValueError(f"ticker_sentiment must be a mapping, got {type(entries).__name__}")
    return {t: check_entry(t, entries[t]) for t in tickers if t in entries}


def sentiment_toward(entries: Any, ticker: str, headline: str, headline_score: float = 0.0) -> tuple[str, float]:
    """(sentiment, score) toward ``ticker``: its entry's in ``entries`` (``articles.ticker_sentiment``), else
    (None, no entry) the headline's -- the rule of ``storage.buckets.toward_ticker``, in Python."""
    entry = entries.get(ticker) if isinstance(entries, Mapping) else None
    if not isinstance(entry, Mapping):
        return headline, headline_score
    got, score = entry.get("sentiment"), entry.get("sentiment_score")
    return (got if isinstance(got, str) else headline,
            float(score) if isinstance(score, (int, float)) else headline_score)


def takes_entities(engine: Any) -> bool:
    """Whether ``engine.predict`` takes ``entities=`` (the engines of :mod:`model.engine` do; a stand-in such
    as ``model.null.NullEngine`` may not: its rows then get no per-ticker sentiment)."""
    try:
        return "entities" in inspect.signature(engine.predict).parameters
    except (TypeError, ValueError):
        return False


def predict_per_ticker(engine: Any, texts: Sequence[str], links: Sequence[Iterable[Mapping[str, Any]]],
                       tickers: Sequence[Sequence[str]]) -> tuple[list[Any], list[dict[str, dict] | None]]:
    """Score ``texts`` (model texts) and the sentiment toward each text's tickers in one engine call:
    (predictions, per text ``{ticker: entry}`` or None).  ``links`` / ``tickers``: per text."""
    if not takes_entities(engine):
        preds = list(engine.predict(texts))
        return preds, [None] * len(preds)
    queries = [entity_queries(t, lk, tk) for t, lk, tk in zip(texts, links, tickers)]
    preds = list(engine.predict(texts, entities=queries))
    return preds, [per_ticker(tk, getattr(p, "entities", ()) or ()) for tk, p in zip(tickers, preds)]
