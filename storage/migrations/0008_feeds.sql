-- finsent storage, migration 8: the health of the live sources `finsent ingest` polls.
--
-- * feed_status: one row per feed (the catalogue's name, or the URL of `finsent ingest rss URL`),
--   written by the poller after every poll: when it last polled, last succeeded and last failed (with
--   the error), its consecutive failures and whether that makes it unhealthy (`feeds.unhealthy_after`,
--   decided by the poller), when it polls next, and how many new items it brought in all.
-- * feed_items_hourly: new items per feed and UTC hour (what "items in the last 24 h" sums).
-- * feeds: the view people and the dashboard read, with items_24h (the current hour and the 23 before)
--   and state: 'unhealthy', 'failing' (failed lately, not yet unhealthy) or 'ok'; overdue is true when
--   the feed was due more than 10 minutes ago (no poller running?).
--     SELECT name, state, items_24h, last_error FROM feeds ORDER BY healthy, name;

CREATE TABLE feed_status (
    name text PRIMARY KEY,
    url text NOT NULL,
    kind text NOT NULL,
    title text,
    interval_s double precision,
    last_poll_at timestamptz,
    last_success_at timestamptz,
    last_error text,
    last_error_at timestamptz,
    consecutive_failures integer NOT NULL DEFAULT 0,
    healthy boolean NOT NULL DEFAULT true,
    next_poll_at timestamptz,
    items_total bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE feed_status IS
    'Health of each polled feed (finsent ingest): last success, last error and its time, consecutive failures.';

CREATE TABLE feed_items_hourly (
    name text NOT NULL,
    hour timestamptz NOT NULL,
    items integer NOT NULL,
    PRIMARY KEY (name, hour)
);

COMMENT ON TABLE feed_items_hourly IS 'New items each feed brought, per UTC hour.';

CREATE VIEW feeds AS
SELECT s.name, s.url, s.kind, s.title,
       CASE WHEN NOT s.healthy THEN 'unhealthy' WHEN s.consecutive_failures > 0 THEN 'failing' ELSE 'ok' END
           AS state,
       s.healthy, s.consecutive_failures, s.last_poll_at, s.last_success_at, s.last_error, s.last_error_at,
       coalesce((SELECT sum(h.items) FROM feed_items_hourly AS h
                 WHERE h.name = s.name AND h.hour >= date_trunc('hour', now()) - interval '23 hours'), 0)::bigint
           AS items_24h,
       s.items_total, s.interval_s, s.next_poll_at,
       coalesce(s.next_poll_at < now() - interval '10 minutes', false) AS overdue
FROM feed_status AS s;

COMMENT ON VIEW feeds IS
    'Feed health: state (ok / failing / unhealthy), last success, last error, items in the last 24 hours.';
