"""Pure negative-spike detection over event-time windows (no I/O).

Model
-----
* Counts come per **minute** and per scope (``ticker`` / ``topic``): articles,
  negative articles, sum of sentiment scores (the ``sentiment_minute`` table).
* A **window** is ``[end - window_s, end)``; windows slide by ``step_s``
  (default: 5-minute windows every minute), so a short burst always lies inside
  one window whatever its phase (tumbling windows would split a 6-article burst
  3 + 3 and miss it).  A window is evaluated once, when the watermark passes its
  end.
* A window **fires** for a scope when all of these hold:

  1. ``negative >= min_negative`` (large),
  2. ``negative / articles >= min_share`` (negative, not just busy: an earnings
     burst of mixed news does not fire),
  3. at least ``warmup_windows`` observed earlier windows exist (see below),
  4. the count is unusual for *this* scope: ``z >= z_threshold`` (below),
  5. no alert of the same rule for the scope whose window starts less than
     ``cooldown_s`` away (either side: re-evaluations after a replay rewind
     cannot add a second alert next to an existing one).

* **Baseline.**  Over the ``baseline_windows`` non-overlapping windows that end
  where this one starts, exponentially weighted (``ewma_alpha``; the newest
  weighs most, weights normalised so a short history is not biased):
  the scope's **negative rate per article of market volume**
  ``r = EWMA(negatives) / EWMA(all articles)`` and the residual variance per
  unit of volume.  The expected count for the window is ``r`` times the
  window's market volume (all scopes), so the intraday rhythm -- quiet night,
  pre-market ramp, the open -- moves the expectation of every scope with it
  instead of firing at each ramp (the plain per-window EWMA did: ~27 false
  alerts per calm generated day at z >= 3).  A single scope's burst barely
  moves the market volume, so it stands out in full.
  Floors: the expected count is at least ``min_std**2`` and its variance at
  least the expectation (counts are at least Poisson-noisy), so a quiet scope
  can not fire on a couple of articles.
* **z** is the smaller of the z-score against the EWMA spread,
  ``(negative − mean) / std`` (a bursty scope is less surprising), and the
  Gaussian-equivalent z of the exact Poisson tail at the expected count,
  ``Φ⁻¹(1 − P(X >= negative))``, which is honest about small counts (5
  articles against an expected 1 is z ≈ 2.7, not 4).  Since it is calibrated,
  the default threshold is 5: about 3 in ten million per window and scope,
  which is what keeps a day of ~200,000 (window, scope) tests quiet.
* **Observed windows.**  An earlier window counts in the baseline only if the
  whole system saw at least one article in it (any scope).  Windows before the
  stream started or while the pipeline was down are *unknown*, not zero, so a
  fresh deployment or a replayed archive warms up instead of treating its first
  busy minutes as spikes.  Inside an observed window a scope without articles
  counts as zero.

Everything here is a function of the counts only, so evaluating the same
windows again (after a restart, or a replay) gives the same decisions; the
database layer (:mod:`alerts.service`) adds idempotent storage.  The in-memory
:class:`Detector` runs the very same code over counts kept in dictionaries; the
tests use it to measure detection quality on generated streams.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from dataclasses import dataclass, field
from statistics import NormalDist
from datetime import datetime, timezone
from typing import Iterable, Mapping, Protocol, Sequence

MINUTE = 60
RULE = "negative_spike"
SCOPE_KINDS = ("ticker", "topic", "all")


# -- time helpers (epoch seconds, UTC) ----------------------------------------
def to_epoch(t: datetime | int | float) -> int:
    """Epoch seconds (floored) of an aware datetime (naive = UTC) or a number."""
    if isinstance(t, datetime):
        if t.tzinfo is None:
            t = t.replace(tzinfo=timezone.utc)
        return math.floor(t.timestamp())
    return math.floor(t)


def from_epoch(s: int | float) -> datetime:
    return datetime.fromtimestamp(s, tz=timezone.utc)


def floor_to(s: int, step: int) -> int:
    return s - (s % step)


# -- configuration ---------------------------------------------------------------
@dataclass(frozen=True)
class DetectorConfig:
    window_s: int = 300
    step_s: int = 60
    min_negative: int = 5
    min_share: float = 0.4
    z_threshold: float = 5.0
    ewma_alpha: float = 0.1
    baseline_windows: int = 288
    min_std: float = 0.3
    warmup_windows: int = 6
    cooldown_s: int = 1800
    scope_kinds: tuple[str, ...] = ("ticker", "topic")
    rule: str = RULE

    def __post_init__(self) -> None:
        problems = []
        if self.step_s <= 0 or self.step_s % MINUTE:
            problems.append(f"step_s={self.step_s} must be a positive multiple of 60")
        if self.window_s <= 0 or self.window_s % MINUTE:
            problems.append(f"window_s={self.window_s} must be a positive multiple of 60")
        elif self.step_s > 0 and self.window_s % self.step_s:
            problems.append(f"step_s={self.step_s} must divide window_s={self.window_s}")
        if not 0 < self.ewma_alpha <= 1:
            problems.append(f"ewma_alpha={self.ewma_alpha} must be in (0, 1]")
        if self.min_negative < 1:
            problems.append(f"min_negative={self.min_negative} must be >= 1")
        if not 0 <= self.min_share <= 1:
            problems.append(f"min_share={self.min_share} must be in [0, 1]")
        if self.baseline_windows < 1 or self.warmup_windows < 0:
            problems.append("baseline_windows must be >= 1 and warmup_windows >= 0")
        if self.warmup_windows > self.baseline_windows:
            problems.append("warmup_windows must not exceed baseline_windows")
        if self.min_std <= 0:
            problems.append(f"min_std={self.min_std} must be > 0")
        bad = [k for k in self.scope_kinds if k not in SCOPE_KINDS]
        if bad:
            problems.append(f"scope_kinds: unknown {bad} (use {', '.join(SCOPE_KINDS)})")
        if problems:
            from stream.config import ConfigError

            raise ConfigError("alerts settings: " + "; ".join(problems))

    @classmethod
    def from_settings(cls, a) -> "DetectorConfig":
        """From :class:`stream.config.AlertSettings`."""
        return cls(
            window_s=a.window_s,
            step_s=a.step_s,
            min_negative=a.min_negative,
            min_share=a.min_share,
            z_threshold=a.z_threshold,
            ewma_alpha=a.ewma_alpha,
            baseline_windows=a.baseline_windows,
            min_std=a.min_std,
            warmup_windows=a.warmup_windows,
            cooldown_s=a.cooldown_s,
            scope_kinds=tuple(a.scope_kinds),
        )

    @property
    def lookback_s(self) -> int:
        return self.baseline_windows * self.window_s


# -- the decision for one window -------------------------------------------------
@dataclass(frozen=True)
class Baseline:
    mean: float  # expected negatives in the window (after the floor)
    std: float  # its standard deviation (after the floor)
    windows: int  # observed earlier windows behind it


def ewma_baseline(history: Sequence[tuple[float, float]], volume: float, cfg: DetectorConfig) -> Baseline:
    """Expected negatives (and spread) for a window with market ``volume``.

    ``history``: (scope negatives, market articles) of the observed earlier
    windows, oldest first.
    """
    n = len(history)
    floor = cfg.min_std * cfg.min_std
    if n == 0:
        return Baseline(floor, cfg.min_std, 0)
    decay = 1.0 - cfg.ewma_alpha
    weights = []
    w = 1.0
    for _ in range(n):
        weights.append(w)
        w *= decay
    weights.reverse()  # newest last, weight 1
    sn = sum(wi * x for wi, (x, _) in zip(weights, history))
    sa = sum(wi * v for wi, (_, v) in zip(weights, history))
    if sa <= 0:
        return Baseline(floor, cfg.min_std, n)
    rate = sn / sa
    resid = sum(wi * (x - rate * v) ** 2 for wi, (x, v) in zip(weights, history))
    mean = max(rate * volume, floor)
    var = max(resid / sa * volume, mean)
    return Baseline(mean, math.sqrt(var), n)


_NORMAL = NormalDist()
Z_CAP = 37.0  # the z of a tail probability too small for a double


def tail_probability(n: int, mean: float, var: float) -> float:
    """P(X >= n) for a count with this mean and variance.

    Poisson when ``var <= mean``; otherwise negative binomial with that mean and
    variance (over-dispersed scopes: bursty by nature, less surprising).
    Summed from ``n`` upwards, so tiny tails keep their precision.
    """
    if n <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    if var <= mean * (1 + 1e-9):
        log_term = -mean + n * math.log(mean) - math.lgamma(n + 1)
        ratio = lambda k: mean / (k + 1)  # noqa: E731
    else:
        r = mean * mean / (var - mean)
        p = r / (r + mean)
        log_term = math.lgamma(n + r) - math.lgamma(r) - math.lgamma(n + 1) + r * math.log(p) + n * math.log1p(-p)
        ratio = lambda k: (k + r) / (k + 1) * (1 - p)  # noqa: E731
    if log_term < -745:
        return 0.0
    term = math.exp(log_term)
    total = term
    k = n
    for _ in range(100_000):
        term *= ratio(k)
        k += 1
        total += term
        if term < total * 1e-13:
            break
    return min(1.0, total)


def poisson_z(n: int, mean: float) -> float:
    """Gaussian-equivalent z of P(X >= n) for X ~ Poisson(mean): Φ⁻¹(1 − P)."""
    p = tail_probability(n, mean, mean)
    if p <= 0.0:
        return Z_CAP
    if p >= 0.5:
        return min(0.0, (n - mean) / math.sqrt(mean))
    return min(Z_CAP, -_NORMAL.inv_cdf(p))


def surprise_z(n: int, b: Baseline) -> float:
    """How unusual ``n`` negatives are against the baseline, as a z-score.

    The smaller of the plain z-score against the EWMA spread,
    ``(n − mean) / std``, and the Gaussian-equivalent z of the exact Poisson
    tail at the expected count: the count must be unusual both for this
    scope's own variability (a bursty scope is less surprising) and beyond
    counting noise (small counts have tails much heavier than a Gaussian's:
    5 against an expected 1 is a Poisson z of 2.7, not 4).
    """
    return min((n - b.mean) / b.std, poisson_z(n, b.mean))


@dataclass(frozen=True)
class Decision:
    fire: bool
    reason: str  # fired | below_min | low_share | warmup | not_unusual | cooldown
    articles: int
    negative: int
    share: float
    baseline: float
    std: float
    z: float
    history: int


def decide(
    articles: int,
    negative: int,
    history: Sequence[tuple[float, float]],
    volume: float,
    in_cooldown: bool,
    cfg: DetectorConfig,
) -> Decision:
    """The verdict on one window of one scope.

    ``history``: (negatives, market articles) of the observed earlier windows,
    oldest first; ``volume``: market articles in this window.
    """
    share = negative / articles if articles else 0.0
    b = ewma_baseline(history, volume, cfg)
    z = surprise_z(negative, b)

    def d(fire: bool, reason: str) -> Decision:
        return Decision(fire, reason, articles, negative, share, b.mean, b.std, z, b.windows)

    if negative < cfg.min_negative:
        return d(False, "below_min")
    if share < cfg.min_share:
        return d(False, "low_share")
    if b.windows < cfg.warmup_windows:
        return d(False, "warmup")
    if z < cfg.z_threshold:
        return d(False, "not_unusual")
    if in_cooldown:
        return d(False, "cooldown")
    return d(True, "fired")


def in_cooldown(window_start: int, alert_starts: Sequence[int], cooldown_s: int) -> bool:
    """True if another alert's window starts less than ``cooldown_s`` away.

    ``alert_starts`` must be sorted.  An alert for exactly this window is not a
    cooldown (it is the same alert; storage de-duplicates it).
    """
    i = bisect.bisect_right(alert_starts, window_start - cooldown_s)
    while i < len(alert_starts) and alert_starts[i] < window_start + cooldown_s:
        if alert_starts[i] != window_start:
            return True
        i += 1
    return False


def history_counts(
    negatives: Mapping[int, int], volume: Mapping[int, int], window_start: int, cfg: DetectorConfig
) -> list[tuple[int, int]]:
    """(negatives, market articles) of the observed earlier windows ending at ``window_start``.

    ``negatives`` maps minute (epoch seconds) to the scope's negative count,
    ``volume`` maps minute to the articles the whole system saw; windows
    without any are skipped (unobserved).  Oldest first.
    """
    W = cfg.window_s
    out: list[tuple[int, int]] = []
    for k in range(cfg.baseline_windows, 0, -1):
        s = window_start - k * W
        minutes = range(s, s + W, MINUTE)
        v = sum(volume.get(m, 0) for m in minutes)
        if v <= 0:
            continue
        out.append((sum(negatives.get(m, 0) for m in minutes), v))
    return out


def window_volume(volume: Mapping[int, int], window_start: int, cfg: DetectorConfig) -> int:
    return sum(volume.get(m, 0) for m in range(window_start, window_start + cfg.window_s, MINUTE))


# -- evaluating a range of windows over a store of counts -----------------------------
class CountStore(Protocol):
    """Where :func:`find_alerts` reads its counts (memory or PostgreSQL)."""

    def minute_counts(
        self, start: int, end: int, kinds: Sequence[str]
    ) -> Iterable[tuple[int, str, str, int, int, float]]:
        """(minute, scope_kind, scope, articles, negative, score_sum) for start <= minute < end."""

    def negative_history(self, kind: str, scope: str, start: int, end: int) -> Mapping[int, int]:
        """minute -> negative count of one scope, start <= minute < end."""

    def market_volume(self, start: int, end: int) -> Mapping[int, int]:
        """minute -> articles seen by the whole system (scope 'all'), start <= minute < end."""

    def alert_starts(self, kind: str, scope: str, rule: str, start: int, end: int) -> list[int]:
        """Sorted window starts of the scope's stored alerts, start < window_start < end."""


