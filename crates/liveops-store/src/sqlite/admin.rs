//! [`AdminStore`] on SQLite: the GDPR erase, operator blocks and the audit log.
//!
//! The erase runs on the writer thread, ordered with the appends, so it knows the last `seq`
//! handed out; blocks and audit entries are small writes of their own in the writer's group.

use async_trait::async_trait;
use liveops_domain::PlayerId;
use rusqlite::{params, Connection};

use super::writer::WriteCmd;
use super::{ms_to_time, SqliteStore};
use crate::{AdminStore, AuditEntry, Block, StoreError};

/// Deletes the player's rows; returns the last seq assigned so far (this group's appends
/// included), up to which their in-flight events must not be applied again.
pub(super) fn erase(conn: &Connection, player: &PlayerId) -> Result<u64, StoreError> {
    let p = player.as_str();
    let upto: i64 = conn.query_row(
        "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)",
        [],
        |r| r.get(0),
    )?;
    for sql in [
        "DELETE FROM events WHERE player_id = ?1",
        "DELETE FROM player_progress WHERE player_id = ?1",
        "DELETE FROM player_drops WHERE player_id = ?1",
        "DELETE FROM rewards WHERE player_id = ?1",
        "DELETE FROM receipts WHERE player_id = ?1",
        "DELETE FROM suspicious_events WHERE player_id = ?1",
        "DELETE FROM player_blocks WHERE player_id = ?1",
    ] {
        conn.prepare_cached(sql)?.execute([p])?;
    }
    Ok(upto as u64)
}

#[async_trait]
impl AdminStore for SqliteStore {
    async fn erase_player(&self, player: &PlayerId) -> Result<u64, StoreError> {
        let player = player.clone();
        self.write(|reply| WriteCmd::Erase(player, reply)).await
    }

    async fn set_block(&self, block: Block) -> Result<(), StoreError> {
        self.write(|reply| {
            WriteCmd::Exec(
                Box::new(move |conn| {
                    conn.prepare_cached(
                        "INSERT INTO player_blocks (player_id, until_ms, reason, created_at_ms)
                         VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (player_id) DO UPDATE SET until_ms = excluded.until_ms,
                           reason = excluded.reason, created_at_ms = excluded.created_at_ms",
                    )?
                    .execute(params![
                        block.player_id.as_str(),
                        block.until.map(|t| t.timestamp_millis()),
                        block.reason,
                        block.created_at.timestamp_millis(),
                    ])?;
                    Ok(())
                }),
                reply,
            )
        })
        .await
    }

    async fn clear_block(&self, player: &PlayerId) -> Result<(), StoreError> {
        let player = player.to_string();
        self.write(|reply| {
            WriteCmd::Exec(
                Box::new(move |conn| {
                    conn.prepare_cached("DELETE FROM player_blocks WHERE player_id = ?1")?
                        .execute([player])?;
                    Ok(())
                }),
                reply,
            )
        })
        .await
    }

    async fn blocks(&self) -> Result<Vec<Block>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT player_id, until_ms, reason, created_at_ms FROM player_blocks ORDER BY player_id",
            )?;
            let mut rows = stmt.query([])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let p: String = r.get(0)?;
                out.push(Block {
                    player_id: PlayerId::parse(p).map_err(StoreError::Corrupt)?,
                    until: r.get::<_, Option<i64>>(1)?.map(ms_to_time),
                    reason: r.get(2)?,
                    created_at: ms_to_time(r.get(3)?),
                });
            }
            Ok(out)
        })
        .await
    }

    async fn append_audit(&self, entry: AuditEntry) -> Result<(), StoreError> {
        self.write(|reply| {
            WriteCmd::Exec(
                Box::new(move |conn| {
                    conn.prepare_cached(
                        "INSERT INTO audit_log (at_ms, actor, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
                    )?
                    .execute(params![
                        entry.at.timestamp_millis(),
                        entry.actor,
                        entry.action,
                        entry.target,
                        entry.detail.to_string(),
                    ])?;
                    Ok(())
                }),
                reply,
            )
        })
        .await
    }

    async fn audit(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT at_ms, actor, action, target, detail FROM audit_log ORDER BY id DESC LIMIT ?1",
            )?;
            let mut rows = stmt.query([limit as i64])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let detail: String = r.get(4)?;
                out.push(AuditEntry {
                    at: ms_to_time(r.get(0)?),
                    actor: r.get(1)?,
                    action: r.get(2)?,
                    target: r.get(3)?,
                    detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
                });
            }
            Ok(out)
        })
        .await
    }
}
