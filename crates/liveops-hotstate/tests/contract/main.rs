//! The hot-state contract suite: the same checks against every implementation (quickwit's
//! metastore suite, garage's db suite). `memory::*` always runs; `redis::*` needs a Redis
//! (`LIVEOPS_TEST_REDIS`, default 127.0.0.1:6379; skipped with a notice when unreachable,
//! failed under `CI=true`); `cluster::*` starts its own three-node Redis Cluster.

mod cluster;
mod suite;

use std::sync::Arc;
use std::time::Duration;

use liveops_domain::window::{Calendar, Window};
use liveops_domain::Clock;
use liveops_hotstate::testing::{redis_or_skip, WipeOnDrop};
use liveops_hotstate::{
    BlockList, IdempotencyKeys, Leaderboards, MemoryBlockList, MemoryIdempotencyKeys,
    MemoryLeaderboards, MemoryRateLimits, PlayerGate, Quota, RateLimits, RedisHotState,
    SeparateGate,
};

/// Builds the implementation under test; every build shares one namespace per test.
pub enum Backend {
    Memory,
    Redis(RedisHotState),
}

impl Backend {
    pub fn boards(&self, windows: &[Window]) -> Arc<dyn Leaderboards> {
        match self {
            Backend::Memory => Arc::new(MemoryLeaderboards::new(
                Calendar::default(),
                windows.to_vec(),
            )),
            Backend::Redis(r) => Arc::new(r.leaderboards(Calendar::default(), windows.to_vec())),
        }
    }

    pub fn idempotency(&self, ttl: Duration) -> Arc<dyn IdempotencyKeys> {
        match self {
            Backend::Memory => Arc::new(MemoryIdempotencyKeys::new(ttl)),
            Backend::Redis(r) => Arc::new(r.idempotency(ttl)),
        }
    }

    pub fn limits(&self, name: &str, quota: Option<Quota>) -> Arc<dyn RateLimits> {
        match self {
            Backend::Memory => Arc::new(MemoryRateLimits::new(quota)),
            Backend::Redis(r) => Arc::new(r.rate_limits(name, quota)),
        }
    }

    pub fn blocks(&self, clock: Arc<dyn Clock>) -> Arc<dyn BlockList> {
        match self {
            Backend::Memory => Arc::new(MemoryBlockList::new(clock)),
            Backend::Redis(r) => Arc::new(r.block_list(clock)),
        }
    }

    /// The player gate over `blocks` and `flood` (built by [`Self::blocks`] and
    /// `limits("flood", quota)`): in memory it wraps those two; on Redis it is built from the
    /// same namespace and must see what they wrote.
    pub fn gate(
        &self,
        blocks: Arc<dyn BlockList>,
        flood: Arc<dyn RateLimits>,
        quota: Option<Quota>,
        clock: Arc<dyn Clock>,
    ) -> Arc<dyn PlayerGate> {
        match self {
            Backend::Memory => Arc::new(SeparateGate::new(blocks, flood)),
            Backend::Redis(r) => r.player_gate(quota, clock),
        }
    }
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $name() {
                    crate::suite::$name(&crate::Backend::Memory).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(r) = crate::redis_or_skip().await else { return };
                    let _wipe = crate::WipeOnDrop::new(&r);
                    crate::suite::$name(&crate::Backend::Redis(r)).await;
                }
            )*
        }
    };
}

contract!(
    boards_order_ties_by_player_and_rank_from_one,
    boards_page_through_and_clamp_around,
    boards_are_not_built_until_replaced,
    apply_twice_counts_each_event_once,
    concurrent_applies_count_each_event_once,
    replace_installs_exact_boards_and_the_cursor,
    rollover_hands_each_ended_period_out_once,
    late_events_for_a_rolled_over_period_are_refused,
    reset_and_remove_player,
    an_erasure_keeps_events_read_before_it_off_the_boards,
    disabled_windows_are_ignored,
    released_events_count_once_by_release_number,
    idempotency_replay_conflict_release_and_ttl,
    rate_limit_burst_then_wait_then_refill,
    blocks_expire_prune_and_load,
    player_gate_answers_the_block_and_the_flood_limit_together,
    player_gate_answers_concurrent_requests_each_for_their_player,
);
