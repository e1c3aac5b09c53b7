"""``finsent db upgrade|status|prune|verify``, ``finsent sql`` and ``finsent rescore``.

Every command takes ``--schema NAME`` (default: the configured schema,
``public``), so a replay schema is managed and queried exactly like the live one.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
import time
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import psycopg2
from tqdm import tqdm

from storage import migrate
from storage.analyst import run_query
from storage.db import ANALYST_ROLE, check_schema, first_line, redact, scrub
from storage.maintenance import prune, verify
from storage.rescore import rescore
from stream.base.errors import UserError
from stream.base.table import format_table as table
from stream.base.timeparse import parse_age, parse_time_arg
from stream.linking import linker_for

if TYPE_CHECKING:
    from stream.base.settings import Settings
    from stream.linking import Linker

log = logging.getLogger("finsent.storage")


def _settings(args: argparse.Namespace) -> Settings:
    s: Settings = args.settings
    if getattr(args, "schema", None):
        s = s.replace(schema=check_schema(args.schema))
    return s


def _schema_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--schema", metavar="NAME",
                   help="PostgreSQL schema (default: FINSENT_SCHEMA or 'public'); replays can use their own")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = sub.add_parser("db", help="database schema: upgrade, status, prune, verify")
    dsub = db.add_subparsers(dest="db_command", metavar="ACTION")

    def db_help(args: argparse.Namespace) -> int:
        db.print_help()
        return 2

    db.set_defaults(func=db_help)

    p = dsub.add_parser("upgrade", help="apply pending migrations, create roles and grants, create partitions ahead")
    _schema_arg(p)
    p.set_defaults(func=cmd_upgrade)

    p = dsub.add_parser("status", help="applied / pending migrations and article partitions")
    _schema_arg(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_status)

    p = dsub.add_parser("prune", help="drop monthly article partitions older than an age (e.g. 400d)")
    _schema_arg(p)
    p.add_argument("--older-than", required=True, metavar="AGE", help="e.g. 400d, 13mo, 1y: partitions ending before now - AGE go")
    p.add_argument("--dry-run", action="store_true", help="show what would be dropped")
    p.add_argument("--with-trends", action="store_true",
                   help="also delete the trend buckets and the id registry of the pruned period "
                        "(default: trends and ids are kept, so replays of it stay idempotent)")
    p.set_defaults(func=cmd_prune)

    p = dsub.add_parser("verify", help="check that the trend buckets equal what the stored articles imply")
    _schema_arg(p)
    p.add_argument("--since", metavar="TIME", help="start (default: the oldest stored month)")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("sql", help="run a read-only query as the finsent_analyst role and print the result")
    p.add_argument("query", metavar="QUERY", help="SQL text, or - to read it from stdin")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="CSV with a header line")
    fmt.add_argument("--json", action="store_true", help="a JSON array of objects")
    p.add_argument("--timeout", default="60s", metavar="DURATION",
                   help="statement timeout, PostgreSQL units (default 60s; 0 = none)")
    _schema_arg(p)
    p.set_defaults(func=cmd_sql)

    p = sub.add_parser("rescore", help="re-classify stored articles with another checkpoint and rebuild their trend buckets")
    p.add_argument("--since", required=True, metavar="TIME", help="published_at from (ISO time or date, or an age like 7d)")
    p.add_argument("--until", metavar="TIME", help="published_at before (default: no limit)")
    p.add_argument("--model", metavar="DIR", help="checkpoint directory (default: FINSENT_MODEL or the shipped one)")
    p.add_argument("--device", default=None, help="auto | cpu | cuda (default: FINSENT_DEVICE or auto)")
    p.add_argument("--batch-size", type=int, default=256, help="articles per transaction (default 256)")
    p.add_argument("--all", action="store_true",
                   help="also re-score articles that already carry the model's version (default: skip them, so a rerun resumes)")
    p.add_argument("--relink", action="store_true",
                   help="also link tickers again with the current alias table, aliases and watchlist, moving the "
                        "ticker trends (implies --all)")
    _schema_arg(p)
    p.set_defaults(func=cmd_rescore)


# --------------------------------------------------------------------------- db
def cmd_upgrade(args: argparse.Namespace) -> int:
    s = _settings(args)
    before = migrate.current_version(s.dsn, s.schema)
    version = migrate.upgrade(s.dsn, schema=s.schema, writer_password=s.writer_password.get_secret_value(),
                              analyst_password=s.analyst_password.get_secret_value())
    if version == before:
        print(f"schema '{s.schema}': at migration version {version}, nothing to apply")
    else:
        print(f"schema '{s.schema}': migrated from version {before} to {version}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    s = _settings(args)
    st = migrate.status(s.dsn, s.schema)
    if args.json:
        print(json.dumps(st, default=_json_default, indent=2))
        return 0
    print(f"schema:          {st['schema']}")
    print(f"version:         {st['version']} (code: {st['code_version']})")
    for a in st["applied"]:
        print(f"  applied {a['version']:04d}_{a['name']}.sql at {a['applied_at']:%Y-%m-%d %H:%M:%S%z}")
    print(f"pending:         {', '.join(st['pending']) or 'none'}")
    parts = st["partitions"]
    print(f"partitions:      {len(parts)} of articles"
          + (f" ({parts[0]['name']} .. {parts[-1]['name']})" if parts else ""))
    for p in parts:
        print(f"  {p['name']:<20} {p['lower']:%Y-%m-%d} .. {p['upper']:%Y-%m-%d}  ~{p['rows_estimate']} rows"
              if p["lower"] else f"  {p['name']} (default)")
    return 0 if not st["pending"] and st["version"] == st["code_version"] else 1


def cmd_prune(args: argparse.Namespace) -> int:
    s = _settings(args)
    age = parse_age(args.older_than)
    res = prune(s.dsn, s.schema, age, dry_run=args.dry_run, with_trends=args.with_trends)
    verb = "would drop" if args.dry_run else "dropped"
    if not res["dropped"]:
        print(f"schema '{s.schema}': no article partition ends before {res['cutoff']:%Y-%m-%d %H:%M} UTC; nothing to drop")
        return 0
    for p in res["dropped"]:
        print(f"{verb} {p['name']} ({p['lower']:%Y-%m-%d} .. {p['upper']:%Y-%m-%d}, {p['rows']} articles)")
    if args.with_trends and not args.dry_run:
        print(f"deleted {res['ids_deleted']} ids and {res['buckets_deleted']} trend buckets before {res['boundary']:%Y-%m-%d}")
    elif not args.with_trends:
        print("trend buckets and article ids of that period are kept (use --with-trends to delete them too)")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    s = _settings(args)
    res = verify(s.dsn, s.schema, parse_time_arg(args.since) if args.since else None)
    bad = res["minute"] + res["hour"] + res["day"]
    print(f"schema '{s.schema}' since {res['since']:%Y-%m-%d}: "
          f"{res['minute']} minute, {res['hour']} hour, {res['day']} day bucket(s) differ")
    for ex in res["examples"]:
        print("  ", *ex)
    return 1 if bad else 0


# --------------------------------------------------------------------------- sql
def _json_default(o: object) -> Any:
    if isinstance(o, (datetime, date)):
        return o.isoformat()
    if isinstance(o, Decimal):
        return float(o)
    if isinstance(o, timedelta):
        return o.total_seconds()
    if isinstance(o, memoryview):
        return o.tobytes().hex()
    return str(o)


def _array_item(x: object) -> str:
    if x is None:
        return "NULL"
    t = _cell(x)
    if t == "" or any(ch in t for ch in ',"{} \\') or t.upper() == "NULL":
        return '"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return t


def _cell(v: object) -> str:
    """A value as PostgreSQL would print it (NULL as empty)."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, list) and any(isinstance(x, (dict, list)) for x in v):
        return json.dumps(v, ensure_ascii=False, default=_json_default)  # a jsonb array
    if isinstance(v, list):
        return "{" + ",".join(_array_item(x) for x in v) + "}"
    if isinstance(v, dict):
        return json.dumps(v, ensure_ascii=False, default=_json_default)
    return str(v)


