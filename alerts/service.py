"""Spike detection over PostgreSQL: the database is the truth.

The worker calls, after each committed batch (synchronously, from its
executor thread)::

    svc = AlertService(settings)
    new = svc.observe(max_event_time, replay=False, notify=True)

``observe`` advances the event-time **watermark** (max event time seen minus
``lateness_s``) and evaluates every window whose end it passed, reading the
counts from ``sentiment_minute`` (which the writer fills idempotently, for
newly stored articles only), with the pure rules of :mod:`alerts.detector`.
Alerts go into ``alerts`` with ``INSERT ... ON CONFLICT DO NOTHING`` on
(scope_kind, scope, window_start, rule); the call returns the rows it really
inserted.

Restart and replay safety
-------------------------
* The watermark survives restarts in ``alert_progress`` (per stream: ``live``
  and ``replay``), updated in the same transaction as the alerts it produced.
  A crash before that commit re-evaluates the same windows after the restart:
  same counts, same decisions, and the unique key stores nothing twice.
* Cooldowns are read back from ``alerts``, so they hold across restarts too.
* Sources: pass ``{partition: max_event_time}`` (``None`` = assigned, nothing
  seen yet) and the watermark is the minimum over the partitions that advanced
  in the last ``idle_s`` seconds, across all workers (the table
  ``alert_sources``); a lagging partition does not get its windows closed
  early.  A plain datetime is the single source ``default``.
* A replay (``replay=True``) whose event time jumps back by more than
  ``rewind_s`` is a new replay: its stream starts over (windows already alerted
  stay, and de-duplicate).  The live stream's watermark never goes back; data
  arriving later than ``lateness_s`` after its window was evaluated is counted
  in the trends but does not re-open the window (documented late-data policy).
* On a first start, windows that closed up to ``catchup_s`` before the
  watermark are still evaluated (a worker that died between its batch commit
  and ``observe`` loses nothing).

``notify=False`` (a replay without ``--notify``) stores the alerts with
``delivery_status = 'suppressed'``; they are never sent.  New pending alerts
raise ``NOTIFY finsent_alerts`` (payload: the schema) on commit, which wakes
:class:`alerts.notifier.Notifier` in any process.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

import psycopg2

from alerts.detector import (
    MINUTE,
    DetectorConfig,
    Finding,
    find_alerts,
    floor_to,
    from_epoch,
    joins_incident,
    scale_ranges,
    to_epoch,
)
from storage.db import WRITER_ROLE, LazyConnection, RetryPolicy, connect, first_line, redact, transaction
from stream.base.errors import UserError
from stream.base.labels import alert_scope_label

log = logging.getLogger("finsent.alerts")

NOTIFY_CHANNEL = "finsent_alerts"
HEADLINES_IN_MESSAGE = 3
_CHUNK_STEPS = 240  # windows evaluated per query round
OBSERVE_RETRY = RetryPolicy(attempts=5, initial_s=0.2, max_s=5.0)


# ---------------------------------------------------------------------------- rows
@dataclass(frozen=True)
class Alert:
    """One row of ``alerts``."""

    id: int
    scope_kind: str
    scope: str
    window_start: datetime
    window_end: datetime
    rule: str
    articles: int
    negative: int
    negative_share: float
    mean_score: float | None
    baseline: float
    baseline_std: float
    baseline_windows: int
    z: float
    top_article_ids: list[str]
    title: str
    message: str
    replayed: bool
    watermark: datetime | None
    created_at: datetime
    delivery_status: str
    attempts: int
    next_attempt_at: datetime | None
    delivered_to: list[str]
    last_error: str | None
    delivered_at: datetime | None
    scale: str = "5m"
    incident_id: int | None = None
    stories: int | None = None
    negative_stories: int | None = None
    explanation: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "Alert":
        return cls(**{f.name: row.get(f.name) for f in fields(cls)})

    @property
    def key(self) -> str:
        """Stable identity of the alert (also in its message, for receivers that de-duplicate)."""
        return alert_key(self.scope_kind, self.scope, self.window_start, self.rule, self.scale)


def alert_key(scope_kind: str, scope: str, window_start: datetime, rule: str, scale: str = "5m") -> str:
    key = f"{scope_kind}/{scope}/{window_start.astimezone(timezone.utc):%Y-%m-%dT%H:%M:%SZ}/{rule}"
    return key if scale == "5m" else f"{key}/{scale}"


ALERT_COLUMNS = ", ".join(f.name for f in fields(Alert))


@dataclass(frozen=True)
class Headline:
    id: str
    title: str
    url: str | None
    p_negative: float | None
    published_at: datetime
    story_id: str | None = None
    ticker_links: Any = None  # articles.ticker_links: why the article is under a ticker


# ---------------------------------------------------------------------------- message


def scale_label(cfg: DetectorConfig) -> str:
    if cfg.anchored and cfg.window_s == 86400:
        return "the day so far"
    m = cfg.window_s // MINUTE
    return f"{m} minutes" if m < 120 else f"{m // 60} hours"


def explain(f: Finding, headlines: Sequence[Headline], cfg: DetectorConfig) -> str:
    """Why, in one line: the scale, unique stories against the baseline, the top distinct stories."""
    d = f.decision
    unit = "stories" if cfg.count_stories else "articles"
    why = (f"[{f.scale}] {d.negative} negative {unit} (of {d.articles}) in {scale_label(cfg)} "
           f"against {d.baseline:.1f} expected, z = {d.z:.1f}")
    if f.negative_articles and f.negative_articles != d.negative:
        why += f" ({f.negative_articles} negative articles with copies)"
    if headlines:
        why += "; top stories: " + " | ".join(h.title[:120] for h in headlines[:HEADLINES_IN_MESSAGE])
    return why


def render(f: Finding, headlines: Sequence[Headline], cfg: DetectorConfig, replayed: bool) -> tuple[str, str]:
    """Title and plain-text body of an alert notification."""
    d = f.decision
    ws, we = from_epoch(f.window_start), from_epoch(f.window_end)
    unit = "stories" if cfg.count_stories else "articles"
    title = f"Negative news spike: {alert_scope_label(f.scope_kind, f.scope)}"
    if f.scale != "5m":  # the original scale keeps its title (receivers filter on it)
        title += f" [{f.scale}]"
    lines = [
        f"{alert_scope_label(f.scope_kind, f.scope)}: {d.negative} negative of {d.articles} unique {unit} "
        f"({d.share:.0%}) between {ws:%H:%M} and {we:%H:%M} UTC on {ws:%Y-%m-%d}"
        + (f"; {f.negative_articles} negative of {f.articles} articles counting copies."
           if cfg.count_stories and f.articles else "."),
        f"Time scale {f.scale} ({scale_label(cfg)}). Usual: {d.baseline:.1f} ± {d.std:.1f} negative {unit} "
        f"(EWMA over {d.history} earlier windows); z = {d.z:.1f}. "
        f"Mean sentiment score {f.mean_score:+.2f}.",
    ]
    if replayed:
        lines.append("Found while replaying history.")
    if headlines:
        lines += ["", "Most negative distinct stories:"]
        for i, h in enumerate(headlines[:HEADLINES_IN_MESSAGE], start=1):
            lines.append(f"{i}. {h.title}")
            why = _linked_by(h, f) if f.scope_kind == "ticker" else ""
            if why:
                lines.append(f"   under {f.scope} because of {why}")
            if h.url:
                lines.append(f"   {h.url}")
    lines += ["", f"finsent alert {alert_key(f.scope_kind, f.scope, ws, f.rule, f.scale)}"]
    return title, "\n".join(lines)


def _linked_by(h: Headline, f: Finding) -> str:
    """The text that linked a headline to the alert's ticker: "'Target' (name), '$TGT' (cashtag)"."""
    seen = []
    for lk in h.ticker_links or ():
        if isinstance(lk, dict) and lk.get("ticker") == f.scope:
            part = f"'{lk['text']}' ({lk.get('rule')})" if lk.get("text") else f"the message's tickers ({lk.get('rule')})"
            if part not in seen:
                seen.append(part)
    return ", ".join(seen)


