//! The current leaderboards rebuilt from the system of record, shared by `liveops rebuild`
//! (prints them) and `liveops snapshot` (archives them).
//!
//! The boards are built where the caller keeps them: in this process's memory (an offline
//! check that the log and a restarted server agree, and what a snapshot is computed from), or
//! in Redis when `liveops rebuild` is given `REDIS_URL`, where the rebuild replaces the live
//! boards that every server reads (`docs/operations.md`: boards are derived state, rebuilt exactly
//! from the system of record).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use liveops_domain::window::{Calendar, Window};
use liveops_domain::{Clock, SystemClock};
use liveops_hotstate::{Leaderboards, MemoryLeaderboards, RedisHotState};
use liveops_server::backends::SystemOfRecord;
use liveops_server::config::{CalendarArgs, ConfigError, HotStateArgs};

/// The calendar and the windows the settings name.
pub fn calendar(args: &CalendarArgs) -> anyhow::Result<(Calendar, Vec<Window>)> {
    let calendar = args
        .calendar()
        .map_err(|e: ConfigError| anyhow::anyhow!("configuration: {e}"))?;
    Ok((calendar, args.lb_windows.clone()))
}

/// Boards in this process's memory.
pub fn in_memory(calendar: Calendar, windows: Vec<Window>) -> Arc<dyn Leaderboards> {
    Arc::new(MemoryLeaderboards::new(calendar, windows))
}

/// The live boards in Redis when `REDIS_URL` is set, else boards in this process's memory.
pub async fn live_or_in_memory(
    hot: &HotStateArgs,
    calendar: Calendar,
    windows: Vec<Window>,
) -> anyhow::Result<Arc<dyn Leaderboards>> {
    let Some(url) = &hot.redis_url else {
        return Ok(in_memory(calendar, windows));
    };
    let redis = RedisHotState::connect(url.expose_str(), &hot.namespace)
        .await
        .map_err(|e| anyhow::anyhow!("connecting to REDIS_URL: {e}"))?;
    Ok(Arc::new(redis.leaderboards(calendar, windows)))
}

/// Rebuilds every window's current board in `boards` up to the decided head (the fairness
/// cursor: what the boards may show); returns the time the boards are current at and that
/// head.
pub async fn rebuild(
    record: &SystemOfRecord,
    boards: &dyn Leaderboards,
) -> anyhow::Result<(DateTime<Utc>, u64)> {
    let head = record
        .progress
        .cursor(liveops_server::fairness::CONSUMER)
        .await?;
    let now = SystemClock.now();
    // With Redis, a running leaderboard worker is unharmed: the boards and the cursors are
    // replaced in one step, and its later applies skip every event up to `head`.
    liveops_server::leaderboard::rebuild_boards(boards, &*record.board_source, now, head).await?;
    Ok((now, head))
}