@dataclass(frozen=True)
class Finding:
    scope_kind: str
    scope: str
    window_start: int
    window_end: int
    decision: Decision
    score_sum: float = 0.0
    rule: str = RULE

    @property
    def mean_score(self) -> float:
        return self.score_sum / self.decision.articles if self.decision.articles else 0.0


def find_alerts(
    store: CountStore, first_end: int, last_end: int, cfg: DetectorConfig, trace=None
) -> list[Finding]:
    """Evaluate every window ending at ``first_end, first_end + step, ..., last_end``.

    Returns the windows that fire, in (window end, scope) order, with the
    cooldown applied across them and against the alerts already in ``store``.
    ``trace(kind, scope, window_start, decision)`` is called for every window
    that passed the cheap volume tests (for tuning and explaining).
    """
    W, step = cfg.window_s, cfg.step_s
    if last_end < first_end:
        return []
    assert first_end % step == 0 and last_end % step == 0, "window ends must be step-aligned"
    per_scope: dict[tuple[str, str], dict[int, tuple[int, int, float]]] = defaultdict(dict)
    for minute, kind, scope, articles, negative, score_sum in store.minute_counts(
        first_end - W, last_end, cfg.scope_kinds
    ):
        per_scope[(kind, scope)][minute] = (articles, negative, score_sum)

    # candidates: windows that are large and negative enough (cheap, no history)
    candidates: dict[tuple[str, str], list[tuple[int, int, int, float]]] = {}
    for key, minutes in per_scope.items():
        ends: set[int] = set()
        for m, (_a, n, _s) in minutes.items():
            if n <= 0:
                continue
            lo = max(first_end, floor_to(m, step) + step)  # first window end after m
            hi = min(last_end, m + W)  # last window end whose window still holds m
            ends.update(range(lo, hi + 1, step))
        found = []
        for e in sorted(ends):
            a = n = 0
            s = 0.0
            for m in range(e - W, e, MINUTE):
                c = minutes.get(m)
                if c:
                    a += c[0]
                    n += c[1]
                    s += c[2]
            if n >= cfg.min_negative and a and n / a >= cfg.min_share:
                found.append((e, a, n, s))
        if found:
            candidates[key] = found
    if not candidates:
        return []

    first_ws = min(c[0][0] for c in candidates.values()) - W
    last_ws = max(c[-1][0] for c in candidates.values()) - W
    volume = store.market_volume(first_ws - cfg.lookback_s, last_ws + W)
    findings: list[Finding] = []
    for (kind, scope), found in sorted(candidates.items()):
        negatives = store.negative_history(kind, scope, found[0][0] - W - cfg.lookback_s, found[-1][0] - W)
        alerts = sorted(
            store.alert_starts(kind, scope, cfg.rule, found[0][0] - W - cfg.cooldown_s, found[-1][0] - W + cfg.cooldown_s)
        )
        for e, a, n, s in found:
            ws = e - W
            hist = history_counts(negatives, volume, ws, cfg)
            vol = max(window_volume(volume, ws, cfg), a)
            d = decide(a, n, hist, vol, in_cooldown(ws, alerts, cfg.cooldown_s), cfg)
            if trace is not None:
                trace(kind, scope, ws, d)
            if d.fire:
                findings.append(Finding(kind, scope, ws, e, d, s, cfg.rule))
                if ws not in alerts:
                    bisect.insort(alerts, ws)
    findings.sort(key=lambda f: (f.window_end, f.scope_kind, f.scope))
    return findings