# ---------------------------------------------------------------------------- store
_LEVEL_TABLES = {MINUTE: "sentiment_minute", 3600: "sentiment_hour", 86400: "sentiment_day"}


def _bucket_source(bucket_s: int) -> tuple[str, str]:
    """(table, bucket expression) reading counts in buckets of ``bucket_s`` seconds."""
    table = _LEVEL_TABLES.get(bucket_s)
    if table is not None:
        return table, "extract(epoch FROM bucket)::bigint"
    return "sentiment_minute", f"(floor(extract(epoch FROM bucket) / {int(bucket_s)}) * {int(bucket_s)})::bigint"


class PgStore:
    """:class:`alerts.detector.CountStore` over ``sentiment_minute`` (and its roll-ups) and ``alerts``."""

    def __init__(self, cur):
        self.cur = cur

    def minute_counts(self, start: int, end: int, kinds: Sequence[str]):
        return [r[:6] for r in self.bucket_counts(start, end, kinds, MINUTE)]

    def bucket_counts(self, start: int, end: int, kinds: Sequence[str], bucket_s: int = MINUTE):
        table, expr = _bucket_source(bucket_s)
        self.cur.execute(
            f"SELECT {expr} AS b, scope_kind, scope, sum(articles)::int, sum(negative)::int, sum(score_sum),"
            f" sum(stories)::int, sum(negative_stories)::int FROM {table} WHERE scope_kind = ANY(%s)"
            " AND bucket >= to_timestamp(%s) AND bucket < to_timestamp(%s) GROUP BY 1, 2, 3",
            (list(kinds), start, end),
        )
        return self.cur.fetchall()

    def negative_history(self, kind: str, scope: str, start: int, end: int, bucket_s: int = MINUTE,
                         stories: bool = False) -> dict[int, int]:
        table, expr = _bucket_source(bucket_s)
        col = "negative_stories" if stories else "negative"
        self.cur.execute(
            f"SELECT {expr} AS b, sum({col})::int FROM {table}"
            f" WHERE scope_kind = %s AND scope = %s AND {col} > 0"
            " AND bucket >= to_timestamp(%s) AND bucket < to_timestamp(%s) GROUP BY 1",
            (kind, scope, start, end),
        )
        return dict(self.cur.fetchall())

    def scope_history(self, kind: str, scope: str, start: int, end: int, bucket_s: int = MINUTE,
                      stories: bool = False) -> dict[int, tuple[int, int]]:
        table, expr = _bucket_source(bucket_s)
        cols = ("stories", "negative_stories") if stories else ("articles", "negative")
        self.cur.execute(
            f"SELECT {expr} AS b, sum({cols[0]})::int, sum({cols[1]})::int FROM {table}"
            f" WHERE scope_kind = %s AND scope = %s AND {cols[0]} > 0"
            " AND bucket >= to_timestamp(%s) AND bucket < to_timestamp(%s) GROUP BY 1",
            (kind, scope, start, end),
        )
        return {b: (n_a, n_neg) for b, n_a, n_neg in self.cur.fetchall()}

    def market_volume(self, start: int, end: int, bucket_s: int = MINUTE, stories: bool = False) -> dict[int, int]:
        table, expr = _bucket_source(bucket_s)
        col = "stories" if stories else "articles"
        self.cur.execute(
            f"SELECT {expr} AS b, sum({col})::int FROM {table}"
            f" WHERE scope_kind = 'all' AND scope = 'all' AND {col} > 0"
            " AND bucket >= to_timestamp(%s) AND bucket < to_timestamp(%s) GROUP BY 1",
            (start, end),
        )
        return dict(self.cur.fetchall())

    def alert_starts(self, kind: str, scope: str, rule: str, start: int, end: int, scale: str = "5m") -> list[int]:
        self.cur.execute(
            "SELECT extract(epoch FROM window_start)::bigint FROM alerts"
            " WHERE scope_kind = %s AND scope = %s AND rule = %s AND scale = %s"
            " AND window_start > to_timestamp(%s) AND window_start < to_timestamp(%s)"
            " ORDER BY window_start",
            (kind, scope, rule, scale, start, end),
        )
        return [r[0] for r in self.cur.fetchall()]

    def incident_of(self, f: Finding, gap_s: int) -> int | None:
        """The incident an alert joins: the earliest alert of the scope (any scale) whose incident
        it overlaps or follows within ``gap_s`` (see :func:`alerts.detector.joins_incident`)."""
        self.cur.execute(
            "SELECT coalesce(incident_id, id), extract(epoch FROM min(window_start) OVER w)::bigint,"
            " extract(epoch FROM max(window_end) OVER w)::bigint FROM alerts"
            " WHERE scope_kind = %s AND scope = %s AND window_end > to_timestamp(%s)"
            " AND window_start < to_timestamp(%s)"
            " WINDOW w AS (PARTITION BY coalesce(incident_id, id)) ORDER BY 1",
            (f.scope_kind, f.scope, f.window_start - gap_s - 86400 * 2, f.window_end + gap_s),
        )
        for inc, lo, hi in self.cur.fetchall():
            if joins_incident(f.window_start, f.window_end, lo, hi, gap_s):
                return inc
        return None

    def first_data_minute(self, start: int, end: int) -> int | None:
        self.cur.execute(
            "SELECT extract(epoch FROM min(bucket))::bigint FROM sentiment_minute"
            " WHERE scope_kind = 'all' AND scope = 'all'"
            " AND bucket >= to_timestamp(%s) AND bucket < to_timestamp(%s)",
            (start, end),
        )
        return self.cur.fetchone()[0]

    def headlines(self, f: Finding, limit: int) -> list[Headline]:
        where = ""
        params: list[Any] = [from_epoch(f.window_start), from_epoch(f.window_end)]
        if f.scope_kind == "ticker":
            where = "AND tickers @> ARRAY[%s]::text[]"
            params.append(f.scope)
        elif f.scope_kind == "topic":
            where = "AND topic = %s"
            params.append(f.scope)
        # the most negative article of each story, most negative stories first
        self.cur.execute(
            "SELECT id, title, url, p_negative, published_at, story, ticker_links FROM ("
            " SELECT DISTINCT ON (coalesce(story_id, id)) id, title, url, p_negative, published_at,"
            "  coalesce(story_id, id) AS story, ticker_links FROM articles"
            " WHERE published_at >= %s AND published_at < %s AND sentiment = 'negative' "
            + where
            + " ORDER BY coalesce(story_id, id), p_negative DESC NULLS LAST, published_at, id) x"
            " ORDER BY p_negative DESC NULLS LAST, published_at, id LIMIT %s",
            (*params, limit),
        )
        return [Headline(*r) for r in self.cur.fetchall()]


