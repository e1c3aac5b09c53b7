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
simulator (:mod:`alerts.simulator`: ``Detector``) runs the very same code over counts
kept in dictionaries; the tests use it to measure detection quality on generated streams.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from statistics import NormalDist
from typing import Any, Protocol

from stream.base.config import AlertSettings, ConfigError
from stream.base.labels import SCOPE_KINDS

MINUTE = 60
RULE = "negative_spike"


# -- time helpers (epoch seconds, UTC) ----------------------------------------
def to_epoch(t: datetime | int | float) -> int:
    """Epoch seconds (floored) of an aware datetime (naive = UTC) or a number."""
    if isinstance(t, datetime):
        if t.tzinfo is None:
            t = t.replace(tzinfo=UTC)
        return math.floor(t.timestamp())
    return math.floor(t)


def from_epoch(s: int | float) -> datetime:
    return datetime.fromtimestamp(s, tz=UTC)


def floor_to(s: int, step: int) -> int:
    return s - (s % step)


# -- configuration ---------------------------------------------------------------
# The thresholds are defined once, in the [alerts] settings section (stream/base/settings.py
# AlertSettings): a DetectorConfig takes its defaults from there, and every scale reads them from the
# settings it is given (THRESHOLDS), save those its Scale record overrides.
_ALERTS = AlertSettings()
THRESHOLDS = ("min_negative", "min_share", "z_threshold", "ewma_alpha", "min_std")


@dataclass(frozen=True)
class DetectorConfig:
    window_s: int = _ALERTS.window_s
    step_s: int = _ALERTS.step_s
    min_negative: int = _ALERTS.min_negative
    min_share: float = _ALERTS.min_share
    z_threshold: float = _ALERTS.z_threshold
    ewma_alpha: float = _ALERTS.ewma_alpha
    baseline_windows: int = _ALERTS.baseline_windows
    min_std: float = _ALERTS.min_std
    warmup_windows: int = _ALERTS.warmup_windows
    cooldown_s: int = _ALERTS.cooldown_s
    scope_kinds: tuple[str, ...] = tuple(_ALERTS.scope_kinds)
    rule: str = RULE
    scale: str = "5m"  # the time scale's name, stored with each alert
    anchored: bool = False  # windows grow from a multiple of window_s (a calendar day) instead of sliding
    count_stories: bool = True  # count unique stories (first-seen articles), not copies

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
            raise ConfigError("alerts settings: " + "; ".join(problems))

    @classmethod
    def from_settings(cls, a: AlertSettings) -> DetectorConfig:
        """The 5-minute scale of :class:`stream.base.settings.AlertSettings` (its window keys and thresholds)."""
        return parse_scale("5m", a)

    @property
    def lookback_s(self) -> int:
        return self.baseline_windows * self.window_s

    @property
    def bucket_s(self) -> int:
        """Counts are read in buckets of one step (a minute for 5-minute windows, an hour for days)."""
        return self.step_s

    def window_start(self, end: int) -> int:
        """Start of the window that ends at ``end`` (step-aligned)."""
        return floor_to(end - 1, self.window_s) if self.anchored else end - self.window_s

    @classmethod
    def scales_from_settings(cls, a: AlertSettings) -> list[DetectorConfig]:
        """One config per time scale of :class:`stream.base.settings.AlertSettings` (``scales``)."""
        return [parse_scale(spec, a) for spec in a.scales]


# -- time scales ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Scale:
    """A time scale: its windows, its baseline, and the thresholds it sets instead of the [alerts] ones
    (None: the [alerts] value)."""

    name: str
    window_s: int
    step_s: int
    baseline_windows: int
    warmup_windows: int
    cooldown_s: int
    anchored: bool = False  # the window grows from its multiple of window_s (a UTC day) instead of sliding
    min_negative: int | None = None
    min_share: float | None = None
    z_threshold: float | None = None
    ewma_alpha: float | None = None
    min_std: float | None = None

    def config(self, a: AlertSettings) -> DetectorConfig:
        """This scale over the [alerts] settings ``a``; the market (``all``) is watched too at its
        ``market_scales``."""
        kinds = tuple(a.scope_kinds)
        if self.name in tuple(getattr(a, "market_scales", ())) and "all" not in kinds:
            kinds = kinds + ("all",)
        thresholds = {k: getattr(a, k) if getattr(self, k) is None else getattr(self, k) for k in THRESHOLDS}
        return DetectorConfig(window_s=self.window_s, step_s=self.step_s, baseline_windows=self.baseline_windows,
                              warmup_windows=self.warmup_windows, cooldown_s=self.cooldown_s, scale=self.name,
                              anchored=self.anchored, scope_kinds=kinds, **thresholds)


