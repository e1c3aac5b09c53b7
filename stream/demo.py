"""``finsent demo``: the whole system on the embedded local stack, in a few minutes.

1. brings the local stack up (Kafka KRaft + PostgreSQL, migrations);
2. starts a worker process on the demo's own topics and schema (``demo``, fresh each run);
3. generates a compressed trading day (hundreds of tickers, all 20 topics, bursts around
   earnings and macro events) with a planted negative spike for one ticker and three headlines
   naming two companies with opposite fortunes, and replays it at full speed through Kafka,
   showing live progress;
4. waits until every article is stored and the spike's window has closed, then prints the
   alert(s) with their headlines, the sentiment toward each company of the two-company
   headlines, the top negative movers, the chart path and next steps (with the dashboard's
   URLs: the spike's alert, and one two-company headline on each company's ticker page);
5. stops the worker it started; leaves the stack up (``--down`` stops it too).

Exit status 1 if the planted spike did not alert.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from deploy import localstack
from storage import migrate, trends
from stream.base.errors import UserError
from stream.base.redact import redact
from stream.base.table import format_table
from stream.core import ingest
from stream.core.kafka_io import ensure_topics
from stream.core.pipeline import REPLAY_HEADER
from stream.dashboard.background import start_background, stop_background
from stream.linking import Linker, read_user_aliases
from stream.messages.raw_message import InvalidRecord, parse_message
from stream.plot import plot_scope
from stream.process import WorkerProcess
from stream.sinks.kafka import KafkaSink
from stream.synthetic.generate import Rivalry, Spike, day_start, generate_stream, quiet_tickers, universe, write_aliases

if TYPE_CHECKING:  # pydantic: not for every command's start-up
    from stream.base.settings import Settings

DEMO_SCHEMA = "demo"
DEMO_PREFIX = "demo."


@dataclass(frozen=True)
class DemoOptions:
    """The options of ``finsent demo`` (``stream/cli.py`` parses them)."""

    items: int = 12000  # approximate number of generated headlines
    tickers: int = 300  # tickers in the generated day
    spike_ticker: str | None = None  # the ticker that gets the planted negative spike (default: a quiet one)
    spike_size: int = 14  # negative headlines in the planted burst
    seed: int = 7
    down: bool = False  # stop the local stack at the end too
    no_dashboard: bool = False  # do not start the dashboard in the background at the end
    timeout: float = 420  # give up after this many seconds


def demo_settings(base: Settings) -> Settings:
    return base.replace(
        schema=DEMO_SCHEMA,
        topic_raw=DEMO_PREFIX + base.topic_raw,
        topic_scored=DEMO_PREFIX + base.topic_scored,
        topic_deadletter=DEMO_PREFIX + base.topic_deadletter,
        app_id=f"{base.app_id}-demo",
    )


def _reset(settings: Settings) -> None:
    """Fresh demo schema and topics, so every run shows the same story."""
    migrate.drop_schema(settings.dsn, settings.schema)
    migrate.upgrade(settings.dsn, schema=settings.schema)
    from kafka.admin import KafkaAdminClient  # here: ~0.12 s of start-up for every finsent command

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="finsent-demo")
    try:
        doomed = [t for t in (settings.topic_raw, settings.topic_scored, settings.topic_deadletter)
                  if t in set(admin.list_topics())]
        if doomed:
            admin.delete_topics(doomed)
            deadline = time.monotonic() + 30
            while set(doomed) & set(admin.list_topics()) and time.monotonic() < deadline:
                time.sleep(0.3)
        try:  # a new consumer group position for the fresh topics
            admin.delete_groups([settings.app_id])
        except Exception:  # noqa: BLE001 - the group may not exist yet
            pass
    finally:
        admin.close()


def _movers(settings: Settings, limit: int = 10):
    return trends.ticker_movers(settings.dsn, settings.schema, limit)


def _alerts(settings: Settings):
    return trends.alert_summaries(settings.dsn, settings.schema)


def _headlines(settings: Settings, ids: list[str], limit: int = 3):
    if not ids:
        return []
    rows = trends.titles(settings.dsn, settings.schema, ids)
    order = {i: k for k, i in enumerate(ids)}
    return sorted(rows, key=lambda r: order.get(r[0], 0))[:limit]


def _table(header: list[str], rows) -> str:
    cells = [["" if v is None else str(v) for v in r] for r in rows]
    return format_table(header, cells, rule=True, indent="  ", strip=False)


def run_demo(base: Settings, args: DemoOptions) -> int:
    """The demo on ``base`` settings (its own schema and topics: :func:`demo_settings`); exit status."""
    t_start = time.monotonic()
    print("== finsent demo ==")
    print("1/5 local stack (Apache Kafka in KRaft mode + PostgreSQL) ...", flush=True)
    localstack.up(base, quiet=False)
    settings = demo_settings(base)

    stop_background(base.state_dir)  # a dashboard of the previous demo run: restarted at the end
    _reset(settings)
    ensure_topics(settings)

    print(f"2/5 starting a worker (topics {settings.topic_raw} -> schema '{settings.schema}') ...", flush=True)
    log_path = settings.state_dir / "demo-worker.log"
    log_path.unlink(missing_ok=True)
    # the generated companies are fictional: their names go into an alias file, and the stream carries
    # no tickers field (like real feeds), so every ticker is linked from a name or a cashtag
    quiet = quiet_tickers(args.tickers, k=2, seed=args.seed)
    spike_ticker = args.spike_ticker or quiet[0]
    # and a story that builds slowly: ten negative headlines over 50 minutes, never five in five
    # minutes, so only the hour time scale sees it
    slow_ticker = quiet[1] if quiet[1] != spike_ticker else quiet[0]
    aliases = settings.state_dir / "demo-aliases.csv"
    write_aliases(aliases, args.tickers, extra=[spike_ticker, slow_ticker])
    worker = WorkerProcess(settings, log_path, FINSENT_ALIASES=str(aliases)).start()
    try:
        day = _generate_day(args, Linker(read_user_aliases(aliases)), spike_ticker, slow_ticker)
        t0 = time.monotonic()
        ingest.run(ingest.ListSource(day.items, "replay into Kafka"), KafkaSink(settings, [(REPLAY_HEADER, b"notify")]))
        print(f"    produced {len(day.items)} records in {time.monotonic() - t0:.1f}s", flush=True)
        _wait_stored(settings, worker, len(day.items), args.timeout, log_path, (spike_ticker, slow_ticker))
    finally:
        worker.stop()

    print("5/5 results")
    alerts, rival_rows = _print_results(settings, day.rival_ids)
    _print_chart_and_next_steps(settings, spike_ticker)
    if not args.no_dashboard and not args.down:
        _dashboard(settings, spike_ticker, day.start, day.duration, rival_rows)
    print(f"demo finished in {time.monotonic() - t_start:.0f}s; the stack stays up ('finsent down' stops it)")
    if args.down:
        localstack.down(base)
    fired = any(r[1] == spike_ticker for r in alerts)
    if not fired:
        print(f"finsent demo: the planted spike for {spike_ticker} did NOT alert", file=sys.stderr)
        return 1
    if not any(r[1] == slow_ticker and r[9] == "1h" for r in alerts):
        print(f"finsent demo: the slow story of {slow_ticker} did NOT alert at the hour scale", file=sys.stderr)
        return 1
    return 0


@dataclass
class DemoDay:
    items: list  # the parsed headlines (NewsItem)
    rival_ids: list[str]  # the ids of the headlines bad for one company and good for another
    start: datetime
    duration: timedelta


def _generate_day(args: DemoOptions, linker: Linker, spike_ticker: str, slow_ticker: str) -> DemoDay:
    """Yesterday's New York session, 09:00-16:30, with the planted spike, the slow story and the rivalry."""
    day = day_start((datetime.now(UTC) - timedelta(days=1)).date(), hour=9.0)
    duration = timedelta(hours=7, minutes=30)
    spike_at = day + timedelta(hours=4, minutes=47)
    slow = Spike(ticker=slow_ticker, at=day + timedelta(hours=5, minutes=5), size=10, duration_s=3000)
    # and headlines naming two companies with opposite fortunes: per-company sentiment
    rivalry = _rivalry(args.tickers, {spike_ticker, slow_ticker}, day)
    rate = args.items / 500.0  # the intraday profile averages ~1.1 over this session
    gen = generate_stream(start=day, duration=duration, tickers=args.tickers, rate_per_min=rate, seed=args.seed,
                          spikes=[Spike(ticker=spike_ticker, at=spike_at, size=args.spike_size), slow], names=True,
                          rivalries=[rivalry], truth=True)
    items = []
    rival_ids = []
    for msg in gen:
        if msg.pop("truth")["event"].startswith("rivalry"):  # the truth was only for this
            rival_ids.append(msg["id"])
        try:
            items.append(parse_message(msg, extractor=linker))
        except InvalidRecord:
            continue
    print(f"3/5 generated a trading day: {len(items)} headlines, "
          f"{len({t for i in items for t in i.tickers})} tickers, {day:%Y-%m-%d %H:%M}-"
          f"{day + duration:%H:%M} UTC; planted negative spike: {spike_ticker} at {spike_at:%H:%M} UTC; "
          f"slow story: {slow_ticker} from {slow.at:%H:%M} to {slow.end:%H:%M} UTC; "
          f"{len(rival_ids)} headlines bad for {rivalry.loser} and good for {rivalry.winner}", flush=True)
    return DemoDay(items, rival_ids, day, duration)


