//! `liveops snapshot`: writes the current standings of every window, computed from the system
//! of record, to the archive (`DATA_DIR/archive/snapshots/...`, `ARCHIVE_URL`'s directory, or
//! PostgreSQL's `leaderboard_snapshots` when it is the system of record). The server takes the
//! same snapshots on `SNAPSHOT_CRON`; this is the on-demand one. The standings are computed in
//! this process's memory, so the live boards are left as they are.

use liveops_server::backends::SystemOfRecord;
use liveops_server::config::{ArchiveArgs, BoardSizeArgs, CalendarArgs, StoreArgs};
use liveops_server::leaderboard::standings;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    archive: ArchiveArgs,
    #[command(flatten)]
    calendar: CalendarArgs,
    #[command(flatten)]
    board_size: BoardSizeArgs,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let (calendar, windows) = super::boards::calendar(&args.calendar)?;
    let record = SystemOfRecord::open(
        &args.store.database(),
        &args.store.data_dir,
        args.archive.archive_url.as_deref(),
    )
    .await?;
    let boards = super::boards::in_memory(calendar, windows);
    let (now, _) = super::boards::rebuild(&record, &*boards).await?;
    for w in boards.windows() {
        let page = boards.page(w, now, 0, args.board_size.lb_topn).await?;
        record
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
