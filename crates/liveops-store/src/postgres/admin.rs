//! [`AdminStore`] on PostgreSQL: the GDPR erase, operator blocks, the audit log (`docs/api.md`).

use async_trait::async_trait;
use liveops_domain::PlayerId;
use sqlx::{PgConnection, Row};

use super::{ms, pg_text, PgStore};
use crate::{AdminStore, AuditEntry, Block, StoreError};

/// Deletes the player's rows in the writer's transaction (so it is ordered with the appends)
/// and records a tombstone up to the last seq handed out so far, this group's appends and the
/// process's committed `head` included: progression skips the player's events up to it that a
/// consumer read before the erase. Returns that seq.
pub(super) async fn erase(
    conn: &mut PgConnection,
    player: &PlayerId,
    head: u64,
) -> Result<u64, StoreError> {
    let p = player.as_str();
    let assigned: i64 = sqlx::query_scalar(
        "SELECT GREATEST(
           (SELECT COALESCE(MAX(seq), 0) FROM events),
           (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM events_seq))",
    )
    .fetch_one(&mut *conn)
    .await?;
    let upto = (assigned.max(0) as u64).max(head);
    for sql in [
        "DELETE FROM events WHERE player_id = $1",
        "DELETE FROM player_progress WHERE player_id = $1",
        "DELETE FROM player_drops WHERE player_id = $1",
        "DELETE FROM rewards WHERE player_id = $1",
        "DELETE FROM receipts WHERE player_id = $1",
        "DELETE FROM suspicious_events WHERE player_id = $1",
        "DELETE FROM player_blocks WHERE player_id = $1",
    ] {
        sqlx::query(sql).bind(p).execute(&mut *conn).await?;
    }
    // Tombstones every consumer has moved past protect nothing any more. A consumer that has
    // not committed a cursor yet is not in the minimum, so this only runs before the new
    // tombstone goes in: the newest one always survives until the next erase.
    sqlx::query(
        "DELETE FROM erased_players WHERE upto_seq <= (SELECT MIN(seq) FROM consumer_offsets)",
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO erased_players (player_id, upto_seq) VALUES ($1, $2)
         ON CONFLICT (player_id) DO UPDATE
           SET upto_seq = GREATEST(erased_players.upto_seq, excluded.upto_seq)",
    )
    .bind(p)
    .bind(upto.min(i64::MAX as u64) as i64)
    .execute(&mut *conn)
    .await?;
    Ok(upto)
}

#[async_trait]
impl AdminStore for PgStore {
    async fn erase_player(&self, player: &PlayerId) -> Result<u64, StoreError> {
        self.erase_via_writer(player.clone()).await
    }

    async fn set_block(&self, block: Block) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO player_blocks (player_id, until, reason, created_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (player_id) DO UPDATE SET until = excluded.until,
               reason = excluded.reason, created_at = excluded.created_at",
        )
        .bind(block.player_id.as_str())
        .bind(block.until.map(ms))
        .bind(pg_text(&block.reason))
        .bind(ms(block.created_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn clear_block(&self, player: &PlayerId) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM player_blocks WHERE player_id = $1")
            .bind(player.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn blocks(&self) -> Result<Vec<Block>, StoreError> {
        let rows = sqlx::query(
            "SELECT player_id, until, reason, created_at FROM player_blocks ORDER BY player_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let p: String = r.try_get(0)?;
                Ok(Block {
                    player_id: PlayerId::parse(p).map_err(StoreError::Corrupt)?,
                    until: r.try_get(1)?,
                    reason: r.try_get(2)?,
                    created_at: r.try_get(3)?,
                })
            })
            .collect()
    }

    async fn append_audit(&self, entry: AuditEntry) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_log (at, actor, action, target, detail)
             VALUES ($1, $2, $3, $4, $5::json)",
        )
        .bind(ms(entry.at))
        .bind(pg_text(&entry.actor))
        .bind(pg_text(&entry.action))
        .bind(pg_text(&entry.target))
        .bind(entry.detail.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn audit(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, actor, action, target, detail::text FROM audit_log
             ORDER BY id DESC LIMIT $1",
        )
        .bind(limit.min(i64::MAX as usize) as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let detail: String = r.try_get(4)?;
                Ok(AuditEntry {
                    at: r.try_get(0)?,
                    actor: r.try_get(1)?,
                    action: r.try_get(2)?,
                    target: r.try_get(3)?,
                    detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
                })
            })
            .collect()
    }
}