# ---------------------------------------------------------------------------- service
def _normalize_sources(max_event_time: Any, source: str | None) -> dict[str, int | None]:
    if isinstance(max_event_time, Mapping):
        out = {}
        for k, v in max_event_time.items():
            out[str(k)] = None if v is None else to_epoch(v)
        return out
    if max_event_time is None:
        return {}
    return {source or "default": to_epoch(max_event_time)}


class AlertService:
    """Evaluates closed windows and stores alerts; see the module docstring.

    Not thread-safe: one instance per thread (it holds one connection).
    """

    def __init__(self, settings, *, role: str | None = WRITER_ROLE):
        self.settings = settings
        self.schema = settings.schema
        self.a = settings.alerts
        self.cfgs = DetectorConfig.scales_from_settings(self.a)
        self.cfg = self.cfgs[0]
        self._order = {c.scale: i for i, c in enumerate(self.cfgs)}
        self.role = role
        self._db = LazyConnection(self._connect)
        self.last_watermark: datetime | None = None  # effective watermark after the last observe()

    # -- connection ------------------------------------------------------------
    def _connect(self):
        try:
            return connect(self.settings.dsn, self.schema, role=self.role, application_name="finsent-alerts")
        except psycopg2.Error as exc:
            raise UserError(f"alerts: cannot connect to {redact(self.settings.dsn)}: {first_line(exc)}") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- the worker's entry point -------------------------------------------------
    def observe(
        self,
        max_event_time: datetime | Mapping[Any, datetime | None] | None,
        replay: bool = False,
        notify: bool = True,
        source: str | None = None,
    ) -> list[Alert]:
        """Advance the watermark and store the alerts of every window it closed.

        ``max_event_time``: the largest event time seen (a datetime), or
        ``{partition: max event time or None}``.  Returns the alerts inserted by
        this call (already committed).
        """
        sources = _normalize_sources(max_event_time, source)

        def on_retry(exc: BaseException, attempt: int, delay: float) -> None:
            log.warning("alerts: observe failed (%s), retry %d in %.1fs", first_line(exc), attempt, delay)

        alerts = transaction(
            self._db, lambda conn: self._observe_tx(conn, sources, replay, notify),
            policy=OBSERVE_RETRY, on_retry=on_retry,
        ).value
        if alerts:
            for a in alerts:
                log.warning("ALERT %s: %s negative of %s (z=%.1f) %s", a.title, a.negative, a.articles, a.z, a.key)
        return alerts

    def _observe_tx(self, conn, sources: dict[str, int | None], replay: bool, notify: bool) -> list[Alert]:
        a = self.a
        step = MINUTE  # evaluated_until advances by minutes; each scale evaluates its own window ends
        longest = max(c.window_s for c in self.cfgs)
        stream = "replay" if replay else "live"
        cur = conn.cursor()
        cur.execute("INSERT INTO alert_progress (stream) VALUES (%s) ON CONFLICT DO NOTHING", (stream,))
        cur.execute(
            "SELECT extract(epoch FROM evaluated_until)::bigint, generation FROM alert_progress"
            " WHERE stream = %s FOR UPDATE",
            (stream,),
        )
        evaluated, generation = cur.fetchone()
        known = [t for t in sources.values() if t is not None]
        if replay and evaluated is not None and known and min(known) - a.lateness_s < evaluated - a.rewind_s:
            log.info(
                "alerts: replay went back to %s (evaluated up to %s): starting the replay watermark over",
                from_epoch(min(known)), from_epoch(evaluated),
            )
            generation += 1
            evaluated = None
        for src, t in sources.items():
            cur.execute(
                "INSERT INTO alert_sources AS s (stream, source, generation, max_event_time, advanced_at)"
                " VALUES (%s, %s, %s, to_timestamp(%s), now())"
                " ON CONFLICT (stream, source) DO UPDATE SET"
                "  max_event_time = CASE WHEN s.generation <> EXCLUDED.generation THEN EXCLUDED.max_event_time"
                "                   ELSE GREATEST(s.max_event_time, EXCLUDED.max_event_time) END,"
                "  advanced_at = CASE WHEN s.generation <> EXCLUDED.generation"
                "                  OR (EXCLUDED.max_event_time IS NOT NULL AND s.max_event_time IS NULL)"
                "                  OR EXCLUDED.max_event_time > s.max_event_time"
                "                THEN now() ELSE s.advanced_at END,"
                "  generation = EXCLUDED.generation",
                (stream, src, generation, t),
            )
        cur.execute(
            "SELECT extract(epoch FROM max_event_time)::bigint, advanced_at >= now() - make_interval(secs => %s)"
            " FROM alert_sources WHERE stream = %s AND generation = %s",
            (float(a.idle_s), stream, generation),
        )
        rows = cur.fetchall()
        active = [t for t, is_active in rows if is_active]
        if active:
            effective = None if any(t is None for t in active) else min(active)
        else:
            seen = [t for t, _ in rows if t is not None]
            effective = max(seen) if seen else None

        inserted: list[Alert] = []
        if effective is not None:
            watermark = effective - a.lateness_s
            self.last_watermark = from_epoch(watermark)
            target = floor_to(watermark, step)
            store = PgStore(cur)
            if evaluated is None:
                first = store.first_data_minute(target - a.catchup_s, watermark + 1)
                evaluated = floor_to(first, step) if first is not None else target
                evaluated = max(evaluated, target - floor_to(a.catchup_s, step))
            if target > evaluated:
                # skip a stretch without any data (a gap, or a replay far ahead)
                first = store.first_data_minute(evaluated - longest, target)
                if first is None:
                    evaluated = target
                else:
                    evaluated = max(evaluated, floor_to(first, step))
            while target > evaluated:
                chunk_end = min(target, evaluated + _CHUNK_STEPS * step)
                found: list[tuple[DetectorConfig, Finding]] = []
                for cfg, first_end, last_end in scale_ranges(evaluated, chunk_end, self.cfgs):
                    found += [(cfg, f) for f in find_alerts(store, first_end, last_end, cfg)]
                found.sort(key=lambda cf: (cf[1].window_end, self._order.get(cf[1].scale, 0),
                                           cf[1].scope_kind, cf[1].scope))
                for cfg, f in found:
                    row = self._insert(cur, store, cfg, f, replay, notify, watermark)
                    if row is not None:
                        inserted.append(row)
                evaluated = chunk_end
        cur.execute(
            "UPDATE alert_progress SET evaluated_until = to_timestamp(%s), generation = %s, updated_at = now()"
            " WHERE stream = %s",
            (evaluated, generation, stream),
        )
        if any(r.delivery_status == "pending" for r in inserted):
            cur.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, self.schema))
        cur.close()
        return inserted

    def _insert(self, cur, store: PgStore, cfg: DetectorConfig, f: Finding, replay: bool, notify: bool,
                watermark: int) -> Alert | None:
        """Store one finding; an alert that joins an open incident is stored 'grouped' (not sent again)."""
        d = f.decision
        top = store.headlines(f, max(self.a.top_articles, HEADLINES_IN_MESSAGE))
        title, message = render(f, top, cfg, replay)
        incident = store.incident_of(f, self.a.incident_gap_s)
        status = "pending" if notify else "suppressed"
        if incident is not None:
            status = "grouped"
            message += f"\n(grouped into incident {incident}: not sent again)"
        articles, negative = (f.articles, f.negative_articles) if cfg.count_stories else (d.articles, d.negative)
        cur.execute(
            "INSERT INTO alerts (scope_kind, scope, window_start, window_end, rule, articles, negative,"
            " negative_share, mean_score, baseline, baseline_std, baseline_windows, z, top_article_ids,"
            " title, message, replayed, watermark, delivery_status, scale, incident_id, stories,"
            " negative_stories, explanation)"
            " VALUES (%s, %s, to_timestamp(%s), to_timestamp(%s), %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
            " %s, %s, %s, to_timestamp(%s), %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT ON CONSTRAINT alerts_window_key DO NOTHING"
            f" RETURNING {ALERT_COLUMNS}",
            (
                f.scope_kind, f.scope, f.window_start, f.window_end, f.rule, articles, negative,
                d.share, f.mean_score, d.baseline, d.std, d.history, d.z,
                [h.id for h in top[: self.a.top_articles]], title, message, replay, watermark,
                status, f.scale, incident, d.articles, d.negative, explain(f, top, cfg),
            ),
        )
        row = cur.fetchone()
        if row is None:
            return None
        cols = [c.name for c in cur.description]
        alert = Alert.from_row(dict(zip(cols, row)))
        if incident is None:
            cur.execute("UPDATE alerts SET incident_id = id WHERE id = %s", (alert.id,))
            alert = dataclasses.replace(alert, incident_id=alert.id)
        return alert


# ---------------------------------------------------------------------------- queries
def list_alerts(settings, since: datetime | None = None, limit: int | None = None, role: str | None = None) -> list[Alert]:
    """Alerts created (or whose window started) at or after ``since``, oldest first."""
    try:
        conn = connect(settings.dsn, settings.schema, role=role, readonly=True, application_name="finsent-alerts")
    except psycopg2.Error as exc:
        raise UserError(f"cannot connect to {redact(settings.dsn)}: {first_line(exc)}") from None
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('alerts')")
            if cur.fetchone()[0] is None:
                raise UserError(f"no alerts table in schema '{settings.schema}': run 'finsent db upgrade'")
            q = f"SELECT {ALERT_COLUMNS} FROM alerts"
            params: list[Any] = []
            if since is not None:
                q += " WHERE window_start >= %s OR created_at >= %s"
                params += [since, since]
            if limit:
                q = f"SELECT * FROM ({q} ORDER BY window_start DESC, id DESC LIMIT %s) x"
                params.append(int(limit))
            q += " ORDER BY window_start, id"
            cur.execute(q, params)
            cols = [c.name for c in cur.description]
            return [Alert.from_row(dict(zip(cols, r))) for r in cur.fetchall()]
    finally:
        conn.close()
