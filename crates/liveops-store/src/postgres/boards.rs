//! [`BoardSource`] and [`Archive`] on PostgreSQL: the sums leaderboards are rebuilt from
//! (honouring operator resets in `leaderboard_resets`), the numbered releases they catch up
//! with (`suspicious_events.release_seq`), and archived standings in
//! `leaderboard_snapshots` (`docs/api.md`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use liveops_domain::window::Period;
use liveops_domain::PlayerId;
use sqlx::Row;

use super::{ms, row_to_logged, seq_bound, PgStore, EVENT_COLUMNS_E};
use crate::{Archive, ArchivedPeriod, BoardSource, ReleasedEvent, StoreError};

impl PgStore {
    /// XP per player of the events received in `[from, to)` that count on the boards: applied
    /// by the log with `seq <= upto` (unflagged or flagged), or released with a release number
    /// `<= released_upto` (those released before release numbers existed always count); with a
    /// `(window, period)`, only the events after that period's last operator reset.
    async fn sum_xp(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        (upto, released_upto): (u64, u64),
        reset_of: Option<(&str, &str)>,
    ) -> Result<Vec<(PlayerId, i64)>, StoreError> {
        let (window, period) = reset_of.unwrap_or(("", ""));
        // SUM over bigint is numeric in PostgreSQL, so it cannot overflow; LEAST saturates the
        // (absurd) total beyond i64 instead of failing the rebuild, as the SQLite store does.
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT e.player_id, LEAST(SUM(e.xp), 9223372036854775807)::bigint FROM events e
             LEFT JOIN suspicious_events s ON s.seq = e.seq
             WHERE e.received_at >= $1 AND e.received_at < $2
               AND e.seq > COALESCE((SELECT after_seq FROM leaderboard_resets
                                     WHERE window_name = $4 AND period = $5), 0)
               AND ((e.seq <= $3 AND (s.status IS NULL OR s.status = 'flagged'))
                    OR (s.status = 'released' AND COALESCE(s.release_seq, 0) <= $6))
             GROUP BY e.player_id",
        )
        .bind(ms(from))
        .bind(ms(to))
        .bind(seq_bound(upto))
        .bind(window)
        .bind(period)
        .bind(seq_bound(released_upto))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(p, xp)| Ok((PlayerId::parse(p).map_err(StoreError::Corrupt)?, xp)))
            .collect()
    }
}

#[async_trait]
impl BoardSource for PgStore {
    async fn xp_by_player(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        upto: u64,
    ) -> Result<Vec<(PlayerId, i64)>, StoreError> {
        self.sum_xp(from, to, (upto, u64::MAX), None).await
    }

    async fn period_xp(
        &self,
        period: &Period,
        upto: u64,
        released_upto: u64,
    ) -> Result<Vec<(PlayerId, i64)>, StoreError> {
        self.sum_xp(
            period.start,
            period.end,
            (upto, released_upto),
            Some((period.window.as_str(), &period.id)),
        )
        .await
    }

    async fn release_head(&self) -> Result<u64, StoreError> {
        let last: i64 = sqlx::query_scalar("SELECT last FROM release_counter")
            .fetch_one(&self.pool)
            .await?;
        Ok(last.max(0) as u64)
    }

    async fn released_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<ReleasedEvent>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS_E}, s.release_seq
             FROM suspicious_events s JOIN events e ON e.seq = s.seq
             WHERE s.release_seq > $1 ORDER BY s.release_seq LIMIT $2"
        ))
        .bind(seq_bound(after))
        .bind(limit.min(i64::MAX as usize) as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                // After the event's columns, which row_to_logged reads by position.
                let release: i64 = row.try_get(8)?;
                Ok(ReleasedEvent {
                    release: release.max(0) as u64,
                    event: row_to_logged(row)?,
                })
            })
            .collect()
    }

    async fn reset_after(&self, period: &Period) -> Result<Option<u64>, StoreError> {
        let after: Option<i64> = sqlx::query_scalar(
            "SELECT after_seq FROM leaderboard_resets WHERE window_name = $1 AND period = $2",
        )
        .bind(period.window.as_str())
        .bind(&period.id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(after.map(|a| a.max(0) as u64))
    }

    async fn reset_period(
        &self,
        period: &Period,
        after_seq: u64,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO leaderboard_resets (window_name, period, after_seq, at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (window_name, period) DO UPDATE
               SET after_seq = excluded.after_seq, at = excluded.at",
        )
        .bind(period.window.as_str())
        .bind(&period.id)
        .bind(seq_bound(after_seq))
        .bind(ms(at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// Standings travel as JSON text cast to `jsonb` in SQL (no sqlx `json` feature needed).
fn to_json(p: &ArchivedPeriod) -> Result<String, StoreError> {
    serde_json::to_string(p).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn from_json(v: &str) -> Result<ArchivedPeriod, StoreError> {
    serde_json::from_str(v).map_err(|e| StoreError::Corrupt(format!("archived period: {e}")))
}

#[async_trait]
impl Archive for PgStore {
    async fn put_period(&self, p: &ArchivedPeriod) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO leaderboard_snapshots (window_name, period, kind, archived_at, body)
             VALUES ($1, $2, 'final', $3, $4::jsonb)
             ON CONFLICT (window_name, period) WHERE kind = 'final' DO UPDATE
               SET archived_at = excluded.archived_at, body = excluded.body",
        )
        .bind(&p.window)
        .bind(&p.period)
        .bind(ms(p.archived_at))
        .bind(to_json(p)?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn erase_player(&self, player: &PlayerId) -> Result<usize, StoreError> {
        let mut tx = self.pool.begin().await?;
        let probe = serde_json::json!({ "entries": [{ "playerId": player }] }).to_string();
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, body::text FROM leaderboard_snapshots WHERE body @> $1::jsonb
             ORDER BY id FOR UPDATE",
        )
        .bind(&probe)
        .fetch_all(&mut *tx)
        .await?;
        let changed = rows.len();
        for (id, body) in rows {
            let mut p = from_json(&body)?;
            let before = p.entries.len();
            p.entries.retain(|e| &e.player_id != player);
            for (i, e) in p.entries.iter_mut().enumerate() {
                e.rank = i as u64 + 1;
            }
            p.total = p.total.saturating_sub((before - p.entries.len()) as u64);
            sqlx::query("UPDATE leaderboard_snapshots SET body = $1::jsonb WHERE id = $2")
                .bind(to_json(&p)?)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    async fn put_snapshot(&self, p: &ArchivedPeriod) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO leaderboard_snapshots (window_name, period, kind, archived_at, body)
             VALUES ($1, $2, 'snapshot', $3, $4::jsonb)",
        )
        .bind(&p.window)
        .bind(&p.period)
        .bind(ms(p.archived_at))
        .bind(to_json(p)?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_period(
        &self,
        window: &str,
        period: &str,
    ) -> Result<Option<ArchivedPeriod>, StoreError> {
        let body: Option<String> = sqlx::query_scalar(
            "SELECT body::text FROM leaderboard_snapshots
             WHERE window_name = $1 AND period = $2 AND kind = 'final'",
        )
        .bind(window)
        .bind(period)
        .fetch_optional(&self.pool)
        .await?;
        body.as_deref().map(from_json).transpose()
    }
}
