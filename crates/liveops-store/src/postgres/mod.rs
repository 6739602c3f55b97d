//! The PostgreSQL system of record (`docs/operations.md`): every store trait over one
//! `sqlx` pool, with the semantics [`SqliteStore`](crate::SqliteStore) has.
//!
//! - `log`: appends go through ONE writer task that group-commits (whatever queued while the
//!   previous commit ran, one transaction, one multi-row insert), so `seq` order is commit order
//!   within the process; plus [`PgStore::record_sequenced`] for the deployment where NATS
//!   JetStream is the durable log and hands out the sequence numbers.
//! - `progress`: progression applied exactly once per consumer, safe across processes (the
//!   consumer's cursor row is locked first), claims and receipts.
//! - `fairness`, `admin`, `boards`: flags and their review, blocks and the audit log, board
//!   sums and resets, and the [`Archive`](crate::Archive) in `leaderboard_snapshots`.
//!
//! Everything but the appends (and the GDPR erase, which must be ordered with them) runs in its
//! own transaction from the pool, so progression, fairness and the admin API never wait behind
//! the ingest group commit. Schema: `migrations/postgres/*.sql`, embedded at build time.

mod admin;
mod boards;
mod fairness;
mod log;
mod progress;

use std::str::FromStr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use liveops_domain::{Event, EventId, EventType, Payload, PlayerId};
use parking_lot::Mutex;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgPool, Row};
use tokio::sync::{broadcast, mpsc, watch};

use crate::{CommittedBatch, LoggedEvent, StoreError};

pub use log::IdLookup;
use log::WriteCmd;

/// How long a query waits for a pooled connection before the store reports
/// [`StoreError::Unavailable`]: short, so an engine outage becomes a quick 503, not a hang.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);
/// Commands waiting for the writer; senders wait when it is full (back-pressure).
const QUEUE_DEPTH: usize = 16_384;
/// Committed batches buffered for a slow in-process consumer before it falls back to the log.
const TAIL_DEPTH: usize = 4096;

/// PostgreSQL-backed [`EventLog`](crate::EventLog), [`ProgressStore`](crate::ProgressStore),
/// [`BoardSource`](crate::BoardSource), [`AdminStore`](crate::AdminStore),
/// [`FairnessStore`](crate::FairnessStore) and [`Archive`](crate::Archive). Cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    /// The connection pool; every read and every non-append write takes its connection here.
    pool: PgPool,
    /// The queue into the writer task; the task exits when the last clone is dropped.
    writer: mpsc::Sender<WriteCmd>,
    /// The committed head and the in-process tail, shared by the writer and
    /// [`PgStore::record_sequenced`].
    head: Arc<Head>,
}

/// The highest committed `seq` this process knows of, and the batches it committed.
struct Head {
    /// Published after each commit (see [`Head::publish`]).
    tx: watch::Sender<u64>,
    /// Committed batches for in-process consumers (see [`CommittedBatch`]).
    tail: broadcast::Sender<CommittedBatch>,
    /// Makes "read the old head, send the batch, publish the new head" one step, so that a
    /// batch's `prev_head` is exactly the head the previous publication left, even when the
    /// writer and `record_sequenced` commit at the same time.
    publish: Mutex<()>,
    /// Set when a writer commit failed: PostgreSQL may have committed it anyway (the connection
    /// broke before the answer came), so events may exist that were never announced. The next
    /// successful group re-reads the log's head and announces it without a tail batch, so
    /// in-process consumers notice the gap and read those events from the log.
    in_doubt: AtomicBool,
}

impl Head {
    /// Announces committed events: the batch goes on the tail (when `events` is given) before
    /// the head moves, so a consumer woken by the head finds it already queued.
    fn publish(&self, last: u64, events: Option<Vec<LoggedEvent>>) {
        let _guard = self.publish.lock();
        let prev_head = *self.tx.borrow();
        let head = prev_head.max(last);
        if let Some(events) = events {
            // No receiver is fine: consumers read the log instead.
            let _ = self.tail.send(CommittedBatch {
                prev_head,
                head,
                events: Arc::new(events),
            });
        }
        self.tx.send_replace(head);
    }
}

