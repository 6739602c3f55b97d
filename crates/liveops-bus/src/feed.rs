//! [`RoleFeed`]: a role's durable consumer seen as a read-only [`EventLog`], so the pipeline
//! that applies the log from a cursor (`liveops-server/src/pipeline.rs`) runs on it unchanged.
//!
//! The pipeline asks for "events after my cursor" each round, and only after it committed the
//! previous batch's effects (and its cursor). So a `read_after(after)` is the moment every
//! delivery with `seq <= after` is committed: it acks those first, then fetches. That gives the
//! bus contract (ack only after the effect commits) without the pipeline knowing about acks.
//!
//! The pipeline also takes this process's own appends from the log's in-process tail when they
//! follow on from its cursor (an all-roles process: its gateway just published them), without
//! reading them here. The durable then falls behind the cursor; it is never acked past what was
//! committed (so the ack contract holds), and the next read moves it up to the cursor, by
//! draining a short lag or by repositioning at the cursor after a long one.
//!
//! Deliveries at or below the cursor (redeliveries after a crash or a slow batch) are acked and
//! dropped. If the first new delivery is not `after + 1` (another process pulled from the same
//! durable during a leadership hand-over, say), the consumer is repositioned at the cursor and
//! read again, so nothing is ever skipped; only when the stream itself no longer holds the
//! missing sequences (retention) is the gap accepted, with a warning.

use std::time::Duration;

use async_trait::async_trait;
use liveops_store::{Appended, CommittedBatch, EventLog, LoggedEvent, NewEvent, StoreError};
use tokio::sync::{broadcast, watch, Mutex};

use crate::log::EMPTY_READ_PAUSES_MS;
use crate::{Delivery, NatsEventLog, RoleConsumer, RoleOptions};

/// How long a read waits for the first message when the stream has nothing new; the pipeline
/// only reads when the head says there is something, so this is rarely waited out.
const FETCH_WAIT: Duration = Duration::from_millis(200);
/// How long the pipeline waits to gather a small batch (see [`EventLog::linger`]).
const LINGER: Duration = Duration::from_millis(5);
/// A read that finds the durable this many events behind the caller's cursor (the caller took
/// them from the tail) moves the durable instead of draining it.
const REPOSITION_GAP: u64 = 256;

pub struct RoleFeed {
    log: NatsEventLog,
    opts: RoleOptions,
    inner: Mutex<Inner>,
}

struct Inner {
    consumer: RoleConsumer,
    /// Delivered and handed to the pipeline, not yet acked (acked once the cursor passes them).
    unacked: Vec<Delivery>,
    /// The highest seq the consumer delivered (where it was positioned, before any delivery).
    /// Falls behind the caller's cursor while the caller applies own appends from the tail.
    delivered: u64,
}

impl RoleFeed {
    /// Takes `role` over at its committed `cursor` (see [`RoleConsumer::open`]).
    pub async fn open(log: NatsEventLog, role: &str, cursor: u64) -> Result<Self, StoreError> {
        let opts = RoleOptions::default();
        let consumer = RoleConsumer::open(&log, role, cursor, opts.clone()).await?;
        Ok(Self {
            log,
            opts,
            inner: Mutex::new(Inner {
                consumer,
                unacked: Vec::new(),
                delivered: cursor,
            }),
        })
    }
}

#[async_trait]
impl EventLog for RoleFeed {
    async fn append(&self, _events: Vec<NewEvent>) -> Result<Vec<Appended>, StoreError> {
        Err(StoreError::Database(
            "a role's feed of the bus is read-only".into(),
        ))
    }

    async fn read_after(&self, after: u64, limit: usize) -> Result<Vec<LoggedEvent>, StoreError> {
        let mut inner = self.inner.lock().await;
        // Everything at or below `after` is committed by the caller: ack it now.
        let (done, keep): (Vec<Delivery>, Vec<Delivery>) =
            inner.unacked.drain(..).partition(|d| d.seq() <= after);
        inner.unacked = keep;
        inner.consumer.ack(&done).await?;
        // Handed out before and not committed (the caller's apply failed and it retries): the
        // same events again. The consumer will not redeliver them before `ack_wait`.
        if !inner.unacked.is_empty() {
            return Ok(inner
                .unacked
                .iter()
                .take(limit)
                .map(|d| d.event.clone())
                .collect());
        }
        if after >= inner.delivered + REPOSITION_GAP {
            // The caller applied (delivered, after] from the tail. Two requests that move the
            // durable are cheaper than having the server deliver all that again to be dropped.
            inner.consumer.reposition(after, self.opts.clone()).await?;
            inner.delivered = after;
        }
        let next = after + 1;
        let mut repositioned = false;
        let mut empty_reads = 0;
        loop {
            let fetched = inner.consumer.fetch(limit, FETCH_WAIT).await?;
            if let Some(top) = fetched.iter().map(Delivery::seq).max() {
                inner.delivered = inner.delivered.max(top);
            }
            let (stale, fresh): (Vec<Delivery>, Vec<Delivery>) =
                fetched.into_iter().partition(|d| d.seq() <= after);
            let drained = !stale.is_empty();
            inner.consumer.ack(&stale).await?;
            if drained && fresh.is_empty() {
                // Only what the caller applied from the tail (or redeliveries): read on.
                continue;
            }
            let first = fresh.first().map(Delivery::seq);
            let Some(first) = first else {
                // Nothing delivered. The pipeline takes an empty read below the head as "no
                // events up to the head" and moves past them, so never answer empty while the
                // stream holds events after `after`: JetStream can answer a pull with "no
                // messages" under load although later messages are stored. Retry briefly,
                // then report unavailable (the pipeline retries) unless they expired.
                let head = *self.log.committed().borrow();
                if head <= after {
                    return Ok(Vec::new());
                }
                if let Some(pause) = EMPTY_READ_PAUSES_MS.get(empty_reads) {
                    empty_reads += 1;
                    tokio::time::sleep(Duration::from_millis(*pause)).await;
                    continue;
                }
                let (first_stored, _) = self.log.seq_range().await?;
                if first_stored > head {
                    return Ok(Vec::new());
                }
                return Err(StoreError::Unavailable(format!(
                    "the stream holds events up to {head} but the role consumer delivered none after {after}; retrying"
                )));
            };
            if first > next && !repositioned {
                tracing::warn!(
                    consumer = inner.consumer.name(),
                    expected = next,
                    got = first,
                    "role feed saw a gap; repositioning at the cursor"
                );
                inner.consumer.reposition(after, self.opts.clone()).await?;
                inner.delivered = after;
                repositioned = true;
                continue;
            }
            if first > next {
                tracing::warn!(
                    consumer = inner.consumer.name(),
                    expected = next,
                    got = first,
                    "events missing from the stream (retention?); going on from what it holds"
                );
            }
            let events: Vec<LoggedEvent> = fresh.iter().map(|d| d.event.clone()).collect();
            inner.unacked.extend(fresh);
            return Ok(events);
        }
    }

    fn committed(&self) -> watch::Receiver<u64> {
        self.log.committed()
    }

    /// Under a steady trickle each batch would carry a handful of events, and each costs the
    /// role a PostgreSQL transaction (and the bus an ack): wait a moment for more.
    fn linger(&self) -> Duration {
        LINGER
    }

    /// This process's own appends, so an all-roles process judges what its gateway published
    /// without the server delivering it back (see the module documentation).
    fn tail(&self) -> Option<broadcast::Receiver<CommittedBatch>> {
        self.log.tail()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.log.ping().await
    }
}
