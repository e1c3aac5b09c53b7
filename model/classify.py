"""Offline scoring of JSON lines (``finsent classify``), in constant memory.

Input: one JSON object a line with ``text`` (or ``title`` and an optional
``summary``), an optional ``id``, optional ``targets`` (names to score the
sentiment toward) and an optional ``published_at`` (companies are linked with
the names in use then).  Output: one JSON line per input line, in
order, with the headline's fields, ``tickers`` and ``entities``: one
``{name, ticker, start, end, sentiment, p_negative, p_neutral, p_positive,
sentiment_score}`` per given target, then one per linked ticker not already
given (:func:`entity_requests`).  A line that is not UTF-8, not a JSON object or has no text gets an
error line ``{"id": ..., "line": N, "error": "..."}``; scoring goes on and the
caller exits non-zero at the end.  Blank lines are skipped.  Lines are read and
scored in chunks, so memory does not grow with the input.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import IO, Any

from model.engine import Engine
from model.entities import EntityQuery, Span, find_mentions
from stream.linking import default_linker
from stream.messages.raw_message import link_tickers
from stream.messages.text import model_input

MAX_TARGETS = 100

OUTPUT_FIELDS = (
    "topic",
    "topic_id",
    "topic_score",
    "sentiment",
    "p_negative",
    "p_neutral",
    "p_positive",
    "sentiment_score",
)


@dataclass
class ClassifyStats:
    lines: int = 0
    scored: int = 0
    errors: int = 0


@dataclass(frozen=True)
class EntityRequest:
    """One entity of an output line: a given target or a linked ticker, with its mentions in the model text."""

    name: str
    ticker: str | None
    spans: tuple[Span, ...]


@dataclass(frozen=True)
class Line:
    """A parsed input line."""

    ident: Any
    text: str | None = None
    error: str | None = None
    targets: tuple[str, ...] = ()
    published_at: str | None = None


def entity_requests(text: str, targets: Sequence[str], links: Sequence[Any], linker: Any) -> list[EntityRequest]:
    """The entities of one output line: one per given target (in order), then one per linked ticker not
    already given (in text order).

    A target *is* a linked ticker when one of its mentions overlaps a mention of that ticker, or it is the
    ticker's symbol; else its ticker is what the linker finds in the name alone, or null.  A target absent
    from the text has no span (it is scored with the headline's sentiment).  A linked ticker's mentions are
    every occurrence of every surface form the linker found for it ("Apple ... Apple's ... $AAPL")."""
    by_ticker: dict[str, list[Span]] = {}
    names: dict[str, str] = {}
    for lk in links:
        if lk.ticker is None:
            continue
        spans = by_ticker.setdefault(lk.ticker, [])
        names.setdefault(lk.ticker, lk.text)
        for sp in ((lk.start, lk.end),) + find_mentions(text, lk.text):
            if sp not in spans:
                spans.append(sp)
    out: list[EntityRequest] = []
    given: set[str] = set()
    for target in targets:
        spans = find_mentions(text, target)
        ticker = next((t for t, sps in by_ticker.items()
                       if any(a < d and c < b for a, b in spans for c, d in sps)), None)
        if ticker is None and target.strip().lstrip("$").upper() in by_ticker:
            ticker = target.strip().lstrip("$").upper()
        if ticker is None:
            alone = [lk for lk in linker.link(target) if lk.ticker and lk.end - lk.start == len(target.strip())]
            ticker = alone[0].ticker if alone else None
        if ticker is not None:
            given.add(ticker)
        out.append(EntityRequest(target, ticker, spans))
    for ticker, spans in by_ticker.items():
        if ticker not in given:
            out.append(EntityRequest(names[ticker], ticker, tuple(sorted(spans))))
    return out


def parse_line(raw: bytes | str) -> Line:
    """One input line: its id and model text, or an error; its ``targets`` and ``published_at``."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return Line(None, error=f"not UTF-8: {exc.reason} at byte {exc.start}")
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as exc:
        return Line(None, error=f"not JSON: {exc.msg} (column {exc.colno})")
    if not isinstance(obj, dict):
        return Line(None, error=f"not a JSON object: {type(obj).__name__}")
    ident = obj.get("id")
    targets = obj.get("targets", [])
    if targets is None:
        targets = []
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        return Line(ident, error="field 'targets' must be a list of strings")
    if len(targets) > MAX_TARGETS:
        return Line(ident, error=f"field 'targets' has {len(targets)} names (at most {MAX_TARGETS})")
    published = obj.get("published_at")
    if published is not None and not isinstance(published, str):
        return Line(ident, error="field 'published_at' must be an RFC 3339 string")
    text, error = _text(obj)
    if error:
        return Line(ident, error=error)
    return Line(ident, text, targets=tuple(t for t in targets if t.strip()), published_at=published)


def _text(obj: dict) -> tuple[str | None, str | None]:
    """``(model text, error)`` of a line's ``text`` or ``title`` + ``summary``."""
    text = obj.get("text")
    if text is not None and not isinstance(text, str):
        return None, "field 'text' must be a string"
    if text and text.strip():
        text = model_input(text)  # the one input contract (stream.messages.text), as in the worker
    else:
        title, summary = obj.get("title"), obj.get("summary")
        if title is not None and not isinstance(title, str):
            return None, "field 'title' must be a string"
        if summary is not None and not isinstance(summary, str):
            return None, "field 'summary' must be a string"
        text = model_input(title, summary)
    if not text.strip():
        return None, "no text: need a non-empty 'text' or 'title'"
    return text, None


def _round(x: float) -> float:
    return round(float(x), 6)


def classify_lines(
    engine: Engine, lines: Iterable[bytes | str], out: IO[str], chunk_size: int = 512, linker: Any = None
) -> ClassifyStats:
    """Score ``lines`` and write one JSON line per non-blank input line to ``out``.

    Each output line also carries ``tickers``: the tickers linked from the text by the same
    entity linker as the worker (``linker``: a ``stream.linking.Linker``; default the shipped one)."""
    linker = linker or default_linker()
    stats = ClassifyStats()
    pending: list[tuple[int, Line]] = []

    def flush() -> None:
        ok = [ln for _, ln in pending if ln.error is None]
        links = [linker.link(ln.text, ln.published_at) for ln in ok]
        requests = [entity_requests(ln.text, ln.targets, lk, linker) for ln, lk in zip(ok, links)]
        queries = [[EntityQuery(r.spans) for r in reqs] for reqs in requests]
        preds = iter(zip(engine.predict([ln.text for ln in ok], entities=queries), links, requests)) if ok else iter(())
        buf = []
        for line_no, ln in pending:
            if ln.error is not None:
                buf.append(json.dumps({"id": ln.ident, "line": line_no, "error": ln.error}, ensure_ascii=False))
                stats.errors += 1
                continue
            p, found, reqs = next(preds)
            row = {"id": ln.ident}
            for f in OUTPUT_FIELDS:
                v = getattr(p, f)
                row[f] = _round(v) if isinstance(v, float) else v
            row["model_version"] = engine.model_version
            row["tickers"] = list(link_tickers(linker, (), ln.text, at=ln.published_at, found=found)[0])
            row["entities"] = [_entity_row(r, e) for r, e in zip(reqs, p.entities)]
            buf.append(json.dumps(row, ensure_ascii=False))
            stats.scored += 1
        if buf:
            out.write("\n".join(buf) + "\n")
            out.flush()
        pending.clear()

    for line_no, raw in enumerate(lines, start=1):
        stripped = raw.strip()
        if not stripped:
            continue
        stats.lines += 1
        pending.append((line_no, parse_line(stripped)))
        if len(pending) >= chunk_size:
            flush()
    flush()
    return stats


def _entity_row(req: EntityRequest, ent: Any) -> dict[str, Any]:
    first = req.spans[0] if req.spans else (None, None)
    return {"name": req.name, "ticker": req.ticker, "start": first[0], "end": first[1],
            "sentiment": ent.sentiment, "p_negative": _round(ent.p_negative), "p_neutral": _round(ent.p_neutral),
            "p_positive": _round(ent.p_positive), "sentiment_score": _round(ent.sentiment_score)}
