//! The gateway's per-event question to the hot state (SPEC sections 4 and 7): is this player
//! blocked (403), and may they send one more event now under `FLOOD_MAX_PER_SEC` (429)? Both
//! are asked for every event, so they are one port: on a single Redis node one script answers
//! both in one command ([`crate::redis::RedisPlayerGate`]); elsewhere [`SeparateGate`] asks the
//! [`BlockList`] and the flood [`RateLimits`] at once.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use liveops_domain::PlayerId;

use crate::blocks::{BlockList, Until};
use crate::error::HotStateError;
use crate::rate_limit::RateLimits;

/// The answer for one event of a player. The flood bucket is drawn on whether or not the player
/// is blocked; the block answers first either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    /// `Some(until)` when the player is blocked now.
    pub blocked: Option<Until>,
    /// `Some(wait)` when the player is over `FLOOD_MAX_PER_SEC`.
    pub flood_wait: Option<Duration>,
}

#[async_trait]
pub trait PlayerGate: Send + Sync + 'static {
    async fn admit(&self, player: &PlayerId) -> Result<Admission, HotStateError>;
}

/// The block list and the flood limit asked at once. Used in memory, where both answers are
/// local, and on a Redis Cluster, where the block hash and a player's flood bucket live in
/// different slots, so that no one script may read both.
pub struct SeparateGate {
    blocks: Arc<dyn BlockList>,
    flood: Arc<dyn RateLimits>,
}

impl SeparateGate {
    pub fn new(blocks: Arc<dyn BlockList>, flood: Arc<dyn RateLimits>) -> Self {
        Self { blocks, flood }
    }
}

#[async_trait]
impl PlayerGate for SeparateGate {
    async fn admit(&self, player: &PlayerId) -> Result<Admission, HotStateError> {
        let (blocked, flood) = tokio::join!(
            self.blocks.blocked(player),
            self.flood.check(player.as_str())
        );
        Ok(Admission {
            blocked: blocked?,
            flood_wait: flood?,
        })
    }
}
