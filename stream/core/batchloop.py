"""The batch loop, without Faust: prepare -> commit -> produce -> ack, batch after batch.

Its steps are named as Quix Streams' ``Checkpoint.commit`` names its own:

1. **prepare** (the model thread): decode, validate, dedupe, link what the message does not carry, score,
   build the rows, mark the stories (:meth:`BatchProcessor.prepare`).  With a ``scorer`` (``--jobs N``:
   model processes) the model's part runs there, several batches at once, and the rows are built in
   batch order just before the commit;
2. **commit** (the DB thread): one transaction, then alert detection (:meth:`BatchProcessor.store`),
   and the ``news.scored`` bytes of what was inserted;
3. **produce**: the dead letters and the scored records handed to the outlet (news.deadletter and
   news.scored through the worker's producer; nothing in an in-process replay);
4. **ack**: once they are delivered, the batch's ``ack`` runs: the worker releases the Kafka offsets,
   a replay from Kafka commits its consumer group, an archive replay counts.

A pipeline of depth two: batch k+1 is prepared while batch k commits.  Commits, produces and acks
follow the batches' order; a batch commits after the previous one's commit only; a batch whose commit
fails fails the loop at once (:attr:`BatchLoop.failed`), nothing after it commits or is acknowledged,
and what was not acknowledged is read again by the next run (the writes are idempotent).

The Faust agent (``stream.app``) and the in-process replay (``stream.sinks.store``) are thin adapters
that feed it batches: both run this very code.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any, Protocol

from stream.core.pipeline import BatchProcessor, BatchResult, RawRecord, Scores, score_inputs, scored_message

DEPTH = 2  # batches committing or delivering while the next one is prepared


class Outlet(Protocol):
    """Where a committed batch's records go (step 3); returns the deliveries to wait for before the ack."""

    async def produce(self, result: BatchResult, scored: list[tuple[bytes, bytes, float]]) -> list[Awaitable]: ...


class Scorer(Protocol):
    """The model elsewhere (``stream.scoring.ProcessScorer``): the executor it runs in and its function."""

    executor: Executor
    jobs: int  # model processes: batches scored at once
    model_version: str

    def function(self) -> Callable[[list[str], list[Any], list[Any]], Scores]: ...


Ack = Callable[[BatchResult], None]


