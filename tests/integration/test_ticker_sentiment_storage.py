"""Per-company sentiment in PostgreSQL (migration 0007): ticker buckets count the sentiment toward the
ticker, topic and 'all' buckets the headline's; rows without it fall back to the headline's; the
analyst view says the same as the buckets; a database with rows stored before the migration keeps
them, and ``finsent rescore`` gives them their per-ticker sentiment, moving the ticker buckets."""

from __future__ import annotations

import json
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from model import ort
from model.engine import load_engine
from model.entities import EntityQuery, find_mentions
from storage import maintenance, migrate
from storage.analyst import run_query
from storage.db import connect, fetch_all
from storage.rescore import rescore
from storage.writer import ArticleRow, Writer
from tests.support.tiny_model import make_tiny_checkpoint

T0 = datetime(2025, 3, 13, 15, 0, tzinfo=UTC)


def entry(sentiment: str, score: float, source: str = "entity") -> dict:
    p = {"negative": (0.8, 0.15, 0.05), "neutral": (0.1, 0.8, 0.1), "positive": (0.05, 0.15, 0.8)}[sentiment]
    return {"sentiment": sentiment, "p_negative": p[0], "p_neutral": p[1], "p_positive": p[2],
            "sentiment_score": score, "source": source}


def row(i: int, minute: int, title: str, tickers: list[str], sentiment: str, score: float,
        ticker_sentiment: dict | None, topic: str = "Earnings") -> ArticleRow:
    return ArticleRow(id=f"ts{i}", published_at=T0 + timedelta(minutes=minute, seconds=i), source="wire", url=None,
                      title=title, tickers=tickers, topic=topic, topic_score=0.9, sentiment=sentiment,
                      p_negative=0.3, p_neutral=0.4, p_positive=0.3, sentiment_score=score, model_version="t-1",
                      ticker_sentiment=ticker_sentiment)


ROWS = [
    # one headline, opposite fortunes: bad for WMT, good for TGT, the headline itself neutral
    row(1, 0, "Walmart cuts forecast, Target gains", ["WMT", "TGT"], "neutral", 0.05,
        {"WMT": entry("negative", -0.75), "TGT": entry("positive", 0.7)}),
    # no entry for COST (e.g. a ticker added later): the headline's counts for it
    row(2, 0, "Walmart and Costco slide", ["WMT", "COST"], "negative", -0.6, {"WMT": entry("negative", -0.5)}),
    # stored without per-ticker sentiment (before 0007, or an engine without entities): all the headline's
    row(3, 1, "Target rallies", ["TGT"], "positive", 0.6, None),
    row(4, 1, "Markets calm", [], "neutral", 0.0, None, topic="Markets"),
]


def execute(dsn: str, schema: str, query: str, params=None) -> None:
    """One statement, committed (``fetch_all`` rolls back)."""
    conn = connect(dsn, schema)
    try:
        with conn.cursor() as cur:
            cur.execute(query, params)
        conn.commit()
    finally:
        conn.close()


def buckets(dsn, schema, kind):
    return {(b, s): (a, n, neu, p, round(sc, 6)) for b, s, a, n, neu, p, sc in fetch_all(
        dsn, schema, "SELECT bucket, scope, articles, negative, neutral, positive, score_sum FROM sentiment_minute"
                     " WHERE scope_kind = %s", (kind,))}


def test_ticker_buckets_follow_each_tickers_own_sentiment_and_fall_back_to_the_headline(stack, schema):
    with Writer(stack.dsn, schema) as w:
        assert len(w.write_batch(ROWS).inserted) == 4
    m0, m1 = T0, T0 + timedelta(minutes=1)
    assert buckets(stack.dsn, schema, "ticker") == {
        (m0, "WMT"): (2, 2, 0, 0, -1.25),  # negative toward WMT in both
        (m0, "TGT"): (1, 0, 0, 1, 0.7),  # good news for Target, although the headline is neutral
        (m0, "COST"): (1, 1, 0, 0, -0.6),  # the headline's
        (m1, "TGT"): (1, 0, 0, 1, 0.6),  # the headline's
    }
    assert buckets(stack.dsn, schema, "topic") == {(m0, "Earnings"): (2, 1, 1, 0, -0.55), (m1, "Earnings"): (1, 0, 0, 1, 0.6),
                                                   (m1, "Markets"): (1, 0, 1, 0, 0.0)}
    assert buckets(stack.dsn, schema, "all") == {(m0, "all"): (2, 1, 1, 0, -0.55), (m1, "all"): (2, 0, 1, 1, 0.6)}
    # the stored entries are the checked ones; rows without stay NULL
    stored = dict(fetch_all(stack.dsn, schema, "SELECT id, ticker_sentiment FROM articles"))
    assert stored["ts1"]["TGT"] == entry("positive", 0.7) and stored["ts3"] is None
    # the consistency check recomputes the same (and the roll-ups follow)
    res = maintenance.verify(stack.dsn, schema)
    assert (res["minute"], res["hour"], res["day"]) == (0, 0, 0), res["examples"]
    # writing the same rows again changes nothing
    with Writer(stack.dsn, schema) as w:
        assert w.write_batch(ROWS).skipped == 4
    assert buckets(stack.dsn, schema, "ticker")[(m0, "WMT")] == (2, 2, 0, 0, -1.25)


