//! The embedded system of record: one SQLite file in WAL mode.
//!
//! SQLite allows one writer at a time, so every write goes through one writer thread that owns
//! the write connection. It takes whatever commands queued up while the previous commit was
//! being fsynced and commits them in one transaction (group commit): under load, one fsync
//! covers hundreds of events instead of one each, while an idle server still commits a lone
//! event at once. Each command runs inside its own savepoint so one failing command does not
//! take its neighbours down. Reads use a small pool of read connections, which WAL lets run
//! alongside the writer, and a checkpointer thread copies the WAL back into the database file
//! on a connection of its own, so that this work is not done inside the writer's commits.

mod schema;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use liveops_domain::progression::{Drop, Progress, MAX_RECENT_DROPS};
use liveops_domain::signing::Receipt;
use liveops_domain::window::Period;
use liveops_domain::{Event, EventId, EventType, Payload, PlayerId};
use parking_lot::Mutex;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::{
    AdminStore, Appended, AuditEntry, Block, BoardSource, ClaimOutcome, CommittedBatch, EventLog,
    FairnessStore, FlagFilter, FlagRecord, FlagStatus, LoggedEvent, NewEvent, ProgressStore,
    ReceiptMaker, ReleasedEvent, Resolution, ResolveOutcome, RewardRecord, StoreError,
    StoredProgress,
};

/// The most commands one group commit takes, bounding the latency of the first one.
const MAX_GROUP: usize = 2048;
/// Commands waiting for the writer; senders wait when it is full (back-pressure).
const QUEUE_DEPTH: usize = 16_384;
/// Committed batches buffered for a slow in-process consumer before it falls back to the log.
const TAIL_DEPTH: usize = 4096;

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;
/// Sends a command's answer once the group's commit succeeded (`None`) or failed.
type Done = Box<dyn FnOnce(Option<&str>)>;

enum WriteCmd {
    /// Events to log; each payload is already JSON text (as the client sent it), so the writer
    /// thread, which bounds ingest, binds it without encoding anything.
    Append(Vec<NewEvent>, Reply<Vec<Appended>>),
    Apply(String, Arc<Vec<LoggedEvent>>, Reply<u64>),
    Claim(PlayerId, String, ReceiptMaker, Reply<ClaimOutcome>),
    /// A small write of its own (blocks, audit entries), run inside the group's transaction.
    Exec(ExecFn, Reply<()>),
    /// Erase a player (GDPR); touches the cache and the erased set.
    Erase(PlayerId, Reply<u64>),
    /// Release or reject a quarantined event; a release applies progression, hence the cache.
    Resolve(
        String,
        Resolution,
        String,
        DateTime<Utc>,
        Reply<ResolveOutcome>,
    ),
}

/// The writer's per-player maps, looked up once or twice per applied event on the thread that
/// bounds ingest: foldhash instead of SipHash (keys are player ids, which a client picks, but
/// the per-process random seed keeps collisions unforceable in practice).
type PlayerMap<V> = HashMap<String, V, foldhash::fast::RandomState>;

type ExecFn = Box<dyn FnOnce(&Connection) -> Result<(), StoreError> + Send>;

/// SQLite-backed [`EventLog`], [`ProgressStore`] and [`BoardSource`]. Cheap to clone.
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

struct ReadPool {
    path: PathBuf,
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
        if idle.len() < 16 {
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

    async fn write<T>(&self, make: impl FnOnce(Reply<T>) -> WriteCmd) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.writer
            .send(make(tx))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

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

/// State the writer thread keeps between groups.
struct Writer {
    conn: Connection,
    /// The highest committed `seq`.
    head: u64,
    head_tx: watch::Sender<u64>,
    /// Committed batches for in-process consumers (see [`CommittedBatch`]).
    tail_tx: broadcast::Sender<CommittedBatch>,
    /// Rings the checkpointer after a commit; a full doorbell means a pass is already due.
    checkpoints: std::sync::mpsc::SyncSender<()>,
    /// Player progress as last committed. Only this thread writes `player_progress`, so the
    /// cache cannot go stale; it saves a read and a JSON parse per applied event. Cleared when
    /// it grows past [`PROGRESS_CACHE_MAX`] or when a commit fails.
    progress_cache: PlayerMap<StoredProgress>,
    /// Erased players and the last seq erased: their events up to it that a consumer read
    /// before the erasure are not applied again (only this thread applies progression).
    erased: PlayerMap<u64>,
}

/// Players whose progress the writer keeps in memory before starting over.
const PROGRESS_CACHE_MAX: usize = 50_000;

/// A page cache and a memory map big enough for the hot parts of the log's indexes and the
/// progress table: SQLite's default 2 MB cache turns every insert into the `eventId` index
/// into page reads from the kernel once the log outgrows it.
///
/// Not bigger than 16 MB: while the file is under 1 GB, every commit after a B-tree page split
/// scans the whole page-cache hash table (SQLite parks a page on the lock-byte page number
/// during the split, then truncates the cache back to the file size), so the cost of each
/// commit grows with the cache. At 64 MB that scan was 5% of the writer's CPU under batch load.
fn tune(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "cache_size", -16_384)?;
    conn.pragma_update(None, "mmap_size", 268_435_456)?;
    conn.pragma_update(None, "temp_store", "memory")?;
    Ok(())
}

/// WAL pages after which the writer checkpoints by itself. The checkpointer thread normally
/// keeps the WAL far below this; the writer only steps in when it falls behind, so the WAL
/// stays bounded whatever happens to that thread.
const WAL_BACKSTOP_PAGES: i64 = 8192;
/// The least time between two background checkpoints: often enough that the writer's backstop
/// rarely triggers, rarely enough that a page rewritten by every commit (a B-tree root, a hot
/// progress page) is copied into the database once per pass, not once per commit.
const CHECKPOINT_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

/// Starts the thread that copies the WAL back into the database file (checkpoints) on its own
/// connection, so that this copying and the database file's fsync happen beside the writer
/// instead of inside a commit: the writer thread is what bounds ingest throughput. Returns the
/// writer's end of the "something was committed" doorbell; the thread exits when the writer
/// drops it.
fn spawn_checkpointer(path: &Path) -> Result<std::sync::mpsc::SyncSender<()>, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            while rx.recv().is_ok() {
                // PASSIVE never blocks the writer or the readers; frames it cannot copy yet
                // wait for the next pass (or the writer's backstop).
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(error = %e, "background wal checkpoint failed");
                }
                std::thread::sleep(CHECKPOINT_PAUSE);
            }
        })?;
    Ok(tx)
}

