-- finsent storage, migration 3: alerts with the headlines behind them, for analysts.
--
-- Comes after 0002_alerts.sql (the alerts table).  The top articles are found
-- through article_ids (id -> published_at), so each lookup touches one monthly
-- partition of articles; ids whose articles were pruned are simply missing.

CREATE VIEW latest_alerts AS
SELECT a.id, a.created_at, a.scope_kind, a.scope, a.window_start, a.window_end, a.rule,
       a.articles, a.negative, a.negative_share, a.mean_score, a.baseline, a.z,
       a.replayed, a.delivery_status, a.attempts, a.title, a.message,
       coalesce(h.headlines, '{}') AS headlines,
       coalesce(h.top_articles, '[]') AS top_articles,
       a.top_article_ids
FROM alerts AS a
LEFT JOIN LATERAL (
    SELECT array_agg(ar.title ORDER BY t.ord) AS headlines,
           jsonb_agg(jsonb_build_object(
               'id', ar.id, 'published_at', ar.published_at, 'title', ar.title,
               'source', ar.source, 'url', ar.url, 'tickers', ar.tickers, 'topic', ar.topic,
               'sentiment', ar.sentiment, 'sentiment_score', ar.sentiment_score) ORDER BY t.ord) AS top_articles
    FROM unnest(a.top_article_ids) WITH ORDINALITY AS t(id, ord)
    JOIN article_ids AS ai ON ai.id = t.id
    JOIN articles AS ar ON ar.id = ai.id AND ar.published_at = ai.published_at
) AS h ON true
ORDER BY a.window_end DESC, a.id DESC;

COMMENT ON VIEW latest_alerts IS
    'Alerts, newest window first, with the titles (headlines) and details (top_articles, jsonb) of their top articles.';
