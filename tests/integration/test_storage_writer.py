"""The batch writer: idempotency, exact counts, concurrency, partitions, PostgreSQL restarts."""

from __future__ import annotations

import logging
import os
import random
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from storage import maintenance, migrate
from storage.db import fetch_all
from storage.writer import Writer, WriterUnavailable
from tests.support.sample_rows import sample_rows, utc


def q(dsn, schema, query, args=None):
    return fetch_all(dsn, schema, query, args)


def totals(dsn, schema):
    return q(dsn, schema, """SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM article_ids),
                                    (SELECT coalesce(sum(articles), 0) FROM sentiment_minute WHERE scope_kind = 'all'),
                                    (SELECT coalesce(sum(articles), 0) FROM sentiment_day WHERE scope_kind = 'all'),
                                    (SELECT coalesce(sum(articles), 0) FROM sentiment_minute)""")[0]


def assert_consistent(dsn, schema):
    res = maintenance.verify(dsn, schema)
    assert (res["minute"], res["hour"], res["day"]) == (0, 0, 0), res["examples"]


def test_writes_are_idempotent_and_exact(stack, schema):
    rows = list(sample_rows(utc(2014, 3, 30), utc(2014, 4, 2), per_hour=20, seed=21))  # spans two months
    assert len(rows) > 500
    with Writer(stack.dsn, schema) as w:
        first = w.write_batch(rows)
        assert [r.id for r in first.inserted] == [r.id for r in rows] and first.skipped == 0
        snap = totals(stack.dsn, schema)
        assert snap[:4] == (len(rows),) * 4
        # the same rows again, in another order, and mixed with new ones
        again = w.write_batch(list(reversed(rows)))
        assert again.inserted == [] and again.skipped == len(rows)
        assert totals(stack.dsn, schema) == snap
        extra = list(sample_rows(utc(2014, 4, 2), utc(2014, 4, 3), per_hour=20, seed=22))
        mixed = w.write_batch(rows[:100] + extra + rows[100:200])
        assert [r.id for r in mixed.inserted] == [r.id for r in extra] and mixed.skipped == 200
    assert totals(stack.dsn, schema)[:4] == (len(rows) + len(extra),) * 4
    assert_consistent(stack.dsn, schema)


def test_duplicate_ids_within_one_batch_count_once(stack, schema):
    rows = list(sample_rows(utc(2014, 5, 5, 9), utc(2014, 5, 5, 12), per_hour=30, seed=23))
    twin = replace(rows[0], title="a different title, same id", sentiment="positive")
    with Writer(stack.dsn, schema) as w:
        res = w.write_batch(rows + [rows[0], twin] + rows[:5])
    assert len(res.inserted) == len(rows) and res.skipped == 7
    assert totals(stack.dsn, schema)[:3] == (len(rows),) * 3
    assert q(stack.dsn, schema, "SELECT title FROM articles WHERE id = %s", (rows[0].id,)) == [(rows[0].title,)]
    assert_consistent(stack.dsn, schema)


def test_tickers_topics_and_partitions(stack, schema):
    t = utc(2014, 1, 15, 10, 30, 15)
    base = next(iter(sample_rows(utc(2014, 1, 15, 10), utc(2014, 1, 15, 12), per_hour=60, seed=1)))
    rows = [
        replace(base, id="a", published_at=t, tickers=["AAPL", "MSFT", "AAPL"], topic="Earnings", sentiment="negative",
                sentiment_score=-0.5),
        replace(base, id="b", published_at=t + timedelta(seconds=20), tickers=[], topic="Macro", sentiment="positive",
                sentiment_score=0.25),
        replace(base, id="c", published_at=utc(2019, 7, 1), tickers=["AAPL"], topic=None, sentiment="neutral",
                sentiment_score=0.0),
    ]
    with Writer(stack.dsn, schema) as w:
        assert len(w.write_batch(rows).inserted) == 3
        assert q(stack.dsn, schema, "SELECT current_user")  # admin sees everything
        with w._connection().cursor() as cur:
            cur.execute("SELECT current_user")
            assert cur.fetchone()[0] == "finsent_writer"
        w._connection().rollback()
    got = q(stack.dsn, schema, "SELECT bucket, scope_kind, scope, articles, negative, neutral, positive, score_sum "
                               "FROM sentiment_minute ORDER BY bucket, scope_kind, scope")
    m = utc(2014, 1, 15, 10, 30)
    assert got == [
        (m, "all", "all", 2, 1, 0, 1, -0.25),
        (m, "ticker", "AAPL", 1, 1, 0, 0, -0.5),  # a ticker repeated in one article counts once
        (m, "ticker", "MSFT", 1, 1, 0, 0, -0.5),
        (m, "topic", "Earnings", 1, 1, 0, 0, -0.5),
        (m, "topic", "Macro", 1, 0, 0, 1, 0.25),
        (utc(2019, 7, 1), "all", "all", 1, 0, 1, 0, 0.0),  # no topic: no topic bucket
        (utc(2019, 7, 1), "ticker", "AAPL", 1, 0, 1, 0, 0.0),
    ]
    parts = q(stack.dsn, schema, "SELECT tableoid::regclass::text, id FROM articles ORDER BY id")
    assert parts == [("articles_2014_01", "a"), ("articles_2014_01", "b"), ("articles_2019_07", "c")]