fn writer_loop(
    conn: Connection,
    mut rx: mpsc::Receiver<WriteCmd>,
    head_tx: watch::Sender<u64>,
    tail_tx: broadcast::Sender<CommittedBatch>,
    checkpoints: std::sync::mpsc::SyncSender<()>,
) {
    let head = *head_tx.borrow();
    let mut w = Writer {
        conn,
        head,
        head_tx,
        tail_tx,
        checkpoints,
        progress_cache: PlayerMap::default(),
        erased: PlayerMap::default(),
    };
    while let Some(first) = rx.blocking_recv() {
        let mut cmds = Vec::with_capacity(64);
        cmds.push(first);
        while cmds.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(c) => cmds.push(c),
                Err(_) => break,
            }
        }
        w.run_group(cmds);
    }
}

impl Writer {
    /// Runs a group of commands in one transaction; answers each once the commit is durable.
    fn run_group(&mut self, mut cmds: Vec<WriteCmd>) {
        let mut done: Vec<Done> = Vec::with_capacity(cmds.len());
        let mut committed: Vec<LoggedEvent> = Vec::new();
        let mut touched: Vec<PlayerMap<StoredProgress>> = Vec::new();
        let cache = &mut self.progress_cache;
        let erased = &mut self.erased;
        let head = self.head;
        let outcome = (|| -> rusqlite::Result<()> {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            for cmd in cmds.drain(..) {
                // A savepoint per command, through cached statements: rusqlite's `Savepoint`
                // parses its SQL every time, which showed up at several percent per event.
                // A one-event append is a single INSERT, which SQLite already undoes as a whole
                // when it fails, so it goes without: under single-event load that is two
                // statements fewer per event.
                let savepoint = !matches!(&cmd, WriteCmd::Append(events, _) if events.len() == 1);
                if savepoint {
                    tx.prepare_cached("SAVEPOINT cmd")?.execute([])?;
                }
                let sp = &*tx;
                match cmd {
                    WriteCmd::Append(events, reply) => {
                        let r = append(sp, events).map(|(results, logged)| {
                            committed.extend(logged);
                            results
                        });
                        done.push(finish(sp, savepoint, r, reply));
                    }
                    WriteCmd::Apply(consumer, events, reply) => {
                        let r = apply(sp, &consumer, &events, &mut *cache, erased).map(
                            |(cursor, t)| {
                                touched.push(t);
                                cursor
                            },
                        );
                        done.push(finish(sp, savepoint, r, reply));
                    }
                    WriteCmd::Claim(player, reward_id, make, reply) => {
                        let r = claim(sp, &player, &reward_id, make);
                        done.push(finish(sp, savepoint, r, reply));
                    }
                    WriteCmd::Exec(f, reply) => {
                        let r = f(sp);
                        done.push(finish(sp, savepoint, r, reply));
                    }
                    WriteCmd::Erase(player, reply) => {
                        // Its cached progress must not outlive the rows, not even for the
                        // rest of this group.
                        cache.remove(player.as_str());
                        let r = erase(sp, &player).map(|upto| {
                            erased.insert(player.to_string(), upto.max(head));
                            upto.max(head)
                        });
                        done.push(finish(sp, savepoint, r, reply));
                    }
                    WriteCmd::Resolve(event_id, resolution, by, at, reply) => {
                        let r = resolve(sp, &event_id, resolution, &by, at, &mut *cache).map(
                            |(out, t)| {
                                touched.push(t);
                                out
                            },
                        );
                        done.push(finish(sp, savepoint, r, reply));
                    }
                }
                if savepoint {
                    tx.prepare_cached("RELEASE cmd")?.execute([])?;
                }
            }
            tx.commit()
        })();
        let failure = outcome.as_ref().err().map(|e| e.to_string());
        if let Some(e) = &failure {
            tracing::error!(error = %e, "sqlite group commit failed");
            self.progress_cache.clear();
        } else {
            if self.progress_cache.len() > PROGRESS_CACHE_MAX {
                self.progress_cache.clear();
            }
            for t in touched {
                self.progress_cache.extend(t);
            }
            for player in self.erased.keys() {
                self.progress_cache.remove(player);
            }
            let _ = self.checkpoints.try_send(());
            if let Some(last) = committed.last().map(|e| e.seq) {
                let prev_head = self.head;
                self.head = self.head.max(last);
                // The batch goes out before the new head, so a consumer woken by the head finds
                // it already queued. No receiver is fine: consumers read the log instead.
                let _ = self.tail_tx.send(CommittedBatch {
                    prev_head,
                    head: self.head,
                    events: Arc::new(committed),
                });
                self.head_tx.send_replace(self.head);
            }
        }
        for d in done {
            d(failure.as_deref());
        }
        // Commands the failed transaction never reached were dropped with their reply
        // senders, so their callers see `StoreError::Closed` and answer 503.
    }
}

