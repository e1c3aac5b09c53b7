"""What ``finsent worker``, ``finsent ingest`` and ``finsent replay`` do, given settings and
plain arguments (``stream/cli.py`` only parses the command line and calls these).

Ingest and replay all run through the one loop of ``stream/core/ingest.py``: a source
(``stream/sources/``), the pacer of ``--speed``, a sink (``stream/sinks/``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from stream.app import WorkerParts, run_worker
from stream.base.config import Settings, refuse_default_secrets
from stream.base.errors import UserError
from stream.core import ingest
from stream.core.kafka_io import ensure_topics
from stream.core.pipeline import REPLAY_HEADER
from stream.messages.replay import ColumnMap, Pacer
from stream.metrics import FeedMetrics
from stream.scoring import Elsewhere, ProcessScorer, default_jobs
from stream.sinks.kafka import KafkaSink
from stream.sinks.store import StoreSink
from stream.sources.feeds import Feed, FeedSource, Poller, catalogue_feeds, url_feeds
from stream.sources.files import ArchiveSource
from stream.sources.health import DatabaseHealth
from stream.sources.kafka import KafkaReplaySource
from stream.sources.polite import HostLimiter
from stream.sources.report import catalogue_table
from stream.sources.rss import FeedState
from stream.wiring import build_linker, build_parts

log = logging.getLogger("finsent")


def worker(settings: Settings, *, alerts: bool = True, verbose: bool = False) -> int:
    """Run the Faust worker in the foreground on ``settings`` until SIGINT/SIGTERM."""
    ensure_topics(settings)
    parts = build_parts(settings, alerts=alerts)
    parts.metrics.serve(settings.metrics_port, settings.metrics_bind)
    log.info("worker %s: %s -> schema %s (batch %d, wait %.2fs)", settings.app_id, settings.topic_raw,
             settings.schema, settings.max_batch, settings.max_wait_s)
    return run_worker(settings, parts, loglevel="DEBUG" if verbose else "INFO")


def ingest_rss(settings: Settings, urls: Sequence[str], *, interval: float = 60.0, once: bool = False) -> int:
    """Poll the feeds given by URL into news.raw (``finsent ingest rss URL...``)."""
    return poll_feeds(settings, url_feeds(urls, interval), once=once)


def ingest_catalogue(settings: Settings, names: Sequence[str] = (), *, once: bool = False) -> int:
    """Poll the catalogue's enabled feeds (or the ``names`` given) into news.raw (``finsent ingest``)."""
    try:
        feeds = catalogue_feeds(settings.feeds.catalogue, names)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if not feeds:
        raise UserError("no feed of the catalogue is enabled: switch one on ([feeds.catalogue.NAME] enabled = true "
                        "in finsent.toml; 'finsent ingest --list' shows them) or give URLs: finsent ingest rss URL")
    return poll_feeds(settings, feeds, once=once)


def poll_feeds(settings: Settings, feeds: Sequence[Feed], *, once: bool = False) -> int:
    """Poll ``feeds`` into news.raw, recording their health; a line per feed and poll. Ctrl-C stops it (exit 0)."""
    refuse_default_secrets(settings)  # the health records go to the pipeline's database
    fs = settings.feeds
    poller = Poller(user_agent=fs.user_agent, timeout_s=fs.timeout_s, max_bytes=fs.max_bytes,
                    limiter=HostLimiter(fs.rate_of), extractor=build_linker(settings))
    metrics = FeedMetrics()
    metrics.serve(fs.metrics_port, settings.metrics_bind)
    db_health = DatabaseHealth(settings.dsn, settings.schema)
    source = FeedSource(feeds, FeedState(settings.state_dir / "ingest" / "rss-state.json"), poller,
                        health=(metrics, db_health), jitter=fs.jitter, backoff_max_s=fs.backoff_max_s,
                        unhealthy_after=fs.unhealthy_after, once=once)
    sink = KafkaSink(settings)
    log.info("polling %d feed(s)%s: %s", len(feeds), " once" if once else "", ", ".join(f.name for f in feeds))
    try:
        ingest.run(source, sink)
    except KeyboardInterrupt:
        pass
    finally:
        db_health.close()
    return 0


