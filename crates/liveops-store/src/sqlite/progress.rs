//! [`ProgressStore`] on SQLite: progression applied exactly once, rewards, claims, receipts.
//!
//! Every write here runs on the writer thread, inside its group transaction: a consumer's
//! cursor moves in the same transaction as the effects of the events it covers, so a crash
//! applies all of a batch or none of it. The writer keeps committed progress in a cache (see
//! [`fold_into_progress`]), which it can do because it is the only writer of `player_progress`.

use std::sync::Arc;

use async_trait::async_trait;
use liveops_domain::progression::{Drop, Progress, MAX_RECENT_DROPS};
use liveops_domain::signing::Receipt;
use liveops_domain::PlayerId;
use rusqlite::{params, Connection, OptionalExtension};

use super::writer::{PlayerMap, WriteCmd};
use super::{ms_to_time, SqliteStore};
use crate::{
    ClaimOutcome, LoggedEvent, ProgressStore, ReceiptMaker, RewardRecord, StoreError,
    StoredProgress,
};

/// Where a consumer stopped (0 before its first batch).
fn cursor_of(conn: &Connection, consumer: &str) -> rusqlite::Result<u64> {
    let seq: Option<i64> = conn
        .query_row(
            "SELECT seq FROM consumer_offsets WHERE consumer = ?1",
            [consumer],
            |r| r.get(0),
        )
        .optional()?;
    Ok(seq.unwrap_or(0) as u64)
}

/// A player's progress row. The writer's apply path leaves `drops` empty (drops live in
/// `player_drops`); the read API fills them in with [`recent_drops`].
fn load_progress(conn: &Connection, player: &str) -> Result<Option<StoredProgress>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT xp, level, boss_kills, updated_at_ms FROM player_progress WHERE player_id = ?1",
        )?
        .query_row([player], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .optional()?;
    let Some((xp, level, boss_kills, updated_at_ms)) = row else {
        return Ok(None);
    };
    let corrupt =
        |e: serde_json::Error| StoreError::Corrupt(format!("player_progress {player}: {e}"));
    Ok(Some(StoredProgress {
        progress: Progress {
            xp,
            level,
            boss_kills: serde_json::from_str(&boss_kills).map_err(corrupt)?,
            drops: Vec::new(),
        },
        updated_at: ms_to_time(updated_at_ms),
    }))
}

/// The player's most recent drops, oldest first, as progress shows them.
fn recent_drops(conn: &Connection, player: &str) -> Result<Vec<Drop>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT drop_id, weight, source, event_id FROM player_drops WHERE player_id = ?1
         ORDER BY seq DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![player, MAX_RECENT_DROPS as i64], |r| {
        Ok(Drop {
            drop_id: r.get(0)?,
            weight: r.get(1)?,
            source: r.get(2)?,
            event_id: r.get(3)?,
        })
    })?;
    let mut drops = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    drops.reverse();
    Ok(drops)
}

/// Applies the events above the consumer's cursor (less those of players erased since the
/// consumer read them) and moves the cursor, in the writer's transaction. Returns the new
/// cursor and the touched players' progress for the writer's cache.
pub(super) fn apply(
    conn: &Connection,
    consumer: &str,
    events: &[LoggedEvent],
    cache: &mut PlayerMap<StoredProgress>,
    erased: &PlayerMap<u64>,
) -> Result<(u64, PlayerMap<StoredProgress>), StoreError> {
    let start = cursor_of(conn, consumer)?;
    let cursor = events
        .iter()
        .rev()
        .find(|e| e.seq > start)
        .map_or(start, |e| e.seq);
    let fresh: Vec<&LoggedEvent> = events
        .iter()
        .filter(|e| e.seq > start)
        .filter(|e| {
            erased
                .get(e.event.player_id.as_str())
                .is_none_or(|upto| e.seq > *upto)
        })
        .collect();
    let touched = fold_into_progress(conn, &fresh, cache)?;
    conn.prepare_cached(
        "INSERT INTO consumer_offsets (consumer, seq) VALUES (?1, ?2)
         ON CONFLICT (consumer) DO UPDATE SET seq = excluded.seq",
    )?
    .execute(params![consumer, cursor as i64])?;
    Ok((cursor, touched))
}

/// Applies events to player progress, the reward ledger and the drop list, and saves the
/// touched players. Returns them for the writer's cache.
///
/// A player's cached progress is taken out of the cache, not copied: until the group commits,
/// the row this command writes is the truth, so a later command of the same group (a release
/// right after an apply, say) must read that row rather than the pre-group copy. The writer
/// puts the touched players back once the commit succeeded; a failed command or commit simply
/// leaves them to be read from the database next time.
pub(super) fn fold_into_progress(
    conn: &Connection,
    events: &[&LoggedEvent],
    cache: &mut PlayerMap<StoredProgress>,
) -> Result<PlayerMap<StoredProgress>, StoreError> {
    let mut touched: PlayerMap<StoredProgress> = PlayerMap::default();
    let mut grant = conn.prepare_cached(
        "INSERT INTO rewards (player_id, reward_id, item, level, granted_at_ms, event_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
    )?;
    let mut add_drop = conn.prepare_cached(
        "INSERT INTO player_drops (player_id, seq, event_id, drop_id, weight, source)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
    )?;
    for le in events {
        let player = le.event.player_id.as_str();
        if !touched.contains_key(player) {
            let cached = match cache.remove(player) {
                Some(p) => Some(p),
                None => load_progress(conn, player)?,
            };
            let p = cached.unwrap_or(StoredProgress {
                progress: Progress::new(),
                updated_at: le.received_at,
            });
            touched.insert(player.to_string(), p);
        }
        // Cannot fail: inserted just above when absent.
        let sp = touched.get_mut(player).expect("progress loaded above");
        let rewards = sp.progress.apply(&le.event);
        // Drops go to their own table; the progress row (and the writer's cache) stays small.
        for d in sp.progress.drops.drain(..) {
            add_drop.execute(params![
                player,
                le.seq as i64,
                d.event_id,
                d.drop_id,
                d.weight,
                d.source
            ])?;
        }
        for reward in rewards {
            grant.execute(params![
                player,
                reward.reward_id,
                reward.item,
                reward.level,
                le.received_at.timestamp_millis(),
                le.event.event_id.as_str(),
            ])?;
        }
        sp.updated_at = sp.updated_at.max(le.received_at);
    }
    let mut save = conn.prepare_cached(
        "INSERT INTO player_progress (player_id, xp, level, boss_kills, drops, updated_at_ms)
         VALUES (?1, ?2, ?3, ?4, '[]', ?5)
         ON CONFLICT (player_id) DO UPDATE SET xp = excluded.xp, level = excluded.level,
           boss_kills = excluded.boss_kills, updated_at_ms = excluded.updated_at_ms",
    )?;
    for (player, sp) in &touched {
        save.execute(params![
            player,
            sp.progress.xp,
            sp.progress.level,
            json(&sp.progress.boss_kills),
            sp.updated_at.timestamp_millis(),
        ])?;
    }
    Ok(touched)
}