_NUMERIC = (int, float, Decimal)


def format_table(columns: list[str], rows: list[tuple[Any, ...]]) -> str:
    """psql-like aligned table; numbers right-aligned, NULL empty."""
    cells = [[_cell(v) for v in r] for r in rows]
    numeric = [bool(rows) and all(r[i] is None or (isinstance(r[i], _NUMERIC) and not isinstance(r[i], bool)) for r in rows)
               for i in range(len(columns))]
    return table(columns, cells, psql=True, numeric=numeric)


def cmd_sql(args: argparse.Namespace) -> int:
    s = _settings(args)
    query = sys.stdin.read() if args.query == "-" else args.query
    if not query.strip():
        raise UserError("empty query")
    dsn = s.analyst_dsn
    secrets = s.secret_values() + (dsn,)
    visible = " ".join((redact(dsn), redact(s.dsn), ANALYST_ROLE, "finsent"))
    try:
        cols, rows = run_query(dsn, s.schema, query, args.timeout)
    except psycopg2.OperationalError as exc:
        if getattr(exc, "pgcode", None) is None:  # could not connect
            raise UserError(scrub(
                f"cannot connect as {ANALYST_ROLE} to {redact(dsn)}: {first_line(exc)} "
                "(run 'finsent db upgrade' to create the role or reset its password from the configuration)",
                *secrets, visible=visible)) from None
        return _sql_error(exc, secrets, visible)
    except psycopg2.Error as exc:
        return _sql_error(exc, secrets, visible)
    out = sys.stdout
    if cols is None:
        print("OK", file=out)
    elif args.csv:
        w = csv.writer(out, lineterminator="\n")
        w.writerow(cols)
        for r in rows:
            w.writerow([_cell(v) for v in r])
    elif args.json:
        json.dump([dict(zip(cols, r)) for r in rows], out, default=_json_default, ensure_ascii=False)
        out.write("\n")
    else:
        print(format_table(cols, rows), file=out)
    return 0


