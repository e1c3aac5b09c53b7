"""CLI commands of the streaming side: worker, ingest, replay (demo and plot live beside)."""

from __future__ import annotations

import logging
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from stream.base.config import Settings, load_settings
from stream.base.errors import UserError
from stream.base.timeparse import parse_time_arg

log = logging.getLogger("finsent")


def register(sub) -> None:
    p = sub.add_parser("worker", help="run the Faust worker (score, store, detect, notify) in the foreground",
                       description="Consume news.raw, score batches with the model, store them in PostgreSQL "
                                   "(one transaction per batch, offsets acked after commit), detect spikes "
                                   "and deliver alerts. Stop with Ctrl-C or SIGTERM.")
    p.add_argument("--schema", help="PostgreSQL schema to write to (default: settings, 'public')")
    p.add_argument("--max-batch", type=int, help="records per model batch (default 64)")
    p.add_argument("--max-wait", type=float, help="seconds to wait for a batch to fill (default 0.25)")
    p.add_argument("--no-alerts", action="store_true", help="do not detect or deliver alerts")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="where the model runs")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("ingest", help="poll live sources into news.raw")
    isub = p.add_subparsers(dest="source", metavar="SOURCE")
    r = isub.add_parser("rss", help="poll RSS/Atom feeds (URLs or files) into news.raw")
    r.add_argument("urls", nargs="+", metavar="URL")
    r.add_argument("--interval", type=float, default=60.0, help="seconds between polls (default 60)")
    r.add_argument("--once", action="store_true", help="poll once and exit")
    r.set_defaults(func=cmd_ingest_rss)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])

    p = sub.add_parser(
        "replay", help="replay an archive (JSONL[.gz], CSV, Parquet) into news.raw, keeping event times",
        description="Replay history through the same pipeline. By default the archive is produced into "
                    "news.raw (record timestamp = published_at) for the running worker(s). With --schema NAME "
                    "or --from-kafka the records are scored and stored in-process (no worker needed), e.g. to "
                    "rebuild trends with another model beside the live ones. Alerts found in a replay are "
                    "stored with replayed=true and only sent with --notify.")
    p.add_argument("path", nargs="?", type=Path, help="archive file (.jsonl, .jsonl.gz, .csv, .parquet)")
    p.add_argument("--speed", default="max", help="X times real time, or 'max' (default)")
    p.add_argument("--from", dest="since", type=parse_time_arg, help="skip items published before T")
    p.add_argument("--to", dest="until", type=parse_time_arg, help="skip items published at or after T")
    p.add_argument("--notify", action="store_true", help="deliver alerts found in this replay")
    p.add_argument("--format", default="auto", choices=("auto", "jsonl", "csv", "parquet"))
    p.add_argument("--time-col", default="published_at", help="column with the event time")
    p.add_argument("--title-col", default="title", help="column with the headline (falls back to 'text')")
    p.add_argument("--tickers-col", default="tickers", help="column with tickers (falls back to 'ticker')")
    p.add_argument("--limit", type=int, help="stop after N rows")
    p.add_argument("--schema", help="score and store in-process into this PostgreSQL schema")
    p.add_argument("--model", help="checkpoint dir for in-process scoring (default: settings)")
    p.add_argument("--from-kafka", action="store_true",
                   help="re-process what news.raw still retains (with --since) under a separate consumer group")
    p.add_argument("--since", dest="kafka_since", type=parse_time_arg, help="with --from-kafka: start time")
    p.set_defaults(func=cmd_replay)


# --------------------------------------------------------------------------- building blocks
def build_parts(settings: Settings, *, alerts: bool = True, with_notifier: bool = True, engine=None):
    """Load the model once, open the writer, prepare alerting: everything a worker holds.

    ``engine``: an already built engine (the benchmark's null model) instead of the checkpoint's."""
    from deploy.localstack import migrate
    from model.engine import load_engine
    from storage.writer import Writer
    from stream.app import WorkerParts
    from stream.metrics import WorkerMetrics
    from stream.pipeline import BatchProcessor
    from stream.linking import linker_for
    from stream.base.config import refuse_default_secrets

    refuse_default_secrets(settings)  # a database off the loopback with a shipped password: refuse
    migrate(settings, quiet=True)
    if engine is None:
        engine = load_engine(settings.model, device=settings.device)
    log.info("model %s loaded on %s", engine.model_version, engine.device)
    writer = Writer(settings.dsn, schema=settings.schema)
    extractor = linker_for(settings.aliases, settings.watchlist)
    service = notifier = None
    if alerts:
        from alerts.service import AlertService

        service = AlertService(settings)
        if with_notifier:
            from alerts.notifier import Notifier

            notifier = Notifier(settings)
    from stream.novelty import StoryIndex, warm_start

    novelty = StoryIndex(settings.alerts.story_horizon_s, settings.alerts.story_threshold)
    warm_start(novelty, settings)
    processor = BatchProcessor(engine, writer, extractor=extractor, alerts=service, novelty=novelty)
    return WorkerParts(processor=processor, metrics=WorkerMetrics(), notifier=notifier)