/// Rolls the command's savepoint (if it has one) back on error and returns the reply to send
/// once the whole transaction is committed (or failed): nobody hears "done" before the commit
/// is durable.
fn finish<T: Send + 'static>(
    conn: &Connection,
    savepoint: bool,
    r: Result<T, StoreError>,
    reply: Reply<T>,
) -> Done {
    if r.is_err() && savepoint {
        // A failed rollback leaves the savepoint to be released with the transaction; the
        // error is already reported to the caller.
        let _ = conn
            .prepare_cached("ROLLBACK TO cmd")
            .and_then(|mut st| st.execute([]));
    }
    Box::new(move |commit_error: Option<&str>| {
        let r = match commit_error {
            Some(e) => Err(StoreError::Database(e.to_string())),
            None => r,
        };
        let _ = reply.send(r);
    })
}

fn append(
    conn: &Connection,
    events: Vec<NewEvent>,
) -> Result<(Vec<Appended>, Vec<LoggedEvent>), StoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO events (event_id, player_id, type, ts, received_at_ms, xp, payload)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (event_id) DO NOTHING",
    )?;
    let mut out = Vec::with_capacity(events.len());
    let mut logged = Vec::with_capacity(events.len());
    for ne in events {
        let e = &ne.event;
        let xp = liveops_domain::progression::xp_for(&e.kind);
        let n = stmt.execute(params![
            e.event_id.as_str(),
            e.player_id.as_str(),
            e.kind.event_type().as_str(),
            e.ts,
            ne.received_at.timestamp_millis(),
            xp,
            e.payload.as_str(),
        ])?;
        if n == 1 {
            let seq = conn.last_insert_rowid() as u64;
            out.push(Appended::New { seq });
            logged.push(LoggedEvent {
                seq,
                event: ne.event,
                // What the log stores: millisecond precision, so consumers fed from memory
                // see exactly what a consumer reading the log sees.
                received_at: ms_to_time(ne.received_at.timestamp_millis()),
                xp,
            });
        } else {
            out.push(Appended::Duplicate);
        }
    }
    Ok((out, logged))
}

fn cursor_of(conn: &Connection, consumer: &str) -> rusqlite::Result<u64> {
    let seq: Option<i64> = conn
        .query_row(
            "SELECT seq FROM consumer_offsets WHERE consumer = ?1",
            [consumer],
            |r| r.get(0),
        )
        .optional()?;
    Ok(seq.unwrap_or(0) as u64)
}

/// A player's progress row. The writer's apply path leaves `drops` empty (drops live in
/// `player_drops`); the read API fills them in with [`recent_drops`].
fn load_progress(conn: &Connection, player: &str) -> Result<Option<StoredProgress>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT xp, level, boss_kills, updated_at_ms FROM player_progress WHERE player_id = ?1",
        )?
        .query_row([player], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .optional()?;
    let Some((xp, level, boss_kills, updated_at_ms)) = row else {
        return Ok(None);
    };
    let corrupt =
        |e: serde_json::Error| StoreError::Corrupt(format!("player_progress {player}: {e}"));
    Ok(Some(StoredProgress {
        progress: Progress {
            xp,
            level,
            boss_kills: serde_json::from_str(&boss_kills).map_err(corrupt)?,
            drops: Vec::new(),
        },
        updated_at: ms_to_time(updated_at_ms),
    }))
}

/// The player's most recent drops, oldest first, as progress shows them.
fn recent_drops(conn: &Connection, player: &str) -> Result<Vec<Drop>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT drop_id, weight, source, event_id FROM player_drops WHERE player_id = ?1
         ORDER BY seq DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![player, MAX_RECENT_DROPS as i64], |r| {
        Ok(Drop {
            drop_id: r.get(0)?,
            weight: r.get(1)?,
            source: r.get(2)?,
            event_id: r.get(3)?,
        })
    })?;
    let mut drops = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    drops.reverse();
    Ok(drops)
}