def _wait_stored(settings: Settings, worker: WorkerProcess, total: int, timeout: float, log_path: Path,
                 tickers: tuple[str, str]) -> None:
    """Live progress until the worker stored every item, then a moment for the last batch's alerts."""
    print("4/5 scoring and storing (live progress) ...", flush=True)
    bar = tqdm(total=total, desc="stored", unit="item", dynamic_ncols=True, disable=None)
    deadline = time.monotonic() + timeout
    stored = 0
    while stored < total:
        if not worker.alive():
            raise UserError(f"the demo worker stopped; its log ({log_path}):\n{worker.log(3000)}")
        if time.monotonic() > deadline:
            raise UserError(f"the demo did not finish within {timeout:.0f}s; see {log_path}")
        time.sleep(0.5)
        now, n_alerts = trends.counts(settings.dsn, settings.schema)
        bar.set_postfix(alerts=n_alerts)
        bar.update(now - stored)
        stored = now
    bar.close()
    # the last batch's detection runs right after its commit: give it a moment
    spike_ticker, slow_ticker = tickers
    wait_until = time.monotonic() + 15
    while time.monotonic() < wait_until:
        rows = _alerts(settings)
        if (any(r[1] == spike_ticker for r in rows) and any(r[1] == slow_ticker for r in rows)
                and all(r[7] != "pending" for r in rows)):
            break
        time.sleep(0.5)


