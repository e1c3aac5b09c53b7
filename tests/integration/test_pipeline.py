"""The streaming pipeline end to end: real broker, real worker process, real database."""

from __future__ import annotations

import json
import random
import time
import uuid

import pytest
from kafka import KafkaConsumer, KafkaProducer

from tests.integration.workers import (
    Worker,
    all_bucket_sum,
    article_count,
    finsent,
    query,
    read_deadletters,
    simple_messages,
    wait_for,
    write_jsonl,
)

MALFORMED = {
    "not_json": b"{this is not json",
    "not_utf8": b"\xff\xfe\xfa not utf-8",
    "not_object": b"[1, 2, 3]",
    "missing_title": json.dumps({"published_at": "2024-03-04T14:00:00Z"}).encode(),
    "empty_title": json.dumps({"published_at": "2024-03-04T14:00:00Z", "title": "  "}).encode(),
    "bad_type": json.dumps({"published_at": "2024-03-04T14:00:00Z", "title": ["list"]}).encode(),
    "bad_timestamp": json.dumps({"published_at": "last tuesday", "title": "x"}).encode(),
    "absurd_timestamp": json.dumps({"published_at": "1971-01-01T00:00:00Z", "title": "x"}).encode(),
    "oversized": json.dumps({"published_at": "2024-03-04T14:00:00Z", "title": "x",
                             "blob": "a" * (1 << 20)}).encode(),
}


def test_worker_stores_valid_records_and_deadletters_every_malformed_case(stack, settings, tmp_path):
    valid = list(simple_messages(199))
    # U+0000 cannot be stored by PostgreSQL: it must be cleaned, not crash the worker forever
    valid.append({"id": "nul", "published_at": "2024-03-04T15:00:00Z", "title": "Umbrl\u0000 recall widens",
                  "tickers": ["UMBRL"], "meta": {"note\u0000": "a\u0000b"}})
    producer = KafkaProducer(bootstrap_servers=stack.kafka, acks="all", enable_idempotence=True,
                             max_request_size=4 << 20)
    from stream.core.kafka_io import ensure_topics

    ensure_topics(settings)
    for i, m in enumerate(valid):
        producer.send(settings.topic_raw, key=m["id"].encode(), value=json.dumps(m).encode())
        if i == 100:  # the malformed cases sit between valid records
            for raw in MALFORMED.values():
                producer.send(settings.topic_raw, value=raw)
    producer.send(settings.topic_raw, key=b"m7", value=json.dumps(valid[7]).encode())  # duplicate id
    producer.flush()
    producer.close()

    worker = Worker(settings, tmp_path / "worker.log", "--no-alerts").start()
    try:
        wait_for(lambda: article_count(settings) == 200, 180, "200 stored articles", worker)
        dead = read_deadletters(stack.kafka, settings.topic_deadletter, len(MALFORMED) + 1)
    finally:
        worker.stop()
    reasons = sorted(h["finsent-reason"].decode() for h, _ in dead)
    assert reasons == sorted(list(MALFORMED) + ["duplicate_id"])
    by_reason = {h["finsent-reason"].decode(): (h, v) for h, v in dead}
    for reason, raw in MALFORMED.items():
        headers, value = by_reason[reason]
        assert value == raw, f"{reason}: original bytes not kept"
        assert headers["finsent-source"].decode().startswith(settings.topic_raw + "/")
    assert all_bucket_sum(settings) == 200
    tick = query(settings, "SELECT scope, sum(articles) FROM sentiment_minute WHERE scope_kind='ticker' "
                           "GROUP BY scope ORDER BY scope")
    assert tick == [("ACME", 40), ("GLOBX", 40), ("HOOLI", 39), ("INITECH", 40), ("UMBRL", 41)]
    topics = query(settings, "SELECT sum(articles) FROM sentiment_minute WHERE scope_kind='topic'")[0][0]
    assert topics == 200
    assert query(settings, "SELECT title, extra->'meta' FROM articles WHERE id = 'nul'") == [
        ("Umbrl recall widens", {"note": "ab"})]
    row = query(settings, "SELECT topic, sentiment, p_negative + p_neutral + p_positive, model_version "
                          "FROM articles WHERE id = 'm3'")[0]
    assert row[0] and row[1] in ("negative", "neutral", "positive") and abs(row[2] - 1) < 1e-3 and row[3]
    scored = KafkaConsumer(settings.topic_scored, bootstrap_servers=stack.kafka, auto_offset_reset="earliest",
                           consumer_timeout_ms=3000, group_id=f"s-{uuid.uuid4().hex[:6]}")
    ids = {json.loads(r.value)["id"] for r in scored}
    scored.close()
    assert len(ids) == 200