def test_the_analyst_view_gives_each_article_and_ticker_the_sentiment_its_buckets_count(stack, pg):
    with Writer(stack.dsn, pg.schema) as w:
        w.write_batch(ROWS)
    cols, rows = run_query(pg.analyst_dsn, pg.schema,
                           "SELECT id, ticker, sentiment, sentiment_score, sentiment_source, headline_sentiment "
                           "FROM article_ticker_sentiment ORDER BY id, ticker")
    assert cols[:2] == ["id", "ticker"]
    assert rows == [("ts1", "TGT", "positive", 0.7, "entity", "neutral"), ("ts1", "WMT", "negative", -0.75, "entity", "neutral"),
                    ("ts2", "COST", "negative", -0.6, "unscored", "negative"),
                    ("ts2", "WMT", "negative", -0.5, "entity", "negative"),
                    ("ts3", "TGT", "positive", 0.6, "unscored", "positive")]
    # summed per minute and ticker, the view is the ticker buckets
    _, view = run_query(pg.analyst_dsn, pg.schema, """
        SELECT date_trunc('minute', published_at, 'UTC'), ticker, count(*),
               count(*) FILTER (WHERE sentiment = 'negative'), count(*) FILTER (WHERE sentiment = 'neutral'),
               count(*) FILTER (WHERE sentiment = 'positive'), round(sum(sentiment_score)::numeric, 6)::float8
        FROM article_ticker_sentiment GROUP BY 1, 2""")
    assert {(b, s): tuple(v) for b, s, *v in view} == buckets(stack.dsn, pg.schema, "ticker")


