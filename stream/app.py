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
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import faust
from mode.supervisors import CrashingSupervisor

from stream.config import Settings
from stream.metrics import WorkerMetrics
from stream.pipeline import BatchProcessor, RawRecord, scored_message

log = logging.getLogger("finsent.worker")


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
    scored_topic = app.topic(settings.topic_scored, partitions=settings.partitions, **raw_codec)
    dead_topic = app.topic(settings.topic_deadletter, partitions=settings.partitions, **raw_codec)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="finsent-model")

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
        t_free = time.perf_counter()  # per-stage breakdown: consume = from here to a batch in hand
        async for events in stream.take_events(settings.max_batch, within=settings.max_wait_s):
            for ev in events:  # hold the offsets until the transaction commits (see module doc)
                ev.message.incref()
            records = [to_raw(ev) for ev in events]
            consume_s = time.perf_counter() - t_free
            seen.update(f"{r.topic}:{r.partition}" for r in records)
            result = await loop.run_in_executor(executor, parts.processor.process, records, unseen_sources())
            t0 = time.perf_counter()
            sends = []
            for d in result.dead:
                sends.append(await dead_topic.send(key=d.record.key, value=d.record.value or b"",
                                                   headers=d.headers()))
            for row in (result.inserted if settings.publish_scored else ()):
                sends.append(await scored_topic.send(key=row.id.encode(), value=scored_message(row),
                                                     timestamp=row.published_at.timestamp()))
            if sends:
                await asyncio.gather(*sends)
            t1 = time.perf_counter()
            for ev in events:
                ev.message.decref()  # the take's ack is now the final one -> offset committable
            result.consume_s, result.produce_s, result.ack_s = consume_s, t1 - t0, time.perf_counter() - t1
            if result.new_alerts and parts.notifier is not None:
                parts.notifier.wake()
            parts.metrics.observe(result, lag_of(events), settings.log_every)
            t_free = time.perf_counter()

    app.finsent_executor = executor  # type: ignore[attr-defined]
    return app


def run_worker(settings: Settings, parts: WorkerParts, loglevel: str = "INFO") -> int:
    """Run the Faust worker in the foreground until SIGINT/SIGTERM."""
    from faust.worker import Worker

    app = build_app(settings, parts)
    stop = threading.Event()
    notifier_thread = None
    if parts.notifier is not None:
        notifier_thread = threading.Thread(target=parts.notifier.run, args=(stop,), name="finsent-notifier", daemon=True)
        notifier_thread.start()
    worker = Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        stop.set()
        if parts.notifier is not None:
            parts.notifier.wake()
        if notifier_thread is not None:
            notifier_thread.join(timeout=10)
        app.finsent_executor.shutdown(wait=True)  # type: ignore[attr-defined]
    return 0
