//! [`SeparateGate`]: the [`PlayerGate`] over any [`BlockList`] and flood [`RateLimits`], asked
//! at once. It is the gate in memory, where both answers are local, and on a Redis Cluster,
//! where the block hash and a player's flood bucket live in different slots, so that no one
//! script may read both (see [`crate::RedisHotState::player_gate`]).

use std::sync::Arc;

use async_trait::async_trait;
use liveops_domain::PlayerId;

use crate::blocks::BlockList;
use crate::error::HotStateError;
use crate::gate::{Admission, PlayerGate};
use crate::rate_limit::RateLimits;

/// The block list and the flood limit asked at once.
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
