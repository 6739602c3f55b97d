//! `liveops migrate`: applies the store's schema migrations and exits (the server also does
//! this at start-up).

use liveops_server::config::Config;
use liveops_server::RawConfig;
use liveops_store::SqliteStore;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: RawConfig,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let cfg = Config::from_raw(args.config).map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    SqliteStore::open(&cfg.data_dir)?;
    println!("migrated {}", cfg.data_dir.join("liveops.db").display());
    Ok(())
}
