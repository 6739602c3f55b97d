//! The embedded system of record: one SQLite file in WAL mode, `DATA_DIR/liveops.db`.
//!
//! SQLite allows one writer at a time, so every write goes through one writer thread that owns
//! the write connection and group-commits whatever queued up during the previous fsync. Reads
//! use a small pool of read connections, which WAL lets run alongside the writer, and a
//! checkpointer thread copies the WAL back into the database file on a connection of its own.
//!
//! - `writer`: the writer thread, its commands, the group commit and the checkpointer.
//! - `log`: [`EventLog`](crate::EventLog), appends and reads of the `events` table.
//! - `progress`: [`ProgressStore`](crate::ProgressStore), progression applied exactly once,
//!   rewards, claims and receipts, with the writer's progress cache.
//! - `fairness`: [`FairnessStore`](crate::FairnessStore), flags, their review and the decided
//!   view of the log.
//! - `admin`: [`AdminStore`](crate::AdminStore), the GDPR erase, blocks and the audit log.
//! - `boards`: [`BoardSource`](crate::BoardSource), board sums, releases and period resets.
//! - `schema`: the versioned migrations.
//!
//! Leaderboard archives live beside the database as files ([`FileArchive`](crate::FileArchive)).

mod admin;
mod boards;
mod fairness;
mod log;
mod progress;
mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use parking_lot::Mutex;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::{CommittedBatch, StoreError};
use writer::{spawn_checkpointer, writer_loop, Reply, WriteCmd, WAL_BACKSTOP_PAGES};

/// Commands waiting for the writer; senders wait when it is full (back-pressure).
const QUEUE_DEPTH: usize = 16_384;
/// Committed batches buffered for a slow in-process consumer before it falls back to the log.
const TAIL_DEPTH: usize = 4096;
/// Idle read connections kept open; a connection returned beyond it is closed.
const MAX_IDLE_READERS: usize = 16;

/// SQLite-backed [`EventLog`](crate::EventLog), [`ProgressStore`](crate::ProgressStore),
/// [`FairnessStore`](crate::FairnessStore), [`AdminStore`](crate::AdminStore) and
/// [`BoardSource`](crate::BoardSource). Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    /// The queue into the writer thread; the thread exits when the last clone is dropped.
    writer: mpsc::Sender<WriteCmd>,
    /// Idle read connections, opened on demand and returned after use.
    readers: Arc<ReadPool>,
    /// The highest committed `seq`, published by the writer after each commit.
    committed: watch::Receiver<u64>,
    /// Committed batches, for in-process consumers.
    tail: broadcast::Sender<CommittedBatch>,
}

/// Read-only connections for the queries that do not go through the writer; WAL lets them run
/// while the writer commits.
struct ReadPool {
    /// The database file each new connection opens.
    path: PathBuf,
    /// Connections back from a read, at most [`MAX_IDLE_READERS`]; a read takes one or opens
    /// a new one, so the pool grows with concurrent reads and shrinks back as they return.
    idle: Mutex<Vec<Connection>>,
    /// Read connections open now (idle or in use), for `database_connections_active`.
    open: std::sync::atomic::AtomicU64,
}

impl ReadPool {
    fn take(&self) -> Result<Connection, StoreError> {
        if let Some(c) = self.idle.lock().pop() {
            return Ok(c);
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        tune(&conn)?;
        self.open.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(conn)
    }

    fn put(&self, conn: Connection) {
        let mut idle = self.idle.lock();
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        } else {
            drop(idle);
            drop(conn);
            self.open.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) `dir/liveops.db`, migrates it and starts the writer thread.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("liveops.db");
        let mut conn = Connection::open(&path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: the WAL is fsynced at every commit, so a 202 survives power loss, not only a
        // process crash. Group commit keeps that to one fsync per batch.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        tune(&conn)?;
        schema::migrate(&mut conn)?;
        conn.pragma_update(None, "wal_autocheckpoint", WAL_BACKSTOP_PAGES)?;
        let checkpoints = spawn_checkpointer(&path)?;
        let head: i64 =
            conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))?;
        let (head_tx, committed) = watch::channel(head as u64);
        let (writer, rx) = mpsc::channel(QUEUE_DEPTH);
        let (tail_tx, _) = broadcast::channel(TAIL_DEPTH);
        let tail = tail_tx.clone();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx, head_tx, tail_tx, checkpoints))?;
        Ok(Self {
            writer,
            readers: Arc::new(ReadPool {
                path,
                idle: Mutex::new(Vec::new()),
                open: Default::default(),
            }),
            committed,
            tail,
        })
    }

    /// Sends a command to the writer thread and waits until its group is committed (or failed).
    /// [`StoreError::Closed`] when the writer is gone, or dropped the command unanswered.
    async fn write<T>(&self, make: impl FnOnce(Reply<T>) -> WriteCmd) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.writer
            .send(make(tx))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `f` on a pooled read connection, off the async runtime's threads.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let pool = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let conn = pool.take()?;
            let out = f(&conn);
            pool.put(conn);
            out
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }
}

/// A page cache and a memory map big enough for the hot parts of the log's indexes and the
/// progress table: SQLite's default 2 MB cache turns every insert into the `eventId` index
/// into page reads from the kernel once the log outgrows it.
///
/// Not bigger than 16 MB: while the file is under 1 GB, every commit after a B-tree page split
/// scans the whole page-cache hash table (SQLite parks a page on the lock-byte page number
/// during the split, then truncates the cache back to the file size), so the cost of each
/// commit grows with the cache.
fn tune(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "cache_size", -16_384)?;
    conn.pragma_update(None, "mmap_size", 268_435_456)?;
    conn.pragma_update(None, "temp_store", "memory")?;
    Ok(())
}

/// A stored millisecond time; one out of chrono's range (only a corrupt row holds one) reads as
/// the epoch rather than failing the whole read.
fn ms_to_time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}
