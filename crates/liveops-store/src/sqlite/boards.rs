//! [`BoardSource`] on SQLite: the XP sums the leaderboards are rebuilt from, the released
//! events in release order, and operator resets of a period.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use liveops_domain::window::Period;
use liveops_domain::PlayerId;
use rusqlite::{params, Connection, OptionalExtension};

use super::log::row_to_logged;
use super::writer::WriteCmd;
use super::SqliteStore;
use crate::{BoardSource, ReleasedEvent, StoreError};

/// XP per player of the events received in `[from, to)` that count on the boards: applied by
/// the log with `seq <= upto` (unflagged or flagged), or released with a release number
/// `<= released_upto` (a release stored without a number, by schema version 5 or older,
/// always counts); with a `(window, period)`, only the events after that period's last
/// operator reset.
fn sum_xp(
    conn: &Connection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    (upto, released_upto): (u64, u64),
    reset_of: Option<(&str, &str)>,
) -> Result<Vec<(PlayerId, i64)>, StoreError> {
    let (window, period) = reset_of.unwrap_or(("", ""));
    let mut stmt = conn.prepare_cached(
        "SELECT e.player_id, TOTAL(e.xp) FROM events e
         LEFT JOIN suspicious_events s ON s.seq = e.seq
         WHERE e.received_at_ms >= ?1 AND e.received_at_ms < ?2
           AND e.seq > COALESCE((SELECT after_seq FROM leaderboard_resets WHERE window = ?4 AND period = ?5), 0)
           AND ((e.seq <= ?3 AND (s.status IS NULL OR s.status = 'flagged'))
                OR (s.status = 'released' AND COALESCE(s.release_seq, 0) <= ?6))
         GROUP BY e.player_id",
    )?;
    let mut rows = stmt.query(params![
        from.timestamp_millis(),
        to.timestamp_millis(),
        upto.min(i64::MAX as u64) as i64,
        window,
        period,
        released_upto.min(i64::MAX as u64) as i64
    ])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let p: String = r.get(0)?;
        let player = PlayerId::parse(p).map_err(StoreError::Corrupt)?;
        // TOTAL (a float) rather than SUM, which raises on overflow: sums stay exact up to 2^53
        // and saturate beyond instead of failing the rebuild.
        out.push((player, r.get::<_, f64>(1)? as i64));
    }
    Ok(out)
}

#[async_trait]
impl BoardSource for SqliteStore {
    async fn period_xp(
        &self,
        period: &Period,
        upto: u64,
        released_upto: u64,
    ) -> Result<Vec<(PlayerId, i64)>, StoreError> {
        let (window, id, from, to) = (
            period.window.as_str(),
            period.id.clone(),
            period.start,
            period.end,
        );
        self.read(move |conn| sum_xp(conn, from, to, (upto, released_upto), Some((window, &id))))
            .await
    }

    async fn release_head(&self) -> Result<u64, StoreError> {
        self.read(|conn| {
            let last: i64 = conn
                .prepare_cached("SELECT last FROM release_counter")?
                .query_row([], |r| r.get(0))?;
            Ok(last.max(0) as u64)
        })
        .await
    }

    async fn released_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<ReleasedEvent>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT e.seq, e.event_id, e.player_id, e.type, e.ts, e.received_at_ms, e.xp, e.payload,
                        s.release_seq
                 FROM suspicious_events s JOIN events e ON e.seq = s.seq
                 WHERE s.release_seq > ?1 ORDER BY s.release_seq LIMIT ?2",
            )?;
            let mut rows = stmt.query(params![after.min(i64::MAX as u64) as i64, limit as i64])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                // After the event's columns, which row_to_logged reads by position.
                let release: i64 = r.get(8)?;
                out.push(ReleasedEvent {
                    release: release.max(0) as u64,
                    event: row_to_logged(r)?,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn reset_after(&self, period: &Period) -> Result<Option<u64>, StoreError> {
        let (window, id) = (period.window.as_str(), period.id.clone());
        self.read(move |conn| {
            let after: Option<i64> = conn
                .prepare_cached(
                    "SELECT after_seq FROM leaderboard_resets WHERE window = ?1 AND period = ?2",
                )?
                .query_row(params![window, id], |r| r.get(0))
                .optional()?;
            Ok(after.map(|a| a.max(0) as u64))
        })
        .await
    }

    async fn reset_period(
        &self,
        period: &Period,
        after_seq: u64,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (window, id) = (period.window.as_str(), period.id.clone());
        self.write(|reply| {
            WriteCmd::Exec(
                Box::new(move |conn| {
                    conn.prepare_cached(
                        "INSERT INTO leaderboard_resets (window, period, after_seq, at_ms) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (window, period) DO UPDATE SET after_seq = excluded.after_seq, at_ms = excluded.at_ms",
                    )?
                    .execute(params![window, id, after_seq as i64, at.timestamp_millis()])?;
                    Ok(())
                }),
                reply,
            )
        })
        .await
    }

    async fn xp_by_player(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        upto: u64,
    ) -> Result<Vec<(PlayerId, i64)>, StoreError> {
        self.read(move |conn| sum_xp(conn, from, to, (upto, u64::MAX), None))
            .await
    }
}
