//! [`ProgressStore`] on PostgreSQL: progression applied exactly once, rewards, claims, receipts.
//!
//! Exactly once, even with two processes applying for the same consumer: the transaction first
//! locks the consumer's row in `consumer_offsets` (an upsert, which also creates it), so a
//! second applier waits for the first to commit and then reads the cursor it left; events at or
//! below that cursor are skipped. The cursor moves in the same transaction as the effects.
//!
//! A player's progress row is read, changed in memory and written back, so every writer of
//! `player_progress` (this apply and the release of a quarantined event) locks the rows it
//! changes first (`FOR UPDATE`, in player order so two batches cannot deadlock); a missing row
//! is created empty and then locked, so a new player is covered too.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use liveops_domain::progression::{Drop, Progress, MAX_RECENT_DROPS};
use liveops_domain::signing::Receipt;
use liveops_domain::PlayerId;
use sqlx::{PgConnection, Row};

use super::log::move_cursor;
use super::{pg_text, seq_bound, PgStore};
use crate::{
    ClaimOutcome, LoggedEvent, ProgressStore, ReceiptMaker, RewardRecord, StoreError,
    StoredProgress,
};

/// Applies events to player progress, the reward ledger and the drop list, in the caller's
/// transaction, with a handful of statements whatever the number of events.
pub(super) async fn fold_into_progress(
    conn: &mut PgConnection,
    events: &[&LoggedEvent],
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let players: Vec<String> = events
        .iter()
        .map(|e| e.event.player_id.to_string())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    // Lock the rows that exist (almost all, once players are known); create only the missing
    // ones, then lock those. Creating every row up front (ON CONFLICT DO NOTHING) cost a
    // statement and an index probe per event for rows that were there already.
    let mut state = lock_progress(&mut *conn, &players).await?;
    let missing: Vec<String> = players
        .iter()
        .filter(|p| !state.contains_key(p.as_str()))
        .cloned()
        .collect();
    if !missing.is_empty() {
        // The epoch marks a row created just now; `updated_at` becomes the first event's time.
        sqlx::query(
            "INSERT INTO player_progress (player_id, xp, level, boss_kills, updated_at)
             SELECT p, 0, 1, '{}', 'epoch' FROM UNNEST($1::text[]) AS p
             ON CONFLICT (player_id) DO NOTHING",
        )
        .bind(&missing)
        .execute(&mut *conn)
        .await?;
        state.extend(lock_progress(&mut *conn, &missing).await?);
    }

    let mut rewards = RewardRows::default();
    let mut drops = DropRows::default();
    for le in events {
        let player = le.event.player_id.as_str();
        let sp = state.get_mut(player).ok_or_else(|| {
            StoreError::Database(format!("progress row of {player} vanished under its lock"))
        })?;
        for reward in sp.progress.apply(&le.event) {
            rewards.player_id.push(player.to_string());
            rewards.reward_id.push(reward.reward_id);
            rewards.item.push(reward.item.to_string());
            rewards.level.push(reward.level);
            rewards.granted_at.push(le.received_at);
            rewards.event_id.push(le.event.event_id.to_string());
        }
        // Drops go to their own append-only table; the progress row stays small.
        for d in sp.progress.drops.drain(..) {
            drops.player_id.push(player.to_string());
            drops.seq.push(seq_bound(le.seq));
            drops.event_id.push(d.event_id);
            drops.drop_id.push(pg_text(&d.drop_id));
            drops.weight.push(d.weight);
            drops.source.push(pg_text(&d.source));
        }
        sp.updated_at = sp.updated_at.max(le.received_at);
    }
    if !rewards.player_id.is_empty() {
        sqlx::query(
            "INSERT INTO rewards (player_id, reward_id, item, level, granted_at, event_id)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int8[],
                                  $5::timestamptz[], $6::text[])
             ON CONFLICT DO NOTHING",
        )
        .bind(&rewards.player_id)
        .bind(&rewards.reward_id)
        .bind(&rewards.item)
        .bind(&rewards.level)
        .bind(&rewards.granted_at)
        .bind(&rewards.event_id)
        .execute(&mut *conn)
        .await?;
    }
    if !drops.player_id.is_empty() {
        sqlx::query(
            "INSERT INTO player_drops (player_id, seq, event_id, drop_id, weight, source)
             SELECT * FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::text[], $5::float8[],
                                  $6::text[])
             ON CONFLICT DO NOTHING",
        )
        .bind(&drops.player_id)
        .bind(&drops.seq)
        .bind(&drops.event_id)
        .bind(&drops.drop_id)
        .bind(&drops.weight)
        .bind(&drops.source)
        .execute(&mut *conn)
        .await?;
    }
    let (mut ids, mut xp, mut level, mut kills, mut at) = (
        Vec::with_capacity(state.len()),
        Vec::with_capacity(state.len()),
        Vec::with_capacity(state.len()),
        Vec::with_capacity(state.len()),
        Vec::with_capacity(state.len()),
    );
    for (player, sp) in state {
        xp.push(sp.progress.xp);
        level.push(sp.progress.level);
        kills.push(
            serde_json::to_string(&sp.progress.boss_kills)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        );
        at.push(sp.updated_at);
        ids.push(player);
    }
    sqlx::query(
        "UPDATE player_progress p SET xp = u.xp, level = u.level, boss_kills = u.kills::json,
           updated_at = u.at
         FROM UNNEST($1::text[], $2::int8[], $3::int8[], $4::text[], $5::timestamptz[])
           AS u(player_id, xp, level, kills, at)
         WHERE p.player_id = u.player_id",
    )
    .bind(&ids)
    .bind(&xp)
    .bind(&level)
    .bind(&kills)
    .bind(&at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The progress rows of `players` that exist, locked (`FOR UPDATE`, in player order so two
/// writers cannot deadlock).
async fn lock_progress(
    conn: &mut PgConnection,
    players: &[String],
) -> Result<HashMap<String, StoredProgress>, StoreError> {
    let rows = sqlx::query(
        "SELECT player_id, xp, level, boss_kills::text, updated_at FROM player_progress
         WHERE player_id = ANY($1) ORDER BY player_id FOR UPDATE",
    )
    .bind(players)
    .fetch_all(&mut *conn)
    .await?;
    let mut state = HashMap::with_capacity(rows.len());
    for r in &rows {
        let player: String = r.try_get(0)?;
        let progress = decode_progress(&player, r)?;
        state.insert(player, progress);
    }
    Ok(state)
}

#[derive(Default)]
struct RewardRows {
    player_id: Vec<String>,
    reward_id: Vec<String>,
    item: Vec<String>,
    level: Vec<i64>,
    granted_at: Vec<DateTime<Utc>>,
    event_id: Vec<String>,
}

#[derive(Default)]
struct DropRows {
    player_id: Vec<String>,
    seq: Vec<i64>,
    event_id: Vec<String>,
    drop_id: Vec<String>,
    weight: Vec<f64>,
    source: Vec<String>,
}

/// A progress row (`xp, level, boss_kills::text, updated_at` at columns 1..=4); drops stay
/// empty (they live in `player_drops`).
fn decode_progress(player: &str, r: &sqlx::postgres::PgRow) -> Result<StoredProgress, StoreError> {
    let kills: String = r.try_get(3)?;
    Ok(StoredProgress {
        progress: Progress {
            xp: r.try_get(1)?,
            level: r.try_get(2)?,
            boss_kills: serde_json::from_str(&kills)
                .map_err(|e| StoreError::Corrupt(format!("player_progress {player}: {e}")))?,
            drops: Vec::new(),
        },
        updated_at: r.try_get(4)?,
    })
}

async fn load_receipt(
    conn: &mut PgConnection,
    receipt_id: &str,
) -> Result<Option<Receipt>, StoreError> {
    let row = sqlx::query(
        "SELECT receipt_id, player_id, item, sig, timestamp FROM receipts WHERE receipt_id = $1",
    )
    .bind(receipt_id)
    .fetch_optional(conn)
    .await?;
    row.map(|r| -> Result<Receipt, StoreError> {
        Ok(Receipt {
            receipt_id: r.try_get(0)?,
            player_id: r.try_get(1)?,
            item: r.try_get(2)?,
            sig: r.try_get(3)?,
            timestamp: r.try_get(4)?,
        })
    })
    .transpose()
}

#[async_trait]
impl ProgressStore for PgStore {
    async fn apply_events(
        &self,
        consumer: &str,
        events: Arc<Vec<LoggedEvent>>,
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Creates and locks the consumer's row: a concurrent applier waits here until this
        // transaction ends, then sees the cursor it moved.
        let start: i64 = sqlx::query_scalar(
            "INSERT INTO consumer_offsets (consumer, seq) VALUES ($1, 0)
             ON CONFLICT (consumer) DO UPDATE SET seq = consumer_offsets.seq
             RETURNING seq",
        )
        .bind(consumer)
        .fetch_one(&mut *tx)
        .await?;
        let start = start as u64;
        let cursor = events
            .iter()
            .rev()
            .find(|e| e.seq > start)
            .map_or(start, |e| e.seq);
        let mut fresh: Vec<&LoggedEvent> = events.iter().filter(|e| e.seq > start).collect();
        if !fresh.is_empty() {
            // Events of an erased player that were read before the erase are not applied.
            let players: Vec<&str> = fresh.iter().map(|e| e.event.player_id.as_str()).collect();
            let erased: HashMap<String, i64> = sqlx::query_as(
                "SELECT player_id, upto_seq FROM erased_players WHERE player_id = ANY($1)",
            )
            .bind(&players)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
            if !erased.is_empty() {
                fresh.retain(|e| {
                    erased
                        .get(e.event.player_id.as_str())
                        .is_none_or(|upto| e.seq > *upto as u64)
                });
            }
            fold_into_progress(&mut tx, &fresh).await?;
        }
        if cursor > start {
            move_cursor(&mut tx, consumer, cursor).await?;
        }
        tx.commit().await?;
        Ok(cursor)
    }

    async fn cursor(&self, consumer: &str) -> Result<u64, StoreError> {
        let seq: Option<i64> =
            sqlx::query_scalar("SELECT seq FROM consumer_offsets WHERE consumer = $1")
                .bind(consumer)
                .fetch_optional(&self.pool)
                .await?;
        Ok(seq.unwrap_or(0) as u64)
    }

    async fn progress(&self, player: &PlayerId) -> Result<Option<StoredProgress>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let row = sqlx::query(
            "SELECT player_id, xp, level, boss_kills::text, updated_at FROM player_progress
             WHERE player_id = $1",
        )
        .bind(player.as_str())
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut p = decode_progress(player.as_str(), &row)?;
        let rows = sqlx::query(
            "SELECT drop_id, weight, source, event_id FROM player_drops WHERE player_id = $1
             ORDER BY seq DESC LIMIT $2",
        )
        .bind(player.as_str())
        .bind(MAX_RECENT_DROPS as i64)
        .fetch_all(&mut *conn)
        .await?;
        let mut drops = rows
            .iter()
            .map(|r| -> Result<Drop, StoreError> {
                Ok(Drop {
                    drop_id: r.try_get(0)?,
                    weight: r.try_get(1)?,
                    source: r.try_get(2)?,
                    event_id: r.try_get(3)?,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        drops.reverse();
        p.progress.drops = drops;
        Ok(Some(p))
    }

    async fn rewards(&self, player: &PlayerId) -> Result<Vec<RewardRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT reward_id, item, level, granted_at, event_id, receipt_id FROM rewards
             WHERE player_id = $1 ORDER BY level, reward_id",
        )
        .bind(player.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RewardRecord {
                    reward_id: r.try_get(0)?,
                    item: r.try_get(1)?,
                    level: r.try_get(2)?,
                    granted_at: r.try_get(3)?,
                    event_id: r.try_get(4)?,
                    receipt_id: r.try_get(5)?,
                })
            })
            .collect()
    }

    async fn claim(
        &self,
        player: &PlayerId,
        reward_id: &str,
        make: ReceiptMaker,
    ) -> Result<ClaimOutcome, StoreError> {
        let mut tx = self.pool.begin().await?;
        // The lock makes a concurrent second claim wait and then see this one's receipt.
        let row: Option<(String, Option<String>)> = sqlx::query_as(
            "SELECT item, receipt_id FROM rewards WHERE player_id = $1 AND reward_id = $2
             FOR UPDATE",
        )
        .bind(player.as_str())
        .bind(reward_id)
        .fetch_optional(&mut *tx)
        .await?;
        let outcome = match row {
            None => ClaimOutcome::NotEarned,
            Some((_, Some(receipt_id))) => load_receipt(&mut tx, &receipt_id)
                .await?
                .map(ClaimOutcome::AlreadyClaimed)
                .ok_or_else(|| StoreError::Corrupt(format!("receipt {receipt_id} missing")))?,
            Some((item, None)) => {
                let receipt = make(&item);
                sqlx::query(
                    "INSERT INTO receipts (receipt_id, player_id, reward_id, item, sig, timestamp)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&receipt.receipt_id)
                .bind(&receipt.player_id)
                .bind(reward_id)
                .bind(&receipt.item)
                .bind(&receipt.sig)
                .bind(receipt.timestamp)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE rewards SET receipt_id = $1 WHERE player_id = $2 AND reward_id = $3",
                )
                .bind(&receipt.receipt_id)
                .bind(player.as_str())
                .bind(reward_id)
                .execute(&mut *tx)
                .await?;
                ClaimOutcome::Claimed(receipt)
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn receipt(&self, receipt_id: &str) -> Result<Option<Receipt>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        load_receipt(&mut conn, receipt_id).await
    }
}
