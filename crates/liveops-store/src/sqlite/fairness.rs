//! [`FairnessStore`] on SQLite: flagged events (`suspicious_events`), their review, and the
//! "decided" view of the log that progression and the boards consume.
//!
//! A release runs on the writer thread, so the release number, the flag's new status and the
//! event's progression are one transaction.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use liveops_domain::EventId;
use rusqlite::{params, Connection};

use super::log::{row_to_logged, EVENT_COLUMNS};
use super::progress::fold_into_progress;
use super::writer::{PlayerMap, WriteCmd};
use super::{ms_to_time, SqliteStore};
use crate::{
    FairnessStore, FlagFilter, FlagRecord, FlagStatus, LoggedEvent, Resolution, ResolveOutcome,
    StoreError, StoredProgress,
};

/// The columns [`row_to_flag`] decodes, in order.
const FLAG_COLUMNS: &str = "seq, event_id, player_id, metric, value, rule, reason, status, flagged_at_ms, resolved_at_ms, resolved_by";

/// Decodes a row of [`FLAG_COLUMNS`].
fn row_to_flag(r: &rusqlite::Row<'_>) -> Result<FlagRecord, StoreError> {
    let status: String = r.get(7)?;
    Ok(FlagRecord {
        seq: r.get::<_, i64>(0)? as u64,
        event_id: StoreError::stored_id("suspicious_events.event_id", r.get(1)?)?,
        player_id: StoreError::stored_id("suspicious_events.player_id", r.get(2)?)?,
        metric: r.get(3)?,
        value: r.get(4)?,
        rule: r.get(5)?,
        reason: r.get(6)?,
        status: FlagStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("flag status {status}")))?,
        flagged_at: ms_to_time(r.get(8)?),
        resolved_at: r.get::<_, Option<i64>>(9)?.map(ms_to_time),
        resolved_by: r.get(10)?,
    })
}

/// Releases or rejects a quarantined event in the writer's transaction: a release takes the
/// next release number and applies the event to progression (hence the cache, as in
/// [`fold_into_progress`]). Returns the outcome and the touched players' progress.
pub(super) fn resolve(
    conn: &Connection,
    event_id: &EventId,
    resolution: Resolution,
    by: &str,
    at: DateTime<Utc>,
    cache: &mut PlayerMap<StoredProgress>,
) -> Result<(ResolveOutcome, PlayerMap<StoredProgress>), StoreError> {
    let flag = {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {FLAG_COLUMNS} FROM suspicious_events WHERE event_id = ?1"
        ))?;
        let mut rows = stmt.query([event_id.as_str()])?;
        match rows.next()? {
            Some(r) => row_to_flag(r)?,
            None => return Ok((ResolveOutcome::NotFound, PlayerMap::default())),
        }
    };
    if flag.status != FlagStatus::Quarantined {
        return Ok((ResolveOutcome::NotQuarantined(flag), PlayerMap::default()));
    }
    let status = match resolution {
        Resolution::Release => FlagStatus::Released,
        Resolution::Reject => FlagStatus::Rejected,
    };
    let release: Option<i64> = match resolution {
        Resolution::Release => Some(
            conn.prepare_cached("UPDATE release_counter SET last = last + 1 RETURNING last")?
                .query_row([], |r| r.get(0))?,
        ),
        Resolution::Reject => None,
    };
    conn.prepare_cached(
        "UPDATE suspicious_events
         SET status = ?1, resolved_at_ms = ?2, resolved_by = ?3, release_seq = ?5
         WHERE event_id = ?4 AND status = 'quarantined'",
    )?
    .execute(params![
        status.as_str(),
        at.timestamp_millis(),
        by,
        event_id.as_str(),
        release
    ])?;
    let mut touched = PlayerMap::default();
    let mut event = None;
    if resolution == Resolution::Release {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE seq = ?1"
        ))?;
        let mut rows = stmt.query([flag.seq as i64])?;
        if let Some(r) = rows.next()? {
            let le = row_to_logged(r)?;
            touched = fold_into_progress(conn, &[&le], cache)?;
            event = Some(le);
        }
    }
    let flag = FlagRecord {
        status,
        resolved_at: Some(at),
        resolved_by: Some(by.to_string()),
        ..flag
    };
    Ok((ResolveOutcome::Resolved { flag, event }, touched))
}

