"""Ingest and replay sources into the real broker: RSS files, CSV, Parquet, gzip JSON lines, Kafka itself."""

from __future__ import annotations

import gzip
import json
import uuid

import pandas as pd
from kafka import KafkaConsumer

from tests.integration.workers import article_count, finsent, query, simple_messages, write_jsonl

RSS = """<?xml version="1.0"?>
<rss version="2.0"><channel><title>Test Wire</title>
{items}
</channel></rss>"""
ITEM = ("<item><title>{title}</title><link>http://wire.test/{i}</link>"
        "<description>&lt;p&gt;Details on $ACME &amp;amp; more&lt;/p&gt;</description>"
        "<pubDate>Mon, 04 Mar 2024 14:{i:02d}:00 GMT</pubDate><guid>wire-{i}</guid></item>")


def _records(stack, topic, timeout_ms=4000):
    c = KafkaConsumer(topic, bootstrap_servers=stack.kafka, auto_offset_reset="earliest",
                      group_id=f"read-{uuid.uuid4().hex[:6]}", consumer_timeout_ms=timeout_ms)
    out = []
    for r in c:
        try:
            value = json.loads(r.value)
        except ValueError:
            value = {"raw": r.value}
        out.append((r.key, value, r.timestamp, dict(r.headers)))
    c.close()
    return out


def test_rss_ingest_sends_new_entries_once_across_restarts(stack, settings, tmp_path):
    feed = tmp_path / "feed.xml"
    feed.write_text(RSS.format(items="\n".join(ITEM.format(i=i, title=f"Acme news {i}") for i in range(3))))
    first = finsent(settings, "ingest", "rss", str(feed), "--once")
    assert first.returncode == 0, first.stderr
    assert "3 new" in first.stdout
    feed.write_text(RSS.format(items="\n".join(ITEM.format(i=i, title=f"Acme news {i}") for i in range(5))))
    second = finsent(settings, "ingest", "rss", str(feed), "--once")  # a new process: state from disk
    assert "2 new" in second.stdout, second.stdout + second.stderr
    recs = _records(stack, settings.topic_raw)
    assert len(recs) == 5
    key, msg, ts, _ = sorted(recs, key=lambda r: r[2])[0]
    assert msg["title"] == "Acme news 0" and msg["source"] == "Test Wire" and msg["url"] == "http://wire.test/0"
    # the feed's text travels as is; the worker links "$ACME" (a record carries only given tickers)
    assert "$ACME" in msg["summary"] and "tickers" not in msg and key == msg["id"].encode()
    assert ts == 1709560800000  # record timestamp = published_at (2024-03-04T14:00:00Z)


def test_replay_csv_parquet_and_gzip_with_column_mapping(stack, settings, tmp_path):
    rows = list(simple_messages(6))
    csv_path = tmp_path / "news.csv"
    pd.DataFrame([{"date": r["published_at"], "headline": r["title"], "symbols": r["tickers"][0]}
                  for r in rows[:3]]).to_csv(csv_path, index=False)
    pq_path = tmp_path / "news.parquet"
    pd.DataFrame([{"published_at": pd.Timestamp(r["published_at"]), "title": r["title"], "tickers": r["tickers"],
                   "id": r["id"]} for r in rows[3:]]).to_parquet(pq_path)
    gz_path = tmp_path / "stocknet.jsonl.gz"
    with gzip.open(gz_path, "wt") as f:
        f.write(json.dumps({"published_at": "2014-01-02T10:00:00+00:00", "ticker": "AAPL", "text": "$aapl up"}) + "\n")
        f.write("not json at all\n")
    for path, extra in ((csv_path, ["--time-col", "date", "--title-col", "headline", "--tickers-col", "symbols"]),
                        (pq_path, []), (gz_path, [])):
        res = finsent(settings, "replay", str(path), *extra)
        assert res.returncode == 0, res.stderr
    recs = _records(stack, settings.topic_raw)
    valid = [m for _, m, _, _ in recs if "title" in m]
    assert sorted(m["title"] for m in valid) == sorted([r["title"] for r in rows] + ["$aapl up"])
    assert {tuple(m.get("tickers", [])) for m in valid} >= {("ACME",), ("AAPL",)}
    assert all(h.get("finsent-replay") == b"quiet" for *_, h in recs)
    assert sum(1 for k, *_ in recs if k is None) == 1  # the bad line travels unkeyed, to be dead-lettered


def test_replay_into_own_schema_in_process_and_from_kafka(stack, settings, tmp_path):
    archive = write_jsonl(tmp_path / "a.jsonl", simple_messages(40))
    other = f"{settings.schema}_q"
    try:
        res = finsent(settings, "replay", str(archive), "--schema", other)
        assert res.returncode == 0, res.stderr
        assert "stored 40 in schema" in res.stdout
        assert query(settings.replace(schema=other), "SELECT count(*) FROM articles")[0][0] == 40
        assert article_count(settings) == 0  # the live schema is untouched

        assert finsent(settings, "replay", str(archive)).returncode == 0  # into news.raw
        # record timestamps are event times: --since selects by published_at
        res = finsent(settings, "replay", "--from-kafka", "--since", "2024-03-04T14:00:10Z")
        assert res.returncode == 0, res.stderr
        assert article_count(settings) == 30  # items 10..39
        assert query(settings, "SELECT min(id), count(*) FROM articles WHERE id IN ('m9', 'm10')") == [("m10", 1)]
    finally:
        query_drop(settings, other)


def query_drop(settings, schema):
    import psycopg2

    conn = psycopg2.connect(settings.dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    conn.close()
