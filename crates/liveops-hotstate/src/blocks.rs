//! The block list the gateway consults before the durable append (SPEC section 7: a blocked
//! player gets 403 `player_blocked`). The system of record holds the blocks (`AdminStore`);
//! this is the copy the gateway checks on every event, loaded at start-up and updated by the
//! admin API and the fairness guard. Expiry is judged with the injected clock.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use liveops_domain::{Clock, PlayerId};
use parking_lot::RwLock;

use crate::error::HotStateError;

/// When a block ends: `None` means until an operator unblocks the player.
pub type Until = Option<DateTime<Utc>>;

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

/// The block list in process memory: a hash lookup per check.
pub struct MemoryBlockList {
    /// Player -> end of the block. Expired entries are ignored and pruned by `prune`.
    blocked: RwLock<HashMap<PlayerId, Until>>,
    clock: Arc<dyn Clock>,
}

impl MemoryBlockList {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            blocked: RwLock::new(HashMap::new()),
            clock,
        }
    }
}

#[async_trait]
impl BlockList for MemoryBlockList {
    async fn blocked(&self, player: &PlayerId) -> Result<Option<Until>, HotStateError> {
        let until = self.blocked.read().get(player).copied();
        Ok(until.filter(|u| holds(*u, self.clock.now())))
    }

    async fn set(&self, player: &PlayerId, until: Until) -> Result<(), HotStateError> {
        self.blocked.write().insert(player.clone(), until);
        Ok(())
    }

    async fn clear(&self, player: &PlayerId) -> Result<(), HotStateError> {
        self.blocked.write().remove(player);
        Ok(())
    }

    async fn load(&self, blocks: Vec<(PlayerId, Until)>) -> Result<(), HotStateError> {
        let mut b = self.blocked.write();
        b.clear();
        b.extend(blocks);
        Ok(())
    }

    async fn prune(&self) -> Result<(), HotStateError> {
        let now = self.clock.now();
        self.blocked.write().retain(|_, until| holds(*until, now));
        Ok(())
    }
}
