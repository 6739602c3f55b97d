//! [`BoardControl`]: what the admin API may do to the leaderboards. Built once by the
//! composition root beside the role's state and shared by `Arc`, so the admin API calls these
//! methods and never holds or changes the role's fields. Each action that must not interleave
//! with the worker's batches takes the worker's cursor lock, as the worker does.

use std::collections::HashMap;

use liveops_domain::window::{Period, Window};
use liveops_domain::PlayerId;

use super::worker::{catch_up_releases, rebuild_live};
use super::{BoardsError, LeaderboardState};

pub struct BoardControl {
    state: LeaderboardState,
}

impl BoardControl {
    pub fn new(state: LeaderboardState) -> Self {
        BoardControl { state }
    }

    /// The window named `raw`, if it is one and it is enabled (`LB_WINDOWS`).
    pub fn enabled_window(&self, raw: &str) -> Option<Window> {
        Window::parse(raw).filter(|w| self.state.boards.is_enabled(*w))
    }

    /// Rebuilds the live boards from the system of record, exactly up to the last event the
    /// worker applied (what `liveops rebuild` checks offline). Returns the players per window.
    pub async fn rebuild(&self) -> Result<HashMap<&'static str, u64>, BoardsError> {
        rebuild_live(&self.state).await
    }

    /// Resets the current period of `window`: its board starts empty now, and the reset is
    /// recorded in the store so a restart or rebuild does not bring the old scores back. Taken
    /// under the worker's lock, so every event it has applied is before the reset and every
    /// later one after it. Returns the period reset.
    pub async fn reset(&self, window: Window) -> Result<Period, BoardsError> {
        let now = self.state.clock.now();
        let period = self.state.boards.period(window, now);
        let applied = self.state.applied.lock().await;
        self.state
            .source
            .reset_period(&period, *applied, now)
            .await?;
        self.state.boards.reset(window, now).await?;
        drop(applied);
        Ok(period)
    }

    /// Forgets an erased player (GDPR): their events up to `upto` still in flight are never
    /// applied, they leave the boards at once and every archived standing and snapshot.
    /// Returns how many archive files changed.
    pub async fn erase_player(&self, player: &PlayerId, upto: u64) -> Result<usize, BoardsError> {
        {
            let _applied = self.state.applied.lock().await;
            self.state.erased.write().insert(player.clone(), upto);
            self.state.boards.remove_player(player, upto).await?;
        }
        Ok(self.state.archive.erase_player(player).await?)
    }

    /// Applies every release the boards do not include yet (right after an operator's
    /// release; the roll-over loop also does it every second). Returns how many counted.
    pub async fn catch_up_releases(&self) -> Result<u64, BoardsError> {
        catch_up_releases(&self.state).await
    }
}
