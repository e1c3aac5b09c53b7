"""Servers restarted under a running worker: nothing is lost, nothing is doubled.

These restart the shared local stack's PostgreSQL and Kafka (and bring them back),
so they run only against the embedded stack, not external servers.
"""

from __future__ import annotations

import threading
import time

import pytest

from deploy import localstack
from tests.integration.workers import (
    Worker,
    all_bucket_sum,
    article_count,
    finsent,
    simple_messages,
    wait_for,
    write_jsonl,
)

pytestmark = pytest.mark.slow


def _paced_replay(settings, archive, result):
    result.append(finsent(settings, "replay", str(archive), "--speed", "300"))


def _run_with_restart(settings, tmp_path, restart, n=1500):
    # 1500 items one second apart replayed at 300x: ~5 s of wall time per 1500 s of event time
    archive = write_jsonl(tmp_path / "stream.jsonl", simple_messages(n))
    worker = Worker(settings, tmp_path / "worker.log", "--no-alerts").start()
    try:
        wait_for(lambda: finsent(settings, "replay", str(write_jsonl(tmp_path / "warm.jsonl",
                                                                    simple_messages(1, prefix="warm")))).returncode == 0,
                 60, "warm-up record sent")
        wait_for(lambda: article_count(settings) >= 1, 120, "worker ready", worker)
        result: list = []
        t = threading.Thread(target=_paced_replay, args=(settings, archive, result))
        t.start()
        wait_for(lambda: article_count(settings) >= 200, 120, "stream flowing", worker)
        restart()
        t.join(timeout=300)
        assert result and result[0].returncode == 0, result[0].stderr if result else "replay hung"
        wait_for(lambda: article_count(settings) == n + 1, 300, f"{n + 1} stored", worker)
        time.sleep(2)
    finally:
        worker.stop()
    assert article_count(settings) == n + 1
    assert all_bucket_sum(settings) == n + 1


def test_postgres_restart_mid_stream(stack, settings, tmp_path):
    if not stack.settings.uses_local_postgres:
        pytest.skip("restarts only the embedded PostgreSQL")

    def restart():
        localstack.stop_postgres(stack.settings, quiet=True)
        time.sleep(3)  # the worker's transaction fails and retries with backoff meanwhile
        localstack.start_postgres(stack.settings, quiet=True)

    _run_with_restart(settings, tmp_path, restart)


def test_kafka_restart_mid_stream(stack, settings, tmp_path):
    if not stack.settings.uses_local_kafka:
        pytest.skip("restarts only the embedded Kafka broker")

    def restart():
        localstack.stop_kafka(stack.settings, quiet=True)
        time.sleep(3)
        localstack.start_kafka(stack.settings, quiet=True)

    _run_with_restart(settings, tmp_path, restart)
