//! The consumer loop shared by the roles that apply the committed log (progression,
//! leaderboards): take what follows the cursor, apply it, repeat; sleep on the log's commit
//! watch when caught up. What "apply" means and where the cursor lives is the role's business;
//! this loop only guarantees order and that a failed batch is retried, never skipped.
//!
//! Batches committed by this process arrive in memory through the log's tail, which saves
//! reading and decoding them again. The tail is only used when a batch follows on exactly from
//! the cursor (`prev_head == cursor`); after a lag, a gap or a restart the loop reads the log,
//! so the in-memory path is an optimisation that can never skip or repeat an event.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use liveops_store::{EventLog, LoggedEvent, StoreError};
use tokio::sync::broadcast::error::TryRecvError;
use tokio_util::sync::CancellationToken;

/// Events read from the log per batch: large enough to amortise a transaction, small enough to
/// keep the visibility latency of the first event low.
pub const BATCH: usize = 2000;

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
        let mut next: Option<(Arc<Vec<LoggedEvent>>, u64)> = None;
        if let Some(rx) = tail.as_mut() {
            // Take every batch that follows on from the cursor, up to BATCH events: a consumer
            // that fell behind catches up in a few large applies instead of one per commit.
            let mut taken: Vec<Arc<Vec<LoggedEvent>>> = Vec::new();
            let mut upto = cursor;
            let mut count = 0;
            loop {
                match rx.try_recv() {
                    Ok(b) if b.head <= upto => continue,
                    Ok(b) if b.prev_head == upto => {
                        upto = b.head;
                        count += b.events.len();
                        taken.push(b.events);
                        if count >= BATCH {
                            break;
                        }
                    }
                    Err(TryRecvError::Closed) => {
                        tail = None;
                        break;
                    }
                    Err(TryRecvError::Empty) => break,
                    // A gap or a lag: what was taken is still contiguous; the rest comes from
                    // the log on the next round.
                    Ok(_) | Err(TryRecvError::Lagged(_)) => break,
                }
            }
            next = match taken.len() {
                0 => None,
                1 => taken.pop().map(|events| (events, upto)),
                _ => Some((
                    Arc::new(taken.iter().flat_map(|b| b.iter().cloned()).collect()),
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

async fn sleep_or_stop(shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => true,
        _ = tokio::time::sleep(Duration::from_millis(500)) => false,
    }
}
