//! Hot state: derived data that is fast to read and safe to lose, because it can be rebuilt from
//! the system of record or is only a short-lived guard (`docs/operations.md`). Each capability is a
//! port (a narrow trait and the types in its signatures) with an in-memory implementation (the
//! embedded default) and a Redis one (shared by every process, works on Redis Cluster); one
//! contract suite (`tests/contract`) runs against all of them.
//!
//! The ports:
//! - [`leaderboards`]: [`Leaderboards`] (ranks, exactly-once apply with a cursor, rollover,
//!   rebuild) and its [`Entry`], [`BoardPage`], [`FinishedPeriod`], [`BoardEvent`].
//! - [`idempotency`]: [`IdempotencyKeys`] (`Idempotency-Key`, 208 / 409).
//! - [`rate_limit`]: [`RateLimits`], a GCRA limit per key (per IP, per player, sessions).
//! - [`blocks`]: [`BlockList`], the players the gateway refuses.
//! - [`gate`]: [`PlayerGate`], a player's block and flood limit asked together, per event.
//! - [`error`]: [`HotStateError`]; `Unavailable` means "answer 503 and retry".
//!
//! The implementations:
//! - [`memory`]: [`MemoryLeaderboards`] (over [`BoardIndex`], one ranking with O(log n) rank,
//!   update and paging), [`MemoryIdempotencyKeys`], [`MemoryRateLimits`], [`MemoryBlockList`],
//!   and [`SeparateGate`] (also the gate on a Redis Cluster).
//! - [`redis`]: [`RedisHotState::connect`] and the Redis implementations built on it; their Lua
//!   scripts live in `src/redis/lua/`.
//!
//! And [`testing`]: helpers for tests that need a Redis.

pub mod blocks;
pub mod error;
pub mod gate;
pub mod idempotency;
pub mod leaderboards;
pub mod memory;
pub mod rate_limit;
pub mod redis;
pub mod testing;

pub use blocks::{BlockList, Until};
pub use error::HotStateError;
pub use gate::{Admission, PlayerGate};
pub use idempotency::{IdempotencyKeys, Lookup, Recorded};
pub use leaderboards::{ApplyOutcome, BoardEvent, BoardPage, Entry, FinishedPeriod, Leaderboards};
pub use memory::{
    BoardIndex, MemoryBlockList, MemoryIdempotencyKeys, MemoryLeaderboards, MemoryRateLimits,
    SeparateGate,
};
pub use rate_limit::{Quota, RateLimits};
pub use redis::{
    RedisBlockList, RedisHotState, RedisIdempotencyKeys, RedisLeaderboards, RedisPlayerGate,
    RedisRateLimits,
};
