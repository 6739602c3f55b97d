//! `liveops snapshot`: writes the current standings of every window, computed from the system
//! of record, to the archive (`DATA_DIR/archive/snapshots/...`). The server takes the same
//! snapshots on `SNAPSHOT_CRON`; this is the on-demand one.

use liveops_domain::window::Calendar;
use liveops_domain::{Clock, SystemClock};
use liveops_hotstate::MemoryLeaderboards;
use liveops_server::config::Config;
use liveops_server::leaderboard::standings;
use liveops_server::RawConfig;
use liveops_store::{Archive, BoardSource, EventLog, FileArchive, SqliteStore};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: RawConfig,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let cfg = Config::from_raw(args.config).map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    let store = SqliteStore::open(&cfg.data_dir)?;
    let archive = FileArchive::new(cfg.data_dir.join("archive"));
    let head = *store.committed().borrow();
    let boards = MemoryLeaderboards::new(
        Calendar::new(cfg.timezone, cfg.season.clone()),
        cfg.windows.clone(),
    );
    let now = SystemClock.now();
    for w in boards.windows() {
        let period = boards.period(w, now);
        let rows = store.period_xp(&period, head).await?;
        boards.load(period.clone(), rows);
        let page = boards.page(w, now, 0, cfg.lb_topn);
        archive
            .put_snapshot(&standings(&page.period, page.total, &page.entries, now))
            .await?;
        println!(
            "{} {}: {} players, top {} archived",
            w.as_str(),
            period.id,
            page.total,
            page.entries.len()
        );
    }
    Ok(())
}
