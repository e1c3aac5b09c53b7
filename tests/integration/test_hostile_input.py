"""Hostile records through the REAL worker: each is stored (cleaned) or dead-lettered with its
reason and original bytes, the records around it are stored, and the worker never restarts."""

from __future__ import annotations

import json

from kafka import KafkaProducer

from stream.messages.raw_message import MAX_ID_CHARS, MAX_JSON_DEPTH, MAX_JSON_VALUES, MAX_TICKERS, MAX_TITLE_CHARS
from tests.integration.workers import (
    Worker,
    all_bucket_sum,
    article_count,
    query,
    read_deadletters,
    simple_messages,
    wait_for,
)

T = "2024-03-04T15:00:00Z"


def j(**kw) -> bytes:
    return json.dumps({"published_at": T, "title": "Acme holds steady", **kw}).encode()


def nest(depth: int):
    v = 0
    for _ in range(depth):
        v = {"a": v}
    return v


# name -> raw bytes and the dead-letter reason expected
DEAD: dict[str, tuple[bytes, str]] = {
    # the cases
    "array nesting bomb": (b'{"title":"x","published_at":"' + T.encode() + b'","x":' + b"[" * 200_000
                           + b"]" * 200_000 + b"}", "too_deep"),
    "5000-digit integer": (b'{"title":"x","published_at":"' + T.encode() + b'","n":' + b"7" * 5000 + b"}",
                           "bad_number"),
    "zero-width-only title": (j(title="\u200b\u200c\u200d\u2060\ufeff"), "empty_title"),
    # 20+ more kinds
    "object nesting bomb": (b'{"a":' * 3000 + b"1" + b"}" * 3000, "too_deep"),
    "nesting just past the cap": (j(x=nest(MAX_JSON_DEPTH)), "too_deep"),
    "65-digit negative integer": (j(n=-(10 ** 64)), "bad_number"),
    "too many keys": (j(**{f"k{i}": i for i in range(MAX_JSON_VALUES // 2 + 10)}), "too_many_fields"),
    "huge flat array": (j(x=list(range(MAX_JSON_VALUES + 1))), "too_many_fields"),
    "id over the cap": (j(id="i" * (MAX_ID_CHARS + 1)), "bad_id"),
    "too many tickers": (j(tickers=[f"T{i}" for i in range(MAX_TICKERS + 1)]), "too_many_tickers"),
    "timestamp overflowing UTC (year 9999, -23:59)": (j(published_at="9999-12-31T23:59:59-23:59"),
                                                      "absurd_timestamp"),
    "timestamp underflowing UTC (year 1, +23:59)": (j(published_at="0001-01-01T00:00:00+23:59"),
                                                    "absurd_timestamp"),
    "encoded surrogate (CESU-8) bytes": (b'{"title":"\xed\xa0\x80","published_at":"' + T.encode() + b'"}',
                                         "not_utf8"),
    "overlong UTF-8 slash": (b'{"title":"\xc0\xaf","published_at":"' + T.encode() + b'"}', "not_utf8"),
    "title of tags only": (j(title="<b></b><br/><img src=x onerror=alert(1)>"), "empty_title"),
    "title of a URL only": (j(title="https://evil.example/x?y=1"), "empty_title"),
    "title of a lone surrogate only": (j(title="\udfff"), "empty_title"),
    "title of NBSP and ideographic spaces": (j(title="\u00a0\u3000\u2003"), "empty_title"),
    "duplicate key: number title wins": (b'{"title":"ok","title":7,"published_at":"' + T.encode() + b'"}',
                                         "bad_type"),
    "trailing garbage after the object": (j() + b" ; DROP TABLE articles", "not_json"),
    "empty value": (b"", "not_json"),
    "JSON null": (b"null", "not_object"),
    "title one past the cap": (j(title="A" * (MAX_TITLE_CHARS + 1)), "oversized"),
    "published_at as a number": (j(published_at=1709564400), "bad_type"),
    "published_at NaN": (b'{"title":"x","published_at":NaN}', "missing_published_at"),
}

# name -> message that must be STORED, and how its stored row must look
STORED: dict[str, tuple[bytes, str, object]] = {
    # the cases: NaN and 1e400 become null; a lone surrogate is dropped
    "NaN and 1e400 in extra fields": (b'{"id":"h-nan","title":"Acme nan","published_at":"' + T.encode()
                                      + b'","a":NaN,"b":1e400,"c":-Infinity,"d":[1.5,Infinity]}', "Acme nan",
                                      {"a": None, "b": None, "c": None, "d": [1.5, None]}),
    "lone surrogate in title": (j(id="h-sur", title="Acme \ud800rallies\udc00"), "Acme rallies", {}),
    # more kinds
    "UTF-8 BOM before the object": (b"\xef\xbb\xbf" + j(id="h-bom", title="Acme bom"), "Acme bom", {}),
    "NUL in an extra key and value": (j(id="h-nul", title="Acme\u0000 nul", meta={"k\u0000": "v\u0000"}),
                                      "Acme nul", {"meta": {"k": "v"}}),
    "SQL in the title": (j(id="h-sql", title="Acme'); DROP TABLE articles; --"),
                         "Acme'); DROP TABLE articles; --", {}),
    "log-forging newlines and format strings": (j(id="h-log", title="Acme %s%n{0}\r\nERROR forged line"),
                                                "Acme %s%n{0}\r\nERROR forged line", {}),
    "bidi override title": (j(id="h-bidi", title="\u202eAcme gnihtemos"), "\u202eAcme gnihtemos", {}),
    "zalgo combining marks at the title cap": (j(id="h-zalgo", title=("A" + "\u0301" * 99) * 20),
                                               ("A" + "\u0301" * 99) * 20, {}),
    "C0 control characters": (j(id="h-ctl", title="Acme\x01\x02\x1b[31m red"), "Acme\x01\x02\x1b[31m red", {}),
    "emoji and astral plane": (j(id="h-emoji", title="Acme \U0001F680 \U00020000"), "Acme \U0001F680 \U00020000",
                               {}),
    "nesting at the cap": (j(id="h-deep", title="Acme deep", x=nest(MAX_JSON_DEPTH - 2)), "Acme deep",
                           {"x": nest(MAX_JSON_DEPTH - 2)}),
    "64-digit integer": (j(id="h-int", title="Acme int", n=10 ** 63), "Acme int", {"n": 10 ** 63}),
    "zero-width inside a real title": (j(id="h-zw", title="Ac\u200bme rises"), "Ac\u200bme rises", {}),
}


def test_hostile_records_are_stored_or_dead_lettered_and_the_worker_survives(stack, settings, tmp_path):
    from stream.core.kafka_io import ensure_topics

    valid = list(simple_messages(120))
    hostile = [raw for raw, _ in DEAD.values()] + [raw for raw, _, _ in STORED.values()]
    assert len(DEAD) + len(STORED) >= 25 and len(set(hostile)) == len(hostile)
    ensure_topics(settings)
    producer = KafkaProducer(bootstrap_servers=stack.kafka, acks="all", max_request_size=4 << 20)
    for i, m in enumerate(valid):  # every hostile record sits between valid neighbours
        producer.send(settings.topic_raw, key=m["id"].encode(), value=json.dumps(m).encode())
        if i < len(hostile):
            producer.send(settings.topic_raw, key=m["id"].encode(), value=hostile[i])  # same partition
    producer.send(settings.topic_raw, key=b"tombstone", value=None)  # a Kafka tombstone: no value at all
    producer.flush()
    producer.close()

    worker = Worker(settings, tmp_path / "worker.log", "--no-alerts").start()
    pid = worker.pid
    try:
        wait_for(lambda: article_count(settings) == len(valid) + len(STORED), 240, "valid + cleaned stored", worker)
        dead = read_deadletters(stack.kafka, settings.topic_deadletter, len(DEAD) + 1, timeout=90)
        assert worker.alive() and worker.pid == pid, "the worker restarted or died"
    finally:
        worker.stop()
    log = worker.log(200_000)
    assert "Traceback" not in log, log[-3000:]

    by_value: dict[bytes, list[str]] = {}
    for h, v in dead:
        by_value.setdefault(v, []).append(h["finsent-reason"].decode())
    assert len(dead) == len(DEAD) + 1, sorted(by_value.values())
    for name, (raw, reason) in DEAD.items():
        assert reason in by_value.get(raw, []), f"{name}: dead-lettered as {by_value.get(raw)!r}, expected {reason}"
    assert sorted(by_value[b""]) == ["empty", "not_json"]  # the empty value, and the tombstone (sent as b"")

    for name, (raw, title, extra) in STORED.items():
        item_id = json.loads(raw.decode("utf-8-sig"))["id"]
        rows = query(settings, "SELECT title, extra FROM articles WHERE id = %s", (item_id,))
        assert rows, f"{name}: not stored"
        assert rows[0][0] == title, name
        assert {k: v for k, v in rows[0][1].items() if k != "summary"} == extra, name
    assert all_bucket_sum(settings) == len(valid) + len(STORED)
    ids = {r[0] for r in query(settings, "SELECT id FROM articles")}
    assert {m["id"] for m in valid} <= ids  # every neighbour stored
