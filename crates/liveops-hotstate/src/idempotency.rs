//! `Idempotency-Key` (`docs/api.md`): the same key with the same body within `IDEMP_TTL` is a
//! replay (208 with the original eventIds); with a different body it is a conflict (409).
//!
//! Losing these keys (a restart, a Redis wipe) is safe because every accepted event also has a
//! permanent `eventId`, which the log deduplicates forever. The key is reserved *before* the
//! append so a concurrent retry sees it, and released again if the append fails.

use async_trait::async_trait;
use liveops_domain::EventId;
use sha2::{Digest, Sha256};

use crate::error::HotStateError;

/// What the first request with a key did: the eventId at each position of the body
/// (`None` where that event was refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded(pub Vec<Option<EventId>>);

/// The answer to [`IdempotencyKeys::check_and_reserve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// First use (or the earlier use expired): the key is now reserved for this body.
    Fresh,
    /// Same key, same body: what the first request recorded.
    Replay(Recorded),
    /// Same key, different body.
    Conflict,
}

/// The SHA-256 of a request body: what a replay must match.
pub fn body_hash(body: &[u8]) -> [u8; 32] {
    Sha256::digest(body).into()
}

/// Idempotency keys with a time to live (`IDEMP_TTL`).
#[async_trait]
pub trait IdempotencyKeys: Send + Sync + 'static {
    /// Looks the key up and, when it is fresh, reserves it with what this request will do.
    async fn check_and_reserve(
        &self,
        key: &str,
        body: &[u8],
        recorded: Recorded,
    ) -> Result<Lookup, HotStateError>;

    /// Forgets a reservation whose append failed, so a retry is not answered as a replay.
    async fn release(&self, key: &str) -> Result<(), HotStateError>;

    /// Drops expired keys, for implementations that do not expire them by themselves.
    async fn purge_expired(&self) -> Result<(), HotStateError> {
        Ok(())
    }
}
