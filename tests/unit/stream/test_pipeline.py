"""The worker's batch step with a fake model and a fake writer."""

from stream.core.pipeline import REPLAY_HEADER, BatchProcessor, RawRecord, RecentIds
from tests.support.fakes import FakeAlerts, FakeEngine, FakeWriter, msg


def test_batch_scores_valid_records_and_deadletters_the_rest():
    engine, writer, alerts = FakeEngine(), FakeWriter(), FakeAlerts()
    proc = BatchProcessor(engine, writer, alerts=alerts)
    records = [RawRecord(msg(1), topic="raw", partition=0, offset=10),
               RawRecord(b"{oops", topic="raw", partition=1, offset=11),
               RawRecord(msg(2)), RawRecord(msg(2, title="same id again")),
               RawRecord(msg(3, title=""), partition=2, offset=99)]
    res = proc.process(records)
    assert [r.id for r in res.inserted] == ["a1", "a2"]
    assert [d.reason for d in res.dead] == ["not_json", "duplicate_id", "empty_title"]
    assert dict(res.dead[0].headers())["finsent-source"] == b"raw/1/11"
    assert dict(res.dead[0].headers())["finsent-reason"] == b"not_json"
    assert engine.calls == [["$ACME item 1", "$ACME item 2"]]
    row = res.inserted[0]
    assert row.tickers == ["ACME"] and row.model_version == "fake-1" and row.sentiment == "negative"
    assert res.max_event_time.minute == 2
    assert res.new_alerts == ["alert"] and alerts.calls[0][1:] == (False, True)
    # the watermark is per source partition
    assert {k: v.minute for k, v in alerts.calls[0][0].items()} == {"raw:0": 1, ":0": 2}


def test_replayed_ids_are_deadlettered_as_duplicates_and_not_rescored():
    engine, writer = FakeEngine(), FakeWriter()
    proc = BatchProcessor(engine, writer)
    proc.process([RawRecord(msg(i)) for i in range(5)])
    res = proc.process([RawRecord(msg(i)) for i in range(5)])
    assert res.inserted == [] and len(engine.calls) == 1
    assert {d.reason for d in res.dead} == {"duplicate_id"}
    # a fresh worker (restart) forgets recent ids; the database still skips them
    res2 = BatchProcessor(engine, writer).process([RawRecord(msg(i)) for i in range(5)])
    assert res2.inserted == [] and res2.skipped == 5


def test_replay_header_sets_flags():
    alerts = FakeAlerts()
    proc = BatchProcessor(FakeEngine(), FakeWriter(), alerts=alerts)
    proc.process([RawRecord(msg(1), headers=((REPLAY_HEADER, b"quiet"),))])
    proc.process([RawRecord(msg(2), headers=((REPLAY_HEADER, b"notify"),))])
    assert [c[1:] for c in alerts.calls] == [(True, False), (True, True)]


def test_alert_detection_failure_does_not_fail_a_stored_batch():
    class Broken:
        def observe(self, *a, **k):
            raise RuntimeError("database went away")

    writer = FakeWriter()
    res = BatchProcessor(FakeEngine(), writer, alerts=Broken()).process([RawRecord(msg(1))])
    assert [r.id for r in res.inserted] == ["a1"] and res.new_alerts == []


def test_all_invalid_batch_touches_neither_model_nor_alerts():
    engine, alerts = FakeEngine(), FakeAlerts()
    res = BatchProcessor(engine, FakeWriter(), alerts=alerts).process([RawRecord(b"x")])
    assert engine.calls == [] and alerts.calls == [] and len(res.dead) == 1


def test_recent_ids_is_bounded():
    r = RecentIds(capacity=3)
    for i in range(5):
        r.add(str(i))
    assert "0" not in r and "1" not in r and all(str(i) in r for i in (2, 3, 4))


def test_copies_of_a_story_are_marked_before_storage():
    from stream.messages.novelty import StoryIndex

    writer = FakeWriter()
    proc = BatchProcessor(FakeEngine(), writer, novelty=StoryIndex())
    wire = "Acme shares plunge 20% after the company slashes its outlook"
    res = proc.process([RawRecord(msg(3, title="RT @desk: " + wire)), RawRecord(msg(1, title=wire)),
                        RawRecord(msg(2, title="Acme names a new chief financial officer"))])
    marks = {r.id: (r.story_id, r.story_first) for r in res.inserted}
    # in event-time order: a1 is the story, a3 (later) its copy, whatever the arrival order
    assert marks == {"a1": ("a1", True), "a3": ("a1", False), "a2": ("a2", True)}
    res = proc.process([RawRecord(msg(4, title=wire + " - Reuters"))])  # a later batch continues the story
    assert (res.inserted[0].story_id, res.inserted[0].story_first) == ("a1", False)


def test_a_repeat_in_the_next_batch_is_a_duplicate_while_the_first_is_still_being_stored():
    """The worker prepares batch k+1 while batch k's transaction runs (prepare/store on two threads)."""
    engine, writer = FakeEngine(), FakeWriter()
    proc = BatchProcessor(engine, writer)
    first = proc.prepare([RawRecord(msg(1)), RawRecord(msg(2))])
    second = proc.prepare([RawRecord(msg(2, title="again")), RawRecord(msg(3))])  # before first is stored
    assert [d.reason for d in second.dead] == ["duplicate_id"] and [i.id for i in second.items] == ["a3"]
    assert [r.id for r in proc.store(first).inserted] == ["a1", "a2"]
    assert [r.id for r in proc.store(second).inserted] == ["a3"]
    third = proc.prepare([RawRecord(msg(1)), RawRecord(msg(4))])  # stored ids stay duplicates
    assert [d.reason for d in third.dead] == ["duplicate_id"]


def test_ids_of_a_batch_whose_transaction_failed_are_not_duplicates_when_read_again():
    import pytest

    class Down(FakeWriter):
        fail = True

        def write_batch(self, rows):
            if self.fail:
                self.fail = False
                raise ConnectionError("database went away")
            return super().write_batch(rows)

    proc = BatchProcessor(FakeEngine(), Down())
    batch = proc.prepare([RawRecord(msg(1))])
    with pytest.raises(ConnectionError):
        proc.store(batch)
    res = proc.process([RawRecord(msg(1))])  # redelivered (never acknowledged)
    assert [r.id for r in res.inserted] == ["a1"] and not res.dead


def test_a_topic_the_source_gives_beats_the_models_and_a_cik_links_its_ticker():
    """An EDGAR filing: the 8-K items' topic is stored (the model said Earnings), the filer's ticker comes by CIK."""
    proc = BatchProcessor(FakeEngine(), FakeWriter())
    res = proc.process([RawRecord(msg(1, title="Apple files an 8-K on departures or appointments of directors",
                                      ciks=["0000320193"], given_topic="Personnel Change")),
                        RawRecord(msg(2, given_topic="no such topic"))])
    row = res.inserted[0]
    assert (row.topic, row.topic_score) == ("Personnel Change", 1.0)
    assert row.tickers == ["AAPL"] and row.ticker_links[0]["rule"] == "cik"
    assert row.extra["ciks"] == ["0000320193"]  # kept with the article, so a rescore keeps the link
    assert [d.reason for d in res.dead] == ["bad_topic"]
