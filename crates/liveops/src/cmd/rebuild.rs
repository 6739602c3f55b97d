//! `liveops rebuild`: rebuilds the leaderboards of the current periods from the system of
//! record and prints their standings. With `REDIS_URL` it replaces the live boards in Redis
//! (after a wipe, say); on the embedded defaults the boards live in the server's memory, which
//! rebuilds them at every start-up, so this command is the offline check that they agree.

use liveops_server::backends::SystemOfRecord;
use liveops_server::config::{CalendarArgs, HotStateArgs, StoreArgs};

#[derive(clap::Args)]
pub struct Args {
    /// How many entries of each board to print.
    #[arg(long, default_value_t = 10)]
    top: usize,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    calendar: CalendarArgs,
    #[command(flatten)]
    hot_state: HotStateArgs,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let (calendar, windows) = super::boards::calendar(&args.calendar)?;
    let record = SystemOfRecord::open(&args.store.database(), &args.store.data_dir, None).await?;
    let boards = super::boards::live_or_in_memory(&args.hot_state, calendar, windows).await?;
    let (now, head) = super::boards::rebuild(&record, &*boards).await?;
    for w in boards.windows() {
        let page = boards.page(w, now, 0, args.top).await?;
        println!(
            "{} {} ({} players, decided log up to seq {head})",
            w.as_str(),
            page.period.id,
            page.total
        );
        for e in page.entries {
            println!("  {:>5}  {:<50} {}", e.rank, e.player_id, e.score);
        }
    }
    Ok(())
}
