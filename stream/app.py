"""The Faust application: a thin adapter that feeds news.raw batches to the batch loop (``stream.core.batchloop``).

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
from dataclasses import dataclass
from typing import Any

import faust
from mode.supervisors import CrashingSupervisor

from stream.base.config import Settings, machine_settings
from stream.core.batchloop import BatchLoop
from stream.core.pipeline import BatchProcessor, BatchResult, RawRecord
from stream.metrics import WorkerMetrics

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


def make_faust_app(settings: Settings) -> faust.App:
    return faust.App(
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


class FaustOutlet:
    """Step 3 of the batch loop on Faust: dead letters to news.deadletter, scored records straight to the
    app's producer (one record batch per partition); the deliveries are awaited before the ack."""

    def __init__(self, app: faust.App, dead_topic: Any, scored_topic: str) -> None:
        self.app, self.dead_topic, self.scored_topic = app, dead_topic, scored_topic

    async def produce(self, result: BatchResult, scored: list[tuple[bytes, bytes, float]]) -> list:
        futures = []
        for d in result.dead:
            futures.append(await self.dead_topic.send(key=d.record.key, value=d.record.value or b"",
                                                      headers=d.headers()))
        producer = self.app.producer
        for key, value, ts in scored:
            futures.append(await producer.send(self.scored_topic, key, value, None, ts, None))
        return futures


class FaustAdapter:
    """The Faust agent's whole job: events in, the batch loop's steps, offsets out (see the module doc)."""

    def __init__(self, app: faust.App, settings: Settings, parts: WorkerParts, loop: BatchLoop) -> None:
        self.app, self.settings, self.parts, self.loop = app, settings, parts, loop
        self.seen: set[str] = set()  # news.raw partitions that delivered something

    async def run(self, stream) -> None:
        if not log.isEnabledFor(logging.DEBUG):  # Faust set logging up at start: keep our lines, not its chatter
            for name in ("faust", "mode", "aiokafka", "kafka"):
                logging.getLogger(name).setLevel(logging.WARNING)
        if not self.settings.web_port and self.app.monitor in set(self.app.sensors):
            self.app.sensors.remove(self.app.monitor)  # per-event statistics only Faust's web page reads (it is off)
        batches = stream.take_events(self.settings.max_batch, within=self.settings.max_wait_s)
        await self.loop.run(batches, self.to_batch, self.unseen_sources)

    def to_batch(self, events) -> tuple[list[RawRecord], Any]:
        for ev in events:  # hold the offsets until the transaction commits (see module doc)
            ev.message.incref()
        records = [to_raw(ev) for ev in events]
        self.seen.update(f"{r.topic}:{r.partition}" for r in records)

        def ack(result: BatchResult) -> None:
            t0 = time.perf_counter()
            for ev in events:  # the last reference: the offset becomes committable (see module doc)
                ev.message.ack(self.app.consumer)
            result.ack_s = time.perf_counter() - t0
            if result.new_alerts and self.parts.notifier is not None:
                self.parts.notifier.wake()
            self.parts.metrics.observe(result, self.lag_of(events), self.settings.log_every)

        return records, ack

    def unseen_sources(self) -> list[str]:
        """Assigned news.raw partitions that have delivered nothing yet (they hold the watermark)."""
        try:
            assigned = self.app.consumer.assignment()
        except Exception:  # noqa: BLE001 - no assignment yet (or a consumer mid-rebalance): none to wait for
            return []
        return [k for k in (f"{tp.topic}:{tp.partition}" for tp in assigned if tp.topic == self.settings.topic_raw)
                if k not in self.seen]

    def lag_of(self, events) -> int | None:
        try:
            total = 0
            last: dict = {}
            for ev in events:
                last[ev.message.tp] = ev.message.offset
            for tp, off in last.items():
                hw = self.app.consumer.highwater(tp)
                if hw is not None:
                    total += max(hw - off - 1, 0)
            return total
        except Exception:  # noqa: BLE001 - metrics must never break the pipeline
            return None


def build_app(settings: Settings, parts: WorkerParts) -> faust.App:
    """The Faust app: one agent on news.raw feeding the batch loop (``stream.core.batchloop``)."""
    app = make_faust_app(settings)
    raw_codec = dict(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    raw_topic = app.topic(settings.topic_raw, partitions=settings.partitions, **raw_codec)
    app.topic(settings.topic_scored, partitions=settings.partitions, **raw_codec)  # sent via app.producer
    dead_topic = app.topic(settings.topic_deadletter, partitions=settings.partitions, **raw_codec)
    loop = BatchLoop(parts.processor, outlet=FaustOutlet(app, dead_topic, settings.topic_scored),
                     publish_scored=settings.publish_scored)
    adapter = FaustAdapter(app, settings, parts, loop)

    # An unexpected error crashes the whole worker (non-zero exit, for systemd/compose to restart)
    # instead of restarting the agent alone: the failed batch was never acknowledged, so a fresh
    # process re-reads it from the last committed offset.
    @app.agent(raw_topic, concurrency=1, name="finsent.score", supervisor_strategy=CrashingSupervisor)
    async def score(stream):
        await adapter.run(stream)

    app.finsent_loop = loop  # type: ignore[attr-defined]
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
        app.finsent_loop.close()  # type: ignore[attr-defined]
    return 0
