//! The in-memory implementations of the hot-state ports: the embedded default, for one process.
//! Nothing here outlives the process, which the ports allow (everything is rebuilt from the
//! system of record or is a short-lived guard).
//!
//! - [`boards`]: [`MemoryLeaderboards`], the boards of every enabled window, each a
//!   [`board_index::BoardIndex`]; [`leaderboards`] implements the port on it (cursors, erasures).
//! - [`idempotency`]: [`MemoryIdempotencyKeys`], a map purged of expired keys.
//! - [`rate_limit`]: [`MemoryRateLimits`], GCRA with `governor`.
//! - [`blocks`]: [`MemoryBlockList`], a map judged with the injected clock.
//! - [`gate`]: [`SeparateGate`], the player gate over a block list and a flood limit.

pub mod blocks;
pub mod board_index;
pub mod boards;
pub mod gate;
pub mod idempotency;
pub mod leaderboards;
pub mod rate_limit;

pub use blocks::MemoryBlockList;
pub use board_index::BoardIndex;
pub use boards::MemoryLeaderboards;
pub use gate::SeparateGate;
pub use idempotency::MemoryIdempotencyKeys;
pub use rate_limit::MemoryRateLimits;