# ------------------------------------------------------------------ rows stored before 0007, then rescore
@pytest.fixture(scope="module")
def tiny_entity(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ck") / "tiny-ent", seed=2, entity=True)[0]


@pytest.fixture
def engine(tiny_entity, tmp_path, monkeypatch):
    monkeypatch.setenv(ort.ENV_CACHE, str(tmp_path / "onnx"))
    return load_engine(tiny_entity, "cpu", cpu_path="onnx", warmup=False)


OLD = [  # (title, tickers, links' surface texts, headline sentiment): as the v6 pipeline stored them
    (f"Walmart {a} as Target {b}", ["WMT", "TGT"], {"WMT": "Walmart", "TGT": "Target"}, s)
    for a, b, s in [("cuts its forecast", "gains shoppers", "negative"), ("slumps", "rallies", "neutral"),
                    ("misses estimates", "beats estimates", "positive"), ("recalls products", "wins customers", "neutral"),
                    ("warns on margins", "raises guidance", "negative"), ("lays off staff", "expands stores", "positive")]
] + [("Fed holds rates steady", ["AAPL"], {}, "neutral")]  # a given ticker the text does not name


def _old_schema(stack, schema: str, monkeypatch) -> None:
    """``schema`` at migration 6 with OLD stored the way that version's writer stored them: articles and their
    buckets by the headline's sentiment."""
    v6 = migrate.available()[:6]
    with monkeypatch.context() as m:
        m.setattr(migrate, "available", lambda: v6)
        migrate.upgrade(stack.dsn, schema=schema)
    assert migrate.current_version(stack.dsn, schema) == 6
    execute(stack.dsn, schema, "SELECT ensure_article_partition(%s)", (T0,))
    for i, (title, tickers, names, sent) in enumerate(OLD):
        links = [{"ticker": t, "rule": "name", "text": n, "start": title.index(n), "end": title.index(n) + len(n)}
                 for t, n in names.items()] or [{"ticker": t, "rule": "given"} for t in tickers]
        execute(stack.dsn, schema, """
            WITH a AS (INSERT INTO article_ids VALUES (%(id)s, %(ts)s) RETURNING id)
            INSERT INTO articles (id, published_at, title, tickers, topic, sentiment, p_negative, p_neutral,
                                  p_positive, sentiment_score, model_version, ticker_links)
            SELECT id, %(ts)s, %(title)s, %(tickers)s, 'Earnings', %(s)s, 0.3, 0.4, 0.3, %(score)s, 'old-1',
                   %(links)s::jsonb FROM a""",
                  {"id": f"old{i}", "ts": T0 + timedelta(seconds=i), "title": title, "tickers": tickers, "s": sent,
                   "score": {"negative": -0.7, "neutral": 0.0, "positive": 0.7}[sent], "links": json.dumps(links)})
    for table, unit in (("sentiment_minute", "minute"), ("sentiment_hour", "hour"), ("sentiment_day", "day")):
        execute(stack.dsn, schema, f"""
            INSERT INTO {table} (bucket, scope_kind, scope, articles, negative, neutral, positive, score_sum,
                                 stories, negative_stories)
            SELECT date_trunc('{unit}', published_at, 'UTC'), k, s, count(*),
                   count(*) FILTER (WHERE sentiment = 'negative'), count(*) FILTER (WHERE sentiment = 'neutral'),
                   count(*) FILTER (WHERE sentiment = 'positive'), sum(sentiment_score), count(*),
                   count(*) FILTER (WHERE sentiment = 'negative')
            FROM articles CROSS JOIN LATERAL (SELECT 'all', 'all' UNION ALL SELECT 'topic', topic
                                              UNION ALL SELECT 'ticker', unnest(tickers)) AS x(k, s)
            GROUP BY 1, 2, 3""")


def counts(dsn, schema, kind):
    """{scope: (articles, negative, neutral, positive)} of the day buckets of a scope kind."""
    return {s: (n, neg, neu, pos) for s, n, neg, neu, pos in fetch_all(
        dsn, schema, "SELECT scope, articles, negative, neutral, positive FROM sentiment_day WHERE scope_kind = %s",
        (kind,))}


def test_migration_keeps_old_rows_which_fall_back_until_rescore_scores_each_ticker(stack, monkeypatch, engine):
    schema = f"t_old_{uuid.uuid4().hex[:8]}"
    try:
        _old_schema(stack, schema, monkeypatch)
        old_tickers = counts(stack.dsn, schema, "ticker")
        migrate.upgrade(stack.dsn, schema=schema)  # 0007 (and later) on a database with rows
        assert migrate.current_version(stack.dsn, schema) == migrate.code_version()
        assert fetch_all(stack.dsn, schema, "SELECT count(*), count(ticker_sentiment) FROM articles") == [(len(OLD), 0)]
        assert counts(stack.dsn, schema, "ticker") == old_tickers
        # nothing to recount: the buckets the old writer made are what the fallback implies
        res = maintenance.verify(stack.dsn, schema)
        assert (res["minute"], res["hour"], res["day"]) == (0, 0, 0), res["examples"]
        assert fetch_all(stack.dsn, schema, "SELECT DISTINCT sentiment_source FROM article_ticker_sentiment") == [("unscored",)]
        assert fetch_all(stack.dsn, schema, "SELECT count(*) FROM article_ticker_sentiment"
                                            " WHERE sentiment <> headline_sentiment") == [(0,)]

        # rescore with the same texts: each named ticker gets the entity head's reading of its mentions
        st = rescore(stack.dsn, schema, engine, T0 - timedelta(hours=1))
        assert st["updated"] == len(OLD)
        stored = dict(fetch_all(stack.dsn, schema, "SELECT title, ticker_sentiment FROM articles"))
        headline = dict(fetch_all(stack.dsn, schema, "SELECT title, sentiment FROM articles"))
        want: dict[str, Counter] = defaultdict(Counter)
        differ = changed = 0
        for title, tickers, names, old_sentiment in OLD:
            queries = [EntityQuery(find_mentions(title, names[t])) if t in names else EntityQuery(()) for t in tickers]
            p = engine.predict([title], entities=[queries])[0]
            assert headline[title] == p.sentiment
            for t, e in zip(tickers, p.entities):
                got = stored[title][t]
                assert (got["sentiment"], got["source"]) == (e.sentiment, e.source), (title, t)
                assert got["sentiment_score"] == pytest.approx(e.sentiment_score, abs=1e-6)
                assert e.source == ("entity" if t in names else "headline")
                want[t][e.sentiment] += 1
                differ += e.sentiment != p.sentiment
                changed += e.sentiment != old_sentiment
        assert differ, "the tiny checkpoint should read some ticker otherwise than its headline"
        assert st["changed_ticker_sentiment"] == changed  # against the old rows' fallback (their headline's)
        # the ticker buckets moved to the per-ticker sentiment; topic and 'all' count the (new) headline's
        assert counts(stack.dsn, schema, "ticker") == {
            t: (sum(c.values()), c["negative"], c["neutral"], c["positive"]) for t, c in want.items()}
        heads = Counter(headline.values())
        assert counts(stack.dsn, schema, "all") == {"all": (len(OLD), heads["negative"], heads["neutral"], heads["positive"])}
        res = maintenance.verify(stack.dsn, schema)
        assert (res["minute"], res["hour"], res["day"]) == (0, 0, 0), res["examples"]
        # a second rescore with the same engine finds nothing stale
        assert rescore(stack.dsn, schema, engine, T0 - timedelta(hours=1))["updated"] == 0
    finally:
        migrate.drop_schema(stack.dsn, schema)
