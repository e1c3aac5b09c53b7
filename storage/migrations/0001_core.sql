-- finsent storage, migration 1: articles, id registry, sentiment buckets, trend views.
--
-- Applied by storage.migrate with search_path = <target schema>, pg_temp, in one
-- transaction.  Object names are unqualified: the same file builds the live schema
-- and any replay schema (finsent ... --schema NAME).

-- ---------------------------------------------------------------- articles
-- One row per article id.  Partitioned by month of published_at (UTC).  A
-- partitioned table cannot have a unique key without the partition key, so the
-- exact "one row per id" rule is enforced by article_ids below; the primary key
-- here (id, published_at) is the lookup index by id and a second guard.
CREATE TABLE articles (
    id              text        NOT NULL,
    published_at    timestamptz NOT NULL,
    source          text,
    url             text,
    title           text        NOT NULL,
    tickers         text[]      NOT NULL DEFAULT '{}',
    topic           text,
    topic_score     double precision,
    sentiment       text        NOT NULL CHECK (sentiment IN ('negative', 'neutral', 'positive')),
    p_negative      double precision,
    p_neutral       double precision,
    p_positive      double precision,
    sentiment_score double precision NOT NULL CHECK (sentiment_score BETWEEN -1 AND 1),
    model_version   text        NOT NULL,
    ingested_at     timestamptz NOT NULL DEFAULT now(),
    extra           jsonb       NOT NULL DEFAULT '{}',
    PRIMARY KEY (id, published_at)
) PARTITION BY RANGE (published_at);

COMMENT ON TABLE articles IS
    'One row per scored article, partitioned by month of published_at (UTC). Old months are dropped by finsent db prune.';

CREATE INDEX articles_published_at_idx ON articles (published_at);
CREATE INDEX articles_tickers_idx ON articles USING gin (tickers);

-- The id registry: exactly one row per article id ever stored.  The writer
-- inserts here first (ON CONFLICT DO NOTHING RETURNING id) and stores in
-- articles and counts in the buckets only the ids that came back.
CREATE TABLE article_ids (
    id           text        PRIMARY KEY,
    published_at timestamptz NOT NULL
);

COMMENT ON TABLE article_ids IS
    'Every article id ever stored (kept when old article partitions are pruned, so replays stay idempotent).';

-- Create the monthly partition holding ts, if missing.  SECURITY DEFINER so that
-- the writer role can create partitions (that needs ownership of articles)
-- without owning anything; search_path is pinned to the migration's.
CREATE FUNCTION ensure_article_partition(ts timestamptz) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    lo   timestamp   := date_trunc('month', ts AT TIME ZONE 'UTC');
    name text        := 'articles_' || to_char(lo, 'YYYY_MM');
BEGIN
    IF to_regclass(format('%I.%I', current_schema(), name)) IS NULL THEN
        PERFORM pg_advisory_xact_lock(hashtext(current_schema() || '.articles partitions'));
        BEGIN
            EXECUTE format(
                'CREATE TABLE %I.%I PARTITION OF %I.articles FOR VALUES FROM (%L) TO (%L)',
                current_schema(), name, current_schema(),
                to_char(lo, 'YYYY-MM-DD"T"HH24:MI:SS"+00"'),
                to_char(lo + interval '1 month', 'YYYY-MM-DD"T"HH24:MI:SS"+00"'));
        EXCEPTION WHEN duplicate_table OR unique_violation THEN
            NULL;  -- created meanwhile by another writer
        END;
    END IF;
    RETURN name;
END
$$;

REVOKE ALL ON FUNCTION ensure_article_partition(timestamptz) FROM PUBLIC;

-- ---------------------------------------------------------------- buckets
-- Per (minute, scope): counts of the articles whose published_at falls in the
-- minute.  scope_kind 'all' (scope 'all'), 'ticker' (scope = ticker) or 'topic'
-- (scope = topic name).  The writer increments these in the same transaction
-- as the article insert, for newly inserted articles only.
CREATE TABLE sentiment_minute (
    bucket     timestamptz NOT NULL,
    scope_kind text        NOT NULL CHECK (scope_kind IN ('all', 'ticker', 'topic')),
    scope      text        NOT NULL,
    articles   integer     NOT NULL,
    negative   integer     NOT NULL,
    neutral    integer     NOT NULL,
    positive   integer     NOT NULL,
    score_sum  double precision NOT NULL,
    PRIMARY KEY (scope_kind, scope, bucket)
);
CREATE INDEX sentiment_minute_kind_bucket_idx ON sentiment_minute (scope_kind, bucket);

COMMENT ON TABLE sentiment_minute IS
    'Per minute (UTC) and scope (all / ticker / topic): article counts by sentiment and the sum of sentiment_score.';

-- Hourly and daily roll-ups of sentiment_minute, maintained by the writer in the
-- same transaction (exactly the minute rows summed; tests check it), so that
-- trend_hourly / trend_daily read a few thousand rows instead of millions.
CREATE TABLE sentiment_hour (LIKE sentiment_minute INCLUDING CONSTRAINTS INCLUDING DEFAULTS);
ALTER TABLE sentiment_hour ADD PRIMARY KEY (scope_kind, scope, bucket);
CREATE INDEX sentiment_hour_kind_bucket_idx ON sentiment_hour (scope_kind, bucket);

CREATE TABLE sentiment_day (LIKE sentiment_minute INCLUDING CONSTRAINTS INCLUDING DEFAULTS);
ALTER TABLE sentiment_day ADD PRIMARY KEY (scope_kind, scope, bucket);
CREATE INDEX sentiment_day_kind_bucket_idx ON sentiment_day (scope_kind, bucket);

COMMENT ON TABLE sentiment_hour IS 'sentiment_minute summed per hour (UTC); read it through trend_hourly.';
COMMENT ON TABLE sentiment_day IS 'sentiment_minute summed per day (UTC); read it through trend_daily.';

-- ---------------------------------------------------------------- views
CREATE VIEW trend_hourly AS
SELECT bucket, scope_kind, scope, articles, negative, neutral, positive,
       negative::double precision / NULLIF(articles, 0) AS negative_share,
       score_sum / NULLIF(articles, 0)                  AS mean_score
FROM sentiment_hour;

CREATE VIEW trend_daily AS
SELECT bucket, scope_kind, scope, articles, negative, neutral, positive,
       negative::double precision / NULLIF(articles, 0) AS negative_share,
       score_sum / NULLIF(articles, 0)                  AS mean_score
FROM sentiment_day;

COMMENT ON VIEW trend_hourly IS
    'Hourly (UTC) sentiment per scope: bucket, scope_kind, scope, articles, negative, neutral, positive, negative_share, mean_score.';
COMMENT ON VIEW trend_daily IS
    'Daily (UTC) sentiment per scope: bucket, scope_kind, scope, articles, negative, neutral, positive, negative_share, mean_score.';
