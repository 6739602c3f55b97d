//! The writer thread: the one owner of the SQLite write connection, and its group commit.
//!
//! SQLite allows one writer at a time, so every write is a [`WriteCmd`] sent to this thread. It
//! takes whatever commands queued up while the previous commit was being fsynced and commits
//! them in one transaction (group commit): under load, one fsync covers hundreds of events
//! instead of one each, while an idle server still commits a lone event at once. Each command
//! runs inside its own savepoint so one failing command does not take its neighbours down, and
//! nobody hears "done" before the whole group's commit is durable.
//!
//! The checkpointer thread beside it copies the WAL back into the database file on a connection
//! of its own, so that this work is not done inside the writer's commits.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use liveops_domain::{EventId, PlayerId};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::admin::erase;
use super::fairness::resolve;
use super::log::append;
use super::progress::{apply, claim};
use crate::{
    Appended, ClaimOutcome, CommittedBatch, LoggedEvent, NewEvent, ReceiptMaker, Resolution,
    ResolveOutcome, StoreError, StoredProgress,
};

/// The most commands one group commit takes, bounding the latency of the first one.
const MAX_GROUP: usize = 2048;

/// Where the writer sends a command's result; the caller awaits the other end.
pub(super) type Reply<T> = oneshot::Sender<Result<T, StoreError>>;
/// Sends a command's answer once the group's commit succeeded (`None`) or failed.
type Done = Box<dyn FnOnce(Option<&str>)>;

/// One write, as the writer thread runs it inside a group's transaction.
pub(super) enum WriteCmd {
    /// Events to log; each payload is already JSON text (as the client sent it), so the writer
    /// thread, which bounds ingest, binds it without encoding anything.
    Append(Vec<NewEvent>, Reply<Vec<Appended>>),
    /// Apply log events to progression for a consumer and move its cursor; reads and fills
    /// the progress cache.
    Apply(String, Arc<Vec<LoggedEvent>>, Reply<u64>),
    /// Claim a player's reward (by reward id), issuing the receipt once.
    Claim(PlayerId, String, ReceiptMaker, Reply<ClaimOutcome>),
    /// A small write of its own (blocks, audit entries), run inside the group's transaction.
    Exec(ExecFn, Reply<()>),
    /// Erase a player (GDPR); touches the cache and the erased set.
    Erase(PlayerId, Reply<u64>),
    /// Release or reject a quarantined event; a release applies progression, hence the cache.
    Resolve(
        EventId,
        Resolution,
        String,
        DateTime<Utc>,
        Reply<ResolveOutcome>,
    ),
}

/// The writer's per-player maps, looked up once or twice per applied event on the thread that
/// bounds ingest: foldhash instead of SipHash (keys are player ids, which a client picks, but
/// the per-process random seed keeps collisions unforceable in practice).
pub(super) type PlayerMap<V> = HashMap<String, V, foldhash::fast::RandomState>;

/// The body of a [`WriteCmd::Exec`], run on the group's transaction.
pub(super) type ExecFn = Box<dyn FnOnce(&Connection) -> Result<(), StoreError> + Send>;

/// State the writer thread keeps between groups.
struct Writer {
    /// The only write connection to the database; it lives and dies with this thread.
    conn: Connection,
    /// The highest committed `seq`.
    head: u64,
    /// Publishes [`Writer::head`] after each commit that appended events; every store
    /// handle's `committed()` watches it.
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

/// WAL pages after which the writer checkpoints by itself. The checkpointer thread normally
/// keeps the WAL far below this; the writer only steps in when it falls behind, so the WAL
/// stays bounded whatever happens to that thread.
pub(super) const WAL_BACKSTOP_PAGES: i64 = 8192;
/// The least time between two background checkpoints: often enough that the writer's backstop
/// rarely triggers, rarely enough that a page rewritten by every commit (a B-tree root, a hot
/// progress page) is copied into the database once per pass, not once per commit.
const CHECKPOINT_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

/// Starts the thread that copies the WAL back into the database file (checkpoints) on its own
/// connection, so that this copying and the database file's fsync happen beside the writer
/// instead of inside a commit: the writer thread is what bounds ingest throughput. Returns the
/// writer's end of the "something was committed" doorbell; the thread exits when the writer
/// drops it.
pub(super) fn spawn_checkpointer(
    path: &Path,
) -> Result<std::sync::mpsc::SyncSender<()>, StoreError> {
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

pub(super) fn writer_loop(
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
                // parses its SQL every time, which costs several percent per event.
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
