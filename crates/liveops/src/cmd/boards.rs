//! The current leaderboards rebuilt offline from the system of record, shared by `liveops
//! rebuild` (prints them) and `liveops snapshot` (archives them).

use chrono::{DateTime, Utc};
use liveops_domain::window::Calendar;
use liveops_domain::{Clock, SystemClock};
use liveops_hotstate::MemoryLeaderboards;
use liveops_server::config::Config;
use liveops_store::{BoardSource, EventLog, SqliteStore};

/// Every enabled window's current board, as the log says up to its committed head; with the
/// time they are current at and that head.
pub async fn current_boards(
    cfg: &Config,
    store: &SqliteStore,
) -> anyhow::Result<(MemoryLeaderboards, DateTime<Utc>, u64)> {
    let head = *store.committed().borrow();
    let boards = MemoryLeaderboards::new(
        Calendar::new(cfg.timezone, cfg.season.clone()),
        cfg.windows.clone(),
    );
    let now = SystemClock.now();
    for w in boards.windows() {
        let period = boards.period(w, now);
        let rows = store.period_xp(&period, head).await?;
        boards.load(period, rows);
    }
    Ok((boards, now, head))
}
