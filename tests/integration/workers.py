"""Run real ``finsent`` processes (worker, replay) against the test's own topics and schema."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kafka import KafkaConsumer

from storage.db import fetch_all
from stream.base.config import Settings
from stream.process import REPO, WorkerProcess, settings_env

Worker = WorkerProcess


def finsent(settings: Settings, *args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    """Run a ``finsent`` command with the test's settings."""
    return subprocess.run([sys.executable, "-m", "stream.cli", *args], env=settings_env(settings, **env),
                          cwd=REPO, capture_output=True, text=True, timeout=timeout)


def query(settings: Settings, sql: str, params=()):
    return fetch_all(settings.dsn, settings.schema, sql, params)


def article_count(settings: Settings) -> int:
    return query(settings, "SELECT count(*) FROM articles")[0][0]


def all_bucket_sum(settings: Settings) -> int:
    return int(query(settings, "SELECT coalesce(sum(articles), 0) FROM sentiment_minute WHERE scope_kind = 'all'")[0][0])


def wait_for(predicate, timeout: float, what: str, worker: WorkerProcess | None = None, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        if worker is not None and not worker.alive():
            raise AssertionError(f"worker died while waiting for {what}:\n{worker.log()}")
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})"
                         + (f"\n{worker.log()}" if worker else ""))


def read_deadletters(bootstrap: str, topic: str, expected: int,
                     timeout: float = 60) -> list[tuple[dict, bytes]]:
    """(headers, original bytes) of the dead letters on ``topic``, read from the start by a fresh group
    until ``expected`` came or ``timeout`` passed (records up to 8 MiB)."""
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             group_id=f"dl-{uuid.uuid4().hex[:6]}", consumer_timeout_ms=2000,
                             max_partition_fetch_bytes=8 << 20, fetch_max_bytes=16 << 20)
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < expected and time.monotonic() < deadline:
        for r in consumer:
            got.append((dict(r.headers), r.value))
    consumer.close()
    return got


def write_jsonl(path: Path, messages) -> Path:
    with open(path, "w") as f:
        for m in messages:
            f.write((m if isinstance(m, str) else json.dumps(m)) + "\n")
    return path


def simple_messages(n: int, start_minute: int = 0, prefix: str = "m"):
    """n valid news.raw messages, one a second, a few tickers, deterministic."""
    t0 = datetime(2024, 3, 4, 14, 0, tzinfo=UTC) + timedelta(minutes=start_minute)
    tickers = ["ACME", "GLOBX", "INITECH", "UMBRL", "HOOLI"]
    words = ["beats estimates", "misses forecasts", "announces buyback", "faces lawsuit", "holds steady"]
    for i in range(n):
        yield {"id": f"{prefix}{i}", "published_at": (t0 + timedelta(seconds=i)).isoformat(),
               "title": f"{tickers[i % 5].title()} {words[(i // 5) % 5]} in quarter {i}",
               "tickers": [tickers[i % 5]], "source": "test"}
