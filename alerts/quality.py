"""Detection quality on generated streams (ground-truth sentiment, no model, no database).

``python -m alerts.quality --days 30`` runs the pure detector
(:class:`alerts.simulator.Detector`, the same code the service runs over
PostgreSQL) over generated days and prints:

* false alerts per calm day (no planted spike: every alert is a false one);
* for planted negative bursts of several sizes on quiet / mid / busy tickers
  (and topic-wide bursts): the share detected by exactly one alert for the
  right scope within one window of the burst's end, duplicates, misses, and
  the detection delay in event time.

A planted burst is *detected* when exactly one incident for its scope (the
alerts of every time scale grouped, see :class:`alerts.simulator.IncidentBook`)
overlaps ``[at - window, end + window)`` and the alert that opened it ends at
most one window after the burst's end.

``python -m alerts.quality --real ../shared/data/streams/stocknet_tweets.jsonl.gz``
replays a real archive instead (see :mod:`alerts.realstream`): the shipped
model's scores (cached), story novelty and the detector at every time scale,
exactly as the worker chains them, and prints alerts per ticker-quarter, the
share of alerts whose top articles are copies of one story, and the strongest
alerts with their headlines.
"""

from __future__ import annotations

import argparse
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from alerts.detector import DetectorConfig, Finding, to_epoch
from alerts.simulator import Detector
from stream.base.config import AlertSettings
from stream.base.timeparse import parse_iso
from stream.synthetic.generate import Spike, day_start, generate_stream, universe


def published_epoch(text: str) -> int:
    return to_epoch(parse_iso(text))


def run_detector(messages: Iterable[dict[str, Any]], cfg: DetectorConfig | Sequence[DetectorConfig] | None = None,
                 lateness_s: int = 60, observe_every_s: int = 10, flush: bool = True) -> Detector:
    """Feed generated messages (with ``truth``) through a Detector, advancing the watermark as a worker would."""
    d = Detector(cfg or DetectorConfig(), lateness_s)
    last = None
    for m in messages:
        t = published_epoch(m["published_at"])
        truth = m["truth"]
        d.add(t, m.get("tickers") or (), truth["topic"], truth["sentiment"])
        if last is None or t - last >= observe_every_s:
            d.observe(t)
            last = t
    if flush and d.max_event_time is not None:
        d.observe(d.max_event_time + lateness_s + max(c.window_s for c in d.cfgs))
    return d


@dataclass
class SpikeResult:
    spike: Spike
    tier: str
    matches: list[Finding]

    @property
    def detected(self) -> bool:
        return len(self.matches) == 1

    def delay_s(self) -> float | None:
        """Event time from the burst's end to the end of the window that fired."""
        if not self.matches:
            return None
        return self.matches[0].window_end - self.spike.end.timestamp()


def match_spikes(alerts: Sequence[Finding], spikes: Sequence[tuple[str, Spike]], window_s: int
                 ) -> tuple[list[SpikeResult], list[Finding]]:
    """(results per spike, alerts matched to no spike)."""
    used: set[int] = set()
    results = []
    for tier, sp in spikes:
        kind, scope = sp.scope
        assert sp.at is not None  # Spike.__post_init__ refuses a spike without one
        t0, t1 = sp.at.timestamp(), sp.end.timestamp()
        m = [
            a for a in alerts
            if a.scope_kind == kind and a.scope == scope and a.window_start < t1 + window_s
            and a.window_end > t0 - window_s
        ]
        for a in m:
            used.add(id(a))
        ok = [a for a in m if a.window_end <= t1 + window_s and a.window_end > t0]
        results.append(SpikeResult(sp, tier, ok if len(m) == len(ok) else m))
    others = [a for a in alerts if id(a) not in used]
    return results, others


