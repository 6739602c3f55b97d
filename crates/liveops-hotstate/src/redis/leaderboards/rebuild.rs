//! The rebuild from the system of record (boards written aside under scratch keys, then swapped
//! in with both cursors by `leaderboard_commit.lua`) and the operator reset of one board.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use liveops_domain::window::{Period, Window};
use liveops_domain::PlayerId;

use super::codec::member;
use super::{RedisLeaderboards, CHUNK, LEFTOVER_TTL_MS, PIPELINE};
use crate::error::HotStateError;
use crate::leaderboards::Leaderboards;

impl RedisLeaderboards {
    pub(super) async fn replace_all(
        &self,
        boards: Vec<(Period, Vec<(PlayerId, i64)>)>,
        cursor: u64,
        released: u64,
    ) -> Result<(), HotStateError> {
        // A token per rebuild, so two rebuilding processes never write the same scratch keys.
        let token = format!(
            "{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        let mut built: Vec<(String, Period)> = Vec::new();
        for (period, rows) in boards {
            if !self.is_enabled(period.window) {
                continue;
            }
            let tmp = self.board_key(&format!("tmp:{token}"), &period);
            self.write_board(&tmp, rows).await?;
            built.push((tmp, period));
        }
        let old = self.live().await?;
        let mut inv = self.commit.prepare_invoke();
        inv.key(self.key("cursor"))
            .key(self.key("released"))
            .key(self.key("live"))
            .key(self.key("closed"))
            .key(self.key("ver"))
            .key(self.key("upd"));
        for p in &old {
            inv.key(self.board_key("board", p));
        }
        for (tmp, p) in &built {
            inv.key(tmp).key(self.board_key("board", p));
        }
        inv.arg(cursor)
            .arg(released)
            .arg(old.len())
            .arg(built.len());
        for (_, p) in &built {
            inv.arg(member(p)).arg(p.end.timestamp_millis());
        }
        for w in &self.windows {
            inv.arg(w.as_str());
        }
        self.conn.script::<i64>(&inv).await?;
        Ok(())
    }

    /// Writes `rows` (summed per player) into `key` with a TTL, in pipelined ZADD chunks.
    async fn write_board(
        &self,
        key: &str,
        rows: Vec<(PlayerId, i64)>,
    ) -> Result<(), HotStateError> {
        let mut sums: HashMap<PlayerId, i64> = HashMap::with_capacity(rows.len());
        for (player, xp) in rows {
            let s = sums.entry(player).or_insert(0);
            *s = s.saturating_add(xp);
        }
        self.conn.query::<()>(redis::cmd("DEL").arg(key)).await?;
        let sums: Vec<(PlayerId, i64)> = sums.into_iter().collect();
        for group in sums.chunks(CHUNK * PIPELINE) {
            let mut pipe = redis::pipe();
            for chunk in group.chunks(CHUNK) {
                let cmd = pipe.cmd("ZADD").arg(key);
                for (player, xp) in chunk {
                    cmd.arg(xp.saturating_neg().to_string())
                        .arg(player.as_str());
                }
                cmd.ignore();
            }
            pipe.cmd("PEXPIRE").arg(key).arg(LEFTOVER_TTL_MS).ignore();
            self.conn.pipe::<()>(&pipe).await?;
        }
        Ok(())
    }

    pub(super) async fn reset_board(
        &self,
        window: Window,
        now: DateTime<Utc>,
    ) -> Result<(), HotStateError> {
        let period = self.period(window, now);
        let mut pipe = redis::pipe();
        pipe.cmd("DEL")
            .arg(self.board_key("board", &period))
            .ignore();
        pipe.cmd("HDEL")
            .arg(self.key("upd"))
            .arg(member(&period))
            .ignore();
        pipe.cmd("HINCRBY")
            .arg(self.key("ver"))
            .arg(window.as_str())
            .arg(1)
            .ignore();
        self.conn.pipe(&pipe).await
    }
}