/// JSON encoding of the progress sub-structures: maps and vectors of plain data, whose
/// serialization cannot fail.
fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

fn load_receipt(conn: &Connection, receipt_id: &str) -> Result<Option<Receipt>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT receipt_id, player_id, item, sig, timestamp FROM receipts WHERE receipt_id = ?1")?
        .query_row([receipt_id], |r| {
            Ok(Receipt {
                receipt_id: r.get(0)?,
                player_id: r.get(1)?,
                item: r.get(2)?,
                sig: r.get(3)?,
                timestamp: r.get(4)?,
            })
        })
        .optional()?)
}

/// Claims a reward once, in the writer's transaction: the first claim stores the receipt `make`
/// issues, a repeat gets that receipt back.
pub(super) fn claim(
    conn: &Connection,
    player: &PlayerId,
    reward_id: &str,
    make: ReceiptMaker,
) -> Result<ClaimOutcome, StoreError> {
    let row: Option<(String, Option<String>)> = conn
        .query_row(
            "SELECT item, receipt_id FROM rewards WHERE player_id = ?1 AND reward_id = ?2",
            params![player.as_str(), reward_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    match row {
        None => Ok(ClaimOutcome::NotEarned),
        Some((_, Some(receipt_id))) => load_receipt(conn, &receipt_id)?
            .map(ClaimOutcome::AlreadyClaimed)
            .ok_or_else(|| StoreError::Corrupt(format!("receipt {receipt_id} missing"))),
        Some((item, None)) => {
            let receipt = make(&item);
            conn.execute(
                "INSERT INTO receipts (receipt_id, player_id, reward_id, item, sig, timestamp)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    receipt.receipt_id,
                    receipt.player_id,
                    reward_id,
                    receipt.item,
                    receipt.sig,
                    receipt.timestamp
                ],
            )?;
            conn.execute(
                "UPDATE rewards SET receipt_id = ?1 WHERE player_id = ?2 AND reward_id = ?3",
                params![receipt.receipt_id, player.as_str(), reward_id],
            )?;
            Ok(ClaimOutcome::Claimed(receipt))
        }
    }
}

#[async_trait]
impl ProgressStore for SqliteStore {
    async fn apply_events(
        &self,
        consumer: &str,
        events: Arc<Vec<LoggedEvent>>,
    ) -> Result<u64, StoreError> {
        let consumer = consumer.to_string();
        self.write(|reply| WriteCmd::Apply(consumer, events, reply))
            .await
    }

    async fn cursor(&self, consumer: &str) -> Result<u64, StoreError> {
        let consumer = consumer.to_string();
        self.read(move |conn| Ok(cursor_of(conn, &consumer)?)).await
    }

    async fn progress(&self, player: &PlayerId) -> Result<Option<StoredProgress>, StoreError> {
        let player = player.clone();
        self.read(move |conn| {
            let Some(mut p) = load_progress(conn, player.as_str())? else {
                return Ok(None);
            };
            p.progress.drops = recent_drops(conn, player.as_str())?;
            Ok(Some(p))
        })
        .await
    }

    async fn rewards(&self, player: &PlayerId) -> Result<Vec<RewardRecord>, StoreError> {
        let player = player.clone();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT reward_id, item, level, granted_at_ms, event_id, receipt_id FROM rewards
                 WHERE player_id = ?1 ORDER BY level, reward_id",
            )?;
            let mut rows = stmt.query([player.as_str()])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(RewardRecord {
                    reward_id: r.get(0)?,
                    item: r.get(1)?,
                    level: r.get(2)?,
                    granted_at: ms_to_time(r.get(3)?),
                    event_id: StoreError::stored_id("rewards.event_id", r.get(4)?)?,
                    receipt_id: r.get(5)?,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn claim(
        &self,
        player: &PlayerId,
        reward_id: &str,
        make: ReceiptMaker,
    ) -> Result<ClaimOutcome, StoreError> {
        let (player, reward_id) = (player.clone(), reward_id.to_string());
        self.write(|reply| WriteCmd::Claim(player, reward_id, make, reply))
            .await
    }

    async fn receipt(&self, receipt_id: &str) -> Result<Option<Receipt>, StoreError> {
        let id = receipt_id.to_string();
        self.read(move |conn| load_receipt(conn, &id)).await
    }
}
