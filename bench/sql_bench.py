"""Analyst query benchmark: trend views at the scale of 10 million articles.

    python bench/sql_bench.py [--articles 10000000] [--days 365] [--tickers 500] [--schema bench_sql]

What it does:

1. (Re)creates a schema with the real migrations (``storage.migrate.upgrade``).
2. Generates, inside PostgreSQL, ``--articles`` synthetic scored articles spread
   over ``--days`` days (Zipf-skewed tickers, 1-2 per article for 70% of them,
   skewed topics, sentiment mix) and aggregates their contributions exactly as
   the writer does into ``sentiment_minute`` and its ``sentiment_hour`` /
   ``sentiment_day`` roll-ups -- that is all the trend views read.  The article
   rows themselves are not stored unless ``--store-articles`` is given (10 M
   article rows with titles cost ~5 GB and do not take part in these queries);
   the output states the row counts used either way.
3. Runs EXPLAIN (ANALYZE, BUFFERS) of the two queries of the issue, warm, five
   times each, and prints the median execution time and one plan:

   * one ticker's hourly trend over a year (the most mentioned ticker), and
   * the daily trend of all topics for a month,

   plus the same hourly question answered from the minute table directly, to
   show what the roll-ups buy.

Default connection: the configured database (``FINSENT_DATABASE_URL`` or the
local stack).  The schema is dropped at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import psycopg2
from psycopg2 import sql

from storage import buckets, migrate
from stream.base.config import load_settings
from stream.base.labels import TOPICS
from stream.base.redact import redact

REAL = ("AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "JPM", "XOM", "NFLX")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def month_starts(start: datetime, end: datetime):
    cur = start
    while cur < end:
        nxt = (cur.replace(day=1) + timedelta(days=32)).replace(day=1)
        yield cur, min(nxt, end)
        cur = nxt


# the bucket tables' columns, in the order of buckets.aggregate (stories: migration 0005)
COLUMNS = "bucket, scope_kind, scope, articles, negative, neutral, positive, score_sum, stories, negative_stories"


def generate(conn, schema: str, articles: int, start: datetime, end: datetime, tickers: int, store: bool) -> None:
    names = list(REAL) + [f"TK{i:04d}" for i in range(len(REAL), tickers)]
    total_s = (end - start).total_seconds()
    with conn.cursor() as cur:
        cur.execute("SET synchronous_commit = off")
        cur.execute("SET work_mem = '256MB'")
        cur.execute("CREATE TEMP TABLE bench_names (i int PRIMARY KEY, name text)")
        cur.execute("INSERT INTO bench_names SELECT i - 1, n FROM unnest(%s::text[]) WITH ORDINALITY AS u(n, i)", (names,))
        cur.execute("CREATE TEMP TABLE bench_topics (i int PRIMARY KEY, name text)")
        cur.execute("INSERT INTO bench_topics SELECT i - 1, n FROM unnest(%s::text[]) WITH ORDINALITY AS u(n, i)",
                    (list(TOPICS),))
        cur.execute("SELECT setseed(0.42)")
        conn.commit()
        done = 0
        for lo, hi in month_starts(start, end):
            n = round(articles * (hi - lo).total_seconds() / total_s)
            t0 = time.monotonic()
            # one month of synthetic scored articles (temp), then the writer's contribution rule
            cur.execute("DROP TABLE IF EXISTS bench_a")
            cur.execute(
                """CREATE TEMP TABLE bench_a AS
                   SELECT g AS n,
                          %(lo)s::timestamptz + random() * (%(hi)s::timestamptz - %(lo)s::timestamptz) AS published_at,
                          (floor(%(nt)s * power(random(), 3)))::int AS t1,
                          CASE WHEN r1 < 0.3 THEN (floor(%(nt)s * power(random(), 2)))::int END AS t2,
                          r1 < 0.85 AS has_ticker,
                          (floor(20 * power(random(), 1.6)))::int AS topic,
                          CASE WHEN r2 < 0.28 THEN 'negative' WHEN r2 < 0.62 THEN 'neutral' ELSE 'positive' END AS sentiment,
                          r2
                   FROM (SELECT g, random() AS r1, random() AS r2 FROM generate_series(1, %(n)s) AS g) AS x""",
                {"lo": lo, "hi": hi, "n": n, "nt": tickers},
            )
            cur.execute(
                """CREATE TEMP VIEW bench_scored AS
                   SELECT a.n, a.published_at, a.sentiment,
                          CASE a.sentiment WHEN 'negative' THEN -0.4 - a.r2 / 2 WHEN 'neutral' THEN a.r2 / 5 - 0.1
                                           ELSE 0.3 + a.r2 / 2 END::float8 AS sentiment_score,
                          tp.name AS topic,
                          CASE WHEN NOT a.has_ticker THEN '{}'::text[]
                               WHEN a.t2 IS NULL OR a.t2 = a.t1 THEN ARRAY[n1.name]
                               ELSE ARRAY[n1.name, n2.name] END AS tickers,
                          NULL::jsonb AS ticker_sentiment  -- each ticker counts the headline's (migration 0007)
                   FROM bench_a a JOIN bench_topics tp ON tp.i = a.topic JOIN bench_names n1 ON n1.i = a.t1
                   LEFT JOIN bench_names n2 ON n2.i = a.t2""")

            contrib = f"({buckets.contributions('bench_scored', first='true')}) AS c"
            cur.execute(f"""INSERT INTO sentiment_minute ({COLUMNS})
                            SELECT * FROM ({buckets.aggregate(contrib, 'minute')}) AS g ORDER BY scope_kind, scope, bucket""")
            for table, expr in buckets.LEVELS[1:]:
                cur.execute(
                    f"""INSERT INTO {table} ({COLUMNS})
                        SELECT {expr.replace('minute', 'bucket')}, scope_kind, scope, sum(articles), sum(negative),
                               sum(neutral), sum(positive), sum(score_sum), sum(stories), sum(negative_stories)
                        FROM sentiment_minute WHERE bucket >= %s AND bucket < %s GROUP BY 1, 2, 3""", (lo, hi))
            if store:
                cur.execute("SELECT ensure_article_partition(%s)", (lo,))
                cur.execute(
                    """INSERT INTO article_ids SELECT 'b' || %(lo_s)s || '-' || n, published_at FROM bench_scored;
                       INSERT INTO articles (id, published_at, source, title, tickers, topic, topic_score, sentiment,
                                             p_negative, p_neutral, p_positive, sentiment_score, model_version)
                       SELECT 'b' || %(lo_s)s || '-' || n, published_at, 'bench', 'synthetic headline ' || n, tickers,
                              topic, 0.8, sentiment, 0.3, 0.3, 0.4, sentiment_score, 'bench' FROM bench_scored""",
                    {"lo_s": lo.strftime("%Y%m")})
            cur.execute("DROP VIEW bench_scored")
            conn.commit()
            done += n
            log(f"  {lo:%Y-%m}: {n:,} articles aggregated in {time.monotonic() - t0:.1f}s ({done:,} of {articles:,})")
    conn.autocommit = True
    with conn.cursor() as cur:
        for t in ("sentiment_minute", "sentiment_hour", "sentiment_day") + (("articles", "article_ids") if store else ()):
            cur.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(t)))
    conn.autocommit = False


def explain(cur, query: str, args: dict, runs: int = 5) -> tuple[float, float, str]:
    times, plan = [], ""
    cur.execute(query, args)  # warm-up
    cur.fetchall()
    for _ in range(runs):
        cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + query, args)
        lines = [r[0] for r in cur.fetchall()]
        times.append(float(next(ln for ln in lines if ln.startswith("Execution Time")).split()[2]))
        plan = "\n".join(lines)
    cur.execute(query, args)
    nrows = len(cur.fetchall())
    return statistics.median(times), nrows, plan


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dsn", help="admin database URL (default: the configured one)")
    ap.add_argument("--schema", default="bench_sql")
    ap.add_argument("--articles", type=int, default=10_000_000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--tickers", type=int, default=500)
    ap.add_argument("--store-articles", action="store_true", help="also store the article rows (slow, ~5 GB at 10 M)")
    ap.add_argument("--reuse", action="store_true", help="reuse data generated by an earlier --keep run")
    ap.add_argument("--keep", action="store_true", help="keep the schema afterwards")
    args = ap.parse_args(argv)

    dsn = args.dsn or load_settings().dsn
    end = datetime(2025, 1, 1, tzinfo=UTC)
    start = end - timedelta(days=args.days)
    conn = psycopg2.connect(dsn)
    ident = sql.Identifier(args.schema)
    log(f"database {redact(dsn)}, schema {args.schema}")
    t0 = time.monotonic()
    if not args.reuse:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(ident))
        conn.autocommit = False
        migrate.upgrade(dsn, schema=args.schema)
    with conn.cursor() as cur:
        cur.execute(sql.SQL("SET search_path = {}, pg_temp").format(ident))
        cur.execute("SET TimeZone = 'UTC'")
    conn.commit()
    if not args.reuse:
        log(f"generating {args.articles:,} articles over {args.days} days ({start:%Y-%m-%d} .. {end:%Y-%m-%d}), "
            f"{args.tickers} tickers, {len(TOPICS)} topics")
        generate(conn, args.schema, args.articles, start, end, args.tickers, args.store_articles)
        log(f"generated in {time.monotonic() - t0:.0f}s")
    try:
        with conn.cursor() as cur:
            cur.execute("""SELECT (SELECT sum(articles) FROM sentiment_minute WHERE scope_kind = 'all'),
                                  (SELECT count(*) FROM sentiment_minute), (SELECT count(*) FROM sentiment_hour),
                                  (SELECT count(*) FROM sentiment_day), (SELECT count(*) FROM articles),
                                  pg_size_pretty(pg_total_relation_size('sentiment_minute')),
                                  pg_size_pretty(pg_total_relation_size('sentiment_hour')),
                                  pg_size_pretty(pg_total_relation_size('sentiment_day')),
                                  (SELECT min(bucket) FROM sentiment_day), (SELECT max(bucket) FROM sentiment_day)""")
            n_art, n_min, n_hour, n_day, n_stored, s_min, s_hour, s_day, first, last = cur.fetchone()
            cur.execute("""SELECT scope, sum(articles) FROM sentiment_day WHERE scope_kind = 'ticker'
                           GROUP BY scope ORDER BY 2 DESC LIMIT 1""")
            top, top_n = cur.fetchone()
            cur.execute("SELECT version()")
            version = cur.fetchone()[0].split(",")[0]
            print()
            print(f"{version}; data {first:%Y-%m-%d} .. {last:%Y-%m-%d}")
            print(f"articles represented (sum of 'all' minute buckets): {n_art:,}; article rows stored: {n_stored:,}")
            print(f"sentiment_minute: {n_min:,} rows ({s_min}); sentiment_hour: {n_hour:,} rows ({s_hour}); "
                  f"sentiment_day: {n_day:,} rows ({s_day})")
            print(f"busiest ticker: {top} with {top_n:,} articles")
            year_from = last - timedelta(days=364)
            month_from = (last.replace(day=1) - timedelta(days=1)).replace(day=1)
            month_to = (month_from + timedelta(days=32)).replace(day=1)
            cases = [
                ("hourly trend of one ticker over a year (trend_hourly)",
                 "SELECT * FROM trend_hourly WHERE scope_kind = 'ticker' AND scope = %(t)s "
                 "AND bucket >= %(a)s AND bucket < %(b)s ORDER BY bucket",
                 {"t": top, "a": year_from, "b": last + timedelta(days=1)}),
                ("daily trend of all topics for a month (trend_daily)",
                 "SELECT * FROM trend_daily WHERE scope_kind = 'topic' AND bucket >= %(a)s AND bucket < %(b)s "
                 "ORDER BY bucket, scope",
                 {"a": month_from, "b": month_to}),
                ("for comparison: the same hourly trend computed from sentiment_minute",
                 "SELECT date_trunc('hour', bucket, 'UTC') AS bucket, sum(articles), sum(negative), "
                 "sum(negative)::float / sum(articles), sum(score_sum) / sum(articles) FROM sentiment_minute "
                 "WHERE scope_kind = 'ticker' AND scope = %(t)s AND bucket >= %(a)s AND bucket < %(b)s GROUP BY 1 ORDER BY 1",
                 {"t": top, "a": year_from, "b": last + timedelta(days=1)}),
            ]
            print()
            for title, query, qargs in cases:
                ms, nrows, plan = explain(cur, query, qargs)
                print(f"== {title}: median {ms:.2f} ms over 5 warm runs, {nrows:,} rows returned")
                print("   " + plan.replace("\n", "\n   "))
                print()
    finally:
        conn.rollback()
        if not args.keep:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(ident))
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
