//! The gateway's per-event question to the hot state (`docs/api.md` and `docs/fairness.md`): is this player
//! blocked (403), and may they send one more event now under `FLOOD_MAX_PER_SEC` (429)? Both
//! are asked for every event, so they are one port: on a single Redis node one script answers
//! both in one command ([`crate::redis::RedisPlayerGate`]); elsewhere
//! [`SeparateGate`](crate::memory::SeparateGate) asks the [`BlockList`](crate::BlockList) and the
//! flood [`RateLimits`](crate::RateLimits) at once.

use std::time::Duration;

use async_trait::async_trait;
use liveops_domain::PlayerId;

use crate::blocks::Until;
use crate::error::HotStateError;

/// The answer for one event of a player. The flood bucket is drawn on whether or not the player
/// is blocked; the block answers first either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    /// `Some(until)` when the player is blocked now.
    pub blocked: Option<Until>,
    /// `Some(wait)` when the player is over `FLOOD_MAX_PER_SEC`.
    pub flood_wait: Option<Duration>,
}

/// Whether a player may send one more event now.
#[async_trait]
pub trait PlayerGate: Send + Sync + 'static {
    async fn admit(&self, player: &PlayerId) -> Result<Admission, HotStateError>;
}