def _print_results(settings: Settings, rival_ids: list[str]):
    """The alerts, the linking rules, the rivalry and the movers; (alerts, the rivalry's rows)."""
    alerts = _alerts(settings)
    print(f"\nAlerts fired ({len(alerts)}):")
    for kind, scope, ws, we, neg, arts, z, status, top, scale in alerts:
        print(f"  * Negative news spike: {scope} ({kind}) [{scale}] {ws:%H:%M}-{we:%H:%M} UTC: {neg} negative of "
              f"{arts} articles, z={z}, delivery {status}")
        for _id, title, score in _headlines(settings, list(top or [])):
            print(f"      [{score:+}] {title}")
    rules = trends.link_rule_counts(settings.dsn, settings.schema)
    print(f"\nTickers linked from the text: {rules.get('alias', 0) + rules.get('name', 0)} by company name, "
          f"{rules.get('cashtag', 0)} by cashtag (see: finsent sql --schema {settings.schema} "
          f"\"SELECT title, ticker, text, rule FROM article_ticker_links LIMIT 5\")")
    rival_rows = trends.ticker_sentiments(settings.dsn, settings.schema, rival_ids)
    _print_rivalry(rival_rows)
    print("\nTop negative movers (tickers with >= 5 articles, by mean sentiment score):")
    print(_table(["ticker", "articles", "negative", "neg share", "mean score"], _movers(settings)))
    return alerts, rival_rows


