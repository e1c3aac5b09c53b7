-- finsent storage, migration 5: story novelty, alert time scales and incidents.
--
-- * articles.story_id / story_first: near-duplicate articles (retweets,
--   syndicated copies) share the story_id of the story's first article; only
--   that one is story_first (stream/novelty.py).  Rows stored before this
--   migration are each their own story.
-- * sentiment_minute / _hour / _day (and trend_hourly / trend_daily) count
--   unique stories beside articles: stories, negative_stories.  Existing rows
--   get stories = articles (every older article is its own story).
-- * alerts: the time scale that fired (5m, 1h, 1d ...), the incident it belongs
--   to (alerts of one scope close in time, at any scale: the first one is sent,
--   the others are stored as 'grouped' and update the incident), the window's
--   unique stories and a one-line explanation.  Unique per
--   (scope_kind, scope, window_start, rule, scale).

-- ---------------------------------------------------------------- stories
ALTER TABLE articles
    ADD COLUMN story_id    text,
    ADD COLUMN story_first boolean NOT NULL DEFAULT true;

ALTER TABLE sentiment_minute
    ADD COLUMN stories integer NOT NULL DEFAULT 0,
    ADD COLUMN negative_stories integer NOT NULL DEFAULT 0;
ALTER TABLE sentiment_hour
    ADD COLUMN stories integer NOT NULL DEFAULT 0,
    ADD COLUMN negative_stories integer NOT NULL DEFAULT 0;
ALTER TABLE sentiment_day
    ADD COLUMN stories integer NOT NULL DEFAULT 0,
    ADD COLUMN negative_stories integer NOT NULL DEFAULT 0;
UPDATE sentiment_minute SET stories = articles, negative_stories = negative;
UPDATE sentiment_hour SET stories = articles, negative_stories = negative;
UPDATE sentiment_day SET stories = articles, negative_stories = negative;

CREATE OR REPLACE VIEW trend_hourly AS
SELECT bucket, scope_kind, scope, articles, negative, neutral, positive,
       negative::double precision / NULLIF(articles, 0) AS negative_share,
       score_sum / NULLIF(articles, 0)                  AS mean_score,
       stories, negative_stories
FROM sentiment_hour;

CREATE OR REPLACE VIEW trend_daily AS
SELECT bucket, scope_kind, scope, articles, negative, neutral, positive,
       negative::double precision / NULLIF(articles, 0) AS negative_share,
       score_sum / NULLIF(articles, 0)                  AS mean_score,
       stories, negative_stories
FROM sentiment_day;

COMMENT ON COLUMN articles.story_id IS 'id of the first article of this story (near-duplicates share it)';
COMMENT ON COLUMN articles.story_first IS 'true for the first-seen article of its story (counted in stories)';

-- ---------------------------------------------------------------- alerts
ALTER TABLE alerts
    ADD COLUMN scale            text    NOT NULL DEFAULT '5m',
    ADD COLUMN incident_id      bigint,           -- id of the incident's first alert (its own id for that one)
    ADD COLUMN stories          integer,          -- unique stories of the scope in the window
    ADD COLUMN negative_stories integer,          -- of which negative (what the detector counts)
    ADD COLUMN explanation      text;             -- why, in one line: scale, stories against baseline, top stories
UPDATE alerts SET incident_id = id, stories = articles, negative_stories = negative;

ALTER TABLE alerts DROP CONSTRAINT alerts_window_key;
ALTER TABLE alerts ADD CONSTRAINT alerts_window_key UNIQUE (scope_kind, scope, window_start, rule, scale);
ALTER TABLE alerts DROP CONSTRAINT alerts_delivery_status_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_delivery_status_check
    CHECK (delivery_status IN ('pending', 'delivered', 'suppressed', 'unrouted', 'grouped'));
CREATE INDEX alerts_scope_window_idx ON alerts (scope_kind, scope, window_end);
CREATE INDEX alerts_incident_idx ON alerts (incident_id);

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
               'story_id', ar.story_id) ORDER BY t.ord) AS top_articles
    FROM unnest(a.top_article_ids) WITH ORDINALITY AS t(id, ord)
    JOIN article_ids AS ai ON ai.id = t.id
    JOIN articles AS ar ON ar.id = ai.id AND ar.published_at = ai.published_at
) AS h ON true
ORDER BY a.window_end DESC, a.id DESC;

-- One row per incident: the alerts of one scope grouped across scales.
CREATE VIEW alert_incidents AS
SELECT coalesce(a.incident_id, a.id) AS incident_id,
       min(a.scope_kind) AS scope_kind, min(a.scope) AS scope,
       min(a.window_start) AS first_window_start, max(a.window_end) AS last_window_end,
       array_agg(DISTINCT a.scale) AS scales,
       count(*) AS alerts,
       max(a.z) AS max_z,
       max(a.negative_stories) AS max_negative_stories,
       min(a.created_at) AS created_at, max(a.created_at) AS updated_at,
       (array_agg(a.explanation ORDER BY a.id))[1] AS first_explanation,
       (array_agg(a.delivery_status ORDER BY a.id))[1] AS delivery_status
FROM alerts AS a
GROUP BY coalesce(a.incident_id, a.id);

COMMENT ON VIEW alert_incidents IS
    'Alerts grouped into incidents (one scope, overlapping or close windows, any time scale); the first alert of each is the one sent.';