# -- in-memory store and streaming detector ------------------------------------------
@dataclass
class MemoryStore:
    """:class:`CountStore` in dictionaries (tests, quality runs, what-if tuning)."""

    counts: dict[tuple[str, str], dict[int, list]] = field(default_factory=lambda: defaultdict(dict))
    by_minute: dict[int, dict[tuple[str, str], list]] = field(default_factory=lambda: defaultdict(dict))
    volume: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    alerts: dict[tuple[str, str, str], list[int]] = field(default_factory=lambda: defaultdict(list))

    def add(self, minute: int, kind: str, scope: str, articles: int, negative: int, score_sum: float = 0.0) -> None:
        c = self.counts[(kind, scope)].get(minute)
        if c is None:
            c = self.counts[(kind, scope)][minute] = [0, 0, 0.0]
            self.by_minute[minute][(kind, scope)] = c
        c[0] += articles
        c[1] += negative
        c[2] += score_sum
        if kind == "all":
            self.volume[minute] += articles

    def minute_counts(self, start, end, kinds):
        for m in range(floor_to(start, MINUTE), end, MINUTE):
            for (kind, scope), (a, n, s) in self.by_minute.get(m, {}).items():
                if kind in kinds:
                    yield m, kind, scope, a, n, s

    def negative_history(self, kind, scope, start, end):
        minutes = self.counts.get((kind, scope), {})
        if len(minutes) < (end - start) // MINUTE:
            return {m: c[1] for m, c in minutes.items() if start <= m < end and c[1]}
        out = {}
        for m in range(floor_to(start, MINUTE), end, MINUTE):
            c = minutes.get(m)
            if c and c[1]:
                out[m] = c[1]
        return out

    def market_volume(self, start, end):
        v = self.volume
        return {m: v[m] for m in range(floor_to(start, MINUTE), end, MINUTE) if m in v}

    def alert_starts(self, kind, scope, rule, start, end):
        return [s for s in self.alerts.get((kind, scope, rule), []) if start < s < end]

    def record(self, f: Finding) -> bool:
        starts = self.alerts[(f.scope_kind, f.scope, f.rule)]
        if f.window_start in starts:
            return False
        bisect.insort(starts, f.window_start)
        return True


