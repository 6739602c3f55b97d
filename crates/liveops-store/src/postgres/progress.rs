//! [`ProgressStore`] on PostgreSQL: progression applied exactly once, rewards, claims, receipts.
//!
//! Exactly once, even with two processes applying for the same consumer: the transaction first
//! locks the consumer's row in `consumer_offsets` (an upsert, which also creates it), so a
//! second applier waits for the first to commit and then reads the cursor it left; events at or
//! below that cursor are skipped. The cursor moves in the same transaction as the effects.
//!
//! A player's progress row changes in one upsert that adds the batch's share in SQL (see
//! [`fold_into_progress`]), so concurrent writers (this apply, the release of a quarantined
//! event) never overwrite each other's sums; each locks its rows in player order.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use liveops_domain::progression::{gain, Drop, Progress, MAX_RECENT_DROPS, XP_PER_LEVEL};
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
///
/// The progress rows change in one upsert that adds each player's share of the batch in SQL
/// (XP, boss kills, the latest time) and returns the new XP; the XP before the batch is that
/// minus the share, from which the rewards are worked out event by event. One statement does
/// what reading the rows first (`SELECT ... FOR UPDATE`), creating the missing ones and writing
/// them back would do in three, with about half the work per event for PostgreSQL. The
/// upsert locks each row it changes, in player order (the input is sorted), like every other
/// writer of `player_progress`, so two writers cannot deadlock.
pub(super) async fn fold_into_progress(
    conn: &mut PgConnection,
    events: &[&LoggedEvent],
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    // Each player's share of the batch, folded by the domain's own rules from zero, and the
    // drops, which go to their own append-only table so the progress row stays small.
    let mut shares: BTreeMap<&str, (Progress, DateTime<Utc>)> = BTreeMap::new();
    let mut drops = DropRows::default();
    for le in events {
        let player = le.event.player_id.as_str();
        let (share, at) = shares
            .entry(player)
            .or_insert_with(|| (Progress::new(), le.received_at));
        share.apply(&le.event);
        *at = (*at).max(le.received_at);
        for d in share.drops.drain(..) {
            drops.player_id.push(player.to_string());
            drops.seq.push(seq_bound(le.seq));
            drops.event_id.push(d.event_id);
            drops.drop_id.push(pg_text(&d.drop_id));
            drops.weight.push(d.weight);
            drops.source.push(pg_text(&d.source));
        }
    }
    let (mut ids, mut xp, mut kills, mut at) = (
        Vec::with_capacity(shares.len()),
        Vec::with_capacity(shares.len()),
        Vec::with_capacity(shares.len()),
        Vec::with_capacity(shares.len()),
    );
    for (player, (share, last)) in &shares {
        ids.push(*player);
        xp.push(share.xp);
        // The merge reads the keys as text (`json_each`), which cannot hold a NUL: a boss id
        // with one is counted under its display copy, or the batch would fail for ever.
        let mut share_kills: BTreeMap<String, u64> = BTreeMap::new();
        for (boss, n) in &share.boss_kills {
            *share_kills.entry(pg_text(boss)).or_default() += n;
        }
        kills.push(
            serde_json::to_string(&share_kills).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        );
        at.push(*last);
    }
    // `level` is `level_for(xp)` written in SQL; XP saturates like `Progress::apply`.
    let new_xp: HashMap<String, i64> = sqlx::query_as(
        "INSERT INTO player_progress AS p (player_id, xp, level, boss_kills, updated_at)
         SELECT u.player_id, u.xp, GREATEST(u.xp, 0) / $5 + 1, u.kills::json, u.at
         FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::timestamptz[])
           AS u(player_id, xp, kills, at)
         ORDER BY u.player_id
         ON CONFLICT (player_id) DO UPDATE SET
           xp = LEAST(p.xp::numeric + excluded.xp, 9223372036854775807)::int8,
           level = GREATEST(LEAST(p.xp::numeric + excluded.xp, 9223372036854775807), 0)::int8
                   / $5 + 1,
           boss_kills = CASE WHEN excluded.boss_kills::text = '{}' THEN p.boss_kills ELSE (
             SELECT json_object_agg(k, n ORDER BY k) FROM (
               SELECT k, sum(n)::int8 AS n FROM (
                 SELECT key AS k, value::text::int8 AS n FROM json_each(p.boss_kills)
                 UNION ALL
                 SELECT key, value::text::int8 FROM json_each(excluded.boss_kills)) AS both_
               GROUP BY k) AS summed) END,
           updated_at = GREATEST(p.updated_at, excluded.updated_at)
         RETURNING player_id, xp",
    )
    .bind(&ids)
    .bind(&xp)
    .bind(&kills)
    .bind(&at)
    .bind(XP_PER_LEVEL)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();

    // The rewards, event by event from the XP each player had before the batch, so each is
    // granted by the event that reached its level.
    let mut xp_before: HashMap<&str, i64> = HashMap::with_capacity(shares.len());
    for (player, (share, _)) in &shares {
        let now = *new_xp.get(*player).ok_or_else(|| {
            StoreError::Database(format!("the progress upsert did not return {player}"))
        })?;
        // Saturated, the XP before cannot be told from the sum; no level is crossed up there.
        let before = if now == i64::MAX { now } else { now - share.xp };
        xp_before.insert(player, before);
    }
    let mut rewards = RewardRows::default();
    for le in events {
        let player = le.event.player_id.as_str();
        let Some(xp) = xp_before.get_mut(player) else {
            continue;
        };
        let (after, earned) = gain(*xp, &le.event.kind);
        *xp = after;
        for reward in earned {
            rewards.player_id.push(player.to_string());
            rewards.reward_id.push(reward.reward_id);
            rewards.item.push(reward.item.to_string());
            rewards.level.push(reward.level);
            rewards.granted_at.push(le.received_at);
            rewards.event_id.push(le.event.event_id.to_string());
        }
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
    Ok(())
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
                    event_id: StoreError::stored_id("rewards.event_id", r.try_get(4)?)?,
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
