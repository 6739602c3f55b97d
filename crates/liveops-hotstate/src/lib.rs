//! Hot state: derived data that is fast to read and safe to lose, because it can be rebuilt from
//! the system of record or is only a short-lived guard (SPEC section 2). Each capability is a
//! narrow trait with an in-memory implementation (the embedded default) and a Redis one (shared
//! by every process, works on Redis Cluster); one contract suite (`tests/contract`) runs against
//! all of them.
//!
//! - [`leaderboards`]: the [`Leaderboards`] port (ranks, exactly-once apply with a cursor,
//!   rollover, rebuild).
//!   - `board_index`: [`BoardIndex`], one ranking with O(log n) rank, update and paging;
//!   - `boards`: [`MemoryLeaderboards`].
//! - [`idempotency`]: [`IdempotencyKeys`] (`Idempotency-Key`, 208 / 409).
//! - [`rate_limit`]: [`RateLimits`], a GCRA limit per key (per IP, per player, sessions).
//! - [`blocks`]: [`BlockList`], the players the gateway refuses.
//! - [`gate`]: [`PlayerGate`], a player's block and flood limit asked together, per event.
//! - [`redis`]: the Redis implementations and [`RedisHotState::connect`].
//! - [`testing`]: helpers for tests that need a Redis.
//! - [`error`]: [`HotStateError`]; `Unavailable` means "answer 503 and retry".

pub mod blocks;
pub mod board_index;
pub mod boards;
pub mod error;
pub mod gate;
pub mod idempotency;
pub mod leaderboards;
pub mod rate_limit;
pub mod redis;
pub mod testing;

pub use blocks::{BlockList, MemoryBlockList};
pub use board_index::{BoardIndex, Entry};
pub use boards::{BoardPage, FinishedPeriod, MemoryLeaderboards};
pub use error::HotStateError;
pub use gate::{Admission, PlayerGate, SeparateGate};
pub use idempotency::{IdempotencyKeys, Lookup, MemoryIdempotencyKeys, Recorded};
pub use leaderboards::{ApplyOutcome, BoardEvent, Leaderboards};
pub use rate_limit::{MemoryRateLimits, Quota, RateLimits};
pub use redis::{
    RedisBlockList, RedisHotState, RedisIdempotencyKeys, RedisLeaderboards, RedisPlayerGate,
    RedisRateLimits,
};
