"""The in-process replay with model processes (issue 25): ``--jobs 2`` stores what ``--jobs 1`` stores, and a
``kill -9`` in the middle of a ``--schema`` replay, followed by a re-run, loses and doubles nothing.  On a
real StockNet slice (real tweets, the shipped model, alerts at every scale)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from bench.stocknet import messages
from stream.process import REPO, settings_env
from tests.conftest import SHARED_DATA
from tests.integration.test_batch_invariance import ALERTS, BUCKETS, ROWS, _close
from tests.integration.test_ingest import query_drop
from tests.integration.workers import all_bucket_sum, article_count, finsent, query, wait_for, write_jsonl

STOCKNET = SHARED_DATA / "streams" / "stocknet_tweets.jsonl.gz"
pytestmark = pytest.mark.skipif(not STOCKNET.is_file(), reason="no ../shared/data StockNet tweets")


def stocknet(n: int) -> list[dict]:
    return messages(n, STOCKNET)


def same_store(a, b) -> None:
    """Identical rows, buckets and alerts (probabilities and sums within the batch-invariance tolerance)."""
    _close(query(a, ROWS), query(b, ROWS), {3, 4, 5, 6})
    _close(query(a, BUCKETS), query(b, BUCKETS), {7})
    _close(query(a, ALERTS), query(b, ALERTS), {7, 8})


def test_two_model_processes_store_the_buckets_and_alerts_of_one(stack, settings, tmp_path):
    messages = stocknet(3000)
    archive = write_jsonl(tmp_path / "stocknet.jsonl", messages)
    one, two = settings.replace(schema=f"{settings.schema}_j1"), settings.replace(schema=f"{settings.schema}_j2")
    try:
        for target, jobs in ((one, "1"), (two, "2")):
            res = finsent(settings, "replay", str(archive), "--schema", target.schema, "--jobs", jobs)
            assert res.returncode == 0, res.stderr
            assert f"stored {len(messages)} in schema {target.schema}" in res.stdout
        assert article_count(two) == all_bucket_sum(two) == len(messages)
        assert query(one, "SELECT count(*) FROM alerts")[0][0] > 0  # the slice has spikes: alerts are compared
        same_store(one, two)
    finally:
        query_drop(settings, one.schema)
        query_drop(settings, two.schema)


def test_kill_9_during_a_schema_replay_then_a_rerun_gives_exact_counts_and_the_same_alerts(stack, settings, tmp_path):
    messages = stocknet(3000)
    archive = write_jsonl(tmp_path / "stocknet.jsonl", messages)
    clean, killed = settings.replace(schema=f"{settings.schema}_c"), settings.replace(schema=f"{settings.schema}_k")
    try:
        res = finsent(settings, "replay", str(archive), "--schema", clean.schema, "--jobs", "1")
        assert res.returncode == 0, res.stderr
        cmd = [sys.executable, "-m", "stream.cli", "replay", str(archive), "--schema", killed.schema, "--jobs", "2"]
        with open(tmp_path / "killed.log", "wb") as log:
            proc = subprocess.Popen(cmd, cwd=REPO, env=settings_env(settings), stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        try:
            wait_for(lambda: _count(killed) >= 600, 300, "a fifth of the slice stored")
        finally:
            os.killpg(proc.pid, signal.SIGKILL)  # the replay and its model processes, mid-stream
            proc.wait(timeout=30)
        stored = _count(killed)
        assert 0 < stored < len(messages), "the kill came too late to test anything"
        time.sleep(1)
        res = finsent(settings, "replay", str(archive), "--schema", killed.schema, "--jobs", "2")
        assert res.returncode == 0, res.stderr
        assert f"already there {stored}" in res.stdout
        assert article_count(killed) == all_bucket_sum(killed) == len(messages)
        same_store(clean, killed)
    finally:
        query_drop(settings, clean.schema)
        query_drop(settings, killed.schema)


def _count(settings) -> int:
    try:
        return article_count(settings)
    except Exception:  # noqa: BLE001 - the schema is made by the replay itself
        return 0