def _print_chart_and_next_steps(settings: Settings, spike_ticker: str) -> None:
    chart = None
    try:
        if spike_ticker:
            chart = plot_scope(settings, "ticker", spike_ticker)
            print(f"\nChart of {spike_ticker}: {chart}")
    except Exception as exc:  # noqa: BLE001 - a chart problem must not hide the results
        print(f"\n(chart not written: {exc})")
    query = ("SELECT bucket, articles, negative_share, mean_score FROM trend_hourly "
             f"WHERE scope_kind='ticker' AND scope='{spike_ticker}' ORDER BY bucket")
    print(f"""
Next steps:
  * ask SQL questions as the read-only analyst:
      finsent sql --schema {settings.schema} "{query}"
  * open psql on the same data:  psql "{_psql_url(settings)}" -c 'SET search_path TO {settings.schema}' -c '\\dv'
    (password: FINSENT_ANALYST_PASSWORD; the local stack's default is in README 'Configuration')
  * run it on real news:         finsent worker &  finsent ingest
    (polls the shipped feed catalogue: SEC EDGAR filings, press-release wires, the Federal Reserve;
     'finsent ingest --list' shows the feeds and their health, and how to switch them on and off is in
     README 'Real sources'; EDGAR needs your contact: FINSENT_FEEDS_USER_AGENT="Your Name you@example.com")
    (FINSENT_ALERT_URLS="json://127.0.0.1:8000/hook" delivers alerts; see README 'Operations')
""")


def _rivalry(tickers: int, taken: set[str], day: datetime) -> Rivalry:
    """Two well-covered companies of the demo's universe (not the spike's), with opposite fortunes in
    three headlines over the afternoon."""
    a, b = [c.ticker for c in universe(tickers)[10:14] if c.ticker not in taken][:2]
    return Rivalry(loser=a, winner=b, at=day + timedelta(hours=1, minutes=30), size=3, duration_s=3 * 3600)


def _print_rivalry(rows: list[tuple]) -> None:
    """Per-company sentiment of the rivalry's headlines, as each company's trend counts it."""
    if not rows:
        return
    print("\nWhose news is it? Headlines naming two companies, scored toward each (what each ticker's trend counts):")
    last = None
    for aid, title, ticker, sentiment, score, source, head, head_score in rows:
        if aid != last:
            print(f"  {title}  [headline: {head} {head_score:+}]")
            last = aid
        print(f"      {ticker}: {sentiment} {score:+} ({source})")
    if all(r[5] != "entity" for r in rows):
        print("  (this checkpoint has no entity head: each company gets the headline's sentiment until one with it "
              "is installed; see README 'Per-company sentiment')")


def _dashboard(settings: Settings, spike_ticker: str, day: datetime, duration: timedelta,
               rival_rows: list[tuple] = ()) -> None:
    """Start ``finsent dashboard --schema demo`` in the background and print URLs that open on the demo."""
    rows = trends.scope_alert_ids(settings.dsn, settings.schema, "ticker", spike_ticker)
    since, until = day.strftime("%Y-%m-%dT%H:%MZ"), (day + duration).strftime("%Y-%m-%dT%H:%MZ")
    try:
        url = start_background(settings)
    except UserError as exc:
        print(f"(dashboard not started: {exc})\n  start it yourself: finsent dashboard --schema {settings.schema}")
        return
    print("Dashboard (running in the background; 'finsent dashboard --stop' or 'finsent down' stops it):")
    if rows:
        print(f"  the planted spike's alert:  {url}/alert/{rows[0]}")
    print(f"  the demo's trading day:     {url}/?since={since}&until={until}")
    if rival_rows:
        aid, title = rival_rows[0][:2]
        published = trends.published_at(settings.dsn, settings.schema, aid)
        around = (f"since={(published - timedelta(minutes=30)):%Y-%m-%dT%H:%MZ}"
                  f"&until={(published + timedelta(minutes=30)):%Y-%m-%dT%H:%MZ}")
        print(f"  one headline, two fortunes: \"{title}\"")
        for ticker in dict.fromkeys(r[2] for r in rival_rows if r[0] == aid):
            print(f"    on {ticker}'s page:  {url}/ticker/{ticker}?{around}")
    print()


def _psql_url(settings: Settings) -> str:
    return redact(settings.analyst_dsn)


def main() -> None:  # pragma: no cover
    sys.exit("use 'finsent demo'")
