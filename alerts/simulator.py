"""The detector in memory: counts kept in dictionaries, the same rules as the service over PostgreSQL.

:class:`Detector` takes articles (:meth:`Detector.add`), advances an event-time watermark and returns the
alerts of every scale, grouped into incidents as :class:`alerts.service.AlertService` groups them over the
``alerts`` table; both run :func:`alerts.detector.find_alerts`.  Tests, the alert-quality report
(``alerts/quality.py``) and what-if tuning (``alerts/realstream.py``) use it.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from alerts.detector import (
    INCIDENT_GAP_S,
    MINUTE,
    DetectorConfig,
    Finding,
    find_alerts,
    floor_to,
    joins_incident,
    scale_ranges,
    to_epoch,
)
from model.ticker_sentiment import sentiment_toward


@dataclass
class Incident:
    id: int
    scope_kind: str
    scope: str
    start: int
    end: int
    scales: list[str] = field(default_factory=list)
    alerts: list[Finding] = field(default_factory=list)


class IncidentBook:
    """Groups findings of every scale into incidents per scope (in memory; the
    service does the same over the ``alerts`` table)."""

    def __init__(self, gap_s: int = INCIDENT_GAP_S) -> None:
        self.gap_s = gap_s
        self.incidents: list[Incident] = []
        self._open: dict[tuple[str, str], list[Incident]] = defaultdict(list)

    def add(self, f: Finding) -> tuple[Incident, bool]:
        """(the incident, True if the finding opened it: the one to notify)."""
        for inc in reversed(self._open[(f.scope_kind, f.scope)]):
            if joins_incident(f.window_start, f.window_end, inc.start, inc.end, self.gap_s):
                inc.start, inc.end = min(inc.start, f.window_start), max(inc.end, f.window_end)
                if f.scale not in inc.scales:
                    inc.scales.append(f.scale)
                inc.alerts.append(f)
                return inc, False
        inc = Incident(len(self.incidents) + 1, f.scope_kind, f.scope, f.window_start, f.window_end, [f.scale], [f])
        self.incidents.append(inc)
        self._open[(f.scope_kind, f.scope)].append(inc)
        return inc, True


# one bucket of one scope: [articles, negative, score_sum, stories, negative_stories] (score_sum a float)
Counts = list[Any]
ByScope = dict[tuple[str, str], dict[int, Counts]]  # scope -> bucket -> counts
ByBucket = dict[int, dict[tuple[str, str], Counts]]  # bucket -> scope -> the same counts


@dataclass
class MemoryStore:
    """:class:`CountStore` in dictionaries (tests, quality runs, what-if tuning).

    Counts are kept per minute and, for every coarser bucket size asked for,
    per bucket too (filled from the minutes on first use, then kept current).
    """

    counts: ByScope = field(default_factory=lambda: defaultdict(dict))
    by_minute: ByBucket = field(default_factory=lambda: defaultdict(dict))
    volume: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    alerts: dict[tuple[str, str, str, str], list[int]] = field(default_factory=lambda: defaultdict(list))
    _coarse: dict[int, tuple[ByScope, ByBucket]] = field(default_factory=dict)

    def add(self, minute: int, kind: str, scope: str, articles: int, negative: int, score_sum: float = 0.0,
            stories: int | None = None, negative_stories: int | None = None) -> None:
        st = articles if stories is None else stories
        nst = negative if negative_stories is None else negative_stories
        for size, (counts, by_bucket) in [(MINUTE, (self.counts, self.by_minute)), *self._coarse.items()]:
            m = floor_to(minute, size)
            c = counts[(kind, scope)].get(m)
            if c is None:
                c = counts[(kind, scope)][m] = [0, 0, 0.0, 0, 0]
                by_bucket[m][(kind, scope)] = c
            c[0] += articles
            c[1] += negative
            c[2] += score_sum
            c[3] += st
            c[4] += nst
        if kind == "all":
            self.volume[minute] += articles

    def _level(self, bucket_s: int) -> tuple[ByScope, ByBucket]:
        if bucket_s == MINUTE:
            return self.counts, self.by_minute
        if bucket_s not in self._coarse:
            counts: ByScope = defaultdict(dict)
            by_bucket: ByBucket = defaultdict(dict)
            for key, minutes in self.counts.items():
                for m, c in minutes.items():
                    b = floor_to(m, bucket_s)
                    t = counts[key].get(b)
                    if t is None:
                        t = counts[key][b] = [0, 0, 0.0, 0, 0]
                        by_bucket[b][key] = t
                    for i in range(5):
                        t[i] += c[i]
            self._coarse[bucket_s] = (counts, by_bucket)
        return self._coarse[bucket_s]

    def minute_counts(self, start: int, end: int, kinds: Sequence[str]
                      ) -> Iterator[tuple[int, str, str, int, int, float]]:
        for m, kind, scope, a, n, s, _st, _nst in self.bucket_counts(start, end, kinds, MINUTE):
            yield m, kind, scope, a, n, s

    def bucket_counts(self, start: int, end: int, kinds: Sequence[str], bucket_s: int = MINUTE
                      ) -> Iterator[tuple[int, str, str, int, int, float, int, int]]:
        _counts, by_bucket = self._level(bucket_s)
        for m in range(floor_to(start, bucket_s), end, bucket_s):
            for (kind, scope), (a, n, s, st, nst) in by_bucket.get(m, {}).items():
                if kind in kinds:
                    yield m, kind, scope, a, n, s, st, nst

    def negative_history(self, kind: str, scope: str, start: int, end: int, bucket_s: int = MINUTE,
                         stories: bool = False) -> dict[int, int]:
        counts, _ = self._level(bucket_s)
        buckets = counts.get((kind, scope), {})
        i = 4 if stories else 1
        if len(buckets) < (end - start) // bucket_s:
            return {m: c[i] for m, c in buckets.items() if start <= m < end and c[i]}
        out = {}
        for m in range(floor_to(start, bucket_s), end, bucket_s):
            c = buckets.get(m)
            if c and c[i]:
                out[m] = c[i]
        return out

    def scope_history(self, kind: str, scope: str, start: int, end: int, bucket_s: int = MINUTE,
                      stories: bool = False) -> dict[int, tuple[int, int]]:
        counts, _ = self._level(bucket_s)
        buckets = counts.get((kind, scope), {})
        ia, ineg = (3, 4) if stories else (0, 1)
        if len(buckets) < (end - start) // bucket_s:
            return {m: (c[ia], c[ineg]) for m, c in buckets.items() if start <= m < end and c[ia]}
        out = {}
        for m in range(floor_to(start, bucket_s), end, bucket_s):
            c = buckets.get(m)
            if c and c[ia]:
                out[m] = (c[ia], c[ineg])
        return out

    def market_volume(self, start: int, end: int, bucket_s: int = MINUTE, stories: bool = False) -> dict[int, int]:
        counts, _ = self._level(bucket_s)
        buckets = counts.get(("all", "all"), {})
        i = 3 if stories else 0
        if len(buckets) < (end - start) // bucket_s:
            return {m: c[i] for m, c in buckets.items() if start <= m < end and c[i]}
        return {m: buckets[m][i] for m in range(floor_to(start, bucket_s), end, bucket_s)
                if m in buckets and buckets[m][i]}

    def alert_starts(self, kind: str, scope: str, rule: str, start: int, end: int, scale: str = "5m") -> list[int]:
        return [s for s in self.alerts.get((kind, scope, rule, scale), []) if start < s < end]

    def record(self, f: Finding) -> bool:
        starts = self.alerts[(f.scope_kind, f.scope, f.rule, f.scale)]
        if f.window_start in starts:
            return False
        bisect.insort(starts, f.window_start)
        return True


class Detector:
    """Streaming detector over in-memory counts: feed articles, advance the watermark.

    The same decisions as :class:`alerts.service.AlertService` makes over
    PostgreSQL (both run :func:`find_alerts` per scale and group the findings
    into incidents the same way).  ``cfg``: one scale's config or a list of them.
    """

    def __init__(self, cfg: DetectorConfig | Sequence[DetectorConfig] | None = None, lateness_s: int = 60,
                 incident_gap_s: int = INCIDENT_GAP_S):
        cfgs = [DetectorConfig()] if cfg is None else [cfg] if isinstance(cfg, DetectorConfig) else list(cfg)
        self.cfgs = cfgs
        self.cfg = cfgs[0]
        self.lateness_s = lateness_s
        self.store = MemoryStore()
        self.evaluated_until: int | None = None
        self.max_event_time: int | None = None
        self.alerts: list[Finding] = []
        self.incidents = IncidentBook(incident_gap_s)
        self.primary: list[Finding] = []  # the alerts that opened an incident (the ones sent)
        self.trace = None  # optional callback, see find_alerts

    def add(
        self,
        published_at: datetime | int,
        tickers: Iterable[str],
        topic: str | None,
        sentiment: str,
        score: float = 0.0,
        first_seen: bool = True,
        ticker_sentiment: Mapping[str, Any] | None = None,
    ) -> None:
        """One article.  ``ticker_sentiment``: the sentiment toward each ticker (``articles.ticker_sentiment``
        form); a ticker counts its own, else the headline's, as the ticker buckets do."""
        t = to_epoch(published_at)
        m = floor_to(t, MINUTE)
        neg = 1 if sentiment == "negative" else 0
        st = 1 if first_seen else 0
        for tk in set(tickers):
            tk_sentiment, tk_score = sentiment_toward(ticker_sentiment, tk, sentiment, score)
            tk_neg = 1 if tk_sentiment == "negative" else 0
            self.store.add(m, "ticker", tk, 1, tk_neg, tk_score, st, tk_neg * st)
        if topic:
            self.store.add(m, "topic", topic, 1, neg, score, st, neg * st)
        self.store.add(m, "all", "all", 1, neg, score, st, neg * st)
        self.max_event_time = t if self.max_event_time is None else max(self.max_event_time, t)

    def advance(self, watermark: datetime | int) -> list[Finding]:
        """Evaluate every window whose end the watermark has passed; return new alerts."""
        target = floor_to(to_epoch(watermark), MINUTE)
        if self.evaluated_until is None:
            if not self.store.volume:
                return []
            self.evaluated_until = min(self.store.volume)
        if target <= self.evaluated_until:
            return []
        found: list[Finding] = []
        for cfg, first, last in scale_ranges(self.evaluated_until, target, self.cfgs):
            found += find_alerts(self.store, first, last, cfg, self.trace)
        self.evaluated_until = target
        order = {c.scale: i for i, c in enumerate(self.cfgs)}
        found.sort(key=lambda f: (f.window_end, order.get(f.scale, 0), f.scope_kind, f.scope))
        new = [f for f in found if self.store.record(f)]
        for f in new:
            _inc, opened = self.incidents.add(f)
            if opened:
                self.primary.append(f)
        self.alerts.extend(new)
        return new

    def observe(self, max_event_time: datetime | int | None = None) -> list[Finding]:
        """Advance to (max event time seen - lateness)."""
        t = self.max_event_time if max_event_time is None else to_epoch(max_event_time)
        if t is None:
            return []
        return self.advance(t - self.lateness_s)
