//! The one place that picks the adapters from the configuration (`docs/operations.md`):
//!
//! | setting | system of record | durable log (where a 202 is made) | consumers lead by |
//! |---|---|---|---|
//! | (none) | SQLite in `DATA_DIR` | the SQLite log | the only process |
//! | `DB_URL=postgres://..` | PostgreSQL | the PostgreSQL log (one writer per process) | an advisory lock |
//! | `+ BUS_KIND=nats` | PostgreSQL | JetStream; fairness records into PostgreSQL | an advisory lock |
//!
//! Hot state (boards, idempotency keys, rate limits, blocks) is picked by `REDIS_URL` in
//! `app.rs`, independently of these.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use liveops_bus::{NatsEventLog, NatsOptions};
use liveops_domain::Clock;
use liveops_store::{
    AdminStore, Appended, Archive, BoardSource, CommittedBatch, EventLog, FairnessStore,
    FileArchive, LoggedEvent, NewEvent, PgStore, ProgressStore, SqliteStore, StoreError,
};
use tokio::sync::{broadcast, watch};

use crate::config::{Bus, Config, Database, Secret};
use crate::leader::Election;

/// The adapters, built once from the configuration.
pub struct Services {
    /// Where the gateway appends and fairness reads: the durable log.
    pub log: Arc<dyn EventLog>,
    /// The system of record's copy of the log (the same as `log` unless the log is a bus).
    pub history: Arc<dyn EventLog>,
    /// Whether `log` is outside the store (JetStream), so fairness records the events.
    pub external_log: bool,
    pub progress: Arc<dyn ProgressStore>,
    pub board_source: Arc<dyn BoardSource>,
    pub archive: Arc<dyn Archive>,
    pub admin: Arc<dyn AdminStore>,
    pub fairness: Arc<dyn FairnessStore>,
    pub clock: Arc<dyn Clock>,
    /// Who runs each consumer role when several processes share the engines.
    pub election: Election,
    /// PostgreSQL, when it is the system of record (cursor polling across processes).
    pub postgres: Option<PgStore>,
    /// JetStream, when it is the durable log (the fairness leader's durable consumer).
    pub bus: Option<NatsEventLog>,
}

