-- The PostgreSQL system of record (`docs/operations.md`): the same tables as the embedded SQLite store,
-- plus the erasure tombstones and the archive of leaderboard standings. Released migrations are
-- never edited; add a new numbered file instead.

-- The event log. `seq` is the commit order: appends take it from `events_seq` in the single
-- writer task (so seq order is commit order within the process), the JetStream deployment
-- records the stream sequence instead. `payload` is `json`, not `jsonb`: it keeps the client's
-- text as sent, and `jsonb` refuses a `\u0000` inside a string, which a client may send.
CREATE TABLE events (
    seq         BIGINT PRIMARY KEY,
    event_id    TEXT NOT NULL UNIQUE,
    player_id   TEXT NOT NULL,
    type        TEXT NOT NULL,
    ts          BIGINT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    xp          BIGINT NOT NULL,
    payload     JSON NOT NULL
);
CREATE SEQUENCE events_seq OWNED BY events.seq;
-- Board rebuilds sum a time range; a GDPR erase deletes by player without scanning the log.
CREATE INDEX events_received_at ON events (received_at);
CREATE INDEX events_player ON events (player_id);

CREATE TABLE player_progress (
    player_id  TEXT PRIMARY KEY,
    xp         BIGINT NOT NULL,
    level      BIGINT NOT NULL,
    boss_kills JSON NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- Append-only, so applying a drop never rewrites the player's list.
CREATE TABLE player_drops (
    player_id TEXT NOT NULL,
    seq       BIGINT NOT NULL,
    event_id  TEXT NOT NULL,
    drop_id   TEXT NOT NULL,
    weight    DOUBLE PRECISION NOT NULL,
    source    TEXT NOT NULL,
    PRIMARY KEY (player_id, seq)
);

CREATE TABLE rewards (
    player_id  TEXT NOT NULL,
    reward_id  TEXT NOT NULL,
    item       TEXT NOT NULL,
    level      BIGINT NOT NULL,
    granted_at TIMESTAMPTZ NOT NULL,
    event_id   TEXT NOT NULL,
    receipt_id TEXT,
    PRIMARY KEY (player_id, reward_id)
);

CREATE TABLE receipts (
    receipt_id TEXT PRIMARY KEY,
    player_id  TEXT NOT NULL,
    reward_id  TEXT NOT NULL,
    item       TEXT NOT NULL,
    sig        TEXT NOT NULL,
    timestamp  BIGINT NOT NULL
);
CREATE INDEX receipts_player ON receipts (player_id);

-- Each consumer's cursor, moved in the same transaction as its effects (exactly once).
CREATE TABLE consumer_offsets (
    consumer TEXT PRIMARY KEY,
    seq      BIGINT NOT NULL
);

CREATE TABLE player_blocks (
    player_id  TEXT PRIMARY KEY,
    until      TIMESTAMPTZ,
    reason     TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE audit_log (
    id     BIGSERIAL PRIMARY KEY,
    at     TIMESTAMPTZ NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail JSON NOT NULL
);

-- Flagged events (`docs/fairness.md`) and their review.
CREATE TABLE suspicious_events (
    seq         BIGINT PRIMARY KEY,
    event_id    TEXT NOT NULL UNIQUE,
    player_id   TEXT NOT NULL,
    metric      TEXT NOT NULL,
    value       DOUBLE PRECISION NOT NULL,
    rule        TEXT NOT NULL,
    reason      TEXT NOT NULL,
    status      TEXT NOT NULL,
    flagged_at  TIMESTAMPTZ NOT NULL,
    resolved_at TIMESTAMPTZ,
    resolved_by TEXT
);
CREATE INDEX suspicious_events_player ON suspicious_events (player_id, seq);
CREATE INDEX suspicious_events_status ON suspicious_events (status, seq);

-- Operator resets of a leaderboard period: events up to after_seq no longer count on it.
-- (`window` is a reserved word in PostgreSQL, hence `window_name`.)
CREATE TABLE leaderboard_resets (
    window_name TEXT NOT NULL,
    period      TEXT NOT NULL,
    after_seq   BIGINT NOT NULL,
    at          TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (window_name, period)
);

-- GDPR erasures: events of the player up to upto_seq that a consumer read before the erase
-- are not applied again. Kept in the database (not in one process's memory) so every
-- progression process honours it; removed once every consumer cursor is past it.
CREATE TABLE erased_players (
    player_id TEXT PRIMARY KEY,
    upto_seq  BIGINT NOT NULL
);

-- The archive: final standings of ended periods (kind 'final', one per period) and snapshots
-- of running ones (kind 'snapshot', accumulating), the standings as JSONB.
CREATE TABLE leaderboard_snapshots (
    id          BIGSERIAL PRIMARY KEY,
    window_name TEXT NOT NULL,
    period      TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('final', 'snapshot')),
    archived_at TIMESTAMPTZ NOT NULL,
    body        JSONB NOT NULL
);
CREATE UNIQUE INDEX leaderboard_snapshots_final ON leaderboard_snapshots (window_name, period)
    WHERE kind = 'final';
CREATE INDEX leaderboard_snapshots_period ON leaderboard_snapshots (window_name, period, archived_at);
