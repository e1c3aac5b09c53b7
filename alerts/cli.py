"""``finsent alerts list | test | notify``."""

from __future__ import annotations

import argparse
import json
import signal
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from types import FrameType
from typing import TYPE_CHECKING

from stream.base.table import format_table as table
from stream.base.timeparse import parse_time_arg

if TYPE_CHECKING:
    from storage.alerts import Alert
    from stream.base.settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("alerts", help="negative-spike alerts: list them, test delivery, run the notifier")
    asub = p.add_subparsers(dest="alerts_command", metavar="ACTION")

    def alerts_help(args: argparse.Namespace) -> int:
        p.print_help()
        return 2

    p.set_defaults(func=alerts_help)

    lp = asub.add_parser("list", help="show stored alerts (oldest first)")
    lp.add_argument("--since", help="only alerts from this time on: 2h, 30m, 7d or an ISO time (UTC)")
    lp.add_argument("--limit", type=int, default=None, help="only the N most recent")
    lp.add_argument("--json", action="store_true", help="one JSON object per line, every column")
    lp.add_argument("--schema", help="database schema (default: the configured one)")
    lp.set_defaults(func=cmd_list)

    tp = asub.add_parser("test", help="send a test notification to every configured apprise URL; report per URL")
    tp.set_defaults(func=cmd_test)

    npr = asub.add_parser("notify", help="run the alert notifier in the foreground (the worker runs one too)")
    npr.add_argument("--once", action="store_true", help="one pass over the due alerts, then exit")
    npr.add_argument("--schema", help="database schema (default: the configured one)")
    npr.set_defaults(func=cmd_notify)


def _settings(args: argparse.Namespace) -> Settings:
    s: Settings = args.settings
    if getattr(args, "schema", None):
        s = s.replace(schema=args.schema)
    return s


def _short(text: str | None, n: int) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= n else text[: n - 1] + "…"


def _headline(message: str) -> str:
    lines = message.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("Top negative headlines"):
            if i + 1 < len(lines):
                return lines[i + 1].split(". ", 1)[-1]
    return ""


def format_table(alerts: Sequence[Alert]) -> str:
    head = ("id", "window (UTC)", "scope", "neg/all", "share", "base", "z", "delivery", "top headline")
    rows = []
    for a in alerts:
        ws = a.window_start.astimezone(UTC)
        we = a.window_end.astimezone(UTC)
        status = a.delivery_status + (f" ({a.attempts} tries)" if a.delivery_status == "pending" and a.attempts else "")
        if a.replayed:
            status += " [replay]"
        scope = a.scope if a.scope_kind == "ticker" else f"{a.scope_kind}:{a.scope}"
        rows.append((
            str(a.id), f"{ws:%Y-%m-%d %H:%M}-{we:%H:%M}", _short(scope, 28), f"{a.negative}/{a.articles}",
            f"{a.negative_share:.0%}", f"{a.baseline:.1f}", f"{a.z:.1f}", status, _short(_headline(a.message), 70),
        ))
    return table(head, rows)


def cmd_list(args: argparse.Namespace) -> int:
    from alerts.service import list_alerts  # here: apprise and the alert service, ~0.17 s of every command's start-up

    settings = _settings(args)
    since = parse_time_arg(args.since) if args.since else None
    alerts = list_alerts(settings, since=since, limit=args.limit)
    if args.json:
        for a in alerts:
            d = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in a.__dict__.items()}
            print(json.dumps(d, ensure_ascii=False))
        return 0
    if not alerts:
        print("no alerts" + (f" since {since:%Y-%m-%d %H:%M} UTC" if since else ""))
        return 0
    print(format_table(alerts))
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    from alerts.notifier import send_test  # here: apprise and the alert service, ~0.17 s of every command's start-up

    results = send_test(args.settings)
    for label, ok in results:
        print(f"{'ok    ' if ok else 'FAILED'}  {label}")
    failed = sum(1 for _, ok in results if not ok)
    if failed:
        print(f"{failed} of {len(results)} URL(s) failed (run with -v for apprise's reason)")
        return 1
    print(f"test notification sent to {len(results)} URL(s)")
    return 0


def cmd_notify(args: argparse.Namespace) -> int:
    from alerts.notifier import Notifier  # here: apprise and the alert service, ~0.17 s of every command's start-up

    n = Notifier(_settings(args))
    if args.once:
        print(f"delivered {n.deliver_pending()} alert(s)")
        n.close()
        return 0
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()
        n.wake()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    n.run(stop)
    return 0
