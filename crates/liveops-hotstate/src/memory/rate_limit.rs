//! [`MemoryRateLimits`]: GCRA limits in process memory (`governor`), for one process.

use std::time::Duration;

use async_trait::async_trait;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, RateLimiter};

use crate::error::HotStateError;
use crate::rate_limit::{Quota, RateLimits};

/// GCRA in process memory (`governor`), idle keys forgotten by [`RateLimits::clean`].
pub struct MemoryRateLimits {
    /// `None` when the limit is disabled.
    limiter: Option<DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
}

impl MemoryRateLimits {
    /// `quota = None` disables the limit.
    pub fn new(quota: Option<Quota>) -> Self {
        let quota = quota
            .and_then(|q| governor::Quota::with_period(q.interval()).map(|g| g.allow_burst(q.max)));
        Self {
            limiter: quota.map(RateLimiter::keyed),
            clock: DefaultClock::default(),
        }
    }
}

#[async_trait]
impl RateLimits for MemoryRateLimits {
    async fn check(&self, key: &str) -> Result<Option<Duration>, HotStateError> {
        let Some(limiter) = &self.limiter else {
            return Ok(None);
        };
        // The owned key is governor's: its keyed store needs `K: Clone + Hash + Eq`.
        Ok(limiter
            .check_key(&key.to_string())
            .err()
            .map(|not_until| not_until.wait_time_from(self.clock.now())))
    }

    async fn clean(&self) -> Result<(), HotStateError> {
        if let Some(l) = &self.limiter {
            l.retain_recent();
            l.shrink_to_fit();
        }
        Ok(())
    }
}