def test_concurrent_writers_with_overlapping_batches_are_exact(stack, schema):
    pool = list(sample_rows(utc(2014, 2, 3), utc(2014, 2, 6), per_hour=60, seed=31))
    assert len(pool) > 1500
    inserted: list[str] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        rng = random.Random(seed)
        mine = rng.sample(pool, int(len(pool) * 0.7))
        try:
            with Writer(stack.dsn, schema) as w:
                for i in range(0, len(mine), 80):
                    res = w.write_batch(mine[i:i + 80])
                    with lock:
                        inserted.extend(r.id for r in res.inserted)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which asserts there is none
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    distinct = len(set(inserted))
    assert len(inserted) == distinct  # every id reported inserted exactly once across writers
    assert totals(stack.dsn, schema)[:4] == (distinct,) * 4
    assert_consistent(stack.dsn, schema)


# ---------------------------------------------------------------- PostgreSQL restarts
class PrivatePostgres:
    """A throwaway PostgreSQL cluster (this test's own, so restarting it disturbs nobody)."""

    def __init__(self) -> None:
        from deploy.localstack import pg_bindir

        self.bindir = pg_bindir()
        self.root = Path(tempfile.mkdtemp(prefix="finsent-pgtest-", dir="/tmp"))
        os.chmod(self.root, 0o755)
        self.data = self.root / "data"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.password = "Pg-restart-pw-7"
        self.dsn = f"postgresql://finsent:{self.password}@127.0.0.1:{self.port}/postgres"
        self.user = "postgres" if os.geteuid() == 0 else None

    def _run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        full = [str(self.bindir / cmd[0]), *cmd[1:]]
        if self.user:
            full = ["runuser", "-u", self.user, "--", *full]
        return subprocess.run(full, capture_output=True, text=True, check=check, stdin=subprocess.DEVNULL)

    def init(self) -> None:
        pw = self.root / "pw"
        pw.write_text(self.password + "\n")
        if self.user:
            shutil.chown(self.root, self.user)
            shutil.chown(pw, self.user)
        self._run("initdb", "-D", str(self.data), "-U", "finsent", f"--pwfile={pw}", "--auth-host=scram-sha-256",
                  "--auth-local=peer", "-E", "UTF8", "--locale=C.UTF-8")
        with open(self.data / "postgresql.conf", "a") as f:
            f.write(f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\nunix_socket_directories = '{self.root}'\n"
                    "shared_buffers = 32MB\nfsync = off\n")

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def private_pg():
    pg = PrivatePostgres()
    try:
        pg.init()
        pg.start()
        yield pg
    finally:
        pg.destroy()


def test_writer_survives_postgres_restarts(private_pg, caplog):
    pg = private_pg
    migrate.upgrade(pg.dsn, schema="public")
    rows = list(sample_rows(utc(2014, 6, 2), utc(2014, 6, 12), per_hour=120, seed=41))
    assert len(rows) > 10000
    caplog.set_level(logging.WARNING, logger="finsent.storage.writer")
    w = Writer(pg.dsn, "public", retry_initial_s=0.1, retry_max_s=0.5)
    try:
        assert len(w.write_batch(rows[:1000]).inserted) == 1000

        # 1. the server goes down between batches and comes back 2 s later
        pg.stop("immediate")
        threading.Timer(2.0, pg.start).start()
        t0 = time.monotonic()
        res = w.write_batch(rows[500:3000])  # half already stored
        assert res.attempts > 1 and time.monotonic() - t0 >= 1.5
        assert len(res.inserted) == 2000 and res.skipped == 500

        # 2. the server is killed while a large batch is being written
        big = rows[3000:]
        killer = threading.Timer(0.15, pg.stop, args=("immediate",))
        killer.start()
        restarter = threading.Timer(1.5, pg.start)
        restarter.start()
        res = w.write_batch(big)
        killer.join()
        restarter.join()
        stored = len(res.inserted)
        res2 = w.write_batch(big)  # whatever happened, a replay completes it and adds nothing twice
        assert stored + len(res2.inserted) == len(big)
    finally:
        w.close()
    assert totals(pg.dsn, "public")[:4] == (len(rows),) * 4
    assert_consistent(pg.dsn, "public")
    messages = [r.getMessage() for r in caplog.records]
    assert any("retrying batch" in m for m in messages)
    assert all(pg.password not in m for m in messages)
    assert any(f"finsent:***@127.0.0.1:{pg.port}" in m for m in messages)

    # 3. a deadline turns a lasting outage into an error
    pg.stop("fast")
    w = Writer(pg.dsn, "public", retry_deadline_s=1.0, retry_initial_s=0.1)
    t0 = time.monotonic()
    with pytest.raises(WriterUnavailable) as err:
        w.write_batch(rows[:10])
    assert time.monotonic() - t0 < 5 and pg.password not in str(err.value)
