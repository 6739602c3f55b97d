//! The block list the gateway consults before the durable append (SPEC section 7: a blocked
//! player gets 403 `player_blocked`). The system of record holds the blocks (`AdminStore`);
//! this is their in-memory copy, loaded at start-up and updated by the admin API, so the check
//! costs a hash lookup.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use liveops_domain::{Clock, PlayerId};
use liveops_store::Block;
use parking_lot::RwLock;

pub struct BlockList {
    /// Player -> end of the block (`None`: until unblocked). Expired entries are ignored and
    /// pruned by `prune`.
    blocked: RwLock<HashMap<PlayerId, Option<DateTime<Utc>>>>,
    clock: Arc<dyn Clock>,
}

impl BlockList {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            blocked: RwLock::new(HashMap::new()),
            clock,
        }
    }

    pub fn load(&self, blocks: Vec<Block>) {
        let mut b = self.blocked.write();
        b.clear();
        b.extend(blocks.into_iter().map(|x| (x.player_id, x.until)));
    }

    /// `Some(until)` when the player is blocked now.
    pub fn blocked(&self, player: &PlayerId) -> Option<Option<DateTime<Utc>>> {
        let b = self.blocked.read();
        let until = *b.get(player)?;
        match until {
            Some(t) if t <= self.clock.now() => None,
            other => Some(other),
        }
    }

    pub fn set(&self, player: PlayerId, until: Option<DateTime<Utc>>) {
        self.blocked.write().insert(player, until);
    }

    pub fn clear(&self, player: &PlayerId) {
        self.blocked.write().remove(player);
    }

    pub fn prune(&self) {
        let now = self.clock.now();
        self.blocked
            .write()
            .retain(|_, until| until.is_none_or(|t| t > now));
    }
}
