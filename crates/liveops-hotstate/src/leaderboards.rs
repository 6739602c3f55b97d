//! The [`Leaderboards`] port: live rankings per window and period (`docs/api.md`), kept as
//! derived state that the leaderboard role rebuilds from the system of record.
//!
//! Exactly once: [`Leaderboards::apply`] takes log events with their `seq` and moves a cursor
//! stored *in the same hot state*, atomically with the score changes. Events at or below the
//! cursor are skipped, so a repeated or concurrent apply counts each event once. When the hot
//! state holds nothing (never built, or wiped), [`Leaderboards::cursor`] is `None` and `apply`
//! refuses with [`ApplyOutcome::NotBuilt`]: the caller rebuilds with [`Leaderboards::replace`],
//! which installs exact boards and the cursor they are exact up to, in one step.
//!
//! Released events (quarantined, then released by an operator) never pass through the log
//! consumer; they are numbered by the store in release order and reach the boards through
//! [`Leaderboards::apply_released`], which keeps a second cursor, the release cursor, the same
//! way. So a release counts once, and one the hot state missed (down at the time) is applied
//! when the leaderboard worker catches up.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use liveops_domain::window::{Calendar, Period, Window};
use liveops_domain::PlayerId;
use serde::Serialize;

use crate::error::HotStateError;

/// A row of a leaderboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// 1-based.
    pub rank: u64,
    pub player_id: PlayerId,
    pub score: i64,
}

/// One page of the current board, read in one step so `total` and `entries` agree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardPage {
    pub period: Period,
    pub total: u64,
    /// The latest `received_at` applied to this board; `None` while it is empty or was loaded.
    pub updated_at: Option<DateTime<Utc>>,
    pub entries: Vec<Entry>,
}

/// The final standings of an ended period, to be archived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedPeriod {
    pub period: Period,
    /// Every entry, by rank.
    pub entries: Vec<Entry>,
}

/// One log event as the boards see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardEvent {
    /// The event's position in the log; the cursor compares against it.
    pub seq: u64,
    pub player: PlayerId,
    /// The XP it grants (the score in every window).
    pub xp: i64,
    /// The server's receive time: windows use it (`docs/api.md`).
    pub received_at: DateTime<Utc>,
}

/// What an [`apply`](Leaderboards::apply) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyOutcome {
    Applied {
        /// Events above the cursor, now counted.
        counted: u64,
        /// Events at or below the cursor, skipped as already counted.
        skipped: u64,
        /// Periods an event was not counted in because they were already rolled over (one
        /// entry per event and period). Non-empty means rollover ran with too little grace.
        late: Vec<Period>,
    },
    /// The hot state holds no cursor (never built, or wiped): nothing was applied; rebuild first.
    NotBuilt,
}

