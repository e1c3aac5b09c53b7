"""Offline scoring of JSON lines (``finsent classify``), in constant memory.

Input: one JSON object a line with ``text`` (or ``title`` and an optional
``summary``) and an optional ``id``.  Output: one JSON line per input line, in
order.  A line that is not UTF-8, not a JSON object or has no text gets an
error line ``{"id": ..., "line": N, "error": "..."}``; scoring goes on and the
caller exits non-zero at the end.  Blank lines are skipped.  Lines are read and
scored in chunks, so memory does not grow with the input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import IO, Any, Iterable

from model.engine import Engine
from model.text import model_input
from stream.linking import default_linker
from stream.schema import link_tickers

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


def parse_line(raw: bytes | str) -> tuple[Any, str | None, str | None]:
    """``(id, text, error)`` for one input line; exactly one of text/error is set."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return None, None, f"not UTF-8: {exc.reason} at byte {exc.start}"
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as exc:
        return None, None, f"not JSON: {exc.msg} (column {exc.colno})"
    if not isinstance(obj, dict):
        return None, None, f"not a JSON object: {type(obj).__name__}"
    ident = obj.get("id")
    text = obj.get("text")
    if text is not None and not isinstance(text, str):
        return ident, None, "field 'text' must be a string"
    if text and text.strip():
        text = model_input(text)  # the one input contract (model.text), as in the worker
    else:
        title, summary = obj.get("title"), obj.get("summary")
        if title is not None and not isinstance(title, str):
            return ident, None, "field 'title' must be a string"
        if summary is not None and not isinstance(summary, str):
            return ident, None, "field 'summary' must be a string"
        text = model_input(title, summary)
    if not text.strip():
        return ident, None, "no text: need a non-empty 'text' or 'title'"
    return ident, text, None


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
    pending: list[tuple[int, Any, str | None, str | None]] = []

    def flush() -> None:
        texts = [t for _, _, t, _ in pending if t is not None]
        preds = iter(engine.predict(texts)) if texts else iter(())
        buf = []
        for line_no, ident, text, error in pending:
            if error is not None:
                buf.append(json.dumps({"id": ident, "line": line_no, "error": error}, ensure_ascii=False))
                stats.errors += 1
                continue
            p = next(preds)
            row = {"id": ident}
            for f in OUTPUT_FIELDS:
                v = getattr(p, f)
                row[f] = _round(v) if isinstance(v, float) else v
            row["model_version"] = engine.model_version
            row["tickers"] = list(link_tickers(linker, (), text)[0])
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
        ident, text, error = parse_line(stripped)
        pending.append((line_no, ident, text, error))
        if len(pending) >= chunk_size:
            flush()
    flush()
    return stats