# 5m: sliding 5-minute windows every minute, baseline the last day (the [alerts] window keys, see
#     five_minutes());
# 1h: sliding hours every 5 minutes, baseline the last week; floors: at least 0.25 negatives expected
#     an hour, half the hour's stories negative, z >= 6 (at the 5m floors, earnings hours of quiet
#     tickers fired 0.6 false alerts per calm generated day);
# 1d: the UTC calendar day so far, evaluated every hour, baseline the last 30 days.  A day of bad
#     news about a company is a few more negatives among many ordinary posts: no share floor,
#     z >= 3, at least 4 negative stories (measured on the StockNet replay: at z >= 5, 40 % share and
#     5 negatives the day scale found 6 ticker-days in two years; at z >= 3, no share floor and 4
#     negatives 47, among them 27 of the 28 days of the simple daily rule of issue 15).
SCALES: dict[str, Scale] = {s.name: s for s in (
    Scale("1h", window_s=3600, step_s=300, baseline_windows=168, warmup_windows=4, cooldown_s=6 * 3600,
          min_std=0.5, min_share=0.5, z_threshold=6.0),
    Scale("1d", window_s=86400, step_s=3600, baseline_windows=30, warmup_windows=7, cooldown_s=86400, anchored=True,
          min_share=0.0, z_threshold=3.0, min_negative=4),
)}


def five_minutes(a: AlertSettings) -> Scale:
    """The 5m scale: its windows from the [alerts] keys."""
    return Scale("5m", window_s=a.window_s, step_s=a.step_s, baseline_windows=a.baseline_windows,
                 warmup_windows=a.warmup_windows, cooldown_s=a.cooldown_s)