/// Live leaderboards for the enabled windows. Implementations: [`crate::MemoryLeaderboards`]
/// (process memory) and [`crate::RedisLeaderboards`] (sorted sets, works on Redis Cluster).
#[async_trait]
pub trait Leaderboards: Send + Sync + 'static {
    /// How time is cut into periods.
    fn calendar(&self) -> &Calendar;

    /// The enabled windows (`LB_WINDOWS`), in [`Window::ALL`] order.
    fn windows(&self) -> Vec<Window>;

    fn is_enabled(&self, window: Window) -> bool {
        self.windows().contains(&window)
    }

    /// The period of `window` current at `now` (whether or not the window is enabled).
    fn period(&self, window: Window, now: DateTime<Utc>) -> Period {
        self.calendar().period_at(window, now)
    }

    /// Up to `limit` entries from 0-based position `offset` of the board current at `now`,
    /// with its period, total and last update.
    async fn page(
        &self,
        window: Window,
        now: DateTime<Utc>,
        offset: usize,
        limit: usize,
    ) -> Result<BoardPage, HotStateError>;

    /// The player's rank and score on the current board; `None` if they have no score there.
    async fn rank_of(
        &self,
        window: Window,
        now: DateTime<Utc>,
        player: &PlayerId,
    ) -> Result<Option<Entry>, HotStateError>;

    /// The player's entry with up to `k` entries above and `k` below; `None` without a score.
    async fn around(
        &self,
        window: Window,
        now: DateTime<Utc>,
        player: &PlayerId,
        k: usize,
    ) -> Result<Option<Vec<Entry>>, HotStateError>;

    /// The listed players that have a score on the current board, by rank, each once.
    async fn entries_for(
        &self,
        window: Window,
        now: DateTime<Utc>,
        players: &[PlayerId],
    ) -> Result<Vec<Entry>, HotStateError>;

    /// Number of players on the current board.
    async fn total(&self, window: Window, now: DateTime<Utc>) -> Result<u64, HotStateError>;

    /// A number that changes whenever `window`'s boards change, so a poller (the SSE stream)
    /// can skip unchanged boards. Not necessarily monotonic across a wipe.
    async fn version(&self, window: Window) -> Result<u64, HotStateError>;

    /// The last log `seq` the boards include; `None` when they hold nothing (rebuild them).
    async fn cursor(&self) -> Result<Option<u64>, HotStateError>;

    /// Adds each event above the cursor to the board of its period in every enabled window and
    /// moves the cursor to `upto` (>= every seq in `events`; events filtered out by the caller,
    /// such as an erased player's, still move it), all in one atomic step.
    async fn apply(&self, events: &[BoardEvent], upto: u64) -> Result<ApplyOutcome, HotStateError>;

    /// The last release number the boards include; `None` when they hold nothing.
    async fn released_cursor(&self) -> Result<Option<u64>, HotStateError>;

    /// Adds a released event (regardless of the log cursor: the log consumer never sees it) if
    /// `release` is above the release cursor, and moves that cursor to it, in one atomic step.
    /// Releases must be applied in release order. `counted` is 1 if it was added, `skipped` 1
    /// if the cursor was already there.
    ///
    /// `except` lists the windows whose board of the event's period an operator reset after the
    /// event (the store's `reset_after`): the event is not added there, as a rebuild would not
    /// add it either.
    async fn apply_released(
        &self,
        release: u64,
        event: &BoardEvent,
        except: &[Window],
    ) -> Result<ApplyOutcome, HotStateError>;

    /// Hands out every board whose period ended at or before `now`, with its final standings,
    /// and removes it; each ended period is handed out once, even to concurrent callers. Events
    /// for those periods are refused afterwards (reported as `late`), so pass `now` minus the
    /// longest expected delivery delay.
    async fn roll_over(&self, now: DateTime<Utc>) -> Result<Vec<FinishedPeriod>, HotStateError>;

    /// Empties the board of `window`'s period current at `now` (an operator reset).
    async fn reset(&self, window: Window, now: DateTime<Utc>) -> Result<(), HotStateError>;

    /// Erases the player from every board (GDPR); true if any board had them. Their events with
    /// `seq <= upto` (the log position the erasure covers) stay off the boards afterwards: an
    /// [`apply`](Self::apply) that read them before the erasure (in flight, perhaps in another
    /// process) skips them, atomically with its score changes. Later events count again.
    async fn remove_player(&self, player: &PlayerId, upto: u64) -> Result<bool, HotStateError>;

    /// Replaces everything with `boards` (period, per-player XP; a player listed twice gets the
    /// sum) and sets the cursor to `cursor` and the release cursor to `released`, atomically for
    /// readers and appliers: the rebuild from the system of record. Forgets past rollovers.
    /// Periods of disabled windows are ignored.
    async fn replace(
        &self,
        boards: Vec<(Period, Vec<(PlayerId, i64)>)>,
        cursor: u64,
        released: u64,
    ) -> Result<(), HotStateError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_serialises_in_camel_case() {
        let e = Entry {
            rank: 1,
            player_id: PlayerId::parse("alice").expect("a valid id"),
            score: 5,
        };
        let json = serde_json::to_string(&e).expect("an entry serialises");
        assert_eq!(json, r#"{"rank":1,"playerId":"alice","score":5}"#);
    }
}
