//! `liveops snapshot`: writes the current standings of every window, computed from the system
//! of record, to the archive (`DATA_DIR/archive/snapshots/...`). The server takes the same
//! snapshots on `SNAPSHOT_CRON`; this is the on-demand one.

use liveops_server::config::Config;
use liveops_server::leaderboard::standings;
use liveops_server::RawConfig;
use liveops_store::{Archive, FileArchive, SqliteStore};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: RawConfig,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let cfg = Config::from_raw(args.config).map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    let store = SqliteStore::open(&cfg.data_dir)?;
    let archive = FileArchive::new(cfg.data_dir.join("archive"));
    let (boards, now, _) = super::boards::current_boards(&cfg, &store).await?;
    for w in boards.windows() {
        let page = boards.page(w, now, 0, cfg.lb_topn);
        archive
            .put_snapshot(&standings(&page.period, page.total, &page.entries, now))
            .await?;
        println!(
            "{} {}: {} players, top {} archived",
            w.as_str(),
            page.period.id,
            page.total,
            page.entries.len()
        );
    }
    Ok(())
}