#[async_trait]
impl FairnessStore for SqliteStore {
    async fn record_flags(
        &self,
        consumer: &str,
        flags: Vec<FlagRecord>,
        cursor: u64,
    ) -> Result<(), StoreError> {
        let consumer = consumer.to_string();
        self.write(|reply| {
            WriteCmd::Exec(
                Box::new(move |conn| {
                    let mut insert = conn.prepare_cached(
                        "INSERT INTO suspicious_events (seq, event_id, player_id, metric, value, rule, reason, status, flagged_at_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT DO NOTHING",
                    )?;
                    for f in &flags {
                        insert.execute(params![
                            f.seq as i64,
                            f.event_id.as_str(),
                            f.player_id.as_str(),
                            f.metric,
                            f.value,
                            f.rule,
                            f.reason,
                            f.status.as_str(),
                            f.flagged_at.timestamp_millis(),
                        ])?;
                    }
                    // Forward only, like PgStore: a late retry cannot rewind the cursor.
                    conn.prepare_cached(
                        "INSERT INTO consumer_offsets (consumer, seq) VALUES (?1, ?2)
                         ON CONFLICT (consumer) DO UPDATE SET seq = MAX(seq, excluded.seq)",
                    )?
                    .execute(params![consumer, cursor as i64])?;
                    Ok(())
                }),
                reply,
            )
        })
        .await
    }

    async fn flags(&self, filter: FlagFilter) -> Result<(Vec<FlagRecord>, u64), StoreError> {
        self.read(move |conn| {
            let player = filter.player.as_ref().map(|p| p.to_string());
            let status = filter.status.map(|s| s.as_str());
            let cond = "(?1 IS NULL OR player_id = ?1) AND (?2 IS NULL OR status = ?2)";
            let total: i64 = conn
                .prepare_cached(&format!("SELECT COUNT(*) FROM suspicious_events WHERE {cond}"))?
                .query_row(params![player, status], |r| r.get(0))?;
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {FLAG_COLUMNS} FROM suspicious_events WHERE {cond} ORDER BY seq DESC LIMIT ?3 OFFSET ?4"
            ))?;
            let mut rows = stmt.query(params![player, status, filter.limit as i64, filter.offset as i64])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(row_to_flag(r)?);
            }
            Ok((out, total as u64))
        })
        .await
    }

    async fn flag_statuses(&self, upto: u64) -> Result<HashMap<u64, FlagStatus>, StoreError> {
        self.read(move |conn| {
            let mut stmt =
                conn.prepare_cached("SELECT seq, status FROM suspicious_events WHERE seq <= ?1")?;
            let mut rows = stmt.query([upto.min(i64::MAX as u64) as i64])?;
            let mut out = HashMap::new();
            while let Some(r) = rows.next()? {
                let status: String = r.get(1)?;
                let status = FlagStatus::parse(&status)
                    .ok_or_else(|| StoreError::Corrupt(format!("flag status {status}")))?;
                out.insert(r.get::<_, i64>(0)? as u64, status);
            }
            Ok(out)
        })
        .await
    }

    async fn resolve(
        &self,
        event_id: &EventId,
        resolution: Resolution,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<ResolveOutcome, StoreError> {
        let (event_id, by) = (event_id.clone(), by.to_string());
        self.write(|reply| WriteCmd::Resolve(event_id, resolution, by, at, reply))
            .await
    }

    async fn read_decided_after(
        &self,
        after: u64,
        limit: usize,
        upto: u64,
    ) -> Result<Vec<LoggedEvent>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT e.seq, e.event_id, e.player_id, e.type, e.ts, e.received_at_ms, e.xp, e.payload
                 FROM events e LEFT JOIN suspicious_events s ON s.seq = e.seq
                 WHERE e.seq > ?1 AND e.seq <= ?2
                   AND (s.status IS NULL OR s.status = 'flagged')
                 ORDER BY e.seq LIMIT ?3",
            )?;
            let mut rows = stmt.query(params![after as i64, upto.min(i64::MAX as u64) as i64, limit as i64])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(row_to_logged(r)?);
            }
            Ok(out)
        })
        .await
    }
}
