"""The generator's output is pinned: the same seed gives byte-identical messages, aliases and
templates across refactorings (the demo, the benchmarks and the alert-quality figures in the
README rest on these exact days).  The digests were taken from the generator as it was before its
templates moved into a data file; a deliberate change of the generated days updates them here."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import timedelta

import stream.synthetic.generate as gen
from stream.synthetic.generate import (
    Spike,
    company_aliases,
    day_start,
    generate_stream,
    quiet_tickers,
    universe,
    write_aliases,
    write_jsonl,
)


def digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def jsonl_digest(messages) -> tuple[int, str]:
    buf = io.StringIO()
    n = 0
    for m in messages:
        buf.write(json.dumps(m, ensure_ascii=False))
        buf.write("\n")
        n += 1
    return n, hashlib.sha256(buf.getvalue().encode()).hexdigest()


def test_a_demo_like_day_with_ticker_topic_and_unknown_ticker_spikes_is_pinned():
    start = day_start(hour=9.0)
    spikes = [Spike(ticker=quiet_tickers(k=1, seed=5)[0], at=start + timedelta(hours=2, minutes=7), size=14),
              Spike(topic="Energy, Oil", at=start + timedelta(hours=3), size=9, duration_s=240),
              Spike(topic="Politics", at=start + timedelta(hours=4), size=5),  # no topic shocks: generic ones
              Spike(ticker="QQQX", at=start + timedelta(hours=5), size=6)]  # outside the universe
    got = jsonl_digest(generate_stream(start, timedelta(hours=7, minutes=30), tickers=300, rate_per_min=24,
                                       spikes=spikes, seed=7, truth=True))
    assert got == (11255, "aaf1be75d8abc799bac6de5c18796cf46c4a909fed9823a7c0cfe23ae68bc1ff")


def test_a_two_day_stream_with_events_and_names_is_pinned():
    got = jsonl_digest(generate_stream(day_start() - timedelta(days=1), timedelta(hours=40), tickers=120,
                                       rate_per_min=6, seed=2, names=True))
    assert got == (9969, "90d831c4d7c44a3fde5b3180c33a40b698abdf02b11238d11dc53a4ef8d9bb0b")


def test_a_calm_day_without_events_is_pinned():
    got = jsonl_digest(generate_stream(day_start(), timedelta(hours=16), seed=0, events=False))
    assert got == (29925, "3439e0e5b7f0f600424733b34564989aabc701b8fd35829c7d3227190e0c1d55")


def test_the_universe_aliases_and_quiet_tickers_are_pinned(tmp_path):
    assert digest([list(c.__dict__.values()) for c in universe(300)]) == "996362b4f9ad18a42c098e12020d301d00e77b1520da11962b6fb9b1cde453e1"
    assert digest(company_aliases(200, extra=("QQQX", "NRVX"))) == "2c054ce9cf413f3084443341ea7f242e37f9f0cac037c847396017c7ca571023"
    assert quiet_tickers(k=5, seed=0) == ["MRR", "ZLCR", "BLTY", "KESI", "ZLWC"]
    path = tmp_path / "aliases.csv"
    assert write_aliases(path, tickers=50, extra=("QQQX",)) == 51
    assert hashlib.sha256(path.read_bytes()).hexdigest() == "ade936ad6b2e015611881d001476f1e67a8d0e1236324a90855bbf91010dc845"
    out = tmp_path / "day.jsonl"
    assert write_jsonl(out, generate_stream(day_start(), timedelta(hours=1), seed=1)) == 479
    assert hashlib.sha256(out.read_bytes()).hexdigest() == "f3e039bcdf7bd9fa3d364ac548dd5482e17a932c2194049e994b0f844ed0d295"


def test_every_template_and_word_list_is_pinned():
    """All of them, also the ones a seed happens not to draw."""
    data = {"T": gen.T, "SHOCK": gen.SHOCK, "TOPIC_SHOCK": gen.TOPIC_SHOCK, "GENERIC_SHOCK": gen._GENERIC_SHOCK,
            "MARKET_SUMMARIES": gen.MARKET_SUMMARIES, "SUMMARIES": gen.SUMMARIES, "SECTORS": gen.SECTORS,
            "SYL": [gen._SYL1, gen._SYL2],
            "words": [gen.BANKS, gen.AGENCIES, gen.REGULATORS, gen.EXECS, gen.FIRST, gen.LAST, gen.COUNTRIES,
                      gen.STATES, gen.INDICES, gen.MONTHS, gen.OUTLETS],
            "mixes": [gen.COMPANY_TOPICS, gen.SECTOR_TOPIC, gen.MARKET_TOPICS, gen.SENTIMENT_MIX, gen.PROFILE]}
    assert digest(data) == "8cc0a87b0dd0b5db1427cfc2b6e6c5bf87f96cf13293f12d04b8f64751607000"