def test_replaying_the_same_archive_twice_changes_no_count(stack, settings, tmp_path):
    archive = write_jsonl(tmp_path / "day.jsonl", simple_messages(300))
    worker = Worker(settings, tmp_path / "worker.log", "--no-alerts").start()
    try:
        res = finsent(settings, "replay", str(archive))
        assert res.returncode == 0, res.stderr
        assert "sent 300" in res.stdout
        wait_for(lambda: article_count(settings) == 300, 180, "300 stored", worker)
        before = query(settings, "SELECT scope_kind, scope, sum(articles), sum(negative) FROM sentiment_minute "
                                 "GROUP BY 1, 2 ORDER BY 1, 2")
        assert finsent(settings, "replay", str(archive)).returncode == 0
        # the second pass is handled (dead-lettered as duplicates) before we compare
        wait_for(lambda: _consumed_all(stack, settings), 120, "second pass consumed", worker)
    finally:
        worker.stop()
    after = query(settings, "SELECT scope_kind, scope, sum(articles), sum(negative) FROM sentiment_minute "
                            "GROUP BY 1, 2 ORDER BY 1, 2")
    assert article_count(settings) == 300
    assert after == before


def _consumed_all(stack, settings) -> bool:
    """The worker's group has committed every offset of news.raw."""
    from kafka import KafkaConsumer, TopicPartition

    c = KafkaConsumer(bootstrap_servers=stack.kafka, group_id=settings.app_id, enable_auto_commit=False)
    try:
        tps = [TopicPartition(settings.topic_raw, p) for p in c.partitions_for_topic(settings.topic_raw) or []]
        ends = c.end_offsets(tps)
        return all((c.committed(tp) or 0) >= ends[tp] for tp in tps)
    finally:
        c.close(autocommit=False)


@pytest.mark.slow
def test_kill_9_at_random_points_loses_and_doubles_nothing(stack, settings, tmp_path):
    n = 5000
    archive = write_jsonl(tmp_path / "big.jsonl", simple_messages(n))
    res = finsent(settings, "replay", str(archive))
    assert res.returncode == 0, res.stderr
    rng = random.Random(7)
    log = tmp_path / "worker.log"
    kills = 0
    while kills < 3:
        worker = Worker(settings, log, "--no-alerts").start()
        target = min(n - 1, article_count(settings) + rng.randint(200, 1200))
        wait_for(lambda: article_count(settings) >= target or not worker.alive(), 240, "progress")
        time.sleep(rng.random() * 0.5)  # somewhere inside a batch, a commit or an ack
        worker.kill9()
        kills += 1
        if article_count(settings) >= n:
            break
    worker = Worker(settings, log, "--no-alerts").start()
    try:
        wait_for(lambda: article_count(settings) == n, 300, f"{n} stored after restarts", worker)
        time.sleep(2)
    finally:
        worker.stop()
    assert article_count(settings) == n
    ids = query(settings, "SELECT count(DISTINCT id) FROM articles")[0][0]
    assert ids == n
    assert all_bucket_sum(settings) == n


def test_sigterm_stops_the_worker_cleanly_mid_stream(stack, settings, tmp_path):
    n = 1500
    archive = write_jsonl(tmp_path / "s.jsonl", simple_messages(n))
    assert finsent(settings, "replay", str(archive)).returncode == 0
    worker = Worker(settings, tmp_path / "worker.log", "--no-alerts").start()
    wait_for(lambda: article_count(settings) >= 100, 180, "progress", worker)
    t0 = time.monotonic()
    code = worker.stop(timeout=60)
    assert time.monotonic() - t0 < 30, "graceful shutdown took too long"
    assert code == 0, worker.log()
    assert "Traceback" not in worker.log()
    worker = Worker(settings, tmp_path / "worker.log", "--no-alerts").start()
    try:
        wait_for(lambda: article_count(settings) == n, 240, f"{n} stored after restart", worker)
    finally:
        worker.stop()
    assert all_bucket_sum(settings) == n


def test_two_workers_split_the_partitions_and_count_exactly(stack, settings, tmp_path):
    from kafka.admin import KafkaAdminClient

    n = 2000
    archive = write_jsonl(tmp_path / "two.jsonl", simple_messages(n))
    w1 = Worker(settings, tmp_path / "w1.log", "--no-alerts").start()
    w2 = Worker(settings, tmp_path / "w2.log", "--no-alerts").start()
    try:
        def members():
            admin = KafkaAdminClient(bootstrap_servers=stack.kafka)
            try:
                groups = admin.describe_groups([settings.app_id])
            finally:
                admin.close()
            ms = groups[settings.app_id]["members"]
            return len(ms) == 2 and ms

        wait_for(members, 120, "both workers in the consumer group", w1)
        assert finsent(settings, "replay", str(archive)).returncode == 0
        wait_for(lambda: article_count(settings) == n, 240, f"{n} stored by two workers", w2)
        time.sleep(1)
    finally:
        w1.stop()
        w2.stop()
    assert article_count(settings) == n and all_bucket_sum(settings) == n
