//! Rollover: ended periods are claimed by one caller (`leaderboard_roll_over.lua`), read out
//! in chunks and deleted; a claimed board left by a crashed reader expires.

use chrono::{DateTime, Utc};
use liveops_domain::window::Period;

use super::codec::{entries, parse_member};
use super::{RedisLeaderboards, CHUNK, LEFTOVER_TTL_MS};
use crate::error::HotStateError;
use crate::leaderboards::{Entry, FinishedPeriod};

impl RedisLeaderboards {
    pub(super) async fn claim_ended(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<FinishedPeriod>, HotStateError> {
        let now_ms = now.timestamp_millis();
        let candidates: Vec<String> = self
            .conn
            .query(
                redis::cmd("ZRANGEBYSCORE")
                    .arg(self.key("live"))
                    .arg("-inf")
                    .arg(now_ms),
            )
            .await?;
        let periods: Vec<Option<Period>> = candidates.iter().map(|m| parse_member(m)).collect();
        let mut inv = self.roll_over.prepare_invoke();
        inv.key(self.key("live"))
            .key(self.key("closed"))
            .key(self.key("ver"))
            .key(self.key("upd"));
        for (m, p) in candidates.iter().zip(&periods) {
            match p {
                Some(p) => inv
                    .key(self.board_key("board", p))
                    .key(self.board_key("ended", p)),
                // An unreadable member still gets claimed (so it stops coming back), on a
                // key of its own that holds nothing.
                None => inv
                    .key(self.key(&format!("bad:{m}")))
                    .key(self.key(&format!("bad-ended:{m}"))),
            };
        }
        inv.arg(now_ms).arg(candidates.len());
        for m in &candidates {
            inv.arg(m);
        }
        for w in &self.windows {
            inv.arg(w.as_str());
        }
        inv.arg(LEFTOVER_TTL_MS);
        let claimed: Vec<usize> = self.conn.script(&inv).await?;
        let mut finished = Vec::new();
        for j in claimed {
            match periods.get(j.wrapping_sub(1)).cloned().flatten() {
                Some(period) => {
                    let ended = self.board_key("ended", &period);
                    let entries = self.read_board(&ended).await?;
                    self.conn.query::<()>(redis::cmd("DEL").arg(&ended)).await?;
                    finished.push(FinishedPeriod { period, entries });
                }
                None => tracing::warn!(
                    member = candidates.get(j.wrapping_sub(1)).map(String::as_str),
                    "dropped an unreadable leaderboard period"
                ),
            }
        }
        Ok(finished)
    }

    /// Reads a whole board in chunks, by rank.
    async fn read_board(&self, key: &str) -> Result<Vec<Entry>, HotStateError> {
        let mut out = Vec::new();
        loop {
            let first = out.len() as u64;
            let rows: Vec<(String, String)> = self
                .conn
                .query(
                    redis::cmd("ZRANGE")
                        .arg(key)
                        .arg(first)
                        .arg(first + CHUNK as u64 - 1)
                        .arg("WITHSCORES"),
                )
                .await?;
            let n = rows.len();
            out.extend(entries(first, rows)?);
            if n < CHUNK {
                return Ok(out);
            }
        }
    }
}