def cmd_worker(args) -> int:
    from stream.app import run_worker
    from stream.kafka_io import ensure_topics

    settings = load_settings()
    changes = {k: v for k, v in (("schema", args.schema), ("max_batch", args.max_batch),
                                 ("max_wait_s", args.max_wait), ("device", args.device)) if v is not None}
    settings = settings.replace(**changes)
    ensure_topics(settings)
    parts = build_parts(settings, alerts=not args.no_alerts)
    parts.metrics.serve(settings.metrics_port, settings.metrics_bind)
    log.info("worker %s: %s -> schema %s (batch %d, wait %.2fs)", settings.app_id, settings.topic_raw,
             settings.schema, settings.max_batch, settings.max_wait_s)
    return run_worker(settings, parts, loglevel="DEBUG" if args.verbose else "INFO")


def cmd_ingest_rss(args) -> int:
    from stream.kafka_io import ensure_topics, make_producer, send_item
    from stream.rss import FeedState, mark_sent, poll_feed
    from stream.linking import linker_for

    settings = load_settings()
    ensure_topics(settings)
    producer = make_producer(settings)
    state = FeedState(settings.state_dir / "ingest" / "rss-state.json")
    extractor = linker_for(settings.aliases, settings.watchlist)
    try:
        while True:
            for url in args.urls:
                items, invalid = poll_feed(url, state, extractor)
                for item in items:
                    send_item(producer, settings.topic_raw, item)
                producer.flush()  # acknowledged by the broker before we remember them as sent
                mark_sent(state, url, items)
                state.save()
                print(f"{datetime.now(timezone.utc):%H:%M:%S} {url}: {len(items)} new, {invalid} invalid", flush=True)
            if args.once:
                return 0
            time.sleep(args.interval)
    except KeyboardInterrupt:
        return 0
    finally:
        producer.close()


def cmd_replay(args) -> int:
    from tqdm import tqdm

    from stream.replay import ColumnMap, Pacer, ReplayStats, count_rows, parse_speed, prepare, read_rows
    from stream.linking import linker_for

    settings = load_settings()
    if args.from_kafka:
        return replay_from_kafka(settings, args)
    if args.path is None:
        raise UserError("replay needs a PATH (or --from-kafka --since T)")
    speed = parse_speed(args.speed)
    columns = ColumnMap(published_at=args.time_col, title=args.title_col, tickers=args.tickers_col)
    extractor = linker_for(settings.aliases, settings.watchlist)
    stats = ReplayStats()
    rows = read_rows(args.path, args.format)
    if args.limit:
        import itertools

        rows = itertools.islice(rows, args.limit)
    total = count_rows(args.path, args.format)
    if args.limit:
        total = min(total or args.limit, args.limit)
    prepared = prepare(rows, columns, extractor, stats, args.since, args.until)
    bar = tqdm(total=total, unit="item", desc="replay", dynamic_ncols=True, disable=None)
    if args.schema:
        result = replay_in_process(settings.replace(schema=args.schema, model=args.model or settings.model),
                                   prepared, bar, notify=args.notify)
    else:
        result = replay_to_kafka(settings, prepared, bar, Pacer(speed), notify=args.notify)
    bar.close()
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(stats.reasons.items())) or "none"
    print(f"replay: read {stats.read}, {result}, invalid {stats.invalid} ({reasons}), "
          f"outside --from/--to {stats.filtered}")
    return 0


