//! [`FairnessStore`] on PostgreSQL: flagged events (`suspicious_events`), their review, and the
//! decided view of the log (`docs/fairness.md`).
//!
//! A review is exactly once whoever asks: the flag row is locked (`FOR UPDATE`) before its
//! status is checked, so of two concurrent releases one resolves and the other sees
//! "not quarantined". A release applies the event to progression in the same transaction.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use liveops_domain::EventId;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::log::move_cursor;
use super::progress::fold_into_progress;
use super::{ms, pg_text, row_to_logged, seq_bound, PgStore, EVENT_COLUMNS, EVENT_COLUMNS_E};
use crate::{
    FairnessStore, FlagFilter, FlagRecord, FlagStatus, LoggedEvent, Resolution, ResolveOutcome,
    StoreError,
};

const FLAG_COLUMNS: &str = "seq, event_id, player_id, metric, value, rule, reason, status, \
                            flagged_at, resolved_at, resolved_by";

fn row_to_flag(r: &PgRow) -> Result<FlagRecord, StoreError> {
    let status: String = r.try_get(7)?;
    Ok(FlagRecord {
        seq: r.try_get::<i64, _>(0)? as u64,
        event_id: StoreError::stored_id("suspicious_events.event_id", r.try_get(1)?)?,
        player_id: StoreError::stored_id("suspicious_events.player_id", r.try_get(2)?)?,
        metric: r.try_get(3)?,
        value: r.try_get(4)?,
        rule: r.try_get(5)?,
        reason: r.try_get(6)?,
        status: FlagStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("flag status {status}")))?,
        flagged_at: r.try_get(8)?,
        resolved_at: r.try_get(9)?,
        resolved_by: r.try_get(10)?,
    })
}

/// Records flags in the caller's transaction; a flag already recorded for the event is kept.
pub(super) async fn insert_flags(
    conn: &mut PgConnection,
    flags: &[FlagRecord],
) -> Result<(), StoreError> {
    if flags.is_empty() {
        return Ok(());
    }
    let mut seq = Vec::with_capacity(flags.len());
    let (mut event_id, mut player_id, mut metric, mut value) = (
        Vec::with_capacity(flags.len()),
        Vec::with_capacity(flags.len()),
        Vec::with_capacity(flags.len()),
        Vec::with_capacity(flags.len()),
    );
    let (mut rule, mut reason, mut status, mut flagged_at) = (
        Vec::with_capacity(flags.len()),
        Vec::with_capacity(flags.len()),
        Vec::with_capacity(flags.len()),
        Vec::with_capacity(flags.len()),
    );
    for f in flags {
        seq.push(seq_bound(f.seq));
        // Parsed ids hold no NUL: bound as they are.
        event_id.push(f.event_id.as_str());
        player_id.push(f.player_id.as_str());
        metric.push(pg_text(&f.metric));
        value.push(f.value);
        rule.push(pg_text(&f.rule));
        reason.push(pg_text(&f.reason));
        status.push(f.status.as_str());
        flagged_at.push(ms(f.flagged_at));
    }
    sqlx::query(
        "INSERT INTO suspicious_events
           (seq, event_id, player_id, metric, value, rule, reason, status, flagged_at)
         SELECT * FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::text[], $5::float8[],
                              $6::text[], $7::text[], $8::text[], $9::timestamptz[])
         ON CONFLICT DO NOTHING",
    )
    .bind(&seq)
    .bind(&event_id)
    .bind(&player_id)
    .bind(&metric)
    .bind(&value)
    .bind(&rule)
    .bind(&reason)
    .bind(&status)
    .bind(&flagged_at)
    .execute(conn)
    .await?;
    Ok(())
}

#[async_trait]
impl FairnessStore for PgStore {
    async fn record_sequenced(
        &self,
        consumer: &str,
        events: &[LoggedEvent],
        flags: Vec<FlagRecord>,
        cursor: u64,
    ) -> Result<Vec<u64>, StoreError> {
        PgStore::record_sequenced(self, consumer, events, flags, cursor).await
    }

