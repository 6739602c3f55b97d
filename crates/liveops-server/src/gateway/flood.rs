//! The per-player flood gate (SPEC sections 4 and 7): a burst of `FLOOD_MAX_PER_SEC` events,
//! refilled at that many per second (GCRA via `governor`). Checked before the durable append,
//! so a flooding player's surplus is never stored or applied anywhere.

use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use liveops_domain::PlayerId;

pub struct FloodGate {
    /// `None` when `FLOOD_MAX_PER_SEC=0` (disabled).
    limiter: Option<DefaultKeyedRateLimiter<PlayerId>>,
    clock: DefaultClock,
}

impl FloodGate {
    pub fn new(max_per_sec: u32) -> Self {
        Self {
            limiter: NonZeroU32::new(max_per_sec).map(|n| RateLimiter::keyed(Quota::per_second(n))),
            clock: DefaultClock::default(),
        }
    }

    /// `Err(seconds to wait)` when the player is over the limit.
    pub fn check(&self, player: &PlayerId) -> Result<(), u64> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter.check_key(player).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }

    /// Forgets players whose buckets are full again, so state follows the active players.
    pub fn clean(&self) {
        if let Some(l) = &self.limiter {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_refusal_per_player() {
        let gate = FloodGate::new(2);
        let a = PlayerId::parse("player_a").unwrap();
        let b = PlayerId::parse("player_b").unwrap();
        assert!(gate.check(&a).is_ok());
        assert!(gate.check(&a).is_ok());
        assert_eq!(gate.check(&a), Err(1));
        assert!(gate.check(&b).is_ok(), "players have their own buckets");
        assert!(FloodGate::new(0).check(&a).is_ok());
    }
}