fn apply(
    conn: &Connection,
    consumer: &str,
    events: &[LoggedEvent],
    cache: &mut PlayerMap<StoredProgress>,
    erased: &PlayerMap<u64>,
) -> Result<(u64, PlayerMap<StoredProgress>), StoreError> {
    let start = cursor_of(conn, consumer)?;
    let cursor = events
        .iter()
        .rev()
        .find(|e| e.seq > start)
        .map_or(start, |e| e.seq);
    let fresh: Vec<&LoggedEvent> = events
        .iter()
        .filter(|e| e.seq > start)
        .filter(|e| {
            erased
                .get(e.event.player_id.as_str())
                .is_none_or(|upto| e.seq > *upto)
        })
        .collect();
    let touched = fold_into_progress(conn, &fresh, cache)?;
    conn.prepare_cached(
        "INSERT INTO consumer_offsets (consumer, seq) VALUES (?1, ?2)
         ON CONFLICT (consumer) DO UPDATE SET seq = excluded.seq",
    )?
    .execute(params![consumer, cursor as i64])?;
    Ok((cursor, touched))
}

/// Applies events to player progress, the reward ledger and the drop list, and saves the
/// touched players. Returns them for the writer's cache.
///
/// A player's cached progress is taken out of the cache, not copied: until the group commits,
/// the row this command writes is the truth, so a later command of the same group (a release
/// right after an apply, say) must read that row rather than the pre-group copy. The writer
/// puts the touched players back once the commit succeeded; a failed command or commit simply
/// leaves them to be read from the database next time.
fn fold_into_progress(
    conn: &Connection,
    events: &[&LoggedEvent],
    cache: &mut PlayerMap<StoredProgress>,
) -> Result<PlayerMap<StoredProgress>, StoreError> {
    let mut touched: PlayerMap<StoredProgress> = PlayerMap::default();
    let mut grant = conn.prepare_cached(
        "INSERT INTO rewards (player_id, reward_id, item, level, granted_at_ms, event_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
    )?;
    let mut add_drop = conn.prepare_cached(
        "INSERT INTO player_drops (player_id, seq, event_id, drop_id, weight, source)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
    )?;
    for le in events {
        let player = le.event.player_id.as_str();
        if !touched.contains_key(player) {
            let cached = match cache.remove(player) {
                Some(p) => Some(p),
                None => load_progress(conn, player)?,
            };
            let p = cached.unwrap_or(StoredProgress {
                progress: Progress::new(),
                updated_at: le.received_at,
            });
            touched.insert(player.to_string(), p);
        }
        // Cannot fail: inserted just above when absent.
        let sp = touched.get_mut(player).expect("progress loaded above");
        let rewards = sp.progress.apply(&le.event);
        // Drops go to their own table; the progress row (and the writer's cache) stays small.
        for d in sp.progress.drops.drain(..) {
            add_drop.execute(params![
                player,
                le.seq as i64,
                d.event_id,
                d.drop_id,
                d.weight,
                d.source
            ])?;
        }
        for reward in rewards {
            grant.execute(params![
                player,
                reward.reward_id,
                reward.item,
                reward.level,
                le.received_at.timestamp_millis(),
                le.event.event_id.as_str(),
            ])?;
        }
        sp.updated_at = sp.updated_at.max(le.received_at);
    }
    let mut save = conn.prepare_cached(
        "INSERT INTO player_progress (player_id, xp, level, boss_kills, drops, updated_at_ms)
         VALUES (?1, ?2, ?3, ?4, '[]', ?5)
         ON CONFLICT (player_id) DO UPDATE SET xp = excluded.xp, level = excluded.level,
           boss_kills = excluded.boss_kills, updated_at_ms = excluded.updated_at_ms",
    )?;
    for (player, sp) in &touched {
        save.execute(params![
            player,
            sp.progress.xp,
            sp.progress.level,
            json(&sp.progress.boss_kills),
            sp.updated_at.timestamp_millis(),
        ])?;
    }
    Ok(touched)
}

/// Deletes the player's rows; returns the last seq assigned so far (this group's appends
/// included), up to which their in-flight events must not be applied again.
fn erase(conn: &Connection, player: &PlayerId) -> Result<u64, StoreError> {
    let p = player.as_str();
    let upto: i64 = conn.query_row(
        "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)",
        [],
        |r| r.get(0),
    )?;
    for sql in [
        "DELETE FROM events WHERE player_id = ?1",
        "DELETE FROM player_progress WHERE player_id = ?1",
        "DELETE FROM player_drops WHERE player_id = ?1",
        "DELETE FROM rewards WHERE player_id = ?1",
        "DELETE FROM receipts WHERE player_id = ?1",
        "DELETE FROM suspicious_events WHERE player_id = ?1",
        "DELETE FROM player_blocks WHERE player_id = ?1",
    ] {
        conn.prepare_cached(sql)?.execute([p])?;
    }
    Ok(upto as u64)
}

const FLAG_COLUMNS: &str = "seq, event_id, player_id, metric, value, rule, reason, status, flagged_at_ms, resolved_at_ms, resolved_by";