    async fn record_flags(
        &self,
        consumer: &str,
        flags: Vec<FlagRecord>,
        cursor: u64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        insert_flags(&mut tx, &flags).await?;
        move_cursor(&mut tx, consumer, cursor).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn flags(&self, filter: FlagFilter) -> Result<(Vec<FlagRecord>, u64), StoreError> {
        let player = filter.player.as_ref().map(|p| p.to_string());
        let status = filter.status.map(|s| s.as_str());
        let cond = "($1::text IS NULL OR player_id = $1) AND ($2::text IS NULL OR status = $2)";
        let mut conn = self.pool.acquire().await?;
        let total: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM suspicious_events WHERE {cond}"
        ))
        .bind(&player)
        .bind(status)
        .fetch_one(&mut *conn)
        .await?;
        let rows = sqlx::query(&format!(
            "SELECT {FLAG_COLUMNS} FROM suspicious_events WHERE {cond}
             ORDER BY seq DESC LIMIT $3 OFFSET $4"
        ))
        .bind(&player)
        .bind(status)
        .bind(filter.limit.min(i64::MAX as usize) as i64)
        .bind(filter.offset.min(i64::MAX as usize) as i64)
        .fetch_all(&mut *conn)
        .await?;
        let flags = rows
            .iter()
            .map(row_to_flag)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((flags, total as u64))
    }

    async fn flag_statuses(&self, upto: u64) -> Result<HashMap<u64, FlagStatus>, StoreError> {
        let rows: Vec<(i64, String)> =
            sqlx::query_as("SELECT seq, status FROM suspicious_events WHERE seq <= $1")
                .bind(seq_bound(upto))
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|(seq, status)| {
                FlagStatus::parse(&status)
                    .map(|s| (seq as u64, s))
                    .ok_or_else(|| StoreError::Corrupt(format!("flag status {status}")))
            })
            .collect()
    }

    async fn resolve(
        &self,
        event_id: &EventId,
        resolution: Resolution,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<ResolveOutcome, StoreError> {
        let at = ms(at);
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(&format!(
            "SELECT {FLAG_COLUMNS} FROM suspicious_events WHERE event_id = $1 FOR UPDATE"
        ))
        .bind(event_id.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(ResolveOutcome::NotFound);
        };
        let flag = row_to_flag(&row)?;
        if flag.status != FlagStatus::Quarantined {
            return Ok(ResolveOutcome::NotQuarantined(flag));
        }
        let status = match resolution {
            Resolution::Release => FlagStatus::Released,
            Resolution::Reject => FlagStatus::Rejected,
        };
        // The counter row stays locked until the commit: release numbers become visible in
        // order (migration 0003).
        let release: Option<i64> = match resolution {
            Resolution::Release => Some(
                sqlx::query_scalar("UPDATE release_counter SET last = last + 1 RETURNING last")
                    .fetch_one(&mut *tx)
                    .await?,
            ),
            Resolution::Reject => None,
        };
        sqlx::query(
            "UPDATE suspicious_events
             SET status = $1, resolved_at = $2, resolved_by = $3, release_seq = $5
             WHERE event_id = $4",
        )
        .bind(status.as_str())
        .bind(at)
        .bind(pg_text(by))
        .bind(event_id.as_str())
        .bind(release)
        .execute(&mut *tx)
        .await?;
        let mut event = None;
        if resolution == Resolution::Release {
            let row = sqlx::query(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE seq = $1"
            ))
            .bind(seq_bound(flag.seq))
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(row) = row {
                let le = row_to_logged(&row)?;
                fold_into_progress(&mut tx, &[&le]).await?;
                event = Some(le);
            }
        }
        tx.commit().await?;
        let flag = FlagRecord {
            status,
            resolved_at: Some(at),
            resolved_by: Some(by.to_string()),
            ..flag
        };
        Ok(ResolveOutcome::Resolved { flag, event })
    }

    async fn read_decided_after(
        &self,
        after: u64,
        limit: usize,
        upto: u64,
    ) -> Result<Vec<LoggedEvent>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS_E}
             FROM events e LEFT JOIN suspicious_events s ON s.seq = e.seq
             WHERE e.seq > $1 AND e.seq <= $2 AND (s.status IS NULL OR s.status = 'flagged')
             ORDER BY e.seq LIMIT $3"
        ))
        .bind(seq_bound(after))
        .bind(seq_bound(upto))
        .bind(limit.min(i64::MAX as usize) as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_to_logged).collect()
    }
}
