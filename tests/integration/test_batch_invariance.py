"""Same text, same answer on the default CPU path (issue 27): one stream of real headlines through the live
worker (news.raw, batches formed by arrival) and through the in-process replay (``replay --schema``, its own
batches) gives identical buckets and alerts; ``finsent classify`` and ``finsent rescore`` give the rows the
worker stored.  Before per-row int8 scales, 538 of ~9,450 minute buckets of such a stream differed."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from tests.conftest import SHARED_DATA
from tests.integration.test_ingest import query_drop
from tests.integration.workers import Worker, article_count, finsent, query, wait_for, write_jsonl

pytestmark = pytest.mark.skipif(not (SHARED_DATA / "sentiment" / "tfns_train.csv").is_file(),
                                reason="no ../shared/data")

TOL = 1e-5  # per probability / score: the ONNX paths differ by <= 1.5e-6 between batchings (README, Guarantees)
BUCKETS = ("SELECT bucket, scope_kind, scope, articles, negative, neutral, positive, score_sum "
           "FROM sentiment_minute ORDER BY 1, 2, 3")
ALERTS = ("SELECT scope_kind, scope, window_start, window_end, rule, negative, articles, baseline, z "
          "FROM alerts ORDER BY 1, 2, 3, 5")
ROWS = "SELECT id, topic, sentiment, p_negative, p_neutral, p_positive, sentiment_score FROM articles ORDER BY id"


def _stream() -> list[dict]:
    """~500 real TFNS headlines about one watched ticker, one every 20 s over ~2.5 hours, and then a burst of
    40 real bearish ones in 8 minutes: the ticker's negative spike."""
    df = pd.read_csv(SHARED_DATA / "sentiment" / "tfns_train.csv", dtype={"text": str}, keep_default_na=False)
    rng = random.Random(27)
    calm = df[df.label != 0]["text"].tolist()
    bearish = df[df.label == 0]["text"].tolist()
    rng.shuffle(calm)
    rng.shuffle(bearish)
    t0 = datetime(2024, 5, 6, 13, 0, tzinfo=UTC)
    texts = [(t0 + timedelta(seconds=20 * i), t) for i, t in enumerate(calm[:440] + bearish[:20])]
    end = texts[-1][0]
    texts += [(end + timedelta(seconds=12 * (i + 1)), t) for i, t in enumerate(bearish[20:60])]
    return [{"id": f"inv{i}", "published_at": at.isoformat(), "title": text, "tickers": ["INVX"], "source": "tfns"}
            for i, (at, text) in enumerate(texts)]


def _close(a: list[tuple], b: list[tuple], float_cols: set[int]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        for i, (u, v) in enumerate(zip(x, y)):
            if i in float_cols:
                assert abs(float(u) - float(v)) <= TOL * 64, (x, y)  # score_sum: a sum of up to ~60 scores
            else:
                assert u == v, (x, y)


def test_live_worker_replay_classify_and_rescore_agree(stack, settings, tmp_path):
    messages = _stream()
    archive = write_jsonl(tmp_path / "stream.jsonl", messages)
    replayed = f"{settings.schema}_r"
    # the alert thresholds of a quiet ticker: a short warm-up, so a stream of 2.5 hours can alert
    env = {"FINSENT_ALERTS_WARMUP_WINDOWS": "3", "FINSENT_ALERTS_SCALES": "5m"}
    worker = Worker(settings, tmp_path / "worker.log", **env).start()
    try:
        res = finsent(settings, "replay", str(archive), **env)
        assert res.returncode == 0, res.stderr
        wait_for(lambda: article_count(settings) == len(messages), 300, "stream stored", worker)
        wait_for(lambda: query(settings, "SELECT count(*) FROM alerts")[0][0] > 0, 120, "the spike's alert", worker)
    finally:
        worker.stop()
    try:
        res = finsent(settings, "replay", str(archive), "--schema", replayed, **env)
        assert res.returncode == 0, res.stderr
        other = settings.replace(schema=replayed)
        live_buckets, replay_buckets = query(settings, BUCKETS), query(other, BUCKETS)
        assert len(live_buckets) > 500
        _close(live_buckets, replay_buckets, {7})
        live_alerts = query(settings, ALERTS)
        assert any(a[0] == "ticker" and a[1] == "INVX" for a in live_alerts)
        _close(live_alerts, query(other, ALERTS), {7, 8})
        live_rows = query(settings, ROWS)
        _close(live_rows, query(other, ROWS), {3, 4, 5, 6})
    finally:
        query_drop(settings, replayed)

    # finsent classify on the same texts: the stored labels and probabilities
    lines = "".join(json.dumps({"id": m["id"], "title": m["title"]}) + "\n" for m in messages)
    (tmp_path / "in.jsonl").write_text(lines)
    res = finsent(settings, "classify", str(tmp_path / "in.jsonl"), "--batch-size", "7")
    assert res.returncode == 0, res.stderr
    scored = {r["id"]: r for r in map(json.loads, res.stdout.splitlines())}
    classified = sorted((i, r["topic"], r["sentiment"], r["p_negative"], r["p_neutral"], r["p_positive"],
                         r["sentiment_score"]) for i, r in scored.items())
    _close(live_rows, classified, {3, 4, 5, 6})

    # finsent rescore --all with the same checkpoint: no label moves, so no bucket count moves
    res = finsent(settings, "rescore", "--since", "2024-05-06", "--all", "--batch-size", "37")
    assert res.returncode == 0, res.stderr
    _close(live_rows, query(settings, ROWS), {3, 4, 5, 6})
    _close(live_buckets, query(settings, BUCKETS), {7})
