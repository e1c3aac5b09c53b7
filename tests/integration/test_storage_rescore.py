"""Re-scoring stored articles with another model: labels change, buckets follow exactly."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from storage import maintenance
from storage.db import fetch_all
from storage.rescore import rescore
from storage.writer import Writer
from stream.base.errors import UserError
from tests.support.fakes import HashEngine
from tests.support.sample_rows import sample_rows, utc, write_all


def rows_of(dsn, schema, query, args=None):
    return fetch_all(dsn, schema, query, args)


def consistent(dsn, schema):
    res = maintenance.verify(dsn, schema)
    assert (res["minute"], res["hour"], res["day"]) == (0, 0, 0), res["examples"]


def fill(dsn, schema):
    with Writer(dsn, schema) as w:
        return write_all(w, sample_rows(utc(2014, 9, 1), utc(2014, 9, 6), per_hour=25, seed=51))


def test_rescore_changes_labels_and_rebuilds_buckets(stack, schema):
    n = fill(stack.dsn, schema)
    since = utc(2014, 9, 3, 12, 0, 30)  # floored to the minute
    before = {r[0]: r[1:] for r in rows_of(stack.dsn, schema, "SELECT id, topic, sentiment, model_version FROM articles")}
    total_before = rows_of(stack.dsn, schema, "SELECT sum(articles) FROM sentiment_day WHERE scope_kind = 'all'")[0][0]
    todo = rows_of(stack.dsn, schema, "SELECT count(*) FROM articles WHERE published_at >= '2014-09-03 12:00+00'")[0][0]
    engine = HashEngine()
    st = rescore(stack.dsn, schema, engine, since, batch_size=100)
    assert st["updated"] == todo == engine.texts and st["batches"] == engine.calls >= 3
    assert st["changed_sentiment"] > todo / 3 and st["changed_topic"] > todo / 2
    after = rows_of(stack.dsn, schema, "SELECT id, published_at, topic, sentiment, model_version, sentiment_score,"
                                       " title FROM articles")
    for aid, ts, topic, sent, version, score, title in after:
        if ts >= utc(2014, 9, 3, 12):
            p = engine.predict([title])[0]
            assert (topic, sent, version, score) == (p.topic, p.sentiment, "fake-2", p.sentiment_score)
        else:
            assert before[aid] == (topic, sent, version) and version == "sample-1"
    # the buckets equal what the relabelled articles imply, at every level; totals unchanged
    consistent(stack.dsn, schema)
    assert rows_of(stack.dsn, schema, "SELECT sum(articles) FROM sentiment_day WHERE scope_kind = 'all'")[0][0] \
        == total_before == n
    # no bucket left with zero articles (a topic that lost all its articles in a minute disappears)
    assert rows_of(stack.dsn, schema, "SELECT count(*) FROM sentiment_minute WHERE articles = 0")[0][0] == 0
    # a second run has nothing left to do; --all redoes it and stays consistent
    assert rescore(stack.dsn, schema, HashEngine(), since)["updated"] == 0
    assert rescore(stack.dsn, schema, HashEngine(), since, only_stale=False)["updated"] == todo
    consistent(stack.dsn, schema)


def test_rescore_while_the_pipeline_writes(stack, schema):
    fill(stack.dsn, schema)
    live = list(sample_rows(utc(2014, 9, 4), utc(2014, 9, 8), per_hour=40, seed=52))  # overlaps the rescored range
    errors = []

    def writer():
        try:
            with Writer(stack.dsn, schema) as w:
                write_all(w, live, batch_size=50)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which asserts there is none
            errors.append(exc)

    t = threading.Thread(target=writer)
    t.start()
    rescore(stack.dsn, schema, HashEngine(), utc(2014, 9, 2), batch_size=64)
    t.join()
    assert not errors
    consistent(stack.dsn, schema)


def test_rescore_refuses_ranges_whose_articles_were_pruned(stack, schema):
    with Writer(stack.dsn, schema) as w:
        write_all(w, sample_rows(utc(2013, 5, 1), utc(2013, 5, 3), per_hour=10, seed=53))
        write_all(w, sample_rows(utc(2013, 7, 1), utc(2013, 7, 3), per_hour=10, seed=54))
    maintenance.prune(stack.dsn, schema, timedelta(days=1), now=utc(2013, 6, 15))
    with pytest.raises(UserError, match="pruned"):
        rescore(stack.dsn, schema, HashEngine(), utc(2013, 1, 1))
    assert rescore(stack.dsn, schema, HashEngine(), utc(2013, 6, 1))["updated"] > 0
    consistent(stack.dsn, schema)


def test_rescore_cli(stack, schema, monkeypatch, capsys):
    import model.engine
    from stream.cli import main

    fill(stack.dsn, schema)
    seen = {}

    def fake_load_engine(path=None, device="auto", **kw):
        seen["path"], seen["device"] = path, device
        return HashEngine("fake-cli")

    monkeypatch.setattr(model.engine, "load_engine", fake_load_engine)
    assert main(["rescore", "--schema", schema, "--since", "2014-09-05", "--model", "/some/ckpt",
                 "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert seen == {"path": "/some/ckpt", "device": "cpu"}
    assert "with model fake-cli" in out and "re-scored" in out
    assert rows_of(stack.dsn, schema, "SELECT DISTINCT model_version FROM articles "
                                      "WHERE published_at >= '2014-09-05'") == [("fake-cli",)]
    consistent(stack.dsn, schema)
