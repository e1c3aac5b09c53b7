"""The one ingest loop (stream/core/ingest.py) with fake sources and sinks; the sources and sinks with fakes
of the broker, the feed reader and the batch step."""

from __future__ import annotations

import io
import json
import threading
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import ClassVar

import pytest

from stream.base.errors import UserError
from stream.core import ingest
from stream.core.ingest import Checkpoint, Record
from stream.core.pipeline import BatchResult, RawRecord
from stream.messages.raw_message import parse_message
from stream.messages.replay import Pacer
from stream.sinks.kafka import KafkaSink
from stream.sinks.store import StoreSink
from stream.sources.files import ArchiveSource

T0 = datetime(2024, 3, 4, 14, 0, tzinfo=UTC)


def item(i: int, minutes: float = 0.0):
    return parse_message({"id": f"a{i}", "title": f"headline {i}",
                          "published_at": (T0 + timedelta(minutes=minutes)).isoformat()})


class FakeBar:
    made: ClassVar[list[FakeBar]] = []

    def __init__(self, **kw):
        self.kw = kw
        self.n = 0
        self.closed = False
        FakeBar.made.append(self)

    def update(self, n):
        self.n += n

    def write(self, s, file=None):
        file.write(s + "\n")

    def close(self):
        self.closed = True


class FakeSource:
    def __init__(self, records, name="fake", total=None, progress=True):
        self.records, self.name, self.total, self.progress = records, name, total, progress
        self.closed = False

    def __iter__(self):
        return iter(self.records)

    def close(self):
        self.closed = True


class FakeSink:
    def __init__(self, log=None, fail_on=None):
        self.log = log if log is not None else []
        self.written = []
        self.fail_on = fail_on
        self.closed = False

    def write(self, rec):
        if self.fail_on is not None and len(self.written) == self.fail_on:
            raise UserError("refused")
        self.written.append(rec)
        self.log.append(("write", rec))

    def flush(self):
        self.log.append(("flush",))

    def close(self):
        self.closed = True


def run(source, sink, pacer=None):
    out = io.StringIO()
    counts = ingest.run(source, sink, pacer, bar=FakeBar, out=out)
    return counts, out.getvalue(), FakeBar.made[-1]


def test_every_record_reaches_the_sink_and_the_bar_counts_to_the_sources_total():
    recs = [Record(item=item(i)) for i in range(5)]
    sink = FakeSink()
    source = FakeSource(recs, name="replay", total=5)
    counts, _, bar = run(source, sink)
    assert sink.written == recs and counts.records == 5 and counts.invalid == 0
    assert bar.kw["total"] == 5 and bar.kw["desc"] == "replay" and bar.n == 5 and bar.kw["disable"] is None
    assert sink.log[-1] == ("flush",)  # the end is a flush: everything durable before return
    assert bar.closed and sink.closed and source.closed


def test_bad_records_are_handed_on_and_counted_by_reason():
    recs = [Record(item=item(0)), Record(raw=RawRecord(value=b"{"), reason="not_json"),
            Record(raw=RawRecord(value=b'{"title": ""}'), reason="empty_title"),
            Record(raw=RawRecord(value=b"x"), reason="not_json"),
            Record(raw=RawRecord(value=b"from kafka"))]  # raw without a reason: validated downstream
    sink = FakeSink()
    counts, _, _ = run(FakeSource(recs), sink)
    assert sink.written == recs  # nothing dropped
    assert counts.records == 5 and counts.invalid == 3
    assert counts.reasons == {"not_json": 2, "empty_title": 1}
    assert counts.reasons_text() == "empty_title 1, not_json 2"
    assert ingest.Counts().reasons_text() == "none"


def test_pacing_follows_event_time_at_the_given_speed():
    clock = [100.0]
    slept = []

    def sleep(s):
        slept.append(s)
        clock[0] += s

    pacer = Pacer(60.0, sleep=sleep, clock=lambda: clock[0])  # 60x: one event minute = one second
    recs = [Record(item=item(0, 0)), Record(raw=RawRecord(value=b"bad"), reason="not_json"),
            Record(item=item(1, 1)), Record(item=item(2, 3)), Record(item=item(3, 3))]
    run(FakeSource(recs), FakeSink(), pacer)
    assert slept == pytest.approx([1.0, 2.0])  # raw records never wait; equal times do not wait again


def test_no_pacer_means_no_waiting():
    slept = []
    recs = [Record(item=item(i, 10 * i)) for i in range(3)]
    run(FakeSource(recs), FakeSink(), Pacer(None, sleep=slept.append))
    assert slept == []


