//! `liveops migrate`: applies the store's schema migrations and exits (the server also does
//! this at start-up).

use liveops_server::config::{Config, Database};
use liveops_server::RawConfig;
use liveops_store::{PgStore, SqliteStore};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: RawConfig,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let cfg = Config::from_raw(args.config).map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    // Opening the system of record applies its pending migrations (PostgreSQL: under sqlx's
    // advisory lock, so several processes may do it at once).
    match &cfg.database {
        Database::Sqlite => {
            SqliteStore::open(&cfg.data_dir)?;
            println!("migrated {}", cfg.data_dir.join("liveops.db").display());
        }
        Database::Postgres {
            url,
            max_connections,
        } => {
            let store = PgStore::connect(url, (*max_connections).min(2)).await?;
            store.migrate().await?;
            println!("migrated the PostgreSQL database (DB_URL)");
        }
    }
    Ok(())
}
