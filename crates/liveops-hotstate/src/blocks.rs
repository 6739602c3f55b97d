//! The block list the gateway consults before the durable append (`docs/fairness.md`: a blocked
//! player gets 403 `player_blocked`). The system of record holds the blocks (`AdminStore`);
//! this is the copy the gateway checks on every event, loaded at start-up and updated by the
//! admin API and the fairness guard. Expiry is judged with the injected clock.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use liveops_domain::PlayerId;

use crate::error::HotStateError;

/// When a block ends: `None` means until an operator unblocks the player.
pub type Until = Option<DateTime<Utc>>;

/// The players the gateway refuses, each until when.
#[async_trait]
pub trait BlockList: Send + Sync + 'static {
    /// `Some(until)` when the player is blocked now.
    async fn blocked(&self, player: &PlayerId) -> Result<Option<Until>, HotStateError>;

    async fn set(&self, player: &PlayerId, until: Until) -> Result<(), HotStateError>;

    async fn clear(&self, player: &PlayerId) -> Result<(), HotStateError>;

    /// Replaces the whole list (start-up, from the system of record).
    async fn load(&self, blocks: Vec<(PlayerId, Until)>) -> Result<(), HotStateError>;

    /// Drops expired blocks.
    async fn prune(&self) -> Result<(), HotStateError>;
}

/// Whether a block ending at `until` still holds at `now`.
pub(crate) fn holds(until: Until, now: DateTime<Utc>) -> bool {
    until.is_none_or(|t| t > now)
}
