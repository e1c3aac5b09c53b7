-- finsent storage, migration 4: why each ticker is on an article (entity linking, stream/linking).
--
-- * articles.ticker_links: one JSON object per link, in text order:
--   {"ticker", "rule", "start", "end", "text"} where rule is one of given (the
--   message's own tickers field), cashtag, exchange, paren, symbol_list, name,
--   acronym, alias (the user's alias CSV); start/end are character offsets in
--   "title summary".  A link outside the configured watchlist carries
--   "watch": false: its ticker is not in articles.tickers (no trend, no alert).
--   Rows stored before this migration have [].
-- * article_ticker_links: the same, one row per link, for SQL such as
--     SELECT title, text, rule FROM article_ticker_links WHERE ticker = 'TGT';

ALTER TABLE articles ADD COLUMN ticker_links jsonb NOT NULL DEFAULT '[]'::jsonb;

COMMENT ON COLUMN articles.ticker_links IS
    'Why each ticker is on the article: [{ticker, rule, start, end, text[, watch:false]}] (entity linking).';

CREATE VIEW article_ticker_links AS
SELECT a.id, a.published_at, a.title, l.ord AS link_no,
       l.link->>'ticker' AS ticker, l.link->>'rule' AS rule, l.link->>'text' AS text,
       (l.link->>'start')::integer AS span_start, (l.link->>'end')::integer AS span_end,
       coalesce((l.link->>'watch')::boolean, true) AS watched
FROM articles AS a
CROSS JOIN LATERAL jsonb_array_elements(a.ticker_links) WITH ORDINALITY AS l(link, ord);

COMMENT ON VIEW article_ticker_links IS
    'One row per ticker link of an article: the ticker, the rule and the matched text (entity linking).';
