//! The read side: a page of the current board, a player's rank, their neighbourhood, a friends
//! board, each in one round trip (a pipeline or a script).

use chrono::{DateTime, TimeZone, Utc};
use liveops_domain::window::Window;
use liveops_domain::PlayerId;
use redis::Value;

use super::codec::{corrupt, entries, member, xp_of};
use super::RedisLeaderboards;
use crate::error::HotStateError;
use crate::leaderboards::{BoardPage, Entry, Leaderboards};

impl RedisLeaderboards {
    pub(super) async fn read_page(
        &self,
        window: Window,
        now: DateTime<Utc>,
        offset: usize,
        limit: usize,
    ) -> Result<BoardPage, HotStateError> {
        let period = self.period(window, now);
        if !self.is_enabled(window) {
            return Ok(BoardPage {
                period,
                total: 0,
                updated_at: None,
                entries: Vec::new(),
            });
        }
        let key = self.board_key("board", &period);
        let first = offset as u64;
        let last = first.saturating_add(limit as u64).saturating_sub(1);
        let mut pipe = redis::pipe();
        pipe.cmd("ZCARD").arg(&key);
        pipe.cmd("HGET").arg(self.key("upd")).arg(member(&period));
        // `limit = 0` would make the stop index -1 (the end of the set): skip the range.
        if limit > 0 {
            pipe.cmd("ZRANGE")
                .arg(&key)
                .arg(first.min(i64::MAX as u64))
                .arg(last.min(i64::MAX as u64))
                .arg("WITHSCORES");
        }
        let mut answer: Vec<Value> = self.conn.pipe(&pipe).await?;
        let rows: Vec<(String, String)> = if limit > 0 {
            let v = answer.pop().unwrap_or(Value::Nil);
            redis::from_redis_value(&v).map_err(|e| corrupt("ZRANGE", e))?
        } else {
            Vec::new()
        };
        let (total, updated): (u64, Option<i64>) =
            redis::from_redis_value(&Value::Array(answer)).map_err(|e| corrupt("ZCARD", e))?;
        Ok(BoardPage {
            updated_at: updated.and_then(|ms| Utc.timestamp_millis_opt(ms).single()),
            total,
            entries: entries(first, rows)?,
            period,
        })
    }

    pub(super) async fn read_rank(
        &self,
        window: Window,
        now: DateTime<Utc>,
        player: &PlayerId,
    ) -> Result<Option<Entry>, HotStateError> {
        if !self.is_enabled(window) {
            return Ok(None);
        }
        let key = self.board_key("board", &self.period(window, now));
        let mut pipe = redis::pipe();
        pipe.cmd("ZRANK").arg(&key).arg(player.as_str());
        pipe.cmd("ZSCORE").arg(&key).arg(player.as_str());
        let (rank, score): (Option<u64>, Option<String>) = self.conn.pipe(&pipe).await?;
        match (rank, score) {
            (Some(rank), Some(score)) => Ok(Some(Entry {
                rank: rank + 1,
                player_id: player.clone(),
                score: xp_of(&score)?,
            })),
            _ => Ok(None),
        }
    }

    pub(super) async fn read_around(
        &self,
        window: Window,
        now: DateTime<Utc>,
        player: &PlayerId,
        k: usize,
    ) -> Result<Option<Vec<Entry>>, HotStateError> {
        if !self.is_enabled(window) {
            return Ok(None);
        }
        let key = self.board_key("board", &self.period(window, now));
        // Lua prints numbers with 14 significant digits: keep `k` well inside that.
        let k = (k as u64).min(1 << 40);
        let found: Option<(u64, Vec<(String, String)>)> = self
            .conn
            .script(self.around.key(&key).arg(player.as_str()).arg(k))
            .await?;
        found.map(|(first, rows)| entries(first, rows)).transpose()
    }

    pub(super) async fn read_entries_for(
        &self,
        window: Window,
        now: DateTime<Utc>,
        players: &[PlayerId],
    ) -> Result<Vec<Entry>, HotStateError> {
        if !self.is_enabled(window) || players.is_empty() {
            return Ok(Vec::new());
        }
        let key = self.board_key("board", &self.period(window, now));
        let mut pipe = redis::pipe();
        for p in players {
            pipe.cmd("ZRANK").arg(&key).arg(p.as_str());
            pipe.cmd("ZSCORE").arg(&key).arg(p.as_str());
        }
        let answer: Vec<Value> = self.conn.pipe(&pipe).await?;
        let mut out = Vec::new();
        for (p, pair) in players.iter().zip(answer.chunks(2)) {
            let (rank, score): (Option<u64>, Option<String>) =
                redis::from_redis_value(&Value::Array(pair.to_vec()))
                    .map_err(|e| corrupt("ZRANK", e))?;
            if let (Some(rank), Some(score)) = (rank, score) {
                out.push(Entry {
                    rank: rank + 1,
                    player_id: p.clone(),
                    score: xp_of(&score)?,
                });
            }
        }
        out.sort_unstable_by_key(|e| e.rank);
        out.dedup_by_key(|e| e.rank);
        Ok(out)
    }
}