def _sql_error(exc: psycopg2.Error, secrets: Sequence[str], visible: str) -> int:
    diag = exc.diag
    msg = diag.message_primary or str(exc).strip().splitlines()[0]
    severity = diag.severity or "ERROR"
    code = f" [{exc.pgcode}]" if exc.pgcode else ""
    hint = f" (hint: {diag.message_hint})" if diag.message_hint else ""
    pos = f" at character {diag.statement_position}" if diag.statement_position else ""
    line = " ".join(f"{severity}{code}: {msg}{pos}{hint}".split())
    print(f"finsent sql: {scrub(line, *secrets, visible=visible)}", file=sys.stderr)
    return 1


# --------------------------------------------------------------------------- rescore
def _linker(s: Settings) -> Linker:
    return linker_for(s.aliases, s.watchlist)


def cmd_rescore(args: argparse.Namespace) -> int:
    s = _settings(args)
    since = parse_time_arg(args.since)
    until = parse_time_arg(args.until) if args.until else None
    if args.batch_size < 1:
        raise UserError("--batch-size must be at least 1")

    from model.engine import load_engine  # here: ~0.09 s of start-up for every finsent command

    engine = load_engine(args.model or s.model, device=args.device or s.device)
    started = time.monotonic()
    bar = None
    try:
        bar = tqdm(unit="article", file=sys.stderr, disable=not sys.stderr.isatty())
    except ImportError:  # pragma: no cover
        pass

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.n = done
            bar.refresh()

    try:
        st = rescore(s.dsn, s.schema, engine, since, until=until, batch_size=args.batch_size,
                     only_stale=not (args.all or args.relink), progress=progress,
                     relink=_linker(s) if args.relink else None)
    finally:
        if bar is not None:
            bar.close()
    print(
        f"schema '{s.schema}': re-scored {st['updated']} articles since {st['since']:%Y-%m-%d %H:%M} UTC "
        f"with model {st['model_version']} in {time.monotonic() - started:.1f}s: "
        f"{st['changed_sentiment']} sentiments, {st['changed_ticker_sentiment']} per-ticker sentiments and "
        f"{st['changed_topic']} topics changed"
        + (f", {st['changed_tickers']} ticker lists re-linked" if args.relink else "")
        + "; trend buckets updated"
    )
    return 0
