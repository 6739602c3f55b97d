//! The consumer loop shared by the roles that apply the committed log (progression,
//! leaderboards): take what follows the cursor, apply it, repeat; sleep on the log's commit
//! watch when caught up. What "apply" means and where the cursor lives is the role's business;
//! this loop only guarantees order and that a failed batch is retried, never skipped.
//!
//! Batches committed by this process arrive in memory through the log's tail, which saves
//! reading and decoding them again. A tail batch is only used when it follows on exactly from
//! the cursor (`prev_head == cursor`); one that arrives early (JetStream acknowledges
//! concurrent appends in any order) waits in a small buffer for the batch before it. After a
//! lag, a gap that does not close (another process's appends) or a restart the loop reads the
//! log, so the in-memory path is an optimisation that can never skip or repeat an event.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use liveops_store::{CommittedBatch, EventLog, LoggedEvent, StoreError};
use tokio::sync::broadcast::{self, error::TryRecvError};
use tokio_util::sync::CancellationToken;

/// Events read from the log per batch: large enough to amortise a transaction, small enough to
/// keep the visibility latency of the first event low.
pub const BATCH: usize = 2000;
/// How long a consumer waits for the batch that closes a gap in the tail before reading the
/// log instead (a batch acknowledged out of order is normally a few microseconds late).
const REORDER_WAIT: Duration = Duration::from_millis(2);
/// A consumer whose log asks to linger ([`EventLog::linger`]) waits when it is fewer than this
/// many events behind.
const LINGER_BELOW: u64 = 256;
/// Tail batches held past a gap at most.
const MAX_PENDING: usize = 4096;

/// Runs until `shutdown`. `apply` gets each batch and returns the new cursor.
pub async fn consume<F, Fut>(
    name: &'static str,
    log: Arc<dyn EventLog>,
    mut cursor: u64,
    shutdown: CancellationToken,
    mut apply: F,
) where
    F: FnMut(Arc<Vec<LoggedEvent>>) -> Fut,
    Fut: Future<Output = Result<u64, StoreError>>,
{
    let mut committed = log.committed();
    let mut tail = log.tail();
    let mut pending = Pending::default();
    let mut waited_for_gap = false;
    let linger = log.linger();
    let mut lingered = false;
    loop {
        // Stop between batches, not only when caught up: the backlog is durable and the next
        // start resumes from the cursor, so shutdown time does not grow with the lag.
        if shutdown.is_cancelled() {
            return;
        }
        let head = *committed.borrow_and_update();
        metrics::gauge!("pipeline_lag_events", "consumer" => name)
            .set(head.saturating_sub(cursor) as f64);
        if cursor >= head {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = committed.changed() => if changed.is_err() { return },
            }
            continue;
        }
        if !lingered && head - cursor < LINGER_BELOW && !linger.is_zero() {
            lingered = true;
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(linger) => continue,
            }
        }
        let mut next: Option<(Arc<Vec<LoggedEvent>>, u64)> = None;
        if let Some(rx) = tail.as_mut() {
            let open = pending.drain_from(rx, cursor);
            let mut taken = pending.take_run(cursor);
            if open && taken.is_empty() && pending.is_ahead() && !waited_for_gap {
                // Own batches past a gap: the gap is most likely another of this process's
                // appends whose acknowledgement is being handled right now (JetStream acks
                // concurrent appends in any order). Give it a moment before reading the log.
                waited_for_gap = true;
                if let Ok(Ok(b)) = tokio::time::timeout(REORDER_WAIT, rx.recv()).await {
                    pending.insert(b, cursor);
                }
                continue;
            }
            if !open {
                tail = None;
            }
            waited_for_gap = false;
            let upto = taken.last().map_or(cursor, |b| b.head);
            next = match taken.len() {
                0 => None,
                1 => taken.pop().map(|b| (b.events, upto)),
                // A batch the other consumers have seen already is ours alone: moved, not
                // copied.
                _ => Some((
                    Arc::new(
                        taken
                            .into_iter()
                            .flat_map(|b| {
                                Arc::try_unwrap(b.events).unwrap_or_else(|e| (*e).clone())
                            })
                            .collect(),
                    ),
                    upto,
                )),
            };
        }
        let (batch, upto) = match next {
            Some(b) => b,
            None => match log.read_after(cursor, BATCH).await {
                Ok(b) => {
                    let Some(last) = b.last().map(|e| e.seq) else {
                        // Erased events leave gaps below the head; nothing to read up to it.
                        cursor = head;
                        continue;
                    };
                    (Arc::new(b), last)
                }
                Err(e) => {
                    tracing::warn!(consumer = name, error = %e, "reading the log failed; retrying");
                    if sleep_or_stop(&shutdown).await {
                        return;
                    }
                    continue;
                }
            },
        };
        let n = batch.len() as u64;
        loop {
            match apply(batch.clone()).await {
                Ok(c) => {
                    cursor = c.max(upto);
                    lingered = false;
                    metrics::counter!("events_processed_total", "consumer" => name).increment(n);
                    break;
                }
                Err(e) => {
                    tracing::warn!(consumer = name, error = %e, "applying a batch failed; retrying");
                    if sleep_or_stop(&shutdown).await {
                        return;
                    }
                }
            }
        }
    }
}

