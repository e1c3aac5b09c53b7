"""The one ingest loop: records of a source, paced, into a sink, with one progress bar.

Every way news gets in runs through :func:`run`:

=========================  ===========================  ======================================
command                    source (``stream/sources/``)  sink (``stream/sinks/``)
=========================  ===========================  ======================================
``finsent ingest [rss]``   :class:`FeedSource`           :class:`KafkaSink` (news.raw)
``finsent replay PATH``    :class:`ArchiveSource`        :class:`KafkaSink` (news.raw)
``replay PATH --schema``   :class:`ArchiveSource`        :class:`StoreSink` (score + store here)
``replay --from-kafka``    :class:`KafkaReplaySource`    :class:`StoreSink`
=========================  ===========================  ======================================

A source is an iterable of :class:`Record` (a validated article, or the raw bytes to hand
on as they are) with a ``name`` and an optional ``total`` for the progress bar.  It may
yield a :class:`Checkpoint` between records: its commit (the feed state, the consumer offsets)
runs only once everything before it is durable (acknowledged by the broker, or committed in
PostgreSQL), and what it returns is printed.  A sink that keeps batches in flight (the in-process
store) takes the checkpoint itself (``checkpoint(commit, report)``) and runs it when its batches are
committed, without stopping; for the others the loop flushes the sink first.  The pacing rule is
``stream.messages.replay.Pacer`` (``--speed``): a validated article waits until its event time is due.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from tqdm import tqdm

from stream.core.pipeline import RawRecord
from stream.messages.raw_message import NewsItem


@dataclass(frozen=True, slots=True)
class Record:
    """One record of a source: a validated article (sent keyed by id, timestamp = published_at),
    or raw bytes handed on unchanged (an invalid row, with the ``reason`` the source found, or a
    record read back from Kafka, which the worker's batch step validates itself)."""

    item: NewsItem | None = None
    raw: RawRecord | None = None
    reason: str | None = None  # why the source could not validate it (counted by the loop)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Everything the source gave before this is to be made durable; then ``commit`` runs
    (its return value, if any, is printed on stdout)."""

    commit: Callable[[], str | None] | None = None


class Source(Protocol):
    name: str  # the progress bar's label
    total: int | None  # records to expect (None: unknown or endless)
    progress: bool  # whether a progress bar is worth showing

    def __iter__(self) -> Iterator[Record | Checkpoint]: ...

    def close(self) -> None: ...


class Sink(Protocol):
    """Also, optionally, ``checkpoint(commit, report)``: run ``commit`` once what was written so far is
    durable, and hand what it returns to ``report`` (else the loop flushes, then commits)."""

    def write(self, record: Record) -> None: ...

    def flush(self) -> None:
        """Make everything written so far durable (raise if it cannot be)."""

    def close(self) -> None:
        """Release connections (also after an error)."""


@dataclass
class Counts:
    records: int = 0  # records handed to the sink
    invalid: int = 0  # of them, the ones the source could not validate
    reasons: dict[str, int] = field(default_factory=dict)

    def reasons_text(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(self.reasons.items())) or "none"


def run(source: Source, sink: Sink, pacer=None, *, bar: Callable[..., tqdm] = tqdm,
        out=None) -> Counts:
    """Move every record of ``source`` into ``sink``; flush at each checkpoint and at the end.

    ``pacer``: a :class:`stream.messages.replay.Pacer` (``None`` = as fast as the sink takes them).
    The source and the sink are closed on return, also after an error."""
    counts = Counts()
    progress = bar(total=source.total, desc=source.name, unit="item", dynamic_ncols=True,
                   disable=None if source.progress else True)
    def report(message: str | None) -> None:
        if message:
            progress.write(message, file=out or sys.stdout)
            (out or sys.stdout).flush()

    try:
        for rec in source:
            if isinstance(rec, Checkpoint):
                if rec.commit is not None and hasattr(sink, "checkpoint"):
                    sink.checkpoint(rec.commit, report)
                else:
                    sink.flush()
                    report(rec.commit() if rec.commit is not None else None)
                continue
            if rec.item is not None and pacer is not None:
                pacer.wait_for(rec.item.published_at)
            sink.write(rec)
            counts.records += 1
            if rec.reason is not None:
                counts.invalid += 1
                counts.reasons[rec.reason] = counts.reasons.get(rec.reason, 0) + 1
            progress.update(1)
        sink.flush()
    finally:
        progress.close()
        try:
            sink.close()
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()
    return counts


class ListSource:
    """Records already in memory (the demo's generated day)."""

    progress = True

    def __init__(self, items: Iterable[NewsItem], name: str) -> None:
        self.items = list(items)
        self.name = name
        self.total = len(self.items)

    def __iter__(self) -> Iterator[Record]:
        return (Record(item=it) for it in self.items)

    def close(self) -> None:
        pass
