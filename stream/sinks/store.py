"""Score and store in this process, through the worker's own batch loop: ``finsent replay --schema`` and
``--from-kafka``.

Records are gathered into batches of ``batch_size`` (a checkpoint ends a batch too) and pushed into
:class:`stream.core.batchloop.BatchLoop`, the very loop the worker's Faust agent feeds: batch k commits on the
DB thread while batch k+1 is scored, in batch order, one transaction per batch, alerts detected after
each commit.  The loop runs on an event loop of its own thread; this sink's methods run on the ingest
loop's thread, which is also where a checkpoint's commit runs (the Kafka consumer is not thread-safe),
once every batch before it is committed.  With a ``scorer`` (``--jobs N``) the model runs in N processes.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from stream.core.batchloop import BatchLoop, Scorer
from stream.core.ingest import Record
from stream.core.kafka_io import encode_item
from stream.core.pipeline import REPLAY_HEADER, BatchProcessor, BatchResult, RawRecord


class StoreSink:
    def __init__(self, processor: BatchProcessor, schema: str, *, notify: bool, batch_size: int,
                 scorer: Scorer | None = None) -> None:
        self.processor = processor
        self.schema = schema
        self.header = ((REPLAY_HEADER, b"notify" if notify else b"quiet"),)
        self.batch_size = batch_size
        self.batch: list[RawRecord] = []
        self.stored = self.skipped = self.dead = 0
        self.scorer = scorer
        self.loop = BatchLoop(processor, scorer=scorer)
        self._events = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._events.run_forever, name="finsent-replay-loop", daemon=True)
        self._thread.start()
        self._due: deque[tuple[Callable[[], str | None], Callable[[str], None] | None]] = deque()

    def write(self, record: Record) -> None:
        raw = record.raw
        if record.item is not None:
            self.batch.append(RawRecord(value=encode_item(record.item), headers=self.header))
        else:
            self.batch.append(RawRecord(value=raw.value, key=raw.key, topic=raw.topic, partition=raw.partition,
                                        offset=raw.offset, timestamp_ms=raw.timestamp_ms, headers=self.header))
        if len(self.batch) >= self.batch_size:
            self._push()

    def checkpoint(self, commit: Callable[[], str | None], report: Callable[[str], None] | None = None) -> None:
        """Run ``commit`` (on this thread) once every record written so far is committed; ``report`` gets what
        it returns.  The batch so far is pushed; the loop does not stop for it."""
        self._push(commit, report)

    def flush(self) -> None:
        """Everything written so far committed (and the checkpoints before it run)."""
        if self.batch:
            self._push()
        self._call(self.loop.drain())
        self._run_due()

    def close(self) -> None:
        """Stop: batches not committed yet are dropped (an archive replay is simply run again)."""
        try:
            self._call(self._cancel())
        finally:
            self._events.call_soon_threadsafe(self._events.stop)
            self._thread.join()
            self.loop.close()  # a commit in flight finishes first (its callback finds the loop stopped, not closed)
            self._events.close()
            if self.scorer is not None:
                self.scorer.close()

    def summary(self) -> str:
        return f"stored {self.stored} in schema {self.schema}, already there {self.skipped}, dead-lettered {self.dead}"

    # ------------------------------------------------------------------ internals
    def _push(self, commit: Callable[[], str | None] | None = None, report: Callable[[str], None] | None = None) -> None:
        batch, self.batch = self.batch, []

        def ack(result: BatchResult) -> None:  # on the loop's thread, in batch order
            self.stored += len(result.inserted)
            self.skipped += result.skipped
            self.dead += len(result.dead)
            if commit is not None:
                self._due.append((commit, report))

        self._call(self.loop.push(batch, ack=ack))
        self._run_due()

    def _run_due(self) -> None:
        while self._due:
            commit, report = self._due.popleft()
            message = commit()
            if message and report is not None:
                report(message)

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._events).result()

    async def _cancel(self) -> None:
        self.loop.cancel()