impl PgStore {
    /// Connects a pool of at most `max_connections` to `url`, applies the migrations and starts
    /// the writer task (on the current tokio runtime).
    pub async fn connect(url: &str, max_connections: u32) -> Result<PgStore, StoreError> {
        if max_connections == 0 {
            return Err(StoreError::Database(
                "the connection pool needs at least one connection".into(),
            ));
        }
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Database(format!("invalid PostgreSQL url: {e}")))?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // sqlx already pings a connection when it comes back to the pool; pinging it
            // again when it is handed out would add a round trip to every query.
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        let store = Self::with_pool(pool).await?;
        Ok(store)
    }

    async fn with_pool(pool: PgPool) -> Result<PgStore, StoreError> {
        migrate_pool(&pool).await?;
        let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM events")
            .fetch_one(&pool)
            .await?;
        let (head_tx, _) = watch::channel(head as u64);
        let (tail, _) = broadcast::channel(TAIL_DEPTH);
        let head = Arc::new(Head {
            tx: head_tx,
            tail,
            publish: Mutex::new(()),
            in_doubt: AtomicBool::new(false),
        });
        let (writer, rx) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(log::writer_loop(pool.clone(), rx, head.clone()));
        tokio::spawn(keep_statistics_fresh(pool.clone(), Arc::downgrade(&head)));
        Ok(PgStore { pool, writer, head })
    }

    /// Applies the pending schema migrations (`liveops migrate`; [`PgStore::connect`] does it
    /// too). Safe to run from several processes at once: sqlx holds an advisory lock.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrate_pool(&self.pool).await
    }

    /// The pool, for callers that need a query the traits do not offer (tests, tools).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// How often the planner statistics are checked.
const STATS_CHECK: std::time::Duration = std::time::Duration::from_secs(2);

/// Re-analyzes a table once a tenth of it (and at least a thousand rows) changed since its
/// last ANALYZE. Autovacuum does the same, but looks only once a minute: a fresh or fast-growing
/// `events` table then keeps the statistics of an empty one, the planner picks sequential scans
/// for the eventId lookups and the decided view, and ingest throughput falls as the log grows
/// (to about half on a fresh database). Stops when the store is dropped
/// (`alive` is the writer's state, gone once every handle and the writer are).
async fn keep_statistics_fresh(pool: PgPool, alive: std::sync::Weak<Head>) {
    loop {
        tokio::time::sleep(STATS_CHECK).await;
        if alive.strong_count() == 0 || pool.is_closed() {
            return;
        }
        let stale: Result<Vec<String>, sqlx::Error> = sqlx::query_scalar(
            "SELECT relname::text FROM pg_stat_user_tables \
             WHERE schemaname = current_schema() \
               AND n_mod_since_analyze > GREATEST(1000, n_live_tup / 10)",
        )
        .fetch_all(&pool)
        .await;
        for table in stale.unwrap_or_default() {
            // The name comes from the catalog; quote it anyway.
            let sql = format!("ANALYZE \"{}\"", table.replace('"', "\"\""));
            if let Err(e) = sqlx::query(&sql).execute(&pool).await {
                tracing::debug!(table, error = %e, "analyze failed");
            }
        }
    }
}

/// The schema migrations, compiled into the binary. Version and description follow the file
/// names, as sqlx's own directory source reads them, so a database migrated by any build of
/// this list sees the same versions and checksums. Written out rather than through
/// `sqlx::migrate!`: that macro pulls in sqlx's proc-macro crate, which compiles the PostgreSQL
/// driver a second time (for the build host) and is a sizeable share of a first build.
const MIGRATIONS: [(i64, &str, &str); 4] = [
    (
        1,
        "system of record",
        include_str!("../../migrations/postgres/0001_system_of_record.sql"),
    ),
    (
        2,
        "progress fillfactor",
        include_str!("../../migrations/postgres/0002_progress_fillfactor.sql"),
    ),
    (
        3,
        "release numbers",
        include_str!("../../migrations/postgres/0003_release_numbers.sql"),
    ),
    (
        4,
        "boss kill keys as text",
        include_str!("../../migrations/postgres/0004_boss_kill_keys_as_text.sql"),
    ),
];

/// [`MIGRATIONS`] as a source sqlx's `Migrator` reads.
#[derive(Debug)]
struct EmbeddedMigrations;

