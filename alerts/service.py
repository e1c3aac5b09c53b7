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
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

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
from storage import alerts as store
from storage.alerts import Alert, Headline, alert_key
from storage.db import (
    WRITER_ROLE,
    LazyConnection,
    PgConnection,
    PgCursor,
    RetryPolicy,
    connect,
    first_line,
    redact,
    transaction,
)
from stream.base.errors import UserError
from stream.base.labels import scope_label

if TYPE_CHECKING:
    from stream.base.settings import Settings

log = logging.getLogger("finsent.alerts")

HEADLINES_IN_MESSAGE = 3
_CHUNK_STEPS = 240  # windows evaluated per query round
OBSERVE_RETRY = RetryPolicy(attempts=5, initial_s=0.2, max_s=5.0)


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
        why += "; top stories: " + " | ".join(_flagged(h) + h.title[:120] for h in headlines[:HEADLINES_IN_MESSAGE])
    return why


def flags_of(h: Headline) -> list[str]:
    """What the article's source flagged (``extra.flags``: an EDGAR 8-K item 1.03 is ``bankruptcy``)."""
    return [f for f in h.flags if isinstance(f, str) and f.strip()] if isinstance(h.flags, list) else []


def _flagged(h: Headline) -> str:
    return "".join(f"[{f.upper()}] " for f in flags_of(h))