fn row_to_flag(r: &rusqlite::Row<'_>) -> Result<FlagRecord, StoreError> {
    let status: String = r.get(7)?;
    Ok(FlagRecord {
        seq: r.get::<_, i64>(0)? as u64,
        event_id: r.get(1)?,
        player_id: r.get(2)?,
        metric: r.get(3)?,
        value: r.get(4)?,
        rule: r.get(5)?,
        reason: r.get(6)?,
        status: FlagStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("flag status {status}")))?,
        flagged_at: ms_to_time(r.get(8)?),
        resolved_at: r.get::<_, Option<i64>>(9)?.map(ms_to_time),
        resolved_by: r.get(10)?,
    })
}

/// XP per player of the events received in `[from, to)` that count on the boards: applied by
/// the log with `seq <= upto` (unflagged or flagged), or released with a release number
/// `<= released_upto` (those released before release numbers existed always count); with a
/// `(window, period)`, only the events after that period's last operator reset.
fn sum_xp(
    conn: &Connection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    (upto, released_upto): (u64, u64),
    reset_of: Option<(&str, &str)>,
) -> Result<Vec<(PlayerId, i64)>, StoreError> {
    let (window, period) = reset_of.unwrap_or(("", ""));
    let mut stmt = conn.prepare_cached(
        "SELECT e.player_id, TOTAL(e.xp) FROM events e
         LEFT JOIN suspicious_events s ON s.seq = e.seq
         WHERE e.received_at_ms >= ?1 AND e.received_at_ms < ?2
           AND e.seq > COALESCE((SELECT after_seq FROM leaderboard_resets WHERE window = ?4 AND period = ?5), 0)
           AND ((e.seq <= ?3 AND (s.status IS NULL OR s.status = 'flagged'))
                OR (s.status = 'released' AND COALESCE(s.release_seq, 0) <= ?6))
         GROUP BY e.player_id",
    )?;
    let mut rows = stmt.query(params![
        from.timestamp_millis(),
        to.timestamp_millis(),
        upto.min(i64::MAX as u64) as i64,
        window,
        period,
        released_upto.min(i64::MAX as u64) as i64
    ])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let p: String = r.get(0)?;
        let player = PlayerId::parse(p).map_err(StoreError::Corrupt)?;
        // TOTAL (a float) rather than SUM, which raises on overflow: sums stay exact up to 2^53
        // and saturate beyond instead of failing the rebuild.
        out.push((player, r.get::<_, f64>(1)? as i64));
    }
    Ok(out)
}

const EVENT_COLUMNS: &str = "seq, event_id, player_id, type, ts, received_at_ms, xp, payload";

fn resolve(
    conn: &Connection,
    event_id: &str,
    resolution: Resolution,
    by: &str,
    at: DateTime<Utc>,
    cache: &mut PlayerMap<StoredProgress>,
) -> Result<(ResolveOutcome, PlayerMap<StoredProgress>), StoreError> {
    let flag = {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {FLAG_COLUMNS} FROM suspicious_events WHERE event_id = ?1"
        ))?;
        let mut rows = stmt.query([event_id])?;
        match rows.next()? {
            Some(r) => row_to_flag(r)?,
            None => return Ok((ResolveOutcome::NotFound, PlayerMap::default())),
        }
    };
    if flag.status != FlagStatus::Quarantined {
        return Ok((ResolveOutcome::NotQuarantined(flag), PlayerMap::default()));
    }
    let status = match resolution {
        Resolution::Release => FlagStatus::Released,
        Resolution::Reject => FlagStatus::Rejected,
    };
    let release: Option<i64> = match resolution {
        Resolution::Release => Some(
            conn.prepare_cached("UPDATE release_counter SET last = last + 1 RETURNING last")?
                .query_row([], |r| r.get(0))?,
        ),
        Resolution::Reject => None,
    };
    conn.prepare_cached(
        "UPDATE suspicious_events
         SET status = ?1, resolved_at_ms = ?2, resolved_by = ?3, release_seq = ?5
         WHERE event_id = ?4 AND status = 'quarantined'",
    )?
    .execute(params![
        status.as_str(),
        at.timestamp_millis(),
        by,
        event_id,
        release
    ])?;
    let mut touched = PlayerMap::default();
    let mut event = None;
    if resolution == Resolution::Release {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE seq = ?1"
        ))?;
        let mut rows = stmt.query([flag.seq as i64])?;
        if let Some(r) = rows.next()? {
            let le = row_to_logged(r)?;
            touched = fold_into_progress(conn, &[&le], cache)?;
            event = Some(le);
        }
    }
    let flag = FlagRecord {
        status,
        resolved_at: Some(at),
        resolved_by: Some(by.to_string()),
        ..flag
    };
    Ok((ResolveOutcome::Resolved { flag, event }, touched))
}

/// JSON encoding of the progress sub-structures: maps and vectors of plain data, whose
/// serialization cannot fail.
fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

fn load_receipt(conn: &Connection, receipt_id: &str) -> Result<Option<Receipt>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT receipt_id, player_id, item, sig, timestamp FROM receipts WHERE receipt_id = ?1")?
        .query_row([receipt_id], |r| {
            Ok(Receipt {
                receipt_id: r.get(0)?,
                player_id: r.get(1)?,
                item: r.get(2)?,
                sig: r.get(3)?,
                timestamp: r.get(4)?,
            })
        })
        .optional()?)
}