impl sqlx::migrate::MigrationSource<'static> for EmbeddedMigrations {
    fn resolve(
        self,
    ) -> futures_core::future::BoxFuture<
        'static,
        Result<Vec<sqlx::migrate::Migration>, sqlx::error::BoxDynError>,
    > {
        Box::pin(async {
            Ok(MIGRATIONS
                .iter()
                .map(|(version, description, sql)| {
                    sqlx::migrate::Migration::new(
                        *version,
                        std::borrow::Cow::Borrowed(*description),
                        sqlx::migrate::MigrationType::Simple,
                        std::borrow::Cow::Borrowed(*sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

async fn migrate_pool(pool: &PgPool) -> Result<(), StoreError> {
    sqlx::migrate::Migrator::new(EmbeddedMigrations)
        .await
        .map_err(|e| StoreError::Database(format!("reading the migrations: {e}")))?
        .run(pool)
        .await
        .map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(e) => StoreError::from(e),
            other => StoreError::Database(format!("migration failed: {other}")),
        })
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        use sqlx::Error as E;
        match &e {
            E::Io(_) | E::Tls(_) | E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed => {
                StoreError::Unavailable(e.to_string())
            }
            E::Database(db) if db.code().is_some_and(|c| is_unavailable_code(&c)) => {
                StoreError::Unavailable(e.to_string())
            }
            _ => StoreError::Database(e.to_string()),
        }
    }
}

/// SQLSTATEs that mean the server cannot serve us now, rather than that the request was wrong:
/// class 08 (connection exception), 57P01..57P03 (shutting down, crash recovery, not yet
/// accepting connections), 53300 (too many connections).
fn is_unavailable_code(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
}

/// The columns [`row_to_logged`] decodes, in order.
const EVENT_COLUMNS: &str = "seq, event_id, player_id, type, ts, received_at, xp, payload::text";

/// Same as [`EVENT_COLUMNS`], qualified with the alias `e`.
const EVENT_COLUMNS_E: &str =
    "e.seq, e.event_id, e.player_id, e.type, e.ts, e.received_at, e.xp, e.payload::text";

fn row_to_logged(r: &PgRow) -> Result<LoggedEvent, StoreError> {
    let seq: i64 = r.try_get(0)?;
    let corrupt = |what: String| StoreError::Corrupt(format!("event seq {seq}: {what}"));
    let event_id = EventId::parse(r.try_get::<String, _>(1)?).map_err(corrupt)?;
    let player_id = PlayerId::parse(r.try_get::<String, _>(2)?).map_err(corrupt)?;
    let type_str: String = r.try_get(3)?;
    let event_type =
        EventType::parse(&type_str).ok_or_else(|| corrupt(format!("unknown type {type_str}")))?;
    let payload = Payload::from_stored(r.try_get(7)?).map_err(corrupt)?;
    let event = Event::from_stored(event_id, player_id, r.try_get(4)?, event_type, payload)
        .map_err(|e| corrupt(e.to_string()))?;
    Ok(LoggedEvent {
        seq: seq as u64,
        event,
        received_at: r.try_get(5)?,
        xp: r.try_get(6)?,
    })
}

/// The store keeps times at millisecond precision, like the SQLite store, so a value read
/// back equals the one written and consumers fed from memory see what the log holds.
fn ms(t: DateTime<Utc>) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(t.timestamp_millis())
        .single()
        .unwrap_or(t)
}

/// PostgreSQL text cannot hold a NUL character, and a client may put one in a free-text field
/// (an activity, a drop id): stored raw, that one row would fail its transaction forever and
/// stall the pipeline. Display-only copies of such text (flag metrics, drop names) get U+FFFD
/// instead; the event itself is stored losslessly as JSON, where NUL is escaped.
fn pg_text(s: &str) -> String {
    if s.contains('\0') {
        s.replace('\0', "\u{FFFD}")
    } else {
        s.to_string()
    }
}

/// A `u64` sequence bound as PostgreSQL's `bigint`, saturating (`u64::MAX` means "no bound").
fn seq_bound(seq: u64) -> i64 {
    seq.min(i64::MAX as u64) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_trouble_maps_to_unavailable_and_the_rest_to_database() {
        assert!(StoreError::from(sqlx::Error::PoolTimedOut).is_unavailable());
        assert!(StoreError::from(sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused
        )))
        .is_unavailable());
        assert!(!StoreError::from(sqlx::Error::RowNotFound).is_unavailable());
        assert!(is_unavailable_code("08006"));
        assert!(is_unavailable_code("57P01"));
        assert!(is_unavailable_code("53300"));
        assert!(
            !is_unavailable_code("23505"),
            "a unique violation is a real error"
        );
    }

    #[test]
    fn text_postgres_cannot_hold_is_made_storable() {
        assert_eq!(pg_text("a\0b"), "a\u{FFFD}b");
        assert_eq!(pg_text("plain"), "plain");
        assert_eq!(seq_bound(u64::MAX), i64::MAX);
    }

    /// Every file of `migrations/postgres` is in [`MIGRATIONS`], with the version and the
    /// description its name gives and its exact text: a migration added as a file alone, or
    /// listed under another number, fails here rather than on a customer's database.
    #[test]
    fn embedded_migrations_are_the_migration_files() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres");
        let mut files: Vec<(i64, String, String)> = std::fs::read_dir(&dir)
            .expect("the migrations directory")
            .map(|e| e.expect("a directory entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "sql"))
            .map(|p| {
                let stem = p
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .expect("a UTF-8 name");
                let (version, description) = stem.split_once('_').expect("<version>_<name>.sql");
                (
                    version.parse().expect("a numeric version"),
                    description.replace('_', " "),
                    std::fs::read_to_string(&p).expect("a migration file"),
                )
            })
            .collect();
        files.sort();
        let embedded: Vec<(i64, String, String)> = MIGRATIONS
            .iter()
            .map(|(v, d, sql)| (*v, d.to_string(), sql.to_string()))
            .collect();
        assert_eq!(embedded, files);
    }
}
