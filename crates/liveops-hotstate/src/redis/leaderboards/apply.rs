//! The exactly-once writes: a batch of log events with the log cursor, a released event with
//! the release cursor, and the erasure of a player, each atomic with what it must not race
//! (`leaderboard_apply.lua`, `leaderboard_apply_released.lua`, `leaderboard_erase.lua`).

use std::collections::HashMap;

use liveops_domain::window::{Period, Window};
use liveops_domain::PlayerId;

use super::codec::{corrupt, member};
use super::RedisLeaderboards;
use crate::error::HotStateError;
use crate::leaderboards::{ApplyOutcome, BoardEvent};

impl RedisLeaderboards {
    pub(super) async fn apply_batch(
        &self,
        events: &[BoardEvent],
        upto: u64,
    ) -> Result<ApplyOutcome, HotStateError> {
        let mut periods: Vec<Period> = Vec::new();
        let mut index: HashMap<(Window, i64), usize> = HashMap::new();
        let mut event_args: Vec<String> = Vec::with_capacity(events.len() * (4 + 3));
        for e in events {
            event_args.push(e.seq.to_string());
            event_args.push(e.player.as_str().to_string());
            event_args.push(e.xp.saturating_neg().to_string());
            event_args.push(e.received_at.timestamp_millis().to_string());
            for &w in &self.windows {
                let period = self.calendar.period_at(w, e.received_at);
                let n = periods.len();
                let i = *index
                    .entry((w, period.start.timestamp_millis()))
                    .or_insert_with(|| {
                        periods.push(period);
                        n
                    });
                event_args.push((i + 1).to_string());
            }
        }
        let mut inv = self.apply.prepare_invoke();
        inv.key(self.key("cursor"))
            .key(self.key("live"))
            .key(self.key("closed"))
            .key(self.key("ver"))
            .key(self.key("upd"))
            .key(self.key("erased"));
        for p in &periods {
            inv.key(self.board_key("board", p));
        }
        inv.arg(upto).arg(periods.len()).arg(self.windows.len());
        for p in &periods {
            inv.arg(p.window.as_str())
                .arg(member(p))
                .arg(p.end.timestamp_millis());
        }
        for a in &event_args {
            inv.arg(a);
        }
        let out: Vec<i64> = self.conn.script(&inv).await?;
        match out.as_slice() {
            [-1] => Ok(ApplyOutcome::NotBuilt),
            [counted, skipped, late @ ..] => {
                let mut late_periods = Vec::new();
                for pair in late.chunks(2) {
                    if let [p, n] = pair {
                        if let Some(period) = periods.get((*p as usize).wrapping_sub(1)) {
                            late_periods
                                .extend(std::iter::repeat_n(period.clone(), (*n).max(0) as usize));
                        }
                    }
                }
                Ok(ApplyOutcome::Applied {
                    counted: (*counted).max(0) as u64,
                    skipped: (*skipped).max(0) as u64,
                    late: late_periods,
                })
            }
            other => Err(corrupt("apply script answer", format!("{other:?}"))),
        }
    }

    pub(super) async fn apply_release(
        &self,
        release: u64,
        event: &BoardEvent,
        except: &[Window],
    ) -> Result<ApplyOutcome, HotStateError> {
        let periods: Vec<Period> = self
            .windows
            .iter()
            .filter(|w| !except.contains(w))
            .map(|w| self.calendar.period_at(*w, event.received_at))
            .collect();
        let mut inv = self.apply_released.prepare_invoke();
        inv.key(self.key("cursor"))
            .key(self.key("released"))
            .key(self.key("live"))
            .key(self.key("closed"))
            .key(self.key("ver"))
            .key(self.key("upd"));
        for p in &periods {
            inv.key(self.board_key("board", p));
        }
        inv.arg(release)
            .arg(event.player.as_str())
            .arg(event.xp.saturating_neg().to_string())
            .arg(event.received_at.timestamp_millis());
        for p in &periods {
            inv.arg(p.window.as_str())
                .arg(member(p))
                .arg(p.end.timestamp_millis());
        }
        let out: Vec<i64> = self.conn.script(&inv).await?;
        match out.as_slice() {
            [-1] => Ok(ApplyOutcome::NotBuilt),
            [0] => Ok(ApplyOutcome::Applied {
                counted: 0,
                skipped: 1,
                late: Vec::new(),
            }),
            [1, late @ ..] => Ok(ApplyOutcome::Applied {
                counted: 1,
                skipped: 0,
                late: late
                    .iter()
                    .filter_map(|i| periods.get((*i as usize).wrapping_sub(1)).cloned())
                    .collect(),
            }),
            other => Err(corrupt(
                "apply-released script answer",
                format!("{other:?}"),
            )),
        }
    }

    pub(super) async fn erase_player(
        &self,
        player: &PlayerId,
        upto: u64,
    ) -> Result<bool, HotStateError> {
        // The tombstone first, then the boards as they are after it: an apply before the
        // tombstone is in those boards and is removed below, an apply after it skips the player.
        let mut inv = self.erase.prepare_invoke();
        inv.key(self.key("erased"))
            .key(self.key("cursor"))
            .arg(player.as_str())
            .arg(upto);
        self.conn.script::<()>(&inv).await?;
        let live = self.live().await?;
        if live.is_empty() {
            return Ok(false);
        }
        let mut pipe = redis::pipe();
        for p in &live {
            pipe.cmd("ZREM")
                .arg(self.board_key("board", p))
                .arg(player.as_str());
        }
        let removed: Vec<u64> = self.conn.pipe(&pipe).await?;
        let mut touched: Vec<Window> = live
            .iter()
            .zip(&removed)
            .filter(|(_, n)| **n > 0)
            .map(|(p, _)| p.window)
            .collect();
        touched.dedup();
        if touched.is_empty() {
            return Ok(false);
        }
        let mut pipe = redis::pipe();
        for w in &touched {
            pipe.cmd("HINCRBY")
                .arg(self.key("ver"))
                .arg(w.as_str())
                .arg(1)
                .ignore();
        }
        self.conn.pipe::<()>(&pipe).await?;
        Ok(true)
    }
}
