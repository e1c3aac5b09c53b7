"""The SQL that turns articles into sentiment bucket increments.

One definition, used by the writer (+1 per newly inserted article), by
rescoring (-1 for the old labels, +1 for the new ones) and by the consistency
check (everything recomputed from ``articles``), so the three can never count
differently.

An article contributes to the scopes ``('all', 'all')``, ``('topic', topic)``
(when it has a topic) and ``('ticker', t)`` for each distinct non-empty
ticker, in the minute of its ``published_at`` (UTC), and to the hour and day
roll-ups of that minute.  The 'all' and topic scopes count the headline's
sentiment; a ticker scope counts the sentiment toward that ticker
(``articles.ticker_sentiment``, migration 0007), and the headline's where the
article has none for it (rows scored before per-company sentiment):
:func:`toward_ticker`, the one definition of that fallback here (the analyst
view ``article_ticker_sentiment`` spells the same rule in SQL; an integration
test holds them equal).  ``stories`` / ``negative_stories`` count only
the first-seen article of each story (``articles.story_first``, see
:mod:`stream.messages.novelty`): analysts choose copies or unique stories in SQL.
"""

from __future__ import annotations

LEVELS = (  # table, bucket expression over the minute
    ("sentiment_minute", "minute"),
    ("sentiment_hour", "date_trunc('hour', minute, 'UTC')"),
    ("sentiment_day", "date_trunc('day', minute, 'UTC')"),
)

COUNT_COLUMNS = ("articles", "negative", "neutral", "positive", "score_sum", "stories", "negative_stories")


# the fields of an entry of articles.ticker_sentiment that toward_ticker() reads (each also a column of
# articles: the headline's), with their SQL types
_TICKER_FIELDS = {"sentiment": "text", "sentiment_score": "double precision", "p_negative": "double precision",
                  "p_neutral": "double precision", "p_positive": "double precision"}


def toward_ticker(row: str, ticker: str, field: str = "sentiment") -> str:
    """SQL of one field of article ``row``'s sentiment toward ``ticker`` (an SQL expression): its entry in
    ``ticker_sentiment``, else (NULL column, or no entry for that ticker) the headline's."""
    value = f"({row}.ticker_sentiment -> {ticker} ->> '{field}')"
    typ = _TICKER_FIELDS[field]
    return f"coalesce({value if typ == 'text' else f'{value}::{typ}'}, {row}.{field})"


def contributions(src: str, sign: str = "1", first: str = "coalesce(c.story_first, true)") -> str:
    """SELECT of (minute, kind, scope, sentiment, sentiment_score, sign, story_first) rows for relation ``src``.

    ``src`` must have published_at, tickers, topic, sentiment, sentiment_score, ticker_sentiment
    and story_first (the article is the first of its story: it counts in
    ``stories``; pass ``first="true"`` for a relation without it).  Ticker rows carry the
    sentiment toward the ticker (:func:`toward_ticker`), the others the headline's.
    """
    return f"""
    SELECT date_trunc('minute', c.published_at, 'UTC') AS minute, s.kind, s.scope,
           s.sentiment, s.sentiment_score, ({sign})::integer AS sign, {first} AS story_first
    FROM {src} AS c
    CROSS JOIN LATERAL (
        SELECT 'all'::text, 'all'::text, c.sentiment, c.sentiment_score
        UNION ALL
        SELECT 'topic'::text, c.topic, c.sentiment, c.sentiment_score WHERE c.topic IS NOT NULL AND c.topic <> ''
        UNION ALL
        SELECT 'ticker'::text, tk.t, {toward_ticker('c', 'tk.t')}, {toward_ticker('c', 'tk.t', 'sentiment_score')}
        FROM (SELECT DISTINCT t FROM unnest(c.tickers) AS t WHERE t IS NOT NULL AND t <> '') AS tk
    ) AS s(kind, scope, sentiment, sentiment_score)"""


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
