"""The SQL that turns articles into sentiment bucket increments.

One definition, used by the writer (+1 per newly inserted article), by
rescoring (-1 for the old labels, +1 for the new ones) and by the consistency
check (everything recomputed from ``articles``), so the three can never count
differently.

An article contributes to the scopes ``('all', 'all')``, ``('topic', topic)``
(when it has a topic) and ``('ticker', t)`` for each distinct non-empty
ticker, in the minute of its ``published_at`` (UTC), and to the hour and day
roll-ups of that minute.  ``stories`` / ``negative_stories`` count only
the first-seen article of each story (``articles.story_first``, see
:mod:`stream.novelty`): analysts choose copies or unique stories in SQL.
"""

from __future__ import annotations

LEVELS = (  # table, bucket expression over the minute
    ("sentiment_minute", "minute"),
    ("sentiment_hour", "date_trunc('hour', minute, 'UTC')"),
    ("sentiment_day", "date_trunc('day', minute, 'UTC')"),
)

COUNT_COLUMNS = ("articles", "negative", "neutral", "positive", "score_sum", "stories", "negative_stories")


def contributions(src: str, sign: str = "1", first: str = "coalesce(c.story_first, true)") -> str:
    """SELECT of (minute, kind, scope, sentiment, sentiment_score, sign, story_first) rows for relation ``src``.

    ``src`` must have published_at, tickers, topic, sentiment, sentiment_score
    and story_first (the article is the first of its story: it counts in
    ``stories``; pass ``first="true"`` for a relation without it).
    """
    return f"""
    SELECT date_trunc('minute', c.published_at, 'UTC') AS minute, s.kind, s.scope,
           c.sentiment, c.sentiment_score, ({sign})::integer AS sign, {first} AS story_first
    FROM {src} AS c
    CROSS JOIN LATERAL (
        SELECT 'all'::text, 'all'::text
        UNION ALL
        SELECT 'topic'::text, c.topic WHERE c.topic IS NOT NULL AND c.topic <> ''
        UNION ALL
        SELECT DISTINCT 'ticker'::text, t FROM unnest(c.tickers) AS t WHERE t IS NOT NULL AND t <> ''
    ) AS s(kind, scope)"""


def aggregate(contrib: str, bucket_expr: str) -> str:
    """Group contribution rows into (bucket, kind, scope, articles, negative, neutral, positive, score_sum,
    stories, negative_stories)."""
    return f"""
    SELECT {bucket_expr} AS bucket, kind AS scope_kind, scope,
           sum(sign) AS articles,
           coalesce(sum(sign) FILTER (WHERE sentiment = 'negative'), 0) AS negative,
           coalesce(sum(sign) FILTER (WHERE sentiment = 'neutral'), 0) AS neutral,
           coalesce(sum(sign) FILTER (WHERE sentiment = 'positive'), 0) AS positive,
           coalesce(sum(sign * sentiment_score), 0)::double precision AS score_sum,
           coalesce(sum(sign) FILTER (WHERE story_first), 0) AS stories,
           coalesce(sum(sign) FILTER (WHERE story_first AND sentiment = 'negative'), 0) AS negative_stories
    FROM {contrib}
    GROUP BY 1, 2, 3"""


def upsert_ctes(contrib: str) -> tuple[str, list[str]]:
    """CTEs adding the contribution rows of ``contrib`` to the three bucket tables.

    Returns (sql of ``name AS (...)`` CTEs joined by commas, the CTE names).
    Each CTE returns (bucket, scope_kind, scope, articles) of the rows it
    touched, so a caller can find rows that dropped to zero articles.  Rows
    are locked in (bucket, scope_kind, scope) order in every table, so
    concurrent writers cannot deadlock on them.
    """
    parts, names = [], []
    for i, (table, expr) in enumerate(LEVELS):
        name = f"up_{i}"
        names.append(name)
        parts.append(f"""{name} AS (
        INSERT INTO {table} AS t (bucket, scope_kind, scope, articles, negative, neutral, positive, score_sum,
                                  stories, negative_stories)
        SELECT * FROM ({aggregate(contrib, expr)}) AS g
        WHERE articles <> 0 OR negative <> 0 OR neutral <> 0 OR positive <> 0 OR score_sum <> 0
              OR stories <> 0 OR negative_stories <> 0
        ORDER BY bucket, scope_kind, scope
        ON CONFLICT (scope_kind, scope, bucket) DO UPDATE SET
            articles = t.articles + EXCLUDED.articles,
            negative = t.negative + EXCLUDED.negative,
            neutral = t.neutral + EXCLUDED.neutral,
            positive = t.positive + EXCLUDED.positive,
            score_sum = t.score_sum + EXCLUDED.score_sum,
            stories = t.stories + EXCLUDED.stories,
            negative_stories = t.negative_stories + EXCLUDED.negative_stories
        RETURNING '{table}'::text AS tbl, t.bucket, t.scope_kind, t.scope, t.articles)""")
    return ",\n".join(parts), names
