-- finsent storage, migration 2: negative-spike alerts and the detector's watermark.
--
-- Applied by storage.migrate with search_path = <target schema>, in one
-- transaction.  Written by alerts.service (detection) and alerts.notifier
-- (delivery); read by 'finsent alerts list' and analysts.

-- ---------------------------------------------------------------- alerts
-- One row per fired alert.  The unique key makes detection idempotent: a
-- window evaluated again (worker restart, replay of the same archive) inserts
-- nothing (INSERT ... ON CONFLICT DO NOTHING).
CREATE TABLE alerts (
    id               bigserial        PRIMARY KEY,
    scope_kind       text             NOT NULL CHECK (scope_kind IN ('ticker', 'topic', 'all')),
    scope            text             NOT NULL,
    window_start     timestamptz      NOT NULL,
    window_end       timestamptz      NOT NULL,
    rule             text             NOT NULL,
    articles         integer          NOT NULL,   -- articles of the scope in the window
    negative         integer          NOT NULL,   -- of which negative
    negative_share   double precision NOT NULL,
    mean_score       double precision,            -- mean sentiment_score in the window
    baseline         double precision NOT NULL,   -- EWMA of negatives per window over earlier windows
    baseline_std     double precision NOT NULL,   -- its standard deviation (after the floor)
    baseline_windows integer          NOT NULL,   -- observed earlier windows behind the baseline
    z                double precision NOT NULL,   -- (negative - baseline) / baseline_std
    top_article_ids  text[]           NOT NULL DEFAULT '{}',  -- most negative articles first
    title            text             NOT NULL,   -- notification title
    message          text             NOT NULL,   -- notification body (numbers, top headlines, links)
    replayed         boolean          NOT NULL DEFAULT false, -- found while replaying history
    watermark        timestamptz,                 -- event-time watermark when it was detected
    created_at       timestamptz      NOT NULL DEFAULT now(),
    -- delivery: pending -> delivered; suppressed = not to be sent (replay without --notify);
    -- unrouted = no apprise URL configured / none of them takes this scope
    delivery_status  text             NOT NULL DEFAULT 'pending'
                     CHECK (delivery_status IN ('pending', 'delivered', 'suppressed', 'unrouted')),
    attempts         integer          NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz      NOT NULL DEFAULT now(),
    delivered_to     text[]           NOT NULL DEFAULT '{}',  -- keys of the targets that accepted it
    last_error       text,
    delivered_at     timestamptz,
    CONSTRAINT alerts_window_key UNIQUE (scope_kind, scope, window_start, rule)
);

CREATE INDEX alerts_pending_idx ON alerts (next_attempt_at, id) WHERE delivery_status = 'pending';
CREATE INDEX alerts_created_at_idx ON alerts (created_at);
CREATE INDEX alerts_window_start_idx ON alerts (window_start);

COMMENT ON TABLE alerts IS
    'One row per negative-news spike alert (unique per scope, window and rule), with its numbers, top articles and delivery state.';

-- ---------------------------------------------------------------- detector progress
-- The event-time watermark survives restarts here.  One row per stream
-- ('live', 'replay'): every window ending at or before evaluated_until has
-- been evaluated.  generation increases when a replay rewinds (starts over at
-- an earlier event time); sources of older generations are ignored.
CREATE TABLE alert_progress (
    stream          text        PRIMARY KEY,
    evaluated_until timestamptz,
    generation      integer     NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Max event time per source (a Kafka partition, or 'default') of a stream.
-- The stream's watermark is the minimum over its active sources, so a
-- partition that lags does not get its windows closed early.
CREATE TABLE alert_sources (
    stream         text        NOT NULL,
    source         text        NOT NULL,
    generation     integer     NOT NULL DEFAULT 0,
    max_event_time timestamptz,              -- NULL: assigned, nothing seen yet
    advanced_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream, source)
);

COMMENT ON TABLE alert_progress IS 'Spike detector: windows evaluated so far, per stream (live / replay).';
COMMENT ON TABLE alert_sources IS 'Spike detector: latest event time seen per source (partition), per stream.';
