//! [`MemoryIdempotencyKeys`]: `Idempotency-Key`s in a map in process memory, for one process.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::error::HotStateError;
use crate::idempotency::{body_hash, IdempotencyKeys, Lookup, Recorded};

struct MemoryEntry {
    body_hash: [u8; 32],
    recorded: Recorded,
    expires: Instant,
}

/// Keys in process memory, purged by [`IdempotencyKeys::purge_expired`].
pub struct MemoryIdempotencyKeys {
    ttl: Duration,
    entries: Mutex<HashMap<String, MemoryEntry>>,
}

impl MemoryIdempotencyKeys {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait]
impl IdempotencyKeys for MemoryIdempotencyKeys {
    async fn check_and_reserve(
        &self,
        key: &str,
        body: &[u8],
        recorded: Recorded,
    ) -> Result<Lookup, HotStateError> {
        let hash = body_hash(body);
        let now = Instant::now();
        let mut entries = self.entries.lock();
        if let Some(e) = entries.get(key) {
            if e.expires > now {
                return Ok(if e.body_hash == hash {
                    Lookup::Replay(e.recorded.clone())
                } else {
                    Lookup::Conflict
                });
            }
        }
        entries.insert(
            key.to_string(),
            MemoryEntry {
                body_hash: hash,
                recorded,
                expires: now + self.ttl,
            },
        );
        Ok(Lookup::Fresh)
    }

    async fn release(&self, key: &str) -> Result<(), HotStateError> {
        self.entries.lock().remove(key);
        Ok(())
    }

    async fn purge_expired(&self) -> Result<(), HotStateError> {
        let now = Instant::now();
        self.entries.lock().retain(|_, e| e.expires > now);
        Ok(())
    }
}
