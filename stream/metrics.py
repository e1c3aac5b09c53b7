"""Prometheus metrics: the worker's counters/histograms and its periodic progress log line; the feed poller's
per-feed health (``finsent ingest``)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from stream.core.pipeline import STAGES

log = logging.getLogger("finsent.worker")


@dataclass
class WorkerMetrics:
    registry: CollectorRegistry = field(default_factory=lambda: REGISTRY)

    def __post_init__(self) -> None:
        r = self.registry
        self.records = Counter("finsent_records_total", "Records handled by outcome", ["outcome"], registry=r)
        self.deadletters = Counter("finsent_deadletters_total", "Invalid records by reason", ["reason"], registry=r)
        self.batches = Counter("finsent_batches_total", "Batches processed", registry=r)
        self.batch_size = Histogram("finsent_batch_size", "Records per batch",
                                    buckets=(1, 4, 8, 16, 32, 64, 128, 256, 512), registry=r)
        self.infer = Histogram("finsent_inference_seconds", "Model time per batch", registry=r)
        self.db = Histogram("finsent_db_seconds", "Database transaction time per batch", registry=r)
        self.lag = Gauge("finsent_consumer_lag", "Records behind the log end (sum over assigned partitions)", registry=r)
        self.alerts = Counter("finsent_alerts_total", "Alerts stored", registry=r)
        self.stage = Counter("finsent_stage_seconds_total", "Worker time by pipeline stage "
                             "(consume, parse, link, tokenize, infer, build, db, alerts, produce, ack)",
                             ["stage"], registry=r)
        self._stage_children = {name: self.stage.labels(name) for name in STAGES}
        # for the progress line
        self._n_batches = 0
        self._n_records = 0
        self._t_infer = 0.0
        self._t_db = 0.0
        self._since = time.monotonic()

    def serve(self, port: int, bind: str = "127.0.0.1") -> None:
        if port:
            start_http_server(port, addr=bind, registry=self.registry)
            log.info("metrics on http://%s:%d/metrics", bind, port)

    def observe(self, result, lag: int | None, log_every: int) -> None:
        self.batches.inc()
        self.batch_size.observe(result.received)
        self.records.labels("stored").inc(len(result.inserted))
        self.records.labels("skipped").inc(result.skipped)
        for d in result.dead:
            self.records.labels("deadletter").inc()
            self.deadletters.labels(d.reason).inc()
        if result.items:
            self.infer.observe(result.infer_s)
            self.db.observe(result.db_s)
        self.alerts.inc(len(result.new_alerts))
        for name, child in self._stage_children.items():
            seconds = getattr(result, f"{name}_s", 0.0)
            if seconds:
                child.inc(seconds)
        if lag is not None:
            self.lag.set(lag)
        self._n_batches += 1
        self._n_records += result.received
        self._t_infer += result.infer_s
        self._t_db += result.db_s
        if self._n_batches >= log_every:
            dt = max(time.monotonic() - self._since, 1e-9)
            log.info(
                "%.0f records/s | %d batches, mean batch %.1f | inference %.1f ms/batch | db %.1f ms/batch | lag %s",
                self._n_records / dt, self._n_batches, self._n_records / self._n_batches,
                1000 * self._t_infer / self._n_batches, 1000 * self._t_db / self._n_batches,
                "?" if lag is None else lag,
            )
            self._n_batches = self._n_records = 0
            self._t_infer = self._t_db = 0.0
            self._since = time.monotonic()


@dataclass
class FeedMetrics:
    """Per-feed health of ``finsent ingest`` (served on ``feeds.metrics_port``): polls by outcome, new items,
    consecutive failures, healthy or not, the time of the last success."""

    registry: CollectorRegistry = field(default_factory=lambda: REGISTRY)

    def __post_init__(self) -> None:
        r = self.registry
        self.polls = Counter("finsent_feed_polls_total", "Feed polls by outcome (ok, not_modified, error)",
                             ["feed", "outcome"], registry=r)
        self.items = Counter("finsent_feed_items_total", "New items a feed brought (sent to news.raw)", ["feed"],
                             registry=r)
        self.failures = Gauge("finsent_feed_consecutive_failures", "Failed polls of a feed in a row", ["feed"],
                              registry=r)
        self.up = Gauge("finsent_feed_up", "1 while the feed is healthy, 0 once it is unhealthy "
                        "(feeds.unhealthy_after failures in a row)", ["feed"], registry=r)
        self.last_success = Gauge("finsent_feed_last_success_timestamp_seconds",
                                  "Unix time of the feed's last successful poll", ["feed"], registry=r)

    def serve(self, port: int, bind: str = "127.0.0.1") -> None:
        if port:
            start_http_server(port, addr=bind, registry=self.registry)
            log.info("feed metrics on http://%s:%d/metrics", bind, port)

    def record(self, outcome) -> None:  # stream.sources.feeds.Outcome
        name = outcome.feed.name
        self.polls.labels(name, "error" if not outcome.ok else "not_modified" if outcome.not_modified else "ok").inc()
        self.items.labels(name).inc(outcome.items)
        self.failures.labels(name).set(outcome.failures)
        self.up.labels(name).set(1 if outcome.healthy else 0)
        if outcome.ok:
            self.last_success.labels(name).set(outcome.at.timestamp())
