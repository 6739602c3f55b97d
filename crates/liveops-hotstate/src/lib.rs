//! Hot state: derived data that is fast to read and safe to lose, because it can be rebuilt from
//! the system of record (SPEC section 2).
//!
//! - [`board_index`]: [`BoardIndex`], one ranking (one window, one period) with O(log n) rank,
//!   update and paging (SPEC section 6).
//! - [`boards`]: [`MemoryLeaderboards`], the live boards of every enabled window, period
//!   rollover and the start-up rebuild.

pub mod board_index;
pub mod boards;

pub use board_index::{BoardIndex, Entry};
pub use boards::{BoardPage, FinishedPeriod, MemoryLeaderboards};
