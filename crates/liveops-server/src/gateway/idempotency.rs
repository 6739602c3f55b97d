//! `Idempotency-Key` (SPEC section 4): the same key with the same body within `IDEMP_TTL` is a
//! replay (208 with the original eventIds); with a different body it is a conflict (409).
//!
//! Held in memory: losing it (a restart) is safe because every accepted event also has a
//! permanent `eventId`, which the log deduplicates forever. The key is recorded *before* the
//! append so a concurrent retry sees it, and forgotten again if the append fails.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use liveops_domain::EventId;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

/// What the first request with a key did: the eventId at each position of the body
/// (`None` where that event was refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded(pub Vec<Option<EventId>>);

pub enum Lookup {
    /// First use: the key is now reserved for this body.
    Fresh,
    Replay(Recorded),
    Conflict,
}

struct Entry {
    body_hash: [u8; 32],
    recorded: Recorded,
    expires: Instant,
}

pub struct IdempotencyCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

impl IdempotencyCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Looks the key up and, when it is fresh, reserves it with what this request will do.
    pub fn check_and_reserve(&self, key: &str, body: &[u8], recorded: Recorded) -> Lookup {
        let hash: [u8; 32] = Sha256::digest(body).into();
        let now = Instant::now();
        let mut entries = self.entries.lock();
        if let Some(e) = entries.get(key) {
            if e.expires > now {
                return if e.body_hash == hash {
                    Lookup::Replay(e.recorded.clone())
                } else {
                    Lookup::Conflict
                };
            }
        }
        entries.insert(
            key.to_string(),
            Entry {
                body_hash: hash,
                recorded,
                expires: now + self.ttl,
            },
        );
        Lookup::Fresh
    }

    /// Forgets a reservation whose append failed, so a retry is not answered as a replay.
    pub fn release(&self, key: &str) {
        self.entries.lock().remove(key);
    }

    /// Drops expired keys; run periodically so memory follows the live key count.
    pub fn purge_expired(&self) {
        let now = Instant::now();
        self.entries.lock().retain(|_, e| e.expires > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_conflict_and_expiry() {
        let c = IdempotencyCache::new(Duration::from_millis(50));
        let id = Recorded(vec![Some(EventId::parse("e1").unwrap())]);
        assert!(matches!(
            c.check_and_reserve("k", b"a", id.clone()),
            Lookup::Fresh
        ));
        assert!(
            matches!(c.check_and_reserve("k", b"a", Recorded(vec![])), Lookup::Replay(r) if r == id)
        );
        assert!(matches!(
            c.check_and_reserve("k", b"b", Recorded(vec![])),
            Lookup::Conflict
        ));
        std::thread::sleep(Duration::from_millis(60));
        c.purge_expired();
        assert!(matches!(
            c.check_and_reserve("k", b"b", Recorded(vec![])),
            Lookup::Fresh
        ));
    }
}