fn claim(
    conn: &Connection,
    player: &PlayerId,
    reward_id: &str,
    make: ReceiptMaker,
) -> Result<ClaimOutcome, StoreError> {
    let row: Option<(String, Option<String>)> = conn
        .query_row(
            "SELECT item, receipt_id FROM rewards WHERE player_id = ?1 AND reward_id = ?2",
            params![player.as_str(), reward_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    match row {
        None => Ok(ClaimOutcome::NotEarned),
        Some((_, Some(receipt_id))) => load_receipt(conn, &receipt_id)?
            .map(ClaimOutcome::AlreadyClaimed)
            .ok_or_else(|| StoreError::Corrupt(format!("receipt {receipt_id} missing"))),
        Some((item, None)) => {
            let receipt = make(&item);
            conn.execute(
                "INSERT INTO receipts (receipt_id, player_id, reward_id, item, sig, timestamp)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    receipt.receipt_id,
                    receipt.player_id,
                    reward_id,
                    receipt.item,
                    receipt.sig,
                    receipt.timestamp
                ],
            )?;
            conn.execute(
                "UPDATE rewards SET receipt_id = ?1 WHERE player_id = ?2 AND reward_id = ?3",
                params![receipt.receipt_id, player.as_str(), reward_id],
            )?;
            Ok(ClaimOutcome::Claimed(receipt))
        }
    }
}

fn ms_to_time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn row_to_logged(r: &rusqlite::Row<'_>) -> Result<LoggedEvent, StoreError> {
    let seq: i64 = r.get(0)?;
    let corrupt = |what: String| StoreError::Corrupt(format!("event seq {seq}: {what}"));
    let event_id = EventId::parse(r.get::<_, String>(1)?).map_err(corrupt)?;
    let player_id = PlayerId::parse(r.get::<_, String>(2)?).map_err(corrupt)?;
    let type_str: String = r.get(3)?;
    let event_type =
        EventType::parse(&type_str).ok_or_else(|| corrupt(format!("unknown type {type_str}")))?;
    let payload = Payload::from_stored(r.get(7)?).map_err(corrupt)?;
    let event = Event::from_stored(event_id, player_id, r.get(4)?, event_type, payload)
        .map_err(|e| corrupt(e.to_string()))?;
    Ok(LoggedEvent {
        seq: seq as u64,
        event,
        received_at: ms_to_time(r.get(5)?),
        xp: r.get(6)?,
    })
}

#[async_trait]
impl EventLog for SqliteStore {
    async fn append(&self, events: Vec<NewEvent>) -> Result<Vec<Appended>, StoreError> {
        self.write(|reply| WriteCmd::Append(events, reply)).await
    }

    async fn read_after(&self, after: u64, limit: usize) -> Result<Vec<LoggedEvent>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, event_id, player_id, type, ts, received_at_ms, xp, payload
                 FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?;
            let mut rows = stmt.query(params![after as i64, limit as i64])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(row_to_logged(r)?);
            }
            Ok(out)
        })
        .await
    }

    fn committed(&self) -> watch::Receiver<u64> {
        self.committed.clone()
    }

    fn tail(&self) -> Option<broadcast::Receiver<CommittedBatch>> {
        Some(self.tail.subscribe())
    }

    fn open_connections(&self) -> Option<u64> {
        // The writer's connection plus the read pool's.
        Some(1 + self.readers.open.load(std::sync::atomic::Ordering::Relaxed))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        if self.writer.is_closed() {
            return Err(StoreError::Closed);
        }
        self.read(|conn| Ok(conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))
            .await
            .map(|_| ())
    }
}

#[async_trait]
impl ProgressStore for SqliteStore {
    async fn apply_events(
        &self,
        consumer: &str,
        events: Arc<Vec<LoggedEvent>>,
    ) -> Result<u64, StoreError> {
        let consumer = consumer.to_string();
        self.write(|reply| WriteCmd::Apply(consumer, events, reply))
            .await
    }

    async fn cursor(&self, consumer: &str) -> Result<u64, StoreError> {
        let consumer = consumer.to_string();
        self.read(move |conn| Ok(cursor_of(conn, &consumer)?)).await
    }

    async fn progress(&self, player: &PlayerId) -> Result<Option<StoredProgress>, StoreError> {
        let player = player.clone();
        self.read(move |conn| {
            let Some(mut p) = load_progress(conn, player.as_str())? else {
                return Ok(None);
            };
            p.progress.drops = recent_drops(conn, player.as_str())?;
            Ok(Some(p))
        })
        .await
    }

