"""The Faust application: one agent on news.raw that scores and stores batches.

Guarantee (DESIGN.md): offsets are acknowledged only after the batch's database
transaction has committed.  ``Stream.take_events`` acks every event of a batch
when the loop body returns *or raises*; to keep an abandoned batch (shutdown,
crash) from being acknowledged we take one extra reference on each message
before processing and release it only after the commit, so the take's own ack
is the final one only on success.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import faust
from mode.supervisors import CrashingSupervisor

from stream.base.config import Settings, machine_settings
from stream.metrics import WorkerMetrics
from stream.pipeline import BatchProcessor, BatchResult, RawRecord, scored_message

log = logging.getLogger("finsent.worker")

MAX_INFLIGHT = 2  # batches being stored (DB thread) or delivered and acked while the next one is prepared


def _headers(event) -> tuple[tuple[str, bytes], ...]:
    h = getattr(event, "headers", None) or getattr(event.message, "headers", None) or ()
    items = h.items() if isinstance(h, dict) else h
    return tuple((str(k), bytes(v) if v is not None else b"") for k, v in items)


def to_raw(event) -> RawRecord:
    m = event.message
    ts = getattr(m, "timestamp", None)
    return RawRecord(
        value=m.value, key=m.key, topic=m.topic, partition=m.partition, offset=m.offset,
        timestamp_ms=int(ts * 1000) if ts else None, headers=_headers(event),
    )


@dataclass
class WorkerParts:
    processor: BatchProcessor
    metrics: WorkerMetrics
    notifier: Any | None = None  # alerts.notifier.Notifier (wake())


def broker_url(bootstrap: str) -> str:
    return ";".join(f"kafka://{h.strip()}" for h in bootstrap.split(",") if h.strip())


def build_app(settings: Settings, parts: WorkerParts) -> faust.App:
    app = faust.App(
        settings.app_id,
        broker=broker_url(settings.kafka_bootstrap),
        store="memory://",
        datadir=str(settings.state_dir / "faust"),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        consumer_max_fetch_size=4 * 1024 * 1024,
        producer_max_request_size=4 * 1024 * 1024,
        producer_acks=-1,
        broker_commit_interval=1.0,
        web_enabled=settings.web_port > 0,
        web_bind="127.0.0.1",
        web_port=settings.web_port or 6066,
    )
    raw_codec = dict(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    raw_topic = app.topic(settings.topic_raw, partitions=settings.partitions, **raw_codec)
    app.topic(settings.topic_scored, partitions=settings.partitions, **raw_codec)  # sent via app.producer
    dead_topic = app.topic(settings.topic_deadletter, partitions=settings.partitions, **raw_codec)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="finsent-model")
    db_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="finsent-db")

    def lag_of(events) -> int | None:
        try:
            total = 0
            last: dict = {}
            for ev in events:
                last[ev.message.tp] = ev.message.offset
            for tp, off in last.items():
                hw = app.consumer.highwater(tp)
                if hw is not None:
                    total += max(hw - off - 1, 0)
            return total
        except Exception:  # noqa: BLE001 - metrics must never break the pipeline
            return None

    seen: set[str] = set()

    def unseen_sources() -> list[str]:
        """Assigned news.raw partitions that have delivered nothing yet (they hold the watermark)."""
        try:
            assigned = app.consumer.assignment()
        except Exception:  # noqa: BLE001
            return []
        return [k for k in (f"{tp.topic}:{tp.partition}" for tp in assigned if tp.topic == settings.topic_raw)
                if k not in seen]

    # An unexpected error crashes the whole worker (non-zero exit, for systemd/compose to restart)
    # instead of restarting the agent alone: the failed batch was never acknowledged, so a fresh
    # process re-reads it from the last committed offset.
    @app.agent(raw_topic, concurrency=1, name="finsent.score", supervisor_strategy=CrashingSupervisor)
    async def score(stream):
        loop = asyncio.get_running_loop()
        if not log.isEnabledFor(logging.DEBUG):  # Faust set logging up at start: keep our lines, not its chatter
            for name in ("faust", "mode", "aiokafka", "kafka"):
                logging.getLogger(name).setLevel(logging.WARNING)
        if not settings.web_port and app.monitor in set(app.sensors):
            app.sensors.remove(app.monitor)  # per-event statistics only Faust's web page reads (it is off)
        producer = app.producer
        inflight: deque[asyncio.Task] = deque()  # batches stored, their fan-out and acks still pending

        def store_step(prepared: BatchResult):
            """DB thread: the transaction, then the news.scored bytes (no per-record work on the loop)."""
            result = parts.processor.store(prepared)
            t0 = time.perf_counter()
            out = ([(row.id.encode(), scored_message(row), row.published_at.timestamp()) for row in result.inserted]
                   if settings.publish_scored else [])
            result.build_s += time.perf_counter() - t0
            return result, out

        async def store_and_finish(events, prepared: BatchResult, previous: asyncio.Future | None,
                                   stored: asyncio.Future) -> None:
            """Batch k: commit (after batch k-1's), fan out, then wait for delivery and ack the offsets."""
            try:
                if previous is not None:
                    await previous  # commits, news.scored order and acks follow the batches' order
                result, out = await loop.run_in_executor(db_executor, store_step, prepared)
                t0 = time.perf_counter()
                futures = []
                for d in result.dead:
                    futures.append(await dead_topic.send(key=d.record.key, value=d.record.value or b"",
                                                         headers=d.headers()))
                for key, value, ts in out:  # straight to the producer: one record batch per partition
                    futures.append(await producer.send(settings.topic_scored, key, value, None, ts, None))
                result.produce_s += time.perf_counter() - t0
            except asyncio.CancelledError:
                stored.cancel()
                raise
            except BaseException as exc:
                stored.set_exception(exc)  # the next batch must not commit after this one failed
                raise
            stored.set_result(None)
            if futures:
                await asyncio.gather(*futures)
            t0 = time.perf_counter()
            for ev in events:  # the last reference: the offset becomes committable (see module doc)
                ev.message.ack(app.consumer)
            result.ack_s = time.perf_counter() - t0
            if result.new_alerts and parts.notifier is not None:
                parts.notifier.wake()
            parts.metrics.observe(result, lag_of(events), settings.log_every)

        # Two threads, a pipeline of depth two: the model thread prepares batch k+1 (decode, validate,
        # link, tokenise, score, stories) while the DB thread commits batch k.  A failed batch fails the
        # agent at once (the race below), not at the next batch: nothing after it is acknowledged.
        t_free = time.perf_counter()  # per-stage breakdown: consume = from here to a batch in hand
        waited = 0.0  # time spent waiting for an earlier batch's delivery: counted as produce
        batches = stream.take_events(settings.max_batch, within=settings.max_wait_s)
        failed: asyncio.Future = loop.create_future()  # the first failed batch's exception
        previous: asyncio.Future | None = None  # the last batch's commit (+ fan-out enqueued)
        nxt: asyncio.Future | None = None

        def on_done(task: asyncio.Task) -> None:
            if not task.cancelled() and task.exception() is not None and not failed.done():
                failed.set_exception(task.exception())

        try:
            while True:
                nxt = asyncio.ensure_future(batches.__anext__())
                await asyncio.wait((nxt, failed), return_when=asyncio.FIRST_COMPLETED)
                if failed.done():
                    failed.result()  # raises the batch's error: the agent (and the worker) crash
                try:
                    events = nxt.result()
                except StopAsyncIteration:
                    break
                nxt = None
                for ev in events:  # hold the offsets until the transaction commits (see module doc)
                    ev.message.incref()
                records = [to_raw(ev) for ev in events]
                consume_s = time.perf_counter() - t_free
                seen.update(f"{r.topic}:{r.partition}" for r in records)
                prepared = await loop.run_in_executor(executor, parts.processor.prepare, records, unseen_sources())
                prepared.consume_s = consume_s
                prepared.produce_s = waited
                stored = loop.create_future()
                task = asyncio.ensure_future(store_and_finish(events, prepared, previous, stored))
                task.add_done_callback(on_done)
                inflight.append(task)
                previous = stored
                # at most MAX_INFLIGHT batches are being stored or delivered while the next is prepared
                t0 = time.perf_counter()
                while len(inflight) > MAX_INFLIGHT or (inflight and inflight[0].done()):
                    await inflight.popleft()
                waited = time.perf_counter() - t0
                t_free = time.perf_counter()
            while inflight:
                await inflight.popleft()
        finally:
            if nxt is not None and not nxt.done():
                nxt.cancel()
            for task in inflight:  # stopping: unfinished batches stay unacked and are read again
                task.cancel()
            if failed.done() and not failed.cancelled():
                failed.exception()  # retrieved (raised above or superseded): no "never retrieved" warning

    app.finsent_executor = executor  # type: ignore[attr-defined]
    app.finsent_db_executor = db_executor  # type: ignore[attr-defined]
    return app


def use_uvloop() -> bool:
    """Run the worker's event loop on uvloop when it is installed (measured: bench/pipeline.py)."""
    if machine_settings().event_loop != "uvloop":  # FINSENT_EVENT_LOOP
        return False
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


def run_worker(settings: Settings, parts: WorkerParts, loglevel: str = "INFO") -> int:
    """Run the Faust worker in the foreground until SIGINT/SIGTERM."""
    from faust.worker import Worker  # here: faust.worker, ~0.2 s, only the worker command needs it

    use_uvloop()
    app = build_app(settings, parts)
    if parts.notifier is not None:
        parts.notifier.start()
    worker = Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        if parts.notifier is not None:
            parts.notifier.stop(timeout=10)
        app.finsent_executor.shutdown(wait=True)  # type: ignore[attr-defined]
        app.finsent_db_executor.shutdown(wait=True)  # type: ignore[attr-defined]
    return 0
