//! The current leaderboards rebuilt from the system of record, shared by `liveops rebuild`
//! (prints them) and `liveops snapshot` (archives them).
//!
//! The boards are built where the configuration keeps them: in this process's memory on the
//! embedded defaults (an offline check that the log and a restarted server agree), or in Redis
//! when `REDIS_URL` is set, where the rebuild replaces the live boards that every server reads
//! (SPEC section 2: boards are derived state, rebuilt exactly from the system of record).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use liveops_domain::window::Calendar;
use liveops_domain::{Clock, SystemClock};
use liveops_hotstate::Leaderboards;
use liveops_server::app::HotState;
use liveops_server::config::Config;
use liveops_server::Services;

/// Every enabled window's current board up to the decided head (the fairness cursor: what the
/// boards may show), with the time they are current at, that head and the backends.
pub async fn current_boards(
    cfg: &Config,
) -> anyhow::Result<(Arc<dyn Leaderboards>, DateTime<Utc>, u64, Services)> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let services = Services::connect(cfg, clock.clone()).await?;
    let calendar = Calendar::new(cfg.timezone, cfg.season.clone());
    let hot = HotState::build(cfg, &calendar, clock.clone()).await?;
    let head = services
        .progress
        .cursor(liveops_server::fairness::CONSUMER)
        .await?;
    let now = clock.now();
    // With Redis, a running leaderboard worker is unharmed: the boards and the cursors are
    // replaced in one step, and its later applies skip every event up to `head`.
    liveops_server::leaderboard::rebuild_boards(
        &*hot.leaderboards,
        &*services.board_source,
        now,
        head,
    )
    .await?;
    Ok((hot.leaderboards, now, head, services))
}