    async fn rewards(&self, player: &PlayerId) -> Result<Vec<RewardRecord>, StoreError> {
        let player = player.clone();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT reward_id, item, level, granted_at_ms, event_id, receipt_id FROM rewards
                 WHERE player_id = ?1 ORDER BY level, reward_id",
            )?;
            let rows = stmt.query_map([player.as_str()], |r| {
                Ok(RewardRecord {
                    reward_id: r.get(0)?,
                    item: r.get(1)?,
                    level: r.get(2)?,
                    granted_at: ms_to_time(r.get(3)?),
                    event_id: r.get(4)?,
                    receipt_id: r.get(5)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn claim(
        &self,
        player: &PlayerId,
        reward_id: &str,
        make: ReceiptMaker,
    ) -> Result<ClaimOutcome, StoreError> {
        let (player, reward_id) = (player.clone(), reward_id.to_string());
        self.write(|reply| WriteCmd::Claim(player, reward_id, make, reply))
            .await
    }

    async fn receipt(&self, receipt_id: &str) -> Result<Option<Receipt>, StoreError> {
        let id = receipt_id.to_string();
        self.read(move |conn| load_receipt(conn, &id)).await
    }
}

#[async_trait]
impl AdminStore for SqliteStore {
    async fn erase_player(&self, player: &PlayerId) -> Result<u64, StoreError> {
        let player = player.clone();
        self.write(|reply| WriteCmd::Erase(player, reply)).await
    }

    async fn set_block(&self, block: Block) -> Result<(), StoreError> {
        self.write(|reply| {
            WriteCmd::Exec(
                Box::new(move |conn| {
                    conn.prepare_cached(
                        "INSERT INTO player_blocks (player_id, until_ms, reason, created_at_ms)
                         VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (player_id) DO UPDATE SET until_ms = excluded.until_ms,
                           reason = excluded.reason, created_at_ms = excluded.created_at_ms",
                    )?
                    .execute(params![
                        block.player_id.as_str(),
                        block.until.map(|t| t.timestamp_millis()),
                        block.reason,
                        block.created_at.timestamp_millis(),
                    ])?;
                    Ok(())
                }),
                reply,
            )
        })
        .await
    }

    async fn clear_block(&self, player: &PlayerId) -> Result<(), StoreError> {
        let player = player.to_string();
        self.write(|reply| {
            WriteCmd::Exec(
                Box::new(move |conn| {
                    conn.prepare_cached("DELETE FROM player_blocks WHERE player_id = ?1")?
                        .execute([player])?;
                    Ok(())
                }),
                reply,
            )
        })
        .await
    }

    async fn blocks(&self) -> Result<Vec<Block>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT player_id, until_ms, reason, created_at_ms FROM player_blocks ORDER BY player_id",
            )?;
            let mut rows = stmt.query([])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let p: String = r.get(0)?;
                out.push(Block {
                    player_id: PlayerId::parse(p).map_err(StoreError::Corrupt)?,
                    until: r.get::<_, Option<i64>>(1)?.map(ms_to_time),
                    reason: r.get(2)?,
                    created_at: ms_to_time(r.get(3)?),
                });
            }
            Ok(out)
        })
        .await
    }

    async fn append_audit(&self, entry: AuditEntry) -> Result<(), StoreError> {
        self.write(|reply| {
            WriteCmd::Exec(
                Box::new(move |conn| {
                    conn.prepare_cached(
                        "INSERT INTO audit_log (at_ms, actor, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
                    )?
                    .execute(params![
                        entry.at.timestamp_millis(),
                        entry.actor,
                        entry.action,
                        entry.target,
                        entry.detail.to_string(),
                    ])?;
                    Ok(())
                }),
                reply,
            )
        })
        .await
    }

    async fn audit(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT at_ms, actor, action, target, detail FROM audit_log ORDER BY id DESC LIMIT ?1",
            )?;
            let mut rows = stmt.query([limit as i64])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let detail: String = r.get(4)?;
                out.push(AuditEntry {
                    at: ms_to_time(r.get(0)?),
                    actor: r.get(1)?,
                    action: r.get(2)?,
                    target: r.get(3)?,
                    detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
                });
            }
            Ok(out)
        })
        .await
    }
}

#[async_trait]
impl FairnessStore for SqliteStore {
    async fn record_flags(
        &self,
        consumer: &str,
        flags: Vec<FlagRecord>,
        cursor: u64,
    ) -> Result<(), StoreError> {
        let consumer = consumer.to_string();
        self.write(|reply| {
            WriteCmd::Exec(
                Box::new(move |conn| {
                    let mut insert = conn.prepare_cached(
                        "INSERT INTO suspicious_events (seq, event_id, player_id, metric, value, rule, reason, status, flagged_at_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT DO NOTHING",
                    )?;
                    for f in &flags {
                        insert.execute(params![
                            f.seq as i64,
                            f.event_id,
                            f.player_id,
                            f.metric,
                            f.value,
                            f.rule,
                            f.reason,
                            f.status.as_str(),
                            f.flagged_at.timestamp_millis(),
                        ])?;
                    }
                    // Forward only, like PgStore: a late retry cannot rewind the cursor.
                    conn.prepare_cached(
                        "INSERT INTO consumer_offsets (consumer, seq) VALUES (?1, ?2)
                         ON CONFLICT (consumer) DO UPDATE SET seq = MAX(seq, excluded.seq)",
                    )?
                    .execute(params![consumer, cursor as i64])?;
                    Ok(())
                }),
                reply,
            )
        })
        .await
    }

