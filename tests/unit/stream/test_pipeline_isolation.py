"""Defence in depth: a row the storage refuses is bisected out and dead-lettered, the rest stored;
a database that is down is not mistaken for a bad row."""

from __future__ import annotations

import json

import psycopg2
import pytest
from hypothesis import given, settings, strategies as st

from stream.core.pipeline import BatchProcessor, RawRecord, write_isolating
from tests.support.fakes import FakeEngine, Written


class PickyWriter:
    """Refuses, like PostgreSQL would, any batch holding a row whose title contains BAD."""

    def __init__(self, error=lambda: ValueError("A string literal cannot contain NUL (0x00) characters.")):
        self.ids: set[str] = set()
        self.calls = 0
        self.error = error

    def write_batch(self, rows):
        self.calls += 1
        if any("BAD" in r.title for r in rows):
            raise self.error()
        new = [r for r in rows if r.id not in self.ids]
        self.ids.update(r.id for r in new)
        return Written(new, len(rows) - len(new))


def record(i: int, bad: bool = False) -> RawRecord:
    value = json.dumps({"id": f"a{i}", "published_at": f"2024-05-01T10:{i % 60:02d}:00Z",
                        "title": f"{'BAD ' if bad else ''}Acme item {i}"}).encode()
    return RawRecord(value=value, key=f"a{i}".encode(), topic="news.raw", partition=0, offset=i)


def test_refused_rows_are_dead_lettered_with_original_bytes_and_the_rest_stored():
    recs = [record(i, bad=i in (3, 17)) for i in range(20)]
    writer = PickyWriter()
    proc = BatchProcessor(FakeEngine(), writer)
    res = proc.process(recs)
    assert [r.id for r in res.inserted] == [f"a{i}" for i in range(20) if i not in (3, 17)]
    assert [(d.reason, d.record.value) for d in res.dead] == [
        ("storage_rejected", recs[3].value), ("storage_rejected", recs[17].value)]
    assert "NUL" in res.dead[0].detail
    assert [it.id for it in res.items] == [r.id for r in res.inserted]
    assert "a3" not in proc.recent and "a4" in proc.recent
    assert writer.calls <= 1 + 2 * 2 * 5  # about 2 k log2(n)


def test_a_database_error_that_is_not_about_a_row_propagates():
    down = PickyWriter(error=lambda: psycopg2.OperationalError("server closed the connection unexpectedly"))
    with pytest.raises(psycopg2.OperationalError):
        BatchProcessor(FakeEngine(), down).process([record(0), record(1, bad=True)])
    missing_table = PickyWriter(error=lambda: psycopg2.ProgrammingError("relation does not exist"))
    with pytest.raises(psycopg2.ProgrammingError):
        BatchProcessor(FakeEngine(), missing_table).process([record(1, bad=True)])


def test_a_batch_of_only_refused_rows_is_all_dead_lettered():
    res = BatchProcessor(FakeEngine(), PickyWriter()).process([record(i, bad=True) for i in range(5)])
    assert res.inserted == [] and res.items == [] and res.max_event_time is None
    assert [d.reason for d in res.dead] == ["storage_rejected"] * 5


def test_an_unexpected_validation_error_dead_letters_the_record_not_the_worker():
    class Broken:  # a ticker linker with a bug on one text
        def link(self, text, at=None):
            if "boom" in text:
                raise RuntimeError("linker bug")
            return []

        extract = link

    recs = [record(0), RawRecord(value=json.dumps({"published_at": "2024-05-01T10:00:00Z",
                                                   "title": "boom"}).encode(), offset=1), record(2)]
    res = BatchProcessor(FakeEngine(), PickyWriter(), extractor=Broken()).process(recs)
    assert [r.id for r in res.inserted] == ["a0", "a2"]
    assert [(d.reason, d.record.offset) for d in res.dead] == [("parse_failed", 1)]
    assert "linker bug" in res.dead[0].detail


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 64), data=st.data())
def test_bisection_finds_exactly_the_bad_rows_in_order(n, data):
    bad = data.draw(st.sets(st.integers(0, n - 1)))
    from types import SimpleNamespace

    rows = [SimpleNamespace(id=f"r{i}", title=("BAD" if i in bad else "ok")) for i in range(n)]
    writer = PickyWriter()
    out = write_isolating(writer, rows)
    assert [r.id for r in out.inserted] == [f"r{i}" for i in range(n) if i not in bad]
    assert sorted(r.id for r, _ in out.rejected) == sorted(f"r{i}" for i in bad)
    assert out.skipped == 0
    if not bad:
        assert writer.calls == 1
