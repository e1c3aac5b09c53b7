"""Archive replay: JSON lines (plain or gzip), CSV or Parquet into news.raw, keeping event times.

Rows are mapped to news.raw messages (column names configurable), sent keyed
by article id with the record timestamp set to ``published_at``, and paced at
``speed`` times real time (``None`` = as fast as the broker takes them).  Rows
that do not validate are still sent, unkeyed, so the worker dead-letters them
with their reason: nothing is dropped silently.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from stream.base.errors import UserError
from stream.messages.raw_message import InvalidRecord, NewsItem, TickerExtractor, json_bytes, parse_message

log = logging.getLogger("finsent.replay")


@dataclass(frozen=True)
class ColumnMap:
    published_at: str = "published_at"
    title: str = "title"
    tickers: str = "tickers"
    # fall-backs tried when the main column is absent (StockNet uses text/ticker)
    title_fallbacks: tuple[str, ...] = ("text", "headline")
    tickers_fallbacks: tuple[str, ...] = ("ticker", "symbols")
    time_fallbacks: tuple[str, ...] = ("created_at", "date", "timestamp", "time")

    def to_message(self, row: dict[str, Any]) -> dict[str, Any]:
        msg = {k: v for k, v in row.items() if not _is_missing(v)}

        def take(main: str, fallbacks: tuple[str, ...], target: str) -> None:
            for col in (main, *fallbacks):
                if col in msg:
                    value = msg.pop(col)
                    msg.setdefault(target, value)
                    return

        take(self.published_at, self.time_fallbacks, "published_at")
        take(self.title, self.title_fallbacks, "title")
        take(self.tickers, self.tickers_fallbacks, "tickers")
        if isinstance(msg.get("published_at"), datetime):
            msg["published_at"] = msg["published_at"].isoformat()
        elif hasattr(msg.get("published_at"), "isoformat"):  # pandas Timestamp
            msg["published_at"] = msg["published_at"].isoformat()
        if "tickers" in msg and not isinstance(msg["tickers"], (list, str)):
            try:
                msg["tickers"] = [str(t) for t in msg["tickers"]]  # numpy array from Parquet
            except TypeError:
                pass
        return msg


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def detect_format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    for suffix, fmt in ((".jsonl", "jsonl"), (".ndjson", "jsonl"), (".json", "jsonl"),
                        (".csv", "csv"), (".parquet", "parquet"), (".pq", "parquet")):
        if name.endswith(suffix):
            return fmt
    raise UserError(f"cannot tell the format of {path} (use --format jsonl|csv|parquet)")


def read_rows(path: Path, fmt: str = "auto") -> Iterator[dict[str, Any] | bytes]:
    """Rows as dicts; JSON lines that do not parse come out as their raw bytes."""
    if str(path) != "-" and not path.exists():
        raise UserError(f"archive not found: {path}")
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt == "jsonl":
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rb") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                obj = _json_line(line)
                yield obj if isinstance(obj, dict) else line
    elif fmt == "csv":
        import pandas as pd  # here: pandas, ~0.3 s, only CSV archives need it

        for chunk in pd.read_csv(path, chunksize=10_000, dtype=str, keep_default_na=False,
                                 compression="infer"):
            for row in chunk.to_dict("records"):
                yield {k: (v if v != "" else None) for k, v in row.items()}
    elif fmt == "parquet":
        import pyarrow.parquet as pq  # here: pyarrow, only Parquet archives need it

        pf = pq.ParquetFile(path)
        for batch in pf.iter_batches(batch_size=10_000):
            yield from batch.to_pylist()
    else:
        raise UserError(f"unknown format {fmt!r} (jsonl, csv, parquet)")


def _json_line(line: bytes) -> Any:
    """A decoded JSON line (orjson; what it refuses, e.g. NaN or a 100-digit integer, the standard
    decoder's way), or None when it is not JSON."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


@dataclass
class ReplayStats:
    read: int = 0
    sent: int = 0
    invalid: int = 0
    filtered: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Prepared:
    item: NewsItem | None  # None for an invalid row
    raw: bytes  # what goes to news.raw
    reason: str | None = None  # why the row is invalid


def prepare(rows, columns: ColumnMap, extractor: TickerExtractor | None, stats: ReplayStats,
            since: datetime | None = None, until: datetime | None = None) -> Iterator[Prepared]:
    for row in rows:
        stats.read += 1
        if isinstance(row, bytes):
            stats.invalid += 1
            stats.reasons["not_json"] = stats.reasons.get("not_json", 0) + 1
            yield Prepared(None, row, "not_json")
            continue
        msg = columns.to_message(row)
        try:
            item = parse_message(msg, extractor=extractor)
        except InvalidRecord as exc:
            stats.invalid += 1
            stats.reasons[exc.reason] = stats.reasons.get(exc.reason, 0) + 1
            yield Prepared(None, json_bytes(msg), exc.reason)
            continue
        if (since and item.published_at < since) or (until and item.published_at >= until):
            stats.filtered += 1
            continue
        yield Prepared(item, b"")


class Pacer:
    """Sleeps so that event time advances ``speed`` times faster than wall time."""

    def __init__(self, speed: float | None, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.speed = speed
        self.sleep = sleep
        self.clock = clock
        self._t0: float | None = None
        self._e0: datetime | None = None

    def wait_for(self, event_time: datetime) -> None:
        if not self.speed:
            return
        if self._e0 is None:
            self._e0, self._t0 = event_time, self.clock()
            return
        due = self._t0 + (event_time - self._e0).total_seconds() / self.speed
        delay = due - self.clock()
        if delay > 0:
            self.sleep(delay)


def parse_speed(text: str) -> float | None:
    if text in ("max", "0", "inf"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"--speed takes a number (times real time) or 'max', not {text!r}") from None
    if value <= 0:
        raise UserError("--speed must be positive")
    return value


def count_rows(path: Path, fmt: str) -> int | None:
    """Cheap row count for the progress bar (JSON lines and Parquet only)."""
    try:
        fmt = detect_format(path) if fmt == "auto" else fmt
        if fmt == "parquet":
            import pyarrow.parquet as pq  # here: pyarrow, only Parquet archives need it

            return pq.ParquetFile(path).metadata.num_rows
        if fmt == "jsonl" and path.stat().st_size < 512 * 1024 * 1024:
            opener = gzip.open if path.name.endswith(".gz") else open
            with opener(path, "rb") as f, io.BufferedReader(f) as lines:  # closed here, not by the collector
                return sum(1 for line in lines if line.strip())
    except (OSError, UserError):
        return None
    return None
