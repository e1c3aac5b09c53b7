"""CLI commands of the streaming side: worker, ingest, replay, demo (plot and dashboard live beside)."""

from __future__ import annotations

import sys
from pathlib import Path

from stream import demo
from stream.base.errors import UserError
from stream.base.timeparse import parse_time_arg
from stream.messages.replay import ColumnMap, parse_speed


def register(sub) -> None:
    p = sub.add_parser("worker", help="run the Faust worker (score, store, detect, notify) in the foreground",
                       description="Consume news.raw, score batches with the model, store them in PostgreSQL "
                                   "(one transaction per batch, offsets acked after commit), detect spikes "
                                   "and deliver alerts. Stop with Ctrl-C or SIGTERM.")
    p.add_argument("--schema", help="PostgreSQL schema to write to (default: settings, 'public')")
    p.add_argument("--max-batch", type=int, help="records per model batch (default 64)")
    p.add_argument("--max-wait", type=float, help="seconds to wait for a batch to fill (default: settings max_wait_s, 0.05)")
    p.add_argument("--no-alerts", action="store_true", help="do not detect or deliver alerts")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="where the model runs")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("ingest", help="poll live sources into news.raw: the feed catalogue, or feeds by URL",
                       description="With no SOURCE, poll the enabled feeds of the catalogue (settings: "
                                   "[feeds.catalogue.NAME], over the shipped stream/base/feeds.toml): SEC EDGAR "
                                   "filings, press-release wires, the Federal Reserve... Each feed is polled at its "
                                   "interval with jitter, backs off on errors, honours Retry-After, and its health "
                                   "goes to the feeds table ('finsent status', the dashboard). Ctrl-C stops it.")
    p.add_argument("--list", action="store_true", help="show the catalogue and each feed's health, then exit")
    p.add_argument("--feed", action="append", default=[], metavar="NAME",
                   help="poll only this feed of the catalogue, enabled or not (repeatable)")
    p.add_argument("--once", action="store_true", help="poll each feed once and exit")
    isub = p.add_subparsers(dest="source", metavar="SOURCE")
    r = isub.add_parser("rss", help="poll RSS/Atom feeds (URLs or files) into news.raw")
    r.add_argument("urls", nargs="+", metavar="URL")
    r.add_argument("--interval", type=float, default=60.0, help="seconds between polls (default 60)")
    r.add_argument("--once", action="store_true", help="poll once and exit")
    r.set_defaults(func=cmd_ingest_rss)
    p.set_defaults(func=cmd_ingest)

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
    p.add_argument("--jobs", type=int, metavar="N",
                   help="in-process scoring with N model processes, stored in order by one writer (default: one "
                        "per core on the CPU, one on a GPU)")
    p.add_argument("--from-kafka", action="store_true",
                   help="re-process what news.raw still retains (with --since) under a separate consumer group")
    p.add_argument("--since", dest="kafka_since", type=parse_time_arg, help="with --from-kafka: start time")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("demo", help="the whole system on the local stack with a generated day and a planted spike",
                       description=demo.__doc__.split("\n\n")[0])
    p.add_argument("--items", type=int, default=12000, help="approximate number of generated headlines (default 12000)")
    p.add_argument("--tickers", type=int, default=300, help="number of tickers in the generated day (default 300)")
    p.add_argument("--spike-ticker", default=None, help="ticker that gets the planted negative spike")
    p.add_argument("--spike-size", type=int, default=14, help="negative headlines in the planted burst")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--down", action="store_true", help="stop the local stack at the end too")
    p.add_argument("--no-dashboard", action="store_true",
                   help="do not start the dashboard in the background at the end")
    p.add_argument("--timeout", type=float, default=420, help="give up after this many seconds")
    p.set_defaults(func=cmd_demo)


# --------------------------------------------------------------------------- handlers
# The services (stream/services.py) are imported when a command runs, not when the parser is built:
# they pull in Kafka, Faust, pandas and the model (seconds), which 'finsent --help' and the other
# commands do not need.
def cmd_worker(args) -> int:
    from stream import services

    settings = args.settings
    changes = {k: v for k, v in (("schema", args.schema), ("max_batch", args.max_batch),
                                 ("max_wait_s", args.max_wait), ("device", args.device)) if v is not None}
    return services.worker(settings.replace(**changes), alerts=not args.no_alerts, verbose=args.verbose)


def cmd_ingest(args) -> int:
    from stream import services  # here: faust, datasketch, the pipeline: ~0.6 s of every command's start-up

    if args.list:
        return services.list_feeds(args.settings)
    return services.ingest_catalogue(args.settings, args.feed, once=args.once)


def cmd_ingest_rss(args) -> int:
    from stream import services  # here: faust, datasketch, the pipeline: ~0.6 s of every command's start-up

    return services.ingest_rss(args.settings, args.urls, interval=args.interval, once=args.once)


def cmd_replay(args) -> int:
    from stream import services  # here: faust, datasketch, the pipeline: ~0.6 s of every command's start-up

    settings = args.settings
    if args.from_kafka:
        return services.replay_kafka(settings, args.kafka_since, schema=args.schema, model=args.model,
                                     notify=args.notify, jobs=args.jobs)
    if args.path is None:
        raise UserError("replay needs a PATH (or --from-kafka --since T)")
    return services.replay_archive(settings, services.ArchiveReplay(
        path=args.path, fmt=args.format, speed=parse_speed(args.speed), since=args.since, until=args.until,
        columns=ColumnMap(published_at=args.time_col, title=args.title_col, tickers=args.tickers_col),
        limit=args.limit, notify=args.notify, schema=args.schema, model=args.model, jobs=args.jobs))


def cmd_demo(args) -> int:
    return demo.run_demo(args.settings, demo.DemoOptions(
        items=args.items, tickers=args.tickers, spike_ticker=args.spike_ticker, spike_size=args.spike_size,
        seed=args.seed, down=args.down, no_dashboard=args.no_dashboard, timeout=args.timeout))


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use 'finsent worker|ingest|replay'")