def replay_to_kafka(settings: Settings, prepared, bar, pacer, notify: bool) -> str:
    from stream.kafka_io import ensure_topics, make_producer, send_item
    from stream.pipeline import REPLAY_HEADER

    ensure_topics(settings)
    producer = make_producer(settings)
    headers = [(REPLAY_HEADER, b"notify" if notify else b"quiet")]
    sent = 0
    failures: list[Exception] = []
    try:
        for p in prepared:
            if p.item is None:
                producer.send(settings.topic_raw, value=p.raw, headers=headers)
            else:
                pacer.wait_for(p.item.published_at)
                send_item(producer, settings.topic_raw, p.item, headers).add_errback(failures.append)
            sent += 1
            bar.update(1)
            if failures:
                raise UserError(f"Kafka refused a record: {failures[0]}")
        producer.flush()
    finally:
        producer.close()
    if failures:
        raise UserError(f"Kafka refused a record: {failures[0]}")
    return f"sent {sent} to {settings.topic_raw}"


def replay_in_process(settings: Settings, prepared, bar, notify: bool) -> str:
    """Score and store directly (same BatchProcessor as the worker) into settings.schema."""
    from stream.kafka_io import encode_item
    from stream.pipeline import REPLAY_HEADER, RawRecord

    parts = build_parts(settings, with_notifier=notify)
    header = ((REPLAY_HEADER, b"notify" if notify else b"quiet"),)
    stored = skipped = dead = 0
    batch: list[RawRecord] = []

    def flush() -> None:
        nonlocal stored, skipped, dead
        res = parts.processor.process(batch)
        stored += len(res.inserted)
        skipped += res.skipped
        dead += len(res.dead)
        bar.update(len(batch))
        batch.clear()

    for p in prepared:
        batch.append(RawRecord(value=encode_item(p.item) if p.item else p.raw, headers=header))
        if len(batch) >= max(settings.max_batch, 64):
            flush()
    if batch:
        flush()
    if parts.notifier is not None:
        parts.notifier.deliver_pending()
    return f"stored {stored} in schema {settings.schema}, already there {skipped}, dead-lettered {dead}"


def replay_from_kafka(settings: Settings, args) -> int:
    """Re-process what news.raw retains since T, under a separate consumer group, in-process."""
    from kafka import KafkaConsumer, TopicPartition
    from tqdm import tqdm

    from stream.pipeline import REPLAY_HEADER, RawRecord

    if args.kafka_since is None:
        raise UserError("--from-kafka needs --since T")
    target = settings.replace(schema=args.schema or settings.schema, model=args.model or settings.model)
    parts = build_parts(target, with_notifier=args.notify)
    group = f"{settings.app_id}-replay-{int(time.time())}"
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=group,
                             enable_auto_commit=False, max_partition_fetch_bytes=4 * 1024 * 1024)
    parts_of = consumer.partitions_for_topic(settings.topic_raw) or set()
    tps = [TopicPartition(settings.topic_raw, p) for p in sorted(parts_of)]
    if not tps:
        raise UserError(f"topic {settings.topic_raw} does not exist")
    consumer.assign(tps)
    ends = consumer.end_offsets(tps)
    starts = consumer.offsets_for_times({tp: int(args.kafka_since.timestamp() * 1000) for tp in tps})
    remaining = {}
    for tp in tps:
        off = starts.get(tp)
        if off is None:
            consumer.seek(tp, ends[tp])
        else:
            consumer.seek(tp, off.offset)
            if ends[tp] > off.offset:
                remaining[tp] = ends[tp]
    total = sum(ends[tp] - consumer.position(tp) for tp in remaining)
    bar = tqdm(total=total, unit="item", desc="replay from kafka", disable=None)
    header = ((REPLAY_HEADER, b"notify" if args.notify else b"quiet"),)
    stored = 0
    while remaining:
        polled = consumer.poll(timeout_ms=1000, max_records=max(settings.max_batch, 64))
        batch = []
        for tp, recs in polled.items():
            for r in recs:
                if tp in remaining and r.offset < remaining[tp]:
                    batch.append(RawRecord(value=r.value, key=r.key, topic=r.topic, partition=r.partition,
                                           offset=r.offset, timestamp_ms=r.timestamp, headers=header))
            if tp in remaining and consumer.position(tp) >= remaining[tp]:
                del remaining[tp]
        if batch:
            stored += len(parts.processor.process(batch).inserted)
            bar.update(len(batch))
            consumer.commit()
    bar.close()
    consumer.close()
    print(f"replay from kafka: processed {total} records since {args.kafka_since:%Y-%m-%d %H:%M}Z, "
          f"stored {stored} new in schema {target.schema} (group {group})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use 'finsent worker|ingest|replay'")
