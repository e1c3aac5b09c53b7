"""The ``finsent`` command line: the entry point, and the commands of the streaming side.

Each package's commands are in its own ``cli`` module, with a ``register(sub)`` function that adds
them to the parser: ``deploy.cli`` (up, down, status), ``storage.cli`` (db, sql, rescore), ``model.cli``
(train, distill, train-entities, evaluate, classify), ``alerts.cli`` (alerts), ``stream.linking.cli``
(tickers) and this module (worker, ingest, replay, demo, plot, dashboard).  :data:`COMMANDS` names
every command with the function that imports its module: only the module of the command being run is
imported (all of them for ``finsent --help`` or an unknown command), so a command's start-up carries
no other package's imports.  A handler receives the parsed arguments, with the settings resolved once
here as ``args.settings``, and returns the process exit code.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

# Never reach a model hub: weights come from local checkpoints only.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from stream.base.config import ConfigError, load_settings, peek_settings
from stream.base.errors import UserError
from stream.base.redact import install_log_scrubber, scrub

Register = Callable[[Any], None]  # register(sub): adds a module's commands to the sub-parsers


# The loaders import a command module when its command runs (go-to-definition follows each import).
def _deploy() -> Register:
    from deploy.cli import register
    return register


def _storage() -> Register:
    from storage.cli import register
    return register


def _model() -> Register:
    from model.cli import register
    return register


def _alerts() -> Register:
    from alerts.cli import register
    return register


def _linking() -> Register:
    from stream.linking.cli import register
    return register


def _streaming() -> Register:
    return register


def _dashboard() -> Register:
    return register_dashboard


# (the commands a module registers, its loader), in the order of 'finsent --help'
COMMANDS: tuple[tuple[tuple[str, ...], Callable[[], Register]], ...] = (
    (("up", "down", "status"), _deploy),
    (("db", "sql", "rescore"), _storage),
    (("train", "distill", "train-entities", "evaluate", "classify"), _model),
    (("alerts",), _alerts),
    (("worker", "ingest", "replay", "demo", "plot"), _streaming),
    (("tickers",), _linking),
    (("dashboard",), _dashboard),
)
# Commands whose start-up is a target read their few settings without pydantic (``peek_settings``:
# about 0.09 s less, issue 24); ``finsent classify`` must start in under 3 s (issue 11).
LIGHT_SETTINGS = frozenset({"classify"})


def _requested(argv: list[str] | None) -> str | None:
    """The command named in ``argv``; None for every command (``argv`` None, or help asked before a command)."""
    for arg in argv or ():
        if arg in ("-h", "--help"):
            return None
        if not arg.startswith("-"):
            return arg
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="finsent",
        description=(
            "Financial news sentiment monitoring: Kafka -> Faust -> transformer -> "
            "PostgreSQL trends -> apprise alerts. With no configuration the embedded "
            "local stack under .finsent/ is used (start it with 'finsent up')."
        ),
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    command = _requested(argv)
    loaders = [load for names, load in COMMANDS if command in names] or [load for _, load in COMMANDS]
    for load in loaders:  # an unknown command registers them all: argparse lists the valid choices
        load()(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("kafka", "aiokafka", "faust", "mode", "urllib3", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    secrets: tuple[str, ...] = ()
    try:
        # once, here: every handler reads args.settings
        args.settings = peek_settings() if args.command in LIGHT_SETTINGS else load_settings()
        secrets = args.settings.secret_values()
        install_log_scrubber(secrets)  # belt and braces: no log line of any library shows a configured secret
        return int(args.func(args) or 0)
    except (UserError, ConfigError) as exc:
        print(f"finsent: error: {scrub(str(exc), *secrets)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("finsent: interrupted", file=sys.stderr)
        return 130


# --------------------------------------------------------------------------- the streaming side's commands
# What a handler needs is imported when it runs, not when the parser is built: the services
# (stream/services.py) pull in Kafka, Faust, pandas and the model (seconds), which 'finsent --help'
# and the other commands do not need.
def register(sub) -> None:
    """worker, ingest, replay, demo and plot."""
    _add_worker(sub)
    _add_ingest(sub)
    _add_replay(sub)
    _add_demo(sub)
    _add_plot(sub)


def _add_worker(sub) -> None:
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


def _add_ingest(sub) -> None:
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


def _add_replay(sub) -> None:
    from pathlib import Path

    from stream.base.timeparse import parse_time_arg

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


def _add_demo(sub) -> None:
    from stream import demo

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


def _add_plot(sub) -> None:
    from storage.trends import BUCKET_CHOICES

    p = sub.add_parser(
        "plot",
        help="chart a ticker's or topic's sentiment trend and volume, with its alert windows (PNG or HTML)",
        description=(
            "Chart the mean sentiment score, the negative share and the article volume of one ticker or "
            "topic over time (UTC), with its alert windows shaded. Reads as the read-only finsent_analyst "
            "role. Prints the path of the file written."
        ),
    )
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--ticker", metavar="T", help="ticker symbol, e.g. AAPL")
    g.add_argument("--topic", metavar="NAME", help="topic name, e.g. Earnings (case-insensitive)")
    g.add_argument("--all", action="store_true", help="all news (the whole market)")
    p.add_argument("--since", metavar="TIME",
                   help="start: ISO time or date (UTC if no offset), or an age like 6h / 7d (default: the scope's first data)")
    p.add_argument("--until", metavar="TIME", help="end, same forms (default: the scope's last data)")
    p.add_argument("--bucket", choices=BUCKET_CHOICES, default="auto",
                   help="bucket width (default auto: from the time range)")
    p.add_argument("--schema", metavar="NAME", help="PostgreSQL schema (default: FINSENT_SCHEMA or 'public')")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="FILE.png or FILE.html (also .svg, .pdf); default <state dir>/plots/<scope>-<time>.png")
    p.set_defaults(func=cmd_plot)


def register_dashboard(sub) -> None:
    from stream.dashboard import DEFAULT_PORT, HOST

    p = sub.add_parser(
        "dashboard",
        help="the live web dashboard and its JSON API under /api/, on 127.0.0.1 (read-only analyst role)",
        description=(
            "Serve the dashboard (overview, ticker/topic pages, alerts pushed live) and its JSON API on "
            f"http://{HOST}:PORT/. Reads PostgreSQL as the read-only finsent_analyst role only."
        ),
    )
    p.add_argument("--port", type=int, default=None,
                   help=f"TCP port on 127.0.0.1 (default: the dashboard_port setting, FINSENT_DASHBOARD_PORT, {DEFAULT_PORT})")
    p.add_argument("--schema", metavar="NAME", help="PostgreSQL schema to show (default: FINSENT_SCHEMA or 'public')")
    p.add_argument("--stop", action="store_true", help="stop the dashboard that 'finsent demo' left running")
    p.set_defaults(func=cmd_dashboard)


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
    from stream.messages.replay import ColumnMap, parse_speed

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
    from stream import demo

    return demo.run_demo(args.settings, demo.DemoOptions(
        items=args.items, tickers=args.tickers, spike_ticker=args.spike_ticker, spike_size=args.spike_size,
        seed=args.seed, down=args.down, no_dashboard=args.no_dashboard, timeout=args.timeout))


def cmd_plot(args) -> int:
    from stream.base.timeparse import parse_time_arg
    from stream.plot import plot_scope

    settings = args.settings
    since = parse_time_arg(args.since) if args.since else None
    until = parse_time_arg(args.until) if args.until else None
    if args.ticker is not None:
        kind, scope = "ticker", args.ticker
    elif args.topic is not None:
        kind, scope = "topic", args.topic
    else:
        kind, scope = "all", "all"
    path = plot_scope(settings, kind, scope, since=since, until=until, out=args.output,
                      bucket=args.bucket, schema=args.schema)
    print(path)
    return 0


def settings_for(base, schema: str | None):
    """``base`` settings for a schema; the demo's schema gets the demo's topics and consumer group (for the lag)."""
    from storage.db import check_schema
    from stream.demo import DEMO_SCHEMA, demo_settings

    s = base
    if schema:
        s = s.replace(schema=check_schema(schema))
    if s.schema == DEMO_SCHEMA:
        s = demo_settings(s)
    return s


def cmd_dashboard(args) -> int:
    from stream.dashboard import HOST, background

    if args.stop:
        stopped = background.stop_background(args.settings.state_dir)
        print("stopped the background dashboard" if stopped else "no background dashboard was running")
        return 0
    # uvicorn, starlette and jinja2 would add 150-290 ms to every finsent command's start-up (measured
    # on top of the CLI's own imports, loaded 2-core machine): loaded only when the dashboard starts
    from stream.dashboard.serve import uvicorn_server
    from stream.dashboard.server import create_app

    settings = settings_for(args.settings, args.schema)
    port = background.dashboard_port(args.port, settings)
    app = create_app(settings)
    _preflight(app, settings)
    print(f"finsent dashboard: http://{HOST}:{port}/  (schema '{settings.schema}', read-only; Ctrl-C stops it)",
          flush=True)
    server = uvicorn_server(app, port)
    try:
        server.run()
    except SystemExit as exc:  # uvicorn exits when the lifespan fails (e.g. the role can write)
        return int(exc.code or 1)
    if not server.started:
        raise UserError(f"the dashboard did not start (port {port} in use? database reachable as finsent_analyst?)")
    return 0


def _preflight(app, settings) -> None:
    """Fail with a clear message before serving: the analyst login works and cannot write."""
    import psycopg2

    from storage.db import first_line, redact
    from stream.dashboard.server import check_read_only  # start-up cost: see cmd_dashboard

    try:
        with app.state.pool.cursor() as cur:
            check_read_only(cur)
    except psycopg2.Error as exc:
        raise UserError(f"the dashboard cannot read the database as {redact(settings.analyst_dsn)}: {first_line(exc)} "
                        "(is the stack up? has 'finsent db upgrade' created the finsent_analyst role?)") from None
    finally:
        app.state.pool.close()


if __name__ == "__main__":
    sys.exit(main())