def list_feeds(settings: Settings) -> int:
    """``finsent ingest --list``: the catalogue and each feed's health (from the database, when it answers)."""
    from storage.feeds import read_feeds  # here: the other commands do not need it

    health, note = None, ""
    try:
        health = read_feeds(settings.dsn, settings.schema)
        if health is None:
            note = f"(health unknown: schema '{settings.schema}' has no feeds table; run 'finsent db upgrade')"
    except Exception as exc:  # noqa: BLE001 - the catalogue is still worth showing
        note = f"(health unknown: the database does not answer: {str(exc).strip().splitlines()[0][:200]})"
    print(catalogue_table(settings.feeds.catalogue, health, settings.feeds.user_agent))
    if note:
        print(note)
    listed = set(settings.feeds.catalogue)
    others = [r for r in health or () if r["name"] not in listed]
    if others:
        print("\nFeeds polled by URL (finsent ingest rss): " + ", ".join(f"{r['name']} ({r['state']})" for r in others))
    return 0


def _replay_headers(notify: bool) -> list[tuple[str, bytes]]:
    return [(REPLAY_HEADER, b"notify" if notify else b"quiet")]


def _batch_size(settings: Settings) -> int:
    return max(settings.max_batch, 64)


@dataclass(frozen=True)
class ArchiveReplay:
    """The options of ``finsent replay PATH``."""

    path: Path
    fmt: str = "auto"
    columns: ColumnMap = ColumnMap()  # noqa: RUF009 - frozen: one shared default is safe
    since: datetime | None = None
    until: datetime | None = None
    limit: int | None = None
    speed: float | None = None  # times real time; None = as fast as possible
    notify: bool = False
    schema: str | None = None  # score and store in-process into this schema
    model: str | None = None  # with schema: the checkpoint
    jobs: int | None = None  # with schema: model processes (None: scoring.default_jobs)


def replay_archive(settings: Settings, opts: ArchiveReplay) -> int:
    """Replay an archive into news.raw, or (``opts.schema``) score and store it in-process."""
    source = ArchiveSource(opts.path, opts.fmt, opts.columns, build_linker(settings), opts.since, opts.until,
                           opts.limit)
    parts = None
    if opts.schema:
        target = settings.replace(schema=opts.schema, model=opts.model or settings.model)
        parts, sink = in_process(target, notify=opts.notify, jobs=opts.jobs)
    else:
        if opts.jobs is not None:
            raise UserError("--jobs needs --schema or --from-kafka (the running workers score what goes into news.raw)")
        sink = KafkaSink(settings, _replay_headers(opts.notify))
    counts = ingest.run(source, sink, Pacer(opts.speed))
    if parts is not None and parts.notifier is not None:
        parts.notifier.deliver_pending()
    stats = source.stats
    print(f"replay: read {stats.read}, {sink.summary()}, invalid {counts.invalid} ({counts.reasons_text()}), "
          f"outside --from/--to {stats.filtered}")
    return 0


def in_process(target: Settings, *, notify: bool, jobs: int | None) -> tuple[WorkerParts, StoreSink]:
    """The worker's parts and the sink that scores and stores through its batch loop, in this process;
    ``jobs``: model processes (None: one per core on the CPU, see :func:`stream.scoring.default_jobs`)."""
    if jobs is not None and jobs < 1:
        raise UserError("--jobs must be at least 1")
    jobs = jobs or default_jobs(target.device)
    scorer = ProcessScorer(target.model, target.device, jobs) if jobs > 1 else None
    try:
        parts = build_parts(target, with_notifier=notify, engine=Elsewhere(scorer) if scorer else None)
    except BaseException:
        if scorer is not None:
            scorer.close()
        raise
    return parts, StoreSink(parts.processor, target.schema, notify=notify, batch_size=_batch_size(target),
                            scorer=scorer)


def replay_kafka(settings: Settings, since: datetime | None, *, schema: str | None = None, model: str | None = None,
                 notify: bool = False, jobs: int | None = None) -> int:
    """Re-process what news.raw retains since ``since``, under a separate consumer group, in-process."""
    if since is None:
        raise UserError("--from-kafka needs --since T")
    target = settings.replace(schema=schema or settings.schema, model=model or settings.model)
    parts, sink = in_process(target, notify=notify, jobs=jobs)
    source = KafkaReplaySource(settings, since, _batch_size(settings))
    ingest.run(source, sink)
    if parts.notifier is not None:
        parts.notifier.deliver_pending()
    print(f"replay from kafka: processed {source.total} records since {since:%Y-%m-%d %H:%M}Z, "
          f"stored {sink.stored} new in schema {target.schema} (group {source.group})")
    return 0
