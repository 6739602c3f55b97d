//! [`MemoryBlockList`]: the block list in a map in process memory, for one process.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use liveops_domain::{Clock, PlayerId};
use parking_lot::RwLock;

use crate::blocks::{holds, BlockList, Until};
use crate::error::HotStateError;

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