class Detector:
    """Streaming detector over in-memory counts: feed articles, advance the watermark.

    The same decisions as :class:`alerts.service.AlertService` makes over
    PostgreSQL (both run :func:`find_alerts`).
    """

    def __init__(self, cfg: DetectorConfig | None = None, lateness_s: int = 60):
        self.cfg = cfg or DetectorConfig()
        self.lateness_s = lateness_s
        self.store = MemoryStore()
        self.evaluated_until: int | None = None
        self.max_event_time: int | None = None
        self.alerts: list[Finding] = []
        self.trace = None  # optional callback, see find_alerts

    def add(
        self,
        published_at: datetime | int,
        tickers: Iterable[str],
        topic: str | None,
        sentiment: str,
        score: float = 0.0,
    ) -> None:
        t = to_epoch(published_at)
        m = floor_to(t, MINUTE)
        neg = 1 if sentiment == "negative" else 0
        for tk in set(tickers):
            self.store.add(m, "ticker", tk, 1, neg, score)
        if topic:
            self.store.add(m, "topic", topic, 1, neg, score)
        self.store.add(m, "all", "all", 1, neg, score)
        self.max_event_time = t if self.max_event_time is None else max(self.max_event_time, t)

    def advance(self, watermark: datetime | int) -> list[Finding]:
        """Evaluate every window whose end the watermark has passed; return new alerts."""
        step = self.cfg.step_s
        target = floor_to(to_epoch(watermark), step)
        if self.evaluated_until is None:
            if not self.store.volume:
                return []
            self.evaluated_until = floor_to(min(self.store.volume), step)
        if target <= self.evaluated_until:
            return []
        found = find_alerts(self.store, self.evaluated_until + step, target, self.cfg, self.trace)
        self.evaluated_until = target
        new = [f for f in found if self.store.record(f)]
        self.alerts.extend(new)
        return new

    def observe(self, max_event_time: datetime | int | None = None) -> list[Finding]:
        """Advance to (max event time seen - lateness)."""
        t = self.max_event_time if max_event_time is None else to_epoch(max_event_time)
        if t is None:
            return []
        return self.advance(t - self.lateness_s)