def test_a_checkpoint_commits_only_after_the_sink_flushed_and_prints_what_commit_returns():
    log = []
    recs = [Record(item=item(0)), Checkpoint(lambda: log.append(("commit",)) or "feed: 1 new"),
            Record(item=item(1)), Checkpoint(None)]
    counts, out, _ = run(FakeSource(recs), FakeSink(log))
    assert [e[0] for e in log] == ["write", "flush", "commit", "write", "flush", "flush"]
    assert out == "feed: 1 new\n" and counts.records == 2


def test_an_error_closes_the_sink_and_the_source_and_skips_later_commits():
    committed = []
    recs = [Record(item=item(0)), Record(item=item(1)), Checkpoint(lambda: committed.append(1))]
    sink, source = FakeSink(fail_on=1), FakeSource(recs)
    with pytest.raises(UserError):
        run(source, sink)
    assert committed == [] and sink.closed and source.closed and FakeBar.made[-1].closed


def test_a_source_without_progress_gets_a_disabled_bar():
    run(FakeSource([], progress=False), FakeSink())
    assert FakeBar.made[-1].kw["disable"] is True


# --------------------------------------------------------------------------- sources
def test_archive_source_gives_items_invalid_rows_with_reasons_and_counts_filtered(tmp_path):
    path = tmp_path / "a.jsonl"
    rows = [{"id": "x1", "title": "one", "published_at": "2024-03-04T14:00:00Z"},
            {"id": "x2", "title": "", "published_at": "2024-03-04T14:01:00Z"},
            {"id": "x3", "title": "three", "published_at": "2024-03-05T14:00:00Z"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\nnot json\n")
    src = ArchiveSource(path, until=datetime(2024, 3, 5, tzinfo=UTC))
    assert src.total == 4 and src.name == "replay"
    recs = list(src)
    assert [r.item.id for r in recs if r.item] == ["x1"]
    assert [r.reason for r in recs if not r.item] == ["empty_title", "not_json"]
    assert recs[-1].raw.value == b"not json"
    assert src.stats.read == 4 and src.stats.filtered == 1
    assert ArchiveSource(path, limit=2).total == 2 and len(list(ArchiveSource(path, limit=2))) == 2
    with pytest.raises(UserError, match="archive not found"):
        ArchiveSource(tmp_path / "missing.jsonl")


# the feed poller's source (checkpoints, schedule): tests/unit/stream/test_feeds.py


# --------------------------------------------------------------------------- sinks
class FakeFuture:
    def __init__(self, error=None):
        self.error = error

    def add_errback(self, fn):
        if self.error is not None:
            fn(self.error)
        return self


class FakeProducer:
    def __init__(self, fail_at=None):
        self.sent = []
        self.fail_at = fail_at
        self.flushed = self.closed = False

    def send(self, topic, key=None, value=None, timestamp_ms=None, headers=None):
        self.sent.append(SimpleNamespace(topic=topic, key=key, value=value, timestamp_ms=timestamp_ms, headers=headers))
        return FakeFuture(RuntimeError("too large") if len(self.sent) == self.fail_at else None)

    def flush(self):
        self.flushed = True

    def close(self):
        self.closed = True


def settings_stub():
    return SimpleNamespace(topic_raw="t.raw")


def test_kafka_sink_keys_items_by_id_with_event_time_and_sends_bad_rows_unkeyed():
    producer = FakeProducer()
    sink = KafkaSink(settings_stub(), [("finsent-replay", b"quiet")], producer=producer)
    counts = ingest.run(FakeSource([Record(item=item(3)), Record(raw=RawRecord(value=b"junk"), reason="not_json")]),
                        sink, bar=FakeBar, out=io.StringIO())
    good, bad = producer.sent
    assert good.key == b"a3" and good.timestamp_ms == int(T0.timestamp() * 1000) and good.topic == "t.raw"
    assert json.loads(good.value)["title"] == "headline 3"
    assert bad.key is None and bad.value == b"junk" and bad.headers == [("finsent-replay", b"quiet")]
    assert producer.flushed and producer.closed and counts.invalid == 1
    assert sink.summary() == "sent 2 to t.raw"


def test_kafka_sink_stops_at_a_refused_record():
    producer = FakeProducer(fail_at=2)
    sink = KafkaSink(settings_stub(), producer=producer)
    with pytest.raises(UserError, match="Kafka refused a record: too large"):
        ingest.run(FakeSource([Record(item=item(i)) for i in range(5)]), sink, bar=FakeBar, out=io.StringIO())
    assert len(producer.sent) == 2 and producer.closed


class FakeProcessor:
    """The batch step's two halves: prepare (records in) and store (a record keyed b"dup" is already stored)."""

    def __init__(self, store_gate=None, fail_at=None):
        self.batches, self.stored, self.events = [], [], []
        self.store_gate, self.fail_at = store_gate, fail_at

    def prepare(self, batch, unseen=()):
        self.events.append(("prepare", len(self.batches)))
        self.batches.append(list(batch))
        return BatchResult(received=len(batch), items=list(batch))

    def store(self, res):
        k = len(self.stored)
        if self.store_gate is not None:
            self.store_gate(k)
        if k == self.fail_at:
            raise RuntimeError("database refused the batch")
        self.events.append(("store", k))
        self.stored.append(res.items)
        res.inserted = [r for r in res.items if r.key != b"dup"]
        res.skipped = len(res.items) - len(res.inserted)
        return res


def test_store_sink_batches_by_size_and_at_checkpoints_with_the_replay_header():
    proc = FakeProcessor()
    sink = StoreSink(proc, "other", notify=False, batch_size=3)
    recs = [Record(item=item(i)) for i in range(4)] + [Checkpoint(None), Record(raw=RawRecord(value=b"v", key=b"dup"))]
    ingest.run(FakeSource(recs), sink, bar=FakeBar, out=io.StringIO())
    assert [len(b) for b in proc.batches] == [3, 1, 1]
    assert all(r.headers == (("finsent-replay", b"quiet"),) for b in proc.batches for r in b)
    assert proc.batches[-1][0].key == b"dup"
    assert sink.summary() == "stored 4 in schema other, already there 1, dead-lettered 0"


def test_store_sink_scores_the_next_batch_while_the_previous_one_commits():
    started = threading.Event()

    def gate(k):  # batch 0's commit waits until batch 1 is being prepared: impossible one after the other
        if k == 0:
            assert started.wait(10), "batch 1 was not prepared while batch 0 committed"

    proc = FakeProcessor(store_gate=gate)
    prepare = proc.prepare
    proc.prepare = lambda batch, unseen=(): (len(proc.batches) == 1 and started.set(), prepare(batch, unseen))[1]
    sink = StoreSink(proc, "other", notify=False, batch_size=2)
    ingest.run(FakeSource([Record(item=item(i)) for i in range(6)]), sink, bar=FakeBar, out=io.StringIO())
    assert [len(b) for b in proc.stored] == [2, 2, 2] and sink.stored == 6
    assert proc.events.index(("prepare", 1)) < proc.events.index(("store", 0))


def test_a_checkpoint_commits_in_order_after_the_batches_before_it_without_stopping_the_loop():
    proc = FakeProcessor()
    commits = []
    recs = [Record(item=item(0)), Record(item=item(1)), Record(item=item(2)),
            Checkpoint(lambda: commits.append(len(proc.stored)) or "offsets 3"), Record(item=item(3))]
    out = io.StringIO()
    ingest.run(FakeSource(recs), StoreSink(proc, "other", notify=False, batch_size=2), bar=FakeBar, out=out)
    assert [len(b) for b in proc.batches] == [2, 1, 1]  # the checkpoint ended a batch
    assert commits and commits[0] >= 2 and "offsets 3" in out.getvalue()


def test_a_failed_commit_stops_the_replay_and_nothing_after_it_commits_or_checkpoints():
    proc = FakeProcessor(fail_at=1)
    commits = []
    recs = [Record(item=item(i)) for i in range(4)] + [Checkpoint(lambda: commits.append(1))] + \
        [Record(item=item(i)) for i in range(4, 12)]
    with pytest.raises(RuntimeError, match="database refused"):
        ingest.run(FakeSource(recs), StoreSink(proc, "other", notify=False, batch_size=2), bar=FakeBar,
                   out=io.StringIO())
    assert len(proc.stored) == 1 and commits == []


def test_list_source_gives_its_items_with_their_count_as_total():
    items = [item(i) for i in range(3)]
    src = ingest.ListSource(items, "replay into Kafka")
    sink = FakeSink()
    counts, _, bar = run(src, sink)
    assert [r.item for r in sink.written] == items and bar.kw["total"] == 3 and counts.records == 3


def test_jobs_is_for_the_in_process_replay_only(tmp_path):
    from stream import services
    from stream.base.config import load_settings

    archive = tmp_path / "a.jsonl"
    archive.write_text(json.dumps({"title": "x", "published_at": "2024-03-04T14:00:00Z"}) + "\n")
    with pytest.raises(UserError, match="--jobs needs --schema or --from-kafka"):
        services.replay_archive(load_settings(), services.ArchiveReplay(path=archive, jobs=2))
    with pytest.raises(UserError, match="--jobs must be at least 1"):
        services.in_process(load_settings(), notify=False, jobs=0)
