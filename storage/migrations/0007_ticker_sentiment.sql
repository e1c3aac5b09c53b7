-- finsent storage, migration 7: per-company sentiment (issue 22).
--
-- A headline such as "Walmart cuts forecast, Target gains" is bad news for WMT and good news for
-- TGT.  Until now every ticker of an article inherited the headline's sentiment; from here on each
-- (article, ticker) pair has its own, from the model's entity head (model/entities.py).
--
-- * articles.ticker_sentiment: one object per ticker of the article (the tickers column),
--     {"WMT": {"sentiment": "negative", "p_negative": 0.91, "p_neutral": 0.06, "p_positive": 0.03,
--              "sentiment_score": -0.88, "source": "entity"}, "TGT": {...}}
--   source "entity": the entity head's reading of the ticker's mentions; "headline": the headline's
--   sentiment (the ticker is not named in the text -- a given ticker --, or the checkpoint that scored
--   it has no entity head).  NULL for rows scored before this migration: they are not touched here
--   (no table rewrite, no guessing) and every reader falls back to the headline's sentiment until
--   `finsent rescore` scores them again.
--   Why a jsonb column of articles rather than a table beside it: the pair lives and dies with its
--   article (the same monthly partition, dropped by prune with it), is written by the same INSERT
--   and moved by the same rescore UPDATE, so the writer's one statement per batch stays one, and the
--   bucket SQL reads it from the row it already has (storage/buckets.py).
-- * sentiment_minute / _hour / _day: ticker scopes now count each article by its sentiment toward
--   that ticker (falling back to the headline's); topic and 'all' scopes by the headline's.  Existing
--   buckets are already what the fallback implies: nothing to recount.
-- * article_ticker_sentiment: one row per (article, ticker) with its own sentiment, for SQL such as
--     SELECT title, ticker, sentiment, headline_sentiment FROM article_ticker_sentiment
--     WHERE sentiment <> headline_sentiment;
--   (filter it by published_at, and for one ticker over a long range add tickers @> ARRAY['AAPL']: both
--   reach the indexes of articles through the view)
-- * latest_alerts.top_articles: each top article of a ticker alert also carries its sentiment toward
--   the alert's ticker (ticker_sentiment, ticker_sentiment_score).

ALTER TABLE articles ADD COLUMN ticker_sentiment jsonb;

COMMENT ON COLUMN articles.ticker_sentiment IS
    'Sentiment toward each ticker: {ticker: {sentiment, p_negative, p_neutral, p_positive, sentiment_score, source}}; NULL: scored before per-company sentiment (the headline''s counts).';

CREATE VIEW article_ticker_sentiment AS
SELECT a.id, a.published_at, a.title, a.source, a.url, t.ticker,
       coalesce(e.entry ->> 'sentiment', a.sentiment) AS sentiment,
       coalesce((e.entry ->> 'p_negative')::double precision, a.p_negative) AS p_negative,
       coalesce((e.entry ->> 'p_neutral')::double precision, a.p_neutral) AS p_neutral,
       coalesce((e.entry ->> 'p_positive')::double precision, a.p_positive) AS p_positive,
       coalesce((e.entry ->> 'sentiment_score')::double precision, a.sentiment_score) AS sentiment_score,
       coalesce(e.entry ->> 'source', 'unscored') AS sentiment_source,
       a.sentiment AS headline_sentiment, a.sentiment_score AS headline_score,
       a.topic, a.tickers, a.story_id, a.story_first, a.model_version
FROM articles AS a
CROSS JOIN LATERAL (
    SELECT DISTINCT u.ticker FROM unnest(a.tickers) AS u(ticker) WHERE u.ticker IS NOT NULL AND u.ticker <> ''
) AS t
CROSS JOIN LATERAL (SELECT a.ticker_sentiment -> t.ticker AS entry) AS e;

COMMENT ON VIEW article_ticker_sentiment IS
    'One row per (article, ticker): the sentiment toward the ticker (sentiment_source entity | headline | unscored: stored before per-company sentiment, the headline''s), beside the headline''s.';

CREATE OR REPLACE VIEW latest_alerts AS
SELECT a.id, a.created_at, a.scope_kind, a.scope, a.window_start, a.window_end, a.rule,
       a.articles, a.negative, a.negative_share, a.mean_score, a.baseline, a.z,
       a.replayed, a.delivery_status, a.attempts, a.title, a.message,
       coalesce(h.headlines, '{}') AS headlines,
       coalesce(h.top_articles, '[]') AS top_articles,
       a.top_article_ids,
       a.scale, a.incident_id, a.stories, a.negative_stories, a.explanation
FROM alerts AS a
LEFT JOIN LATERAL (
    SELECT array_agg(ar.title ORDER BY t.ord) AS headlines,
           jsonb_agg(jsonb_build_object(
               'id', ar.id, 'published_at', ar.published_at, 'title', ar.title,
               'source', ar.source, 'url', ar.url, 'tickers', ar.tickers, 'topic', ar.topic,
               'sentiment', ar.sentiment, 'sentiment_score', ar.sentiment_score,
               'story_id', ar.story_id)
               || CASE WHEN a.scope_kind = 'ticker' THEN jsonb_build_object(
                      'ticker_sentiment', coalesce(ar.ticker_sentiment -> a.scope ->> 'sentiment', ar.sentiment),
                      'ticker_sentiment_score', coalesce((ar.ticker_sentiment -> a.scope ->> 'sentiment_score')::double precision,
                                                         ar.sentiment_score))
                  ELSE '{}'::jsonb END
               ORDER BY t.ord) AS top_articles
    FROM unnest(a.top_article_ids) WITH ORDINALITY AS t(id, ord)
    JOIN article_ids AS ai ON ai.id = t.id
    JOIN articles AS ar ON ar.id = ai.id AND ar.published_at = ai.published_at
) AS h ON true
ORDER BY a.window_end DESC, a.id DESC;
