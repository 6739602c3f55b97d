//! [`RedisLeaderboards`]: one sorted set per (window, period), exact integer scores, the batch
//! apply and its cursor in one Lua script.
//!
//! Ordering (`docs/api.md`): members are player ids and scores are `-xp`, so an ascending
//! ZRANGE lists the highest score first and, for equal scores, Redis's lexicographic member
//! order puts player ids ascending; rank = ZRANK + 1. Scores are doubles in Redis: exact for
//! integers up to 2^53, far above any XP total (`MAX_DELTA_XP` is 10^4 per event). Numbers
//! travel to and from the scripts as strings, never through Lua's `tostring` (14 digits).
//!
//! Keys, all under the hash tag `{<ns>:lb}` so that one script can touch every board and the
//! cursor atomically on Redis Cluster too. That keeps all boards on one node: acceptable
//! because they are small (three windows of at most a few million members each) and the
//! per-event work is a few ZINCRBYs; the high-volume keys (idempotency, rate limits) are not
//! tagged and spread over the cluster.
//! - `board:<window>:<start ms>` (ZSET): a period's board;
//! - `live` (ZSET): `<window>|<start ms>|<end ms>|<period id>` scored by end ms, the periods
//!   with a board, so rollover finds the ended ones with one range query;
//! - `closed` (HASH): window -> ms; periods ending at or before it were handed out by rollover
//!   and refuse late events (like the memory implementation's `closed_until`);
//! - `cursor` (STRING): the last log seq the boards include; absent = nothing built;
//! - `released` (STRING): the last release number the boards include, set with `cursor` by a
//!   rebuild; boards without it count as not built;
//! - `erased` (HASH): player -> the log seq an erasure covers; the apply script skips their
//!   events up to it (an apply in flight during the erasure) and drops it once the cursor passes;
//! - `ver` (HASH): window -> change counter; `upd` (HASH): live member -> latest receive ms;
//! - `ended:<window>:<start ms>`: a board claimed by rollover, read out and deleted;
//! - `tmp:<token>:<window>:<start ms>`: a board being rebuilt, renamed into place at commit.
//!
//! The Lua scripts are in `src/redis/lua/leaderboard_*.lua`, each saying its KEYS and ARGV. The
//! code is split by what it does: [`codec`] (members, scores, entries), [`reads`] (pages, ranks),
//! [`apply`] (the exactly-once writes and erasures), [`rollover`] (ended periods), [`rebuild`]
//! (the rebuild from the system of record and the operator reset).

mod apply;
mod codec;
mod reads;
mod rebuild;
mod rollover;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use liveops_domain::window::{Calendar, Period, Window};
use liveops_domain::PlayerId;
use redis::Script;

use super::RedisConn;
use crate::error::HotStateError;
use crate::leaderboards::{
    ApplyOutcome, BoardEvent, BoardPage, Entry, FinishedPeriod, Leaderboards,
};
use codec::{corrupt, parse_member};

/// Members per ZADD / ZRANGE when moving whole boards.
const CHUNK: usize = 2000;
/// Commands per pipeline when loading a board.
const PIPELINE: usize = 10;
/// A claimed or half-built board left behind by a crashed process disappears after this.
const LEFTOVER_TTL_MS: u64 = 3_600_000;

/// Live boards in Redis; see the module doc for the key layout.
pub struct RedisLeaderboards {
    conn: RedisConn,
    /// `{<ns>:lb}`: the hash tag every key of the boards starts with.
    tag: String,
    calendar: Calendar,
    /// Enabled windows in [`Window::ALL`] order, without duplicates.
    windows: Vec<Window>,
    /// The scripts of `src/redis/lua/leaderboard_*.lua`; each is sent once per Redis node, then
    /// called by its SHA-1 (EVALSHA).
    apply: Script,
    apply_released: Script,
    erase: Script,
    roll_over: Script,
    commit: Script,
    around: Script,
}

impl RedisLeaderboards {
    pub(crate) fn new(
        conn: RedisConn,
        namespace: &str,
        calendar: Calendar,
        windows: Vec<Window>,
    ) -> Self {
        let windows = Window::ALL
            .into_iter()
            .filter(|w| windows.contains(w))
            .collect();
        Self {
            conn,
            tag: format!("{{{namespace}:lb}}"),
            calendar,
            windows,
            apply: Script::new(include_str!("../lua/leaderboard_apply.lua")),
            apply_released: Script::new(include_str!("../lua/leaderboard_apply_released.lua")),
            erase: Script::new(include_str!("../lua/leaderboard_erase.lua")),
            roll_over: Script::new(include_str!("../lua/leaderboard_roll_over.lua")),
            commit: Script::new(include_str!("../lua/leaderboard_commit.lua")),
            around: Script::new(include_str!("../lua/leaderboard_around.lua")),
        }
    }

    fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.tag)
    }

    fn board_key(&self, kind: &str, p: &Period) -> String {
        format!(
            "{}:{kind}:{}:{}",
            self.tag,
            p.window.as_str(),
            p.start.timestamp_millis()
        )
    }

    /// The log cursor and the release cursor; `None` unless both are there (boards without a
    /// release cursor count as not built, and are rebuilt).
    async fn cursors(&self) -> Result<Option<(u64, u64)>, HotStateError> {
        let (log, released): (Option<String>, Option<String>) = self
            .conn
            .query(
                redis::cmd("MGET")
                    .arg(self.key("cursor"))
                    .arg(self.key("released")),
            )
            .await?;
        let parse = |what: &str, s: String| s.parse::<u64>().map_err(|e| corrupt(what, e));
        match (log, released) {
            (Some(log), Some(released)) => Ok(Some((
                parse("leaderboard cursor", log)?,
                parse("leaderboard release cursor", released)?,
            ))),
            _ => Ok(None),
        }
    }

    /// The live members currently tracked, as periods.
    async fn live(&self) -> Result<Vec<Period>, HotStateError> {
        let members: Vec<String> = self
            .conn
            .query(redis::cmd("ZRANGE").arg(self.key("live")).arg(0).arg(-1))
            .await?;
        Ok(members.iter().filter_map(|m| parse_member(m)).collect())
    }
}

#[async_trait]
impl Leaderboards for RedisLeaderboards {
    fn calendar(&self) -> &Calendar {
        &self.calendar
    }

    fn windows(&self) -> Vec<Window> {
        self.windows.clone()
    }

    async fn page(
        &self,
        window: Window,
        now: DateTime<Utc>,
        offset: usize,
        limit: usize,
    ) -> Result<BoardPage, HotStateError> {
        self.read_page(window, now, offset, limit).await
    }

    async fn rank_of(
        &self,
        window: Window,
        now: DateTime<Utc>,
        player: &PlayerId,
    ) -> Result<Option<Entry>, HotStateError> {
        self.read_rank(window, now, player).await
    }

    async fn around(
        &self,
        window: Window,
        now: DateTime<Utc>,
        player: &PlayerId,
        k: usize,
    ) -> Result<Option<Vec<Entry>>, HotStateError> {
        self.read_around(window, now, player, k).await
    }

    async fn entries_for(
        &self,
        window: Window,
        now: DateTime<Utc>,
        players: &[PlayerId],
    ) -> Result<Vec<Entry>, HotStateError> {
        self.read_entries_for(window, now, players).await
    }

    async fn total(&self, window: Window, now: DateTime<Utc>) -> Result<u64, HotStateError> {
        if !self.is_enabled(window) {
            return Ok(0);
        }
        let key = self.board_key("board", &self.period(window, now));
        self.conn.query(redis::cmd("ZCARD").arg(key)).await
    }

    async fn version(&self, window: Window) -> Result<u64, HotStateError> {
        let v: Option<u64> = self
            .conn
            .query(redis::cmd("HGET").arg(self.key("ver")).arg(window.as_str()))
            .await?;
        Ok(v.unwrap_or(0))
    }

    async fn cursor(&self) -> Result<Option<u64>, HotStateError> {
        Ok(self.cursors().await?.map(|(log, _)| log))
    }

    async fn released_cursor(&self) -> Result<Option<u64>, HotStateError> {
        Ok(self.cursors().await?.map(|(_, released)| released))
    }

    async fn apply(&self, events: &[BoardEvent], upto: u64) -> Result<ApplyOutcome, HotStateError> {
        self.apply_batch(events, upto).await
    }

    async fn apply_released(
        &self,
        release: u64,
        event: &BoardEvent,
        except: &[Window],
    ) -> Result<ApplyOutcome, HotStateError> {
        self.apply_release(release, event, except).await
    }

    async fn roll_over(&self, now: DateTime<Utc>) -> Result<Vec<FinishedPeriod>, HotStateError> {
        self.claim_ended(now).await
    }

    async fn reset(&self, window: Window, now: DateTime<Utc>) -> Result<(), HotStateError> {
        self.reset_board(window, now).await
    }

    async fn remove_player(&self, player: &PlayerId, upto: u64) -> Result<bool, HotStateError> {
        self.erase_player(player, upto).await
    }

    async fn replace(
        &self,
        boards: Vec<(Period, Vec<(PlayerId, i64)>)>,
        cursor: u64,
        released: u64,
    ) -> Result<(), HotStateError> {
        self.replace_all(boards, cursor, released).await
    }
}
