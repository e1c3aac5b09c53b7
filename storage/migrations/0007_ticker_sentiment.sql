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
