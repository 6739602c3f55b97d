//! Rate limits (`docs/api.md`): per client IP (`RATE_LIMIT_MAX` a minute), per player
//! (`FLOOD_MAX_PER_SEC` a second) and guest sessions issued per IP. Each is a GCRA limit: a
//! burst of N, refilled at N per period; a refusal says how long to wait (`Retry-After`).
//!
//! Losing the buckets only forgives some recent traffic, so they are hot state too.

use std::num::NonZeroU32;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::HotStateError;

/// A burst of `max`, refilled at `max` per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub max: NonZeroU32,
    pub period: Duration,
}

impl Quota {
    /// `None` when `max` is 0: the limit is disabled.
    pub fn per_second(max: u32) -> Option<Quota> {
        Self::new(max, Duration::from_secs(1))
    }

    /// `None` when `max` is 0: the limit is disabled.
    pub fn per_minute(max: u32) -> Option<Quota> {
        Self::new(max, Duration::from_secs(60))
    }

    /// `None` when `max` is 0 or `period` is zero.
    pub fn new(max: u32, period: Duration) -> Option<Quota> {
        let max = NonZeroU32::new(max)?;
        (!period.is_zero()).then_some(Quota { max, period })
    }

    /// The time one request's worth of the bucket takes to refill (GCRA's emission interval).
    pub fn interval(&self) -> Duration {
        self.period / self.max.get()
    }
}

/// One limit (one quota) over many keys.
#[async_trait]
pub trait RateLimits: Send + Sync + 'static {
    /// `Ok(None)` when `key` may go on, `Ok(Some(wait))` when it is over its limit.
    async fn check(&self, key: &str) -> Result<Option<Duration>, HotStateError>;

    /// Forgets idle keys, for implementations that do not expire them by themselves.
    async fn clean(&self) -> Result<(), HotStateError> {
        Ok(())
    }
}

/// Rounds a wait up to whole seconds for `Retry-After` (at least 1).
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}