/// Tail batches not applied yet, by the log position they follow on from. The SQLite log sends
/// its batches in seq order, JetStream's acks of concurrent appends come back in any order, so
/// a batch can arrive before the one it follows: it waits here instead of being thrown away.
#[derive(Default)]
struct Pending {
    by_prev_head: BTreeMap<u64, CommittedBatch>,
}

impl Pending {
    /// Moves what the tail holds into the buffer, dropping what is at or below `cursor`.
    /// False when the tail is closed for good.
    fn drain_from(&mut self, rx: &mut broadcast::Receiver<CommittedBatch>, cursor: u64) -> bool {
        self.by_prev_head = self.by_prev_head.split_off(&cursor);
        loop {
            match rx.try_recv() {
                Ok(b) => self.insert(b, cursor),
                // Batches were dropped for a slow consumer: what is buffered is still exact,
                // the missing ones come from the log.
                Err(TryRecvError::Lagged(_)) => {}
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Closed) => return false,
            }
        }
    }

    fn insert(&mut self, batch: CommittedBatch, cursor: u64) {
        if batch.head <= cursor {
            return;
        }
        if self.by_prev_head.len() >= MAX_PENDING {
            // Far ahead of a gap that is not closing: the log has it all anyway.
            self.by_prev_head.clear();
        }
        self.by_prev_head.insert(batch.prev_head, batch);
    }

    /// The buffered batches that follow on from `cursor` one after the other, up to [`BATCH`]
    /// events: a consumer that fell behind catches up in a few large applies.
    fn take_run(&mut self, cursor: u64) -> Vec<CommittedBatch> {
        let mut run = Vec::new();
        let (mut upto, mut count) = (cursor, 0);
        while count < BATCH {
            let Some(b) = self.by_prev_head.remove(&upto) else {
                break;
            };
            upto = b.head;
            count += b.events.len();
            run.push(b);
        }
        run
    }

    /// Whether batches past a gap are waiting.
    fn is_ahead(&self) -> bool {
        !self.by_prev_head.is_empty()
    }
}