def planted_spikes(seed: int, n_tickers: int = 200, per_day: int = 12, sizes: Sequence[int] = (5, 6, 8, 12),
                   topic_spikes: int = 1) -> list[tuple[str, Spike]]:
    """Bursts on busy / mid / quiet tickers at spread-out times of a generated day (and topic-wide bursts)."""
    rng = random.Random(f"planted:{seed}")
    cos = universe(n_tickers)
    pools = {"busy": cos[:10], "mid": cos[20:60], "quiet": cos[100:]}
    start = day_start()
    out: list[tuple[str, Spike]] = []
    slot_h = 11.0 / per_day  # between 08:00 and 19:00 New York time; cooldowns never overlap
    used = set()
    for j in range(per_day):
        tier = ("quiet", "mid", "busy")[j % 3]
        co = rng.choice([c for c in pools[tier] if c.ticker not in used])
        used.add(co.ticker)
        at = start + timedelta(hours=4 + j * slot_h, minutes=rng.randint(0, int(slot_h * 60) - 10))
        out.append((tier, Spike(ticker=co.ticker, at=at, size=sizes[(j // 3) % len(sizes)])))
    for _ in range(topic_spikes):
        topic = rng.choice(("Energy, Oil", "Macro", "Markets", "Financials"))
        at = start + timedelta(hours=4 + rng.uniform(0.5, 10.5))
        out.append(("topic", Spike(topic=topic, at=at, size=25)))
    return out


@dataclass
class Report:
    calm_days: int = 0
    calm_alerts: list[tuple[int, Finding]] = field(default_factory=list)
    spikes: list[SpikeResult] = field(default_factory=list)
    spiked_days: int = 0
    spiked_other_alerts: list[tuple[int, Finding]] = field(default_factory=list)

    def table(self) -> str:
        lines = [
            f"calm days: {self.calm_days}, false alerts: {len(self.calm_alerts)} "
            f"({len(self.calm_alerts) / max(self.calm_days, 1):.2f} per day)",
        ]
        for seed, a in self.calm_alerts:
            d = a.decision
            lines.append(f"  seed {seed}: {a.scope_kind} {a.scope} {d.negative}/{d.articles} expected {d.baseline:.2f} z={d.z:.1f}")
        groups: dict[tuple[str, int], list[SpikeResult]] = defaultdict(list)
        for r in self.spikes:
            groups[(r.tier, r.spike.size)].append(r)
        lines.append(f"planted bursts ({self.spiked_days} days): tier/size  detected  duplicates  missed  median delay")
        for (tier, size), rs in sorted(groups.items(), key=lambda kv: (("quiet", "mid", "busy", "topic").index(kv[0][0]), kv[0][1])):
            det = [r for r in rs if r.detected]
            dup = [r for r in rs if len(r.matches) > 1]
            delays = sorted(delay for r in det if (delay := r.delay_s()) is not None)  # every detected one has a delay
            med = f"{delays[len(delays) // 2]:.0f}s" if delays else "-"
            lines.append(f"  {tier:>5}/{size:<3} {len(det):>4}/{len(rs):<4} {len(dup):>6} {len(rs) - len(det) - len(dup):>8}   {med}")
        lines.append(f"other alerts on spiked days: {len(self.spiked_other_alerts)}")
        for seed, a in self.spiked_other_alerts:
            d = a.decision
            lines.append(f"  seed {seed}: {a.scope_kind} {a.scope} {d.negative}/{d.articles} expected {d.baseline:.2f} z={d.z:.1f}")
        return "\n".join(lines)


def evaluate(seeds: Iterable[int], cfg: DetectorConfig | Sequence[DetectorConfig] | None = None,
             spiked: bool = True, calm: bool = True, rate_per_min: float = 40.0, tickers: int = 200) -> Report:
    """Counts incidents (the alert that opened each one: what a person is sent), every scale together."""
    cfgs = [cast(DetectorConfig, cfg or DetectorConfig())] if not isinstance(cfg, (list, tuple)) else list(cfg)
    rep = Report()
    for seed in seeds:
        if calm:
            d = run_detector(generate_stream(seed=seed, truth=True, rate_per_min=rate_per_min, tickers=tickers), cfgs)
            rep.calm_days += 1
            rep.calm_alerts += [(seed, a) for a in d.primary]
        if spiked:
            spikes = planted_spikes(seed, tickers)
            d = run_detector(generate_stream(seed=seed, truth=True, rate_per_min=rate_per_min, tickers=tickers,
                                             spikes=[s for _, s in spikes]), cfgs)
            res, others = match_spikes(d.primary, spikes, cfgs[0].window_s)
            rep.spiked_days += 1
            rep.spikes += res
            rep.spiked_other_alerts += [(seed, a) for a in others]
    return rep


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=int, default=20, help="generated days (seeds 0..N-1)")
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--rate", type=float, default=40.0, help="items per minute at profile 1.0")
    ap.add_argument("--real", metavar="PATH", help="replay this real archive instead of generated days")
    ap.add_argument("--cache", default=None, help="score cache directory (default /tmp/finsent-quality)")
    ap.add_argument("--strongest", type=int, default=20, help="strongest alerts listed with their headlines")
    ap.add_argument("--until", default=None, help="with --real: only the archive before this date (YYYY-MM-DD)")
    ap.add_argument("--headline-only", action="store_true",
                    help="with --real: every ticker takes the headline's sentiment (as before per-company sentiment)")
    args = ap.parse_args(argv)
    a = AlertSettings()
    cfgs = DetectorConfig.scales_from_settings(a)
    if args.real:
        # the real-archive path scores with the model: torch and the checkpoint code take seconds to
        # import (model.checkpoint: 12.9 s measured under load), which the generated-day path never needs
        from alerts.realstream import DEFAULT_CACHE, real_report

        until = datetime.fromisoformat(args.until).replace(tzinfo=UTC) if args.until else None
        print(real_report(Path(args.real), cfgs, a, Path(args.cache) if args.cache else DEFAULT_CACHE,
                          strongest=args.strongest, until=until, per_ticker=not args.headline_only))
        return 0
    rep = evaluate(range(args.first_seed, args.first_seed + args.days), cfgs, rate_per_min=args.rate)
    print(rep.table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