impl Services {
    /// Embedded defaults: SQLite and files in `DATA_DIR`.
    pub fn embedded(cfg: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Services> {
        let store = open_sqlite(&cfg.data_dir)?;
        Ok(Services {
            log: Arc::new(store.clone()),
            history: Arc::new(store.clone()),
            external_log: false,
            progress: Arc::new(store.clone()),
            board_source: Arc::new(store.clone()),
            admin: Arc::new(store.clone()),
            fairness: Arc::new(store),
            archive: file_archive(cfg.archive_dir.as_deref(), &cfg.data_dir),
            clock,
            election: Election::Alone,
            postgres: None,
            bus: None,
        })
    }

    /// The backends the configuration names.
    pub async fn connect(cfg: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Services> {
        let (url, max_connections) = match &cfg.database {
            Database::Sqlite => return Self::embedded(cfg, clock),
            Database::Postgres {
                url,
                max_connections,
            } => (url, *max_connections),
        };
        let store = connect_postgres(url, max_connections).await?;
        let mut nats = None;
        let (log, external_log): (Arc<dyn EventLog>, bool) = match &cfg.bus {
            Bus::InMem => (Arc::new(store.clone()), false),
            Bus::Nats { url } => {
                let opts = NatsOptions {
                    // The bus deduplicates repeats within its window; the store's check covers
                    // what is older, so the window need only outlast the recording lag.
                    duplicate_window: cfg.idemp_ttl.max(Duration::from_secs(600)),
                    ..NatsOptions::default()
                };
                let bus = NatsEventLog::connect(url.expose_str(), &cfg.namespace, opts)
                    .await
                    .context("connecting to NATS JetStream (BUS_CONN)")?;
                nats = Some(bus.clone());
                (
                    Arc::new(SequencedLog {
                        bus,
                        store: store.clone(),
                        known: KnownIds::start(store.clone()),
                    }),
                    true,
                )
            }
        };
        Ok(Services {
            log,
            history: Arc::new(store.clone()),
            external_log,
            progress: Arc::new(store.clone()),
            board_source: Arc::new(store.clone()),
            admin: Arc::new(store.clone()),
            fairness: Arc::new(store.clone()),
            // The standings of ended periods live in PostgreSQL (`leaderboard_snapshots`),
            // shared by every process, unless ARCHIVE_URL names a directory: then every
            // process must see the same one (a shared mount, as object storage would be).
            archive: match &cfg.archive_dir {
                Some(dir) => Arc::new(FileArchive::new(dir.clone())),
                None => Arc::new(store.clone()),
            },
            clock,
            election: Election::Postgres {
                pool: store.pool().clone(),
                namespace: cfg.namespace.clone(),
            },
            postgres: Some(store),
            bus: nats,
        })
    }
}

/// The system of record and the archive without the bus: what the offline tools (`liveops
/// rebuild`, `liveops snapshot`) read. They never append, so they need neither the durable log
/// of a scaled-out deployment nor a leader election.
pub struct SystemOfRecord {
    pub progress: Arc<dyn ProgressStore>,
    pub board_source: Arc<dyn BoardSource>,
    pub archive: Arc<dyn Archive>,
}

impl SystemOfRecord {
    /// The store `database` names, with the archive where `archive_dir` (`ARCHIVE_URL`) puts
    /// it, as [`Services::connect`] picks them.
    pub async fn open(
        database: &Database,
        data_dir: &Path,
        archive_dir: Option<&Path>,
    ) -> anyhow::Result<SystemOfRecord> {
        Ok(match database {
            Database::Sqlite => {
                let store = open_sqlite(data_dir)?;
                SystemOfRecord {
                    progress: Arc::new(store.clone()),
                    board_source: Arc::new(store),
                    archive: file_archive(archive_dir, data_dir),
                }
            }
            Database::Postgres {
                url,
                max_connections,
            } => {
                let store = connect_postgres(url, *max_connections).await?;
                SystemOfRecord {
                    progress: Arc::new(store.clone()),
                    board_source: Arc::new(store.clone()),
                    archive: match archive_dir {
                        Some(dir) => Arc::new(FileArchive::new(dir.to_path_buf())),
                        None => Arc::new(store),
                    },
                }
            }
        })
    }
}

fn open_sqlite(data_dir: &Path) -> anyhow::Result<SqliteStore> {
    SqliteStore::open(data_dir)
        .with_context(|| format!("opening the SQLite store in {}", data_dir.display()))
}

async fn connect_postgres(url: &Secret, max_connections: u32) -> anyhow::Result<PgStore> {
    PgStore::connect(url.expose_str(), max_connections)
        .await
        .context("connecting to PostgreSQL (DB_URL)")
}

/// The archive of the embedded store: `ARCHIVE_URL`'s directory, else `DATA_DIR/archive`.
fn file_archive(archive_dir: Option<&Path>, data_dir: &Path) -> Arc<dyn Archive> {
    Arc::new(FileArchive::new(
        archive_dir.map_or_else(|| data_dir.join("archive"), Path::to_path_buf),
    ))
}

/// JetStream as the durable log, with the system of record's permanent dedup in front.
///
/// JetStream drops a repeated `eventId` within its duplicate window; an older repeat is caught
/// here, against the events already recorded in PostgreSQL (one indexed lookup per group of
/// concurrent requests, see [`KnownIds`]).
/// What slips between the two (a repeat of an event published but not yet recorded, and older
/// than the window) is still applied once: fairness records by `eventId` and drops the repeat.
struct SequencedLog {
    bus: NatsEventLog,
    store: PgStore,
    known: KnownIds,
}

/// The permanent-dedup lookups of concurrent requests, coalesced: one query answers whatever
/// queued while the previous one ran (the group commit's trick applied to reads), on a
/// connection of its own ([`IdLookup`](liveops_store::IdLookup)). One query per request cost
/// PostgreSQL more CPU than everything else in the pipeline under load.
#[derive(Clone)]
struct KnownIds {
    tx: tokio::sync::mpsc::Sender<Lookup>,
}

type Lookup = (
    Vec<String>,
    tokio::sync::oneshot::Sender<Result<HashSet<String>, StoreError>>,
);

/// The most eventIds one coalesced query asks about.
const MAX_LOOKUP_IDS: usize = 4000;

impl KnownIds {
    fn start(store: PgStore) -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Lookup>(4096);
        let mut lookup = store.id_lookup();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut group = vec![first];
                let mut ids = group[0].0.len();
                while ids < MAX_LOOKUP_IDS {
                    match rx.try_recv() {
                        Ok(next) => {
                            ids += next.0.len();
                            group.push(next);
                        }
                        Err(_) => break,
                    }
                }
                let all: Vec<&str> = group
                    .iter()
                    .flat_map(|(ids, _)| ids.iter().map(String::as_str))
                    .collect();
                match lookup.known(&all).await {
                    Ok(found) => {
                        for (ids, reply) in group {
                            let mine = ids.into_iter().filter(|id| found.contains(id)).collect();
                            let _ = reply.send(Ok(mine));
                        }
                    }
                    Err(e) => {
                        let msg = e.to_string();
                        for (_, reply) in group {
                            let _ = reply.send(Err(StoreError::Unavailable(msg.clone())));
                        }
                    }
                }
            }
        });
        Self { tx }
    }

    async fn lookup(&self, ids: Vec<String>) -> Result<HashSet<String>, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.tx
            .send((ids, reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

#[async_trait]
impl EventLog for SequencedLog {
    async fn append(&self, events: Vec<NewEvent>) -> Result<Vec<Appended>, StoreError> {
        let ids: Vec<String> = events
            .iter()
            .map(|e| e.event.event_id.as_str().to_string())
            .collect();
        let known: HashSet<String> = self.known.lookup(ids).await?;
        if known.is_empty() {
            return self.bus.append(events).await;
        }
        let mut fresh = Vec::with_capacity(events.len());
        let mut slots = Vec::with_capacity(events.len());
        for e in events {
            if known.contains(e.event.event_id.as_str()) {
                slots.push(None);
            } else {
                slots.push(Some(fresh.len()));
                fresh.push(e);
            }
        }
        let published = if fresh.is_empty() {
            Vec::new()
        } else {
            self.bus.append(fresh).await?
        };
        Ok(slots
            .into_iter()
            .map(|s| s.map_or(Appended::Duplicate, |i| published[i]))
            .collect())
    }

    async fn read_after(&self, after: u64, limit: usize) -> Result<Vec<LoggedEvent>, StoreError> {
        self.bus.read_after(after, limit).await
    }

    fn committed(&self) -> watch::Receiver<u64> {
        self.bus.committed()
    }

    fn tail(&self) -> Option<broadcast::Receiver<CommittedBatch>> {
        self.bus.tail()
    }

    fn open_connections(&self) -> Option<u64> {
        self.store.open_connections()
    }

    /// The bus alone: `/readyz` checks the store on its own line.
    async fn ping(&self) -> Result<(), StoreError> {
        self.bus.ping().await
    }
}
