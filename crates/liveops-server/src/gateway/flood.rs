//! The per-player flood gate (SPEC sections 4 and 7): a burst of `FLOOD_MAX_PER_SEC` events,
//! refilled at that many per second (GCRA via `governor`). Checked before the durable append,
//! so a flooding player's surplus is never stored or applied anywhere.

use std::num::NonZeroU32;

use governor::Quota;
use liveops_domain::PlayerId;

use super::limiter::KeyedLimiter;

pub struct FloodGate(KeyedLimiter<PlayerId>);

impl FloodGate {
    /// `max_per_sec = 0` disables the gate.
    pub fn new(max_per_sec: u32) -> Self {
        Self(KeyedLimiter::new(
            NonZeroU32::new(max_per_sec).map(Quota::per_second),
        ))
    }

    /// `Err(seconds to wait)` when the player is over the limit.
    pub fn check(&self, player: &PlayerId) -> Result<(), u64> {
        self.0.check(player)
    }

    /// Forgets players whose buckets are full again, so state follows the active players.
    pub fn clean(&self) {
        self.0.clean()
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