    async fn flags(&self, filter: FlagFilter) -> Result<(Vec<FlagRecord>, u64), StoreError> {
        self.read(move |conn| {
            let player = filter.player.as_ref().map(|p| p.to_string());
            let status = filter.status.map(|s| s.as_str());
            let cond = "(?1 IS NULL OR player_id = ?1) AND (?2 IS NULL OR status = ?2)";
            let total: i64 = conn
                .prepare_cached(&format!("SELECT COUNT(*) FROM suspicious_events WHERE {cond}"))?
                .query_row(params![player, status], |r| r.get(0))?;
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {FLAG_COLUMNS} FROM suspicious_events WHERE {cond} ORDER BY seq DESC LIMIT ?3 OFFSET ?4"
            ))?;
            let mut rows = stmt.query(params![player, status, filter.limit as i64, filter.offset as i64])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(row_to_flag(r)?);
            }
            Ok((out, total as u64))
        })
        .await
    }

    async fn flag_statuses(&self, upto: u64) -> Result<HashMap<u64, FlagStatus>, StoreError> {
        self.read(move |conn| {
            let mut stmt =
                conn.prepare_cached("SELECT seq, status FROM suspicious_events WHERE seq <= ?1")?;
            let mut rows = stmt.query([upto.min(i64::MAX as u64) as i64])?;
            let mut out = HashMap::new();
            while let Some(r) = rows.next()? {
                let status: String = r.get(1)?;
                let status = FlagStatus::parse(&status)
                    .ok_or_else(|| StoreError::Corrupt(format!("flag status {status}")))?;
                out.insert(r.get::<_, i64>(0)? as u64, status);
            }
            Ok(out)
        })
        .await
    }

    async fn resolve(
        &self,
        event_id: &str,
        resolution: Resolution,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<ResolveOutcome, StoreError> {
        let (event_id, by) = (event_id.to_string(), by.to_string());
        self.write(|reply| WriteCmd::Resolve(event_id, resolution, by, at, reply))
            .await
    }

    async fn read_decided_after(
        &self,
        after: u64,
        limit: usize,
        upto: u64,
    ) -> Result<Vec<LoggedEvent>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT e.seq, e.event_id, e.player_id, e.type, e.ts, e.received_at_ms, e.xp, e.payload
                 FROM events e LEFT JOIN suspicious_events s ON s.seq = e.seq
                 WHERE e.seq > ?1 AND e.seq <= ?2
                   AND (s.status IS NULL OR s.status = 'flagged')
                 ORDER BY e.seq LIMIT ?3",
            )?;
            let mut rows = stmt.query(params![after as i64, upto.min(i64::MAX as u64) as i64, limit as i64])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(row_to_logged(r)?);
            }
            Ok(out)
        })
        .await
    }
}

#[async_trait]
impl BoardSource for SqliteStore {
    async fn period_xp(
        &self,
        period: &Period,
        upto: u64,
        released_upto: u64,
    ) -> Result<Vec<(PlayerId, i64)>, StoreError> {
        let (window, id, from, to) = (
            period.window.as_str(),
            period.id.clone(),
            period.start,
            period.end,
        );
        self.read(move |conn| sum_xp(conn, from, to, (upto, released_upto), Some((window, &id))))
            .await
    }

    async fn release_head(&self) -> Result<u64, StoreError> {
        self.read(|conn| {
            let last: i64 = conn
                .prepare_cached("SELECT last FROM release_counter")?
                .query_row([], |r| r.get(0))?;
            Ok(last.max(0) as u64)
        })
        .await
    }

    async fn released_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<ReleasedEvent>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT e.seq, e.event_id, e.player_id, e.type, e.ts, e.received_at_ms, e.xp, e.payload,
                        s.release_seq
                 FROM suspicious_events s JOIN events e ON e.seq = s.seq
                 WHERE s.release_seq > ?1 ORDER BY s.release_seq LIMIT ?2",
            )?;
            let mut rows = stmt.query(params![after.min(i64::MAX as u64) as i64, limit as i64])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                // After the event's columns, which row_to_logged reads by position.
                let release: i64 = r.get(8)?;
                out.push(ReleasedEvent {
                    release: release.max(0) as u64,
                    event: row_to_logged(r)?,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn reset_after(&self, period: &Period) -> Result<Option<u64>, StoreError> {
        let (window, id) = (period.window.as_str(), period.id.clone());
        self.read(move |conn| {
            let after: Option<i64> = conn
                .prepare_cached(
                    "SELECT after_seq FROM leaderboard_resets WHERE window = ?1 AND period = ?2",
                )?
                .query_row(params![window, id], |r| r.get(0))
                .optional()?;
            Ok(after.map(|a| a.max(0) as u64))
        })
        .await
    }

    async fn reset_period(
        &self,
        period: &Period,
        after_seq: u64,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (window, id) = (period.window.as_str(), period.id.clone());
        self.write(|reply| {
            WriteCmd::Exec(
                Box::new(move |conn| {
                    conn.prepare_cached(
                        "INSERT INTO leaderboard_resets (window, period, after_seq, at_ms) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (window, period) DO UPDATE SET after_seq = excluded.after_seq, at_ms = excluded.at_ms",
                    )?
                    .execute(params![window, id, after_seq as i64, at.timestamp_millis()])?;
                    Ok(())
                }),
                reply,
            )
        })
        .await
    }

    async fn xp_by_player(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        upto: u64,
    ) -> Result<Vec<(PlayerId, i64)>, StoreError> {
        self.read(move |conn| sum_xp(conn, from, to, (upto, u64::MAX), None))
            .await
    }
}
