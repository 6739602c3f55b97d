//! `liveops snapshot`: writes the current standings of every window, computed from the system
//! of record, to the archive (`DATA_DIR/archive/snapshots/...`, or PostgreSQL's
//! `leaderboard_snapshots` when it is the system of record). The server takes the same
//! snapshots on `SNAPSHOT_CRON`; this is the on-demand one.

use liveops_server::config::Config;
use liveops_server::leaderboard::standings;
use liveops_server::RawConfig;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: RawConfig,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let cfg = Config::from_raw(args.config).map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    let (boards, now, _, services) = super::boards::current_boards(&cfg).await?;
    for w in boards.windows() {
        let page = boards.page(w, now, 0, cfg.lb_topn).await?;
        services
            .archive
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
