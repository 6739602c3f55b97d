//! The consumer loop shared by the roles that apply the committed log (progression,
//! leaderboards): read after a cursor, apply, repeat; sleep on the log's commit watch when
//! caught up. What "apply" means and where the cursor lives is the role's business; this loop
//! only guarantees order and that a failed batch is retried, never skipped.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use liveops_store::{EventLog, LoggedEvent, StoreError};
use tokio_util::sync::CancellationToken;

/// Events read per batch: large enough to amortise a transaction, small enough to keep the
/// visibility latency of the first event low.
pub const BATCH: usize = 2000;

/// Runs until `shutdown`. `apply` gets each batch and returns the new cursor.
pub async fn consume<F, Fut>(
    name: &'static str,
    log: Arc<dyn EventLog>,
    mut cursor: u64,
    shutdown: CancellationToken,
    mut apply: F,
) where
    F: FnMut(Vec<LoggedEvent>) -> Fut,
    Fut: Future<Output = Result<u64, StoreError>>,
{
    let mut committed = log.committed();
    loop {
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
        let batch = match log.read_after(cursor, BATCH).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(consumer = name, error = %e, "reading the log failed; retrying");
                if sleep_or_stop(&shutdown).await {
                    return;
                }
                continue;
            }
        };
        let Some(last) = batch.last().map(|e| e.seq) else {
            // Erased events leave gaps below the head; nothing to read up to it.
            cursor = head;
            continue;
        };
        let n = batch.len() as u64;
        match apply(batch).await {
            Ok(c) => {
                cursor = c.max(last);
                metrics::counter!("events_processed_total", "consumer" => name).increment(n);
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

async fn sleep_or_stop(shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => true,
        _ = tokio::time::sleep(Duration::from_millis(500)) => false,
    }
}