def _retrieved(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()


class BatchLoop:
    """prepare -> commit -> produce -> ack over a :class:`BatchProcessor`; feed it with :meth:`push` (or
    :meth:`run` over an async iterator of batches) from one event loop."""

    def __init__(self, processor: BatchProcessor, *, outlet: Outlet | None = None, publish_scored: bool = False,
                 scorer: Scorer | None = None, depth: int = DEPTH) -> None:
        self.processor = processor
        self.outlet = outlet
        self.publish_scored = publish_scored and outlet is not None
        self.scorer = scorer
        self.depth = depth + (scorer.jobs - 1 if scorer is not None else 0)  # every model process kept busy
        self.model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="finsent-model")
        self.db_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="finsent-db")
        self._inflight: deque[asyncio.Task] = deque()  # batches past prepare, their ack still to come
        self._previous: asyncio.Future | None = None  # the last batch's commit (and produce enqueued)
        self._failed: asyncio.Future | None = None
        self.waited_s = 0.0  # time push() waited for earlier batches (counted as the next batch's produce)

    # ------------------------------------------------------------------ feeding
    @property
    def failed(self) -> asyncio.Future:
        """Done with the first failed batch's exception (the loop is then stopped)."""
        if self._failed is None:
            self._failed = asyncio.get_running_loop().create_future()
            self._failed.add_done_callback(_retrieved)  # a signal: the failure itself is raised by the batch's task
        return self._failed

    def raise_failure(self) -> None:
        if self.failed.done():
            self.failed.result()

    async def push(self, records: Sequence[RawRecord], *, ack: Ack | None = None, unseen: Sequence[str] = (),
                   consume_s: float = 0.0) -> None:
        """Prepare this batch and queue its commit after the previous one's; returns once at most ``depth``
        batches (more with a scorer: one per model process) are committing or delivering."""
        self.raise_failure()
        loop = asyncio.get_running_loop()
        if self.scorer is None:
            res = await loop.run_in_executor(self.model_thread, self.processor.prepare, records, unseen)
            scoring = None
        else:
            res = await loop.run_in_executor(self.model_thread, self.processor.admit, records, unseen)
            scoring = loop.run_in_executor(self.scorer.executor, self.scorer.function(), *score_inputs(res.items)) \
                if res.items else None
            if scoring is not None:
                scoring.add_done_callback(_retrieved)
        res.consume_s, res.produce_s = consume_s, self.waited_s
        committed = loop.create_future()
        committed.add_done_callback(_retrieved)  # a failure nobody awaits is not logged from some thread at exit
        task = asyncio.ensure_future(self._finish(res, scoring, self._previous, committed, ack))
        task.add_done_callback(self._on_done)
        self._inflight.append(task)
        self._previous = committed
        t0 = time.perf_counter()
        while len(self._inflight) > self.depth or (self._inflight and self._inflight[0].done()):
            await self._inflight.popleft()
        self.waited_s = time.perf_counter() - t0

    async def drain(self) -> None:
        """Wait until every batch pushed is committed, produced and acknowledged."""
        while self._inflight:
            await self._inflight.popleft()
        self.raise_failure()

    def cancel(self) -> None:
        """Stop: batches not yet committed are dropped unacknowledged (read again by the next run)."""
        for task in self._inflight:
            task.cancel()
        self._inflight.clear()

    def close(self) -> None:
        self.model_thread.shutdown(wait=True)
        self.db_thread.shutdown(wait=True)

    async def run(self, batches: AsyncIterator[Any], to_batch: Callable[[Any], tuple[Sequence[RawRecord], Ack]],
                  unseen: Callable[[], Sequence[str]] = list) -> None:
        """Push every batch of ``batches`` (``to_batch``: its records and its ack); a failed batch stops this at
        once, not at the next batch's arrival.  Unfinished batches are dropped unacknowledged on exit."""
        t_free = time.perf_counter()
        nxt: asyncio.Future | None = None
        try:
            while True:
                nxt = asyncio.ensure_future(batches.__anext__())
                await asyncio.wait((nxt, self.failed), return_when=asyncio.FIRST_COMPLETED)
                self.raise_failure()
                try:
                    got = nxt.result()
                except StopAsyncIteration:
                    break
                nxt = None
                records, ack = to_batch(got)
                await self.push(records, ack=ack, unseen=unseen(), consume_s=time.perf_counter() - t_free)
                t_free = time.perf_counter()
            await self.drain()
        finally:
            if nxt is not None and not nxt.done():
                nxt.cancel()
            self.cancel()

    # ------------------------------------------------------------------ the steps after prepare
    def _on_done(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None and not self.failed.done():
            self.failed.set_exception(task.exception())

    async def _finish(self, res: BatchResult, scoring: Awaitable[Scores] | None, previous: asyncio.Future | None,
                      committed: asyncio.Future, ack: Ack | None) -> None:
        """commit (after the previous batch's) -> produce -> (deliveries) -> ack."""
        try:
            scores = await self._scores(res, scoring)
            if previous is not None:
                await previous  # commits, produces and acks follow the batches' order
            loop = asyncio.get_running_loop()
            result, scored = await loop.run_in_executor(self.db_thread, self._commit, res, scores)
            deliveries = await self._produce(result, scored)
        except asyncio.CancelledError:
            committed.cancel()
            raise
        except BaseException as exc:
            committed.set_exception(exc)  # the next batch must not commit after this one failed
            raise
        committed.set_result(None)
        if deliveries:
            await asyncio.gather(*deliveries)
        if ack is not None:
            ack(result)

    async def _scores(self, res: BatchResult, scoring: Awaitable[Scores] | None) -> Scores | None:
        if scoring is None:
            return None
        try:
            return await scoring
        except BaseException:
            self.processor.abandon(res)
            raise

    def _commit(self, res: BatchResult, scores: Scores | None) -> tuple[BatchResult, list[tuple[bytes, bytes, float]]]:
        """DB thread: (the rows, when the model ran elsewhere,) the transaction and alert detection, then the
        news.scored bytes (no per-record work on the event loop)."""
        if scores is not None:
            try:
                self.processor.build(res, scores)
            except BaseException:
                self.processor.abandon(res)
                raise
        result = self.processor.store(res)
        t0 = time.perf_counter()
        scored = ([(row.id.encode(), scored_message(row), row.published_at.timestamp()) for row in result.inserted]
                  if self.publish_scored else [])
        result.build_s += time.perf_counter() - t0
        return result, scored

    async def _produce(self, result: BatchResult, scored: list[tuple[bytes, bytes, float]]) -> list[Awaitable]:
        if self.outlet is None:
            return []
        t0 = time.perf_counter()
        deliveries = await self.outlet.produce(result, scored)
        result.produce_s += time.perf_counter() - t0
        return deliveries
