//! The [`Leaderboards`] port over [`MemoryLeaderboards`]: the cursors that make an apply count
//! each log event and each release once, and the erasures an apply in flight must respect.
//!
//! Every writer through the port takes the cursor mutex first and holds it for its whole step,
//! so a batch and the cursor move it to are one step for other writers; the window locks are
//! taken inside it, one at a time (see [`super::boards`]). Readers never take the cursor mutex.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use liveops_domain::window::{Calendar, Period, Window};
use liveops_domain::PlayerId;

use super::boards::MemoryLeaderboards;
use crate::error::HotStateError;
use crate::leaderboards::{
    ApplyOutcome, BoardEvent, BoardPage, Entry, FinishedPeriod, Leaderboards,
};

/// The last log seq and the last release number the boards include.
#[derive(Debug, Clone, Copy)]
pub(super) struct Cursors {
    pub(super) log: u64,
    pub(super) released: u64,
}

#[async_trait]
impl Leaderboards for MemoryLeaderboards {
    fn calendar(&self) -> &Calendar {
        MemoryLeaderboards::calendar(self)
    }

    fn windows(&self) -> Vec<Window> {
        MemoryLeaderboards::windows(self)
    }

    fn is_enabled(&self, window: Window) -> bool {
        MemoryLeaderboards::is_enabled(self, window)
    }

    async fn page(
        &self,
        window: Window,
        now: DateTime<Utc>,
        offset: usize,
        limit: usize,
    ) -> Result<BoardPage, HotStateError> {
        Ok(MemoryLeaderboards::page(self, window, now, offset, limit))
    }

    async fn rank_of(
        &self,
        window: Window,
        now: DateTime<Utc>,
        player: &PlayerId,
    ) -> Result<Option<Entry>, HotStateError> {
        Ok(MemoryLeaderboards::rank_of(self, window, now, player))
    }

    async fn around(
        &self,
        window: Window,
        now: DateTime<Utc>,
        player: &PlayerId,
        k: usize,
    ) -> Result<Option<Vec<Entry>>, HotStateError> {
        Ok(MemoryLeaderboards::around(self, window, now, player, k))
    }

    async fn entries_for(
        &self,
        window: Window,
        now: DateTime<Utc>,
        players: &[PlayerId],
    ) -> Result<Vec<Entry>, HotStateError> {
        Ok(MemoryLeaderboards::entries_for(self, window, now, players))
    }

    async fn total(&self, window: Window, now: DateTime<Utc>) -> Result<u64, HotStateError> {
        Ok(MemoryLeaderboards::total(self, window, now))
    }

    async fn version(&self, window: Window) -> Result<u64, HotStateError> {
        Ok(MemoryLeaderboards::version(self, window))
    }

    async fn cursor(&self) -> Result<Option<u64>, HotStateError> {
        Ok(self.cursor.lock().map(|c| c.log))
    }

    async fn released_cursor(&self) -> Result<Option<u64>, HotStateError> {
        Ok(self.cursor.lock().map(|c| c.released))
    }

    async fn apply(&self, events: &[BoardEvent], upto: u64) -> Result<ApplyOutcome, HotStateError> {
        let mut cursor = self.cursor.lock();
        let Some(c) = cursor.as_mut() else {
            return Ok(ApplyOutcome::NotBuilt);
        };
        let at = c.log;
        let mut erased = self.erased.lock();
        let (mut counted, mut skipped, mut late) = (0, 0, Vec::new());
        for e in events {
            let is_erased = || erased.get(&e.player).is_some_and(|upto| e.seq <= *upto);
            if e.seq <= at || is_erased() {
                skipped += 1;
                continue;
            }
            counted += 1;
            late.extend(MemoryLeaderboards::apply(
                self,
                &e.player,
                e.xp,
                e.received_at,
            ));
        }
        c.log = at.max(upto);
        let log = c.log;
        erased.retain(|_, upto| *upto > log);
        Ok(ApplyOutcome::Applied {
            counted,
            skipped,
            late,
        })
    }

    async fn apply_released(
        &self,
        release: u64,
        event: &BoardEvent,
        except: &[Window],
    ) -> Result<ApplyOutcome, HotStateError> {
        let mut cursor = self.cursor.lock();
        let Some(c) = cursor.as_mut() else {
            return Ok(ApplyOutcome::NotBuilt);
        };
        if release <= c.released {
            return Ok(ApplyOutcome::Applied {
                counted: 0,
                skipped: 1,
                late: Vec::new(),
            });
        }
        c.released = release;
        let late = self.apply_except(&event.player, event.xp, event.received_at, except);
        Ok(ApplyOutcome::Applied {
            counted: 1,
            skipped: 0,
            late,
        })
    }

    async fn roll_over(&self, now: DateTime<Utc>) -> Result<Vec<FinishedPeriod>, HotStateError> {
        Ok(MemoryLeaderboards::roll_over(self, now))
    }

    async fn reset(&self, window: Window, now: DateTime<Utc>) -> Result<(), HotStateError> {
        let _cursor = self.cursor.lock();
        MemoryLeaderboards::reset(self, window, now);
        Ok(())
    }

    async fn remove_player(&self, player: &PlayerId, upto: u64) -> Result<bool, HotStateError> {
        let cursor = self.cursor.lock();
        if cursor.is_none_or(|c| upto > c.log) {
            let mut erased = self.erased.lock();
            let covered = erased.entry(player.clone()).or_insert(upto);
            *covered = (*covered).max(upto);
        }
        Ok(MemoryLeaderboards::remove_player(self, player))
    }

    async fn replace(
        &self,
        boards: Vec<(Period, Vec<(PlayerId, i64)>)>,
        cursor: u64,
        released: u64,
    ) -> Result<(), HotStateError> {
        let mut at = self.cursor.lock();
        self.clear_all();
        for (period, rows) in boards {
            self.load(period, rows);
        }
        *at = Some(Cursors {
            log: cursor,
            released,
        });
        Ok(())
    }
}