def custom_scale(name: str, spec: str, whole: str | None = None) -> Scale:
    """``WINDOW_S/STEP_S[/BASELINE_WINDOWS[/COOLDOWN_S[/anchored]]]`` (baseline: a week, at most 288 windows;
    cooldown: six windows)."""
    parts = [p.strip() for p in spec.split("/")]
    try:
        window, step = int(parts[0]), int(parts[1])
        baseline = int(parts[2]) if len(parts) > 2 and parts[2] else max(1, min(288, 86400 * 7 // window))
        cooldown = int(parts[3]) if len(parts) > 3 and parts[3] else window * 6
    except (ValueError, IndexError, ZeroDivisionError):
        raise ConfigError(f"alerts scale {whole or f'{name}={spec}'!r}: use "
                          "NAME=WINDOW_S/STEP_S[/BASELINE_WINDOWS[/COOLDOWN_S[/anchored]]]") from None
    return Scale(name, window_s=window, step_s=step, baseline_windows=baseline, warmup_windows=min(6, baseline),
                 cooldown_s=cooldown, anchored=len(parts) > 4 and parts[4] == "anchored")


def parse_scale(spec: str, a: AlertSettings) -> DetectorConfig:
    """A scale spec of the settings: ``5m`` (the [alerts] window keys), ``1h``, ``1d``, or
    ``NAME=WINDOW_S/STEP_S[/BASELINE_WINDOWS[/COOLDOWN_S[/anchored]]]``."""
    name, _, custom = spec.strip().partition("=")
    name = name.strip()
    if custom:
        return custom_scale(name, custom, spec).config(a)
    if name == "5m":
        return five_minutes(a).config(a)
    if name not in SCALES:
        raise ConfigError(f"alerts scale {name!r}: unknown (use 5m, 1h, 1d or NAME=WINDOW_S/STEP_S)")
    return SCALES[name].config(a)


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

        def ratio(k: int) -> float:
            return mean / (k + 1)
    else:
        r = mean * mean / (var - mean)
        p = r / (r + mean)
        log_term = math.lgamma(n + r) - math.lgamma(r) - math.lgamma(n + 1) + r * math.log(p) + n * math.log1p(-p)

        def ratio(k: int) -> float:
            return (k + r) / (k + 1) * (1 - p)
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
    negatives: Mapping[int, int], volume: Mapping[int, int], window_start: int, cfg: DetectorConfig,
    memo: dict[int, tuple[int, int]] | None = None, own: Mapping[int, int] | None = None,
) -> list[tuple[int, int]]:
    """(negatives, market volume) of the observed earlier windows ending at ``window_start``.

    ``negatives`` maps bucket start (epoch seconds, ``cfg.bucket_s`` wide) to
    the scope's negative count, ``volume`` maps bucket to what the whole system
    saw; windows without any are skipped (unobserved).  Oldest first.  Earlier
    windows are always full ``window_s`` long (for anchored scales: the
    previous whole days).  ``memo`` caches window sums between calls.  With
    ``own`` (bucket -> the scope's own articles) the volume is the rest of the
    market: a scope that makes up much of the stream (one big ticker in a
    sparse archive) does not raise its own expectation with its own burst.
    """
    W, b = cfg.window_s, cfg.bucket_s
    out: list[tuple[int, int]] = []
    for k in range(cfg.baseline_windows, 0, -1):
        s = window_start - k * W
        got = memo.get(s) if memo is not None else None
        if got is None:
            buckets = range(s, s + W, b)
            v = sum(volume.get(m, 0) for m in buckets)
            rest = v - sum(own.get(m, 0) for m in buckets) if own is not None else v
            got = (sum(negatives.get(m, 0) for m in buckets), rest if v > 0 else -1)
            if memo is not None:
                memo[s] = got
        if got[1] >= 0:  # observed (the whole system saw something in it)
            out.append(got)
    return out


def window_volume(volume: Mapping[int, int], window_start: int, cfg: DetectorConfig, end: int | None = None) -> int:
    end = window_start + cfg.window_s if end is None else end
    return sum(volume.get(m, 0) for m in range(window_start, end, cfg.bucket_s))


# -- evaluating a range of windows over a store of counts -----------------------------
class CountStore(Protocol):
    """Where :func:`find_alerts` reads its counts (memory or PostgreSQL).

    Buckets are ``bucket_s`` wide (a multiple of 60) and aligned to it; with
    ``stories`` the counts are of unique stories (first-seen articles).
    """

    def bucket_counts(
        self, start: int, end: int, kinds: Sequence[str], bucket_s: int
    ) -> Iterable[tuple[int, str, str, int, int, float, int, int]]:
        """(bucket, scope_kind, scope, articles, negative, score_sum, stories, negative_stories), start <= bucket < end."""

    def negative_history(
        self, kind: str, scope: str, start: int, end: int, bucket_s: int = MINUTE, stories: bool = False
    ) -> Mapping[int, int]:
        """bucket -> negative count of one scope, start <= bucket < end."""

    def market_volume(self, start: int, end: int, bucket_s: int = MINUTE, stories: bool = False) -> Mapping[int, int]:
        """bucket -> articles (or stories) seen by the whole system (scope 'all'), start <= bucket < end."""

    def scope_history(
        self, kind: str, scope: str, start: int, end: int, bucket_s: int = MINUTE, stories: bool = False
    ) -> Mapping[int, tuple[int, int]]:
        """bucket -> (articles, negative) of one scope (stories with ``stories``), start <= bucket < end."""

    def alert_starts(self, kind: str, scope: str, rule: str, start: int, end: int, scale: str = "5m") -> list[int]:
        """Sorted window starts of the scope's stored alerts at this scale, start < window_start < end."""


@dataclass(frozen=True)
class Finding:
    scope_kind: str
    scope: str
    window_start: int
    window_end: int
    decision: Decision  # in the units the scale counts (stories by default)
    score_sum: float = 0.0
    rule: str = RULE
    scale: str = "5m"
    articles: int = 0  # all articles of the scope in the window, copies included
    negative_articles: int = 0

    @property
    def mean_score(self) -> float:
        n = self.articles or self.decision.articles
        return self.score_sum / n if n else 0.0


def candidate_windows(store: CountStore, first_end: int, last_end: int, cfg: DetectorConfig
                      ) -> dict[tuple[str, str], list[tuple[Any, ...]]]:
    """Per scope, the windows ending in ``[first_end, last_end]`` that are large and negative enough (cheap: no
    history), each as ``(end, articles, negatives, score_sum, all articles, all negatives)``; stories are
    counted instead of articles when the scale counts stories."""
    W, step, b = cfg.window_s, cfg.step_s, cfg.bucket_s
    per_scope: dict[tuple[str, str], dict[int, tuple[int, int, float, int, int]]] = defaultdict(dict)
    for bucket, kind, scope, articles, negative, score_sum, st, nst in store.bucket_counts(
        cfg.window_start(first_end), last_end, cfg.scope_kinds, b
    ):
        per_scope[(kind, scope)][bucket] = (st, nst, score_sum, articles, negative) if cfg.count_stories else (
            articles, negative, score_sum, articles, negative)
    candidates: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
    for key, buckets in per_scope.items():
        ends: set[int] = set()
        for m, c in buckets.items():
            if c[1] <= 0:
                continue
            lo = max(first_end, floor_to(m, step) + step)  # first window end after m
            hi = min(last_end, floor_to(m, W) + W if cfg.anchored else m + W)  # last end whose window holds m
            ends.update(range(lo, hi + 1, step))
        found = []
        for e in sorted(ends):
            a = n = aa = na = 0
            s = 0.0
            for m in range(cfg.window_start(e), e, b):
                got = buckets.get(m)
                if got:
                    a += got[0]
                    n += got[1]
                    s += got[2]
                    aa += got[3]
                    na += got[4]
            if n >= cfg.min_negative and a and n / a >= cfg.min_share:
                found.append((e, a, n, s, aa, na))
        if found:
            candidates[key] = found
    return candidates


def find_alerts(
    store: CountStore, first_end: int, last_end: int, cfg: DetectorConfig,
    trace: Callable[[str, str, int, Decision], None] | None = None,
) -> list[Finding]:
    """Evaluate every window of the scale ending at ``first_end, first_end + step, ..., last_end``.

    Returns the windows that fire, in (window end, scope) order, with the
    cooldown applied across them and against the alerts already in ``store``.
    A window whose start already has an alert of this scale is not reported
    again (anchored windows grow over the day: the first firing one counts).
    ``trace(kind, scope, window_start, decision)`` is called for every window
    that passed the cheap volume tests (for tuning and explaining).
    """
    if last_end < first_end:
        return []
    assert first_end % cfg.step_s == 0 and last_end % cfg.step_s == 0, "window ends must be step-aligned"
    candidates = candidate_windows(store, first_end, last_end, cfg)
    if not candidates:
        return []
    b, stories = cfg.bucket_s, cfg.count_stories
    first_ws = min(cfg.window_start(c[0][0]) for c in candidates.values())
    last_end_c = max(c[-1][0] for c in candidates.values())
    volume = store.market_volume(first_ws - cfg.lookback_s, last_end_c, b, stories)
    findings: list[Finding] = []
    for (kind, scope), found in sorted(candidates.items()):
        ws0 = cfg.window_start(found[0][0])
        ws1 = cfg.window_start(found[-1][0])
        own_rows = store.scope_history(kind, scope, ws0 - cfg.lookback_s, ws1, b, stories)
        negatives = {m: n for m, (_a, n) in own_rows.items() if n}
        # a ticker is measured against the rest of the market (one big ticker can be much of a sparse
        # stream); topics and the market itself against all of it
        own = {m: a_ for m, (a_, _n) in own_rows.items()} if kind == "ticker" else None
        alerts = sorted(store.alert_starts(kind, scope, cfg.rule, ws0 - cfg.cooldown_s, ws1 + cfg.cooldown_s, cfg.scale))
        memo: dict[int, tuple[int, int]] = {}
        for e, a, n, s, aa, na in found:
            ws = cfg.window_start(e)
            if ws in alerts:
                continue  # this window (start) already alerted at this scale
            hist = history_counts(negatives, volume, ws, cfg, memo, own)
            vol = window_volume(volume, ws, cfg, e)
            vol = max(vol - a, 0) if own is not None else max(vol, a)  # the rest of the market
            d = decide(a, n, hist, vol, in_cooldown(ws, alerts, cfg.cooldown_s), cfg)
            if trace is not None:
                trace(kind, scope, ws, d)
            if d.fire:
                findings.append(Finding(kind, scope, ws, e, d, s, cfg.rule, cfg.scale, aa, na))
                bisect.insort(alerts, ws)
    findings.sort(key=lambda f: (f.window_end, f.scope_kind, f.scope))
    return findings


# -- incidents ---------------------------------------------------------------------------------
INCIDENT_GAP_S = 3600


def joins_incident(window_start: int, window_end: int, inc_start: int, inc_end: int,
                   gap_s: int = INCIDENT_GAP_S) -> bool:
    """Whether an alert's window belongs to an open incident of the same scope.

    An incident spans the union of its alerts' windows; an alert joins it when
    its window overlaps the incident or starts less than ``gap_s`` after it
    ends.  So a burst that fires at 5 minutes, then at the hour and the day
    scale, is one incident; a new burst hours later is a new one.
    """
    return window_start < inc_end + gap_s and window_end > inc_start


def ceil_to(s: int, step: int) -> int:
    return -((-s) // step) * step


def scale_ranges(evaluated: int, target: int, cfgs: Sequence[DetectorConfig]) -> list[tuple[DetectorConfig, int, int]]:
    """(config, first_end, last_end) of the windows of each scale ending in ``(evaluated, target]``."""
    out = []
    for cfg in cfgs:
        first, last = ceil_to(evaluated + 1, cfg.step_s), floor_to(target, cfg.step_s)
        if last >= first:
            out.append((cfg, first, last))
    return out
