//! Versioned schema migrations, tracked in `PRAGMA user_version`. Append new steps; never edit
//! a released one.

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: the event log, progression, rewards, receipts, consumer cursors.
    r#"
    -- AUTOINCREMENT so a sequence number is never reused, even after the newest event is erased:
    -- consumers' cursors depend on it.
    CREATE TABLE events (
        seq            INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id       TEXT NOT NULL UNIQUE,
        player_id      TEXT NOT NULL,
        type           TEXT NOT NULL,
        ts             INTEGER NOT NULL,
        received_at_ms INTEGER NOT NULL,
        xp             INTEGER NOT NULL,
        payload        TEXT NOT NULL
    );
    CREATE INDEX events_received_at ON events (received_at_ms);

    CREATE TABLE player_progress (
        player_id     TEXT PRIMARY KEY,
        xp            INTEGER NOT NULL,
        level         INTEGER NOT NULL,
        boss_kills    TEXT NOT NULL,
        drops         TEXT NOT NULL,
        updated_at_ms INTEGER NOT NULL
    );

    CREATE TABLE rewards (
        player_id     TEXT NOT NULL,
        reward_id     TEXT NOT NULL,
        item          TEXT NOT NULL,
        level         INTEGER NOT NULL,
        granted_at_ms INTEGER NOT NULL,
        event_id      TEXT NOT NULL,
        receipt_id    TEXT,
        PRIMARY KEY (player_id, reward_id)
    );

    CREATE TABLE receipts (
        receipt_id TEXT PRIMARY KEY,
        player_id  TEXT NOT NULL,
        reward_id  TEXT NOT NULL,
        item       TEXT NOT NULL,
        sig        TEXT NOT NULL,
        timestamp  INTEGER NOT NULL
    );

    CREATE TABLE consumer_offsets (
        consumer TEXT PRIMARY KEY,
        seq      INTEGER NOT NULL
    );
    "#,
    // 2: operator blocks and the audit log of admin actions.
    r#"
    CREATE TABLE player_blocks (
        player_id     TEXT PRIMARY KEY,
        until_ms      INTEGER,
        reason        TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL
    );

    CREATE TABLE audit_log (
        id     INTEGER PRIMARY KEY AUTOINCREMENT,
        at_ms  INTEGER NOT NULL,
        actor  TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    "#,
    // 3: drops in an append-only table of their own, so applying an event (the hot path of
    // progression) adds a row instead of rewriting the player's whole drop list; the drop lists
    // of the progress rows move there.
    r#"
    CREATE TABLE player_drops (
        player_id TEXT NOT NULL,
        seq       INTEGER NOT NULL,
        event_id  TEXT NOT NULL,
        drop_id   TEXT NOT NULL,
        weight    REAL NOT NULL,
        source    TEXT NOT NULL,
        PRIMARY KEY (player_id, seq)
    );
    INSERT OR IGNORE INTO player_drops (player_id, seq, event_id, drop_id, weight, source)
        SELECT p.player_id, COALESCE(e.seq, -d.key), json_extract(d.value, '$.eventId'),
               json_extract(d.value, '$.dropId'), json_extract(d.value, '$.weight'),
               json_extract(d.value, '$.source')
        FROM player_progress p, json_each(p.drops) d
        LEFT JOIN events e ON e.event_id = json_extract(d.value, '$.eventId');
    UPDATE player_progress SET drops = '[]';
    "#,
    // 4: flagged events (`docs/fairness.md`) and their review.
    r#"
    CREATE TABLE suspicious_events (
        seq            INTEGER PRIMARY KEY,
        event_id       TEXT NOT NULL UNIQUE,
        player_id      TEXT NOT NULL,
        metric         TEXT NOT NULL,
        value          REAL NOT NULL,
        rule           TEXT NOT NULL,
        reason         TEXT NOT NULL,
        status         TEXT NOT NULL,
        flagged_at_ms  INTEGER NOT NULL,
        resolved_at_ms INTEGER,
        resolved_by    TEXT
    );
    CREATE INDEX suspicious_events_player ON suspicious_events (player_id, seq);
    "#,
    // 5: operator resets of a leaderboard period: events up to after_seq stop counting.
    r#"
    CREATE TABLE leaderboard_resets (
        window    TEXT NOT NULL,
        period    TEXT NOT NULL,
        after_seq INTEGER NOT NULL,
        at_ms     INTEGER NOT NULL,
        PRIMARY KEY (window, period)
    );
    "#,
    // 6: release numbers, so the boards keep a release cursor (see the PostgreSQL migration
    // 0003). A counter, not MAX(release_seq) + 1: erasing a player deletes their flags, and a
    // number must never be handed out twice.
    r#"
    ALTER TABLE suspicious_events ADD COLUMN release_seq INTEGER;
    CREATE UNIQUE INDEX suspicious_events_release ON suspicious_events (release_seq)
        WHERE release_seq IS NOT NULL;
    CREATE TABLE release_counter (
        only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
        last     INTEGER NOT NULL
    );
    INSERT INTO release_counter VALUES (1, 0);
    "#,
];

pub(crate) fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let current: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(())
}