def render(f: Finding, headlines: Sequence[Headline], cfg: DetectorConfig, replayed: bool) -> tuple[str, str]:
    """Title and plain-text body of an alert notification."""
    d = f.decision
    ws, we = from_epoch(f.window_start), from_epoch(f.window_end)
    unit = "stories" if cfg.count_stories else "articles"
    title = f"Negative news spike: {scope_label(f.scope_kind, f.scope, 'alert')}"
    if f.scale != "5m":  # the original scale keeps its title (receivers filter on it)
        title += f" [{f.scale}]"
    lines = [
        f"{scope_label(f.scope_kind, f.scope, 'alert')}: {d.negative} negative of {d.articles} unique {unit} "
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
            lines.append(f"{i}. {_flagged(h)}{h.title}")
            toward = _toward(h, f.scope) if f.scope_kind == "ticker" else ""
            if toward:
                lines.append(f"   {toward}")
            why = _linked_by(h, f) if f.scope_kind == "ticker" else ""
            if why:
                lines.append(f"   under {f.scope} because of {why}")
            if flags_of(h):
                lines.append(f"   flagged by its source: {', '.join(flags_of(h))}")
            if h.url:
                lines.append(f"   {h.url}")
    lines += ["", f"finsent alert {alert_key(f.scope_kind, f.scope, ws, f.rule, f.scale)}"]
    return title, "\n".join(lines)


def _toward(h: Headline, ticker: str) -> str:
    """"sentiment toward WMT: negative (-0.85); the headline's: positive (+0.30)" (the headline's only
    where it differs)."""
    if h.sentiment is None or h.sentiment_score is None:
        return ""
    out = f"sentiment toward {ticker}: {h.sentiment} ({h.sentiment_score:+.2f})"
    if h.headline_sentiment is not None and h.headline_sentiment != h.sentiment:
        out += f"; the headline's: {h.headline_sentiment}" + (
            f" ({h.headline_score:+.2f})" if h.headline_score is not None else "")
    return out


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
class PgStore:
    """:class:`alerts.detector.CountStore` over ``sentiment_minute`` (and its roll-ups) and ``alerts``
    (the SQL is :mod:`storage.alerts`)."""

    def __init__(self, cur: PgCursor):
        self.cur = cur

    def minute_counts(self, start: int, end: int, kinds: Sequence[str]) -> list[tuple[int, str, str, int, int, float]]:
        return [r[:6] for r in self.bucket_counts(start, end, kinds, MINUTE)]

    def bucket_counts(self, start: int, end: int, kinds: Sequence[str], bucket_s: int = MINUTE
                      ) -> list[tuple[int, str, str, int, int, float, int, int]]:
        return store.bucket_counts(self.cur, start, end, kinds, bucket_s)

    def negative_history(self, kind: str, scope: str, start: int, end: int, bucket_s: int = MINUTE,
                         stories: bool = False) -> dict[int, int]:
        return store.negative_history(self.cur, kind, scope, start, end, bucket_s, stories)

    def scope_history(self, kind: str, scope: str, start: int, end: int, bucket_s: int = MINUTE,
                      stories: bool = False) -> dict[int, tuple[int, int]]:
        return store.scope_history(self.cur, kind, scope, start, end, bucket_s, stories)

    def market_volume(self, start: int, end: int, bucket_s: int = MINUTE, stories: bool = False) -> dict[int, int]:
        return store.market_volume(self.cur, start, end, bucket_s, stories)

    def alert_starts(self, kind: str, scope: str, rule: str, start: int, end: int, scale: str = "5m") -> list[int]:
        return store.alert_starts(self.cur, kind, scope, rule, start, end, scale)

    def incident_of(self, f: Finding, gap_s: int) -> int | None:
        """The incident an alert joins: the earliest alert of the scope (any scale) whose incident
        it overlaps or follows within ``gap_s`` (see :func:`alerts.detector.joins_incident`)."""
        spans = store.incident_spans(self.cur, f.scope_kind, f.scope, f.window_start - gap_s - 86400 * 2,
                                     f.window_end + gap_s)
        for inc, lo, hi in spans:
            if joins_incident(f.window_start, f.window_end, lo, hi, gap_s):
                return inc
        return None

    def first_data_minute(self, start: int, end: int) -> int | None:
        return store.first_data_minute(self.cur, start, end)

    def headlines(self, f: Finding, limit: int) -> list[Headline]:
        return store.headlines(self.cur, f.scope_kind, f.scope, from_epoch(f.window_start),
                               from_epoch(f.window_end), limit)


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

    def __init__(self, settings: Settings, *, role: str | None = WRITER_ROLE):
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
    def _connect(self) -> PgConnection:
        try:
            return connect(self.settings.dsn, self.schema, role=self.role, application_name="finsent-alerts")
        except psycopg2.Error as exc:
            raise UserError(f"alerts: cannot connect to {redact(self.settings.dsn)}: {first_line(exc)}") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> AlertService:
        return self

    def __exit__(self, *exc: object) -> None:
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

    def _observe_tx(self, conn: PgConnection, sources: dict[str, int | None], replay: bool, notify: bool) -> list[Alert]:
        a = self.a
        step = MINUTE  # evaluated_until advances by minutes; each scale evaluates its own window ends
        longest = max(c.window_s for c in self.cfgs)
        stream = "replay" if replay else "live"
        cur = conn.cursor()
        evaluated, generation = store.lock_progress(cur, stream)
        known = [t for t in sources.values() if t is not None]
        if replay and evaluated is not None and known and min(known) - a.lateness_s < evaluated - a.rewind_s:
            log.info(
                "alerts: replay went back to %s (evaluated up to %s): starting the replay watermark over",
                from_epoch(min(known)), from_epoch(evaluated),
            )
            generation += 1
            evaluated = None
        store.record_sources(cur, stream, generation, sources)
        rows = store.source_times(cur, stream, generation, a.idle_s)
        active = [t for t, is_active in rows if is_active]
        if active:
            effective = None if any(t is None for t in active) else min(t for t in active if t is not None)
        else:
            seen = [t for t, _ in rows if t is not None]
            effective = max(seen) if seen else None

        inserted: list[Alert] = []
        if effective is not None:
            watermark = effective - a.lateness_s
            self.last_watermark = from_epoch(watermark)
            target = floor_to(watermark, step)
            counts = PgStore(cur)
            if evaluated is None:
                first = counts.first_data_minute(target - a.catchup_s, watermark + 1)
                evaluated = floor_to(first, step) if first is not None else target
                evaluated = max(evaluated, target - floor_to(a.catchup_s, step))
            if target > evaluated:
                # skip a stretch without any data (a gap, or a replay far ahead)
                first = counts.first_data_minute(evaluated - longest, target)
                if first is None:
                    evaluated = target
                else:
                    evaluated = max(evaluated, floor_to(first, step))
            while target > evaluated:
                chunk_end = min(target, evaluated + _CHUNK_STEPS * step)
                found: list[tuple[DetectorConfig, Finding]] = []
                for cfg, first_end, last_end in scale_ranges(evaluated, chunk_end, self.cfgs):
                    found += [(cfg, f) for f in find_alerts(counts, first_end, last_end, cfg)]
                found.sort(key=lambda cf: (cf[1].window_end, self._order.get(cf[1].scale, 0),
                                           cf[1].scope_kind, cf[1].scope))
                for cfg, f in found:
                    row = self._insert(cur, counts, cfg, f, replay, notify, watermark)
                    if row is not None:
                        inserted.append(row)
                evaluated = chunk_end
        store.set_progress(cur, stream, evaluated, generation)
        if any(r.delivery_status == "pending" for r in inserted):
            store.notify_new_alerts(cur, self.schema)
        cur.close()
        return inserted

    def _insert(self, cur: PgCursor, counts: PgStore, cfg: DetectorConfig, f: Finding, replay: bool, notify: bool,
                watermark: int) -> Alert | None:
        """Store one finding; an alert that joins an open incident is stored 'grouped' (not sent again)."""
        d = f.decision
        top = counts.headlines(f, max(self.a.top_articles, HEADLINES_IN_MESSAGE))
        title, message = render(f, top, cfg, replay)
        incident = counts.incident_of(f, self.a.incident_gap_s)
        status = "pending" if notify else "suppressed"
        if incident is not None:
            status = "grouped"
            message += f"\n(grouped into incident {incident}: not sent again)"
        articles, negative = (f.articles, f.negative_articles) if cfg.count_stories else (d.articles, d.negative)
        alert = store.insert_alert(cur, {
            "scope_kind": f.scope_kind, "scope": f.scope, "window_start": f.window_start,
            "window_end": f.window_end, "rule": f.rule, "articles": articles, "negative": negative,
            "negative_share": d.share, "mean_score": f.mean_score, "baseline": d.baseline,
            "baseline_std": d.std, "baseline_windows": d.history, "z": d.z,
            "top_article_ids": [h.id for h in top[: self.a.top_articles]], "title": title,
            "message": message, "replayed": replay, "watermark": watermark, "delivery_status": status,
            "scale": f.scale, "incident_id": incident, "stories": d.articles,
            "negative_stories": d.negative, "explanation": explain(f, top, cfg),
        })
        if alert is not None and incident is None:
            store.open_incident(cur, alert.id)
            alert = dataclasses.replace(alert, incident_id=alert.id)
        return alert


# ---------------------------------------------------------------------------- queries
def list_alerts(settings: Settings, since: datetime | None = None, limit: int | None = None, role: str | None = None) -> list[Alert]:
    """Alerts created (or whose window started) at or after ``since``, oldest first."""
    return store.list_alerts(settings.dsn, settings.schema, since, limit, role)