async fn sleep_or_stop(shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => true,
        _ = tokio::time::sleep(Duration::from_millis(500)) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use chrono::Utc;
    use liveops_domain::Event;
    use liveops_store::{Appended, NewEvent};
    use parking_lot::Mutex;
    use tokio::sync::watch;

    /// A log whose stored events, head and tail the test drives by hand; it counts reads.
    struct HandLog {
        stored: Mutex<Vec<LoggedEvent>>,
        head: watch::Sender<u64>,
        tail: broadcast::Sender<CommittedBatch>,
        reads: Mutex<Vec<u64>>,
        linger: Duration,
    }

    #[async_trait]
    impl EventLog for HandLog {
        async fn append(&self, _: Vec<NewEvent>) -> Result<Vec<Appended>, StoreError> {
            unreachable!("the consumer loop never appends")
        }
        async fn read_after(
            &self,
            after: u64,
            limit: usize,
        ) -> Result<Vec<LoggedEvent>, StoreError> {
            self.reads.lock().push(after);
            let stored = self.stored.lock();
            Ok(stored
                .iter()
                .filter(|e| e.seq > after)
                .take(limit)
                .cloned()
                .collect())
        }
        fn committed(&self) -> watch::Receiver<u64> {
            self.head.subscribe()
        }
        fn tail(&self) -> Option<broadcast::Receiver<CommittedBatch>> {
            Some(self.tail.subscribe())
        }
        fn linger(&self) -> Duration {
            self.linger
        }
        async fn ping(&self) -> Result<(), StoreError> {
            Ok(())
        }
    }

    fn logged(seq: u64) -> LoggedEvent {
        let event = Event::from_value(serde_json::json!({
            "eventId": format!("e{seq}"), "type": "progression", "playerId": "player_1",
            "ts": 1, "payload": {"deltaXp": 1, "activity": "quest"},
        }))
        .expect("valid event");
        LoggedEvent {
            seq,
            event,
            received_at: Utc::now(),
            xp: 1,
        }
    }

    fn batch(prev_head: u64, head: u64) -> CommittedBatch {
        CommittedBatch {
            prev_head,
            head,
            events: Arc::new((prev_head + 1..=head).map(logged).collect()),
        }
    }

    /// Runs the loop on `log` until it applied up to `upto`; returns the applied batches' seqs.
    async fn applied_until(log: Arc<HandLog>, upto: u64) -> Vec<Vec<u64>> {
        let shutdown = CancellationToken::new();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (done_tx, mut done) = watch::channel(0u64);
        let task = tokio::spawn(consume("test", log, 0, shutdown.clone(), {
            let seen = seen.clone();
            move |b: Arc<Vec<LoggedEvent>>| {
                let seen = seen.clone();
                let done_tx = done_tx.clone();
                async move {
                    seen.lock()
                        .push(b.iter().map(|e| e.seq).collect::<Vec<_>>());
                    let last = b.last().map_or(0, |e| e.seq);
                    done_tx.send_replace(last);
                    Ok(last)
                }
            }
        }));
        tokio::time::timeout(Duration::from_secs(5), done.wait_for(|c| *c >= upto))
            .await
            .expect("the loop applies everything in time")
            .expect("the loop runs");
        shutdown.cancel();
        task.await.expect("the loop stops");
        let seen = seen.lock().clone();
        seen
    }

    /// Starts the loop on `log` (see [`applied_until`]) and lets it subscribe and wait.
    async fn started(log: &Arc<HandLog>, upto: u64) -> tokio::task::JoinHandle<Vec<Vec<u64>>> {
        let run = tokio::spawn(applied_until(log.clone(), upto));
        tokio::time::sleep(Duration::from_millis(20)).await;
        run
    }

    fn hand_log(stored: u64) -> Arc<HandLog> {
        hand_log_lingering(stored, Duration::ZERO)
    }

    fn hand_log_lingering(stored: u64, linger: Duration) -> Arc<HandLog> {
        Arc::new(HandLog {
            stored: Mutex::new((1..=stored).map(logged).collect()),
            head: watch::channel(0).0,
            tail: broadcast::channel(64).0,
            reads: Mutex::new(Vec::new()),
            linger,
        })
    }

    // Paused time: the 2 ms reorder wait is virtual, so the test does not depend on the
    // machine's speed (the out-of-order batch comes 0.2 ms into the wait).
    #[tokio::test(start_paused = true)]
    async fn tail_batches_acknowledged_out_of_order_are_applied_in_order_without_a_read() {
        let log = hand_log(6);
        let run = started(&log, 6).await;
        // The second and third appends are acknowledged before the first.
        log.tail.send(batch(2, 4)).expect("subscribed");
        log.tail.send(batch(4, 6)).expect("subscribed");
        log.head.send_replace(6);
        tokio::time::sleep(Duration::from_micros(200)).await;
        log.tail.send(batch(0, 2)).expect("subscribed");
        assert_eq!(run.await.expect("run").concat(), vec![1, 2, 3, 4, 5, 6]);
        assert!(
            log.reads.lock().is_empty(),
            "read the log: {:?}",
            log.reads.lock()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_gap_the_tail_never_fills_is_read_from_the_log_and_nothing_is_applied_twice() {
        // Seq 3 was appended by another process: only the log has it.
        let log = hand_log(6);
        let run = started(&log, 6).await;
        log.tail.send(batch(0, 2)).expect("subscribed");
        log.tail.send(batch(3, 6)).expect("subscribed");
        log.head.send_replace(6);
        assert_eq!(run.await.expect("run").concat(), vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(
            log.reads.lock().first(),
            Some(&2),
            "reads: {:?}",
            log.reads.lock()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_lingering_log_gathers_a_trickle_into_one_batch() {
        let log = hand_log_lingering(3, Duration::from_millis(5));
        let run = started(&log, 3).await;
        for seq in 1..=3 {
            log.tail.send(batch(seq - 1, seq)).expect("subscribed");
            log.head.send_replace(seq);
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(run.await.expect("run"), vec![vec![1, 2, 3]]);
    }
}
