//! `liveops migrate`: applies the store's schema migrations and exits (the server also does
//! this at start-up).

use liveops_server::config::{Database, StoreArgs};
use liveops_store::{PgStore, SqliteStore};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    store: StoreArgs,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    // Opening the system of record applies its pending migrations (PostgreSQL: under sqlx's
    // advisory lock, so several processes may do it at once).
    match args.store.database() {
        Database::Sqlite => {
            let dir = &args.store.data_dir;
            SqliteStore::open(dir)?;
            println!("migrated {}", dir.join("liveops.db").display());
        }
        Database::Postgres {
            url,
            max_connections,
        } => {
            let store = PgStore::connect(url.expose_str(), max_connections.min(2)).await?;
            store.migrate().await?;
            println!("migrated the PostgreSQL database (DB_URL)");
        }
    }
    Ok(())
}
