//! The fairness worker: judges each batch of the log, records its flags and moves the fairness
//! cursor in one store transaction, blocks players who collect three flags within ten minutes,
//! and hands the decided batch (without the held events) to the decided view's tail.
//!
//! The detector moves as the batch is judged, before the transaction; if the transaction
//! fails, the detector is rebuilt from the log up to the last decided event, so the retry judges
//! the batch afresh. Only one process judges at a time (it leads the role); [`LeadingGuard`]
//! tells the stored-cursor follower to stand aside meanwhile.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use liveops_domain::fairness::{Detector, FlagWindow, Verdict};
use liveops_domain::PlayerId;
use liveops_store::{
    AuditEntry, Block, CommittedBatch, EventLog, FlagRecord, FlagStatus, LoggedEvent, StoreError,
};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{AnomalyAction, FairnessState, CONSUMER};

/// Replays the accepted events up to `upto` into a fresh detector.
async fn rebuild_detector(
    state: &FairnessState,
    log: &Arc<dyn EventLog>,
    upto: u64,
) -> Result<(), StoreError> {
    let statuses = state.store.flag_statuses(upto).await?;
    let mut det = Detector::new(state.rules.clone());
    let mut after = 0;
    'read: loop {
        let batch = log.read_after(after, 5000).await?;
        let Some(last) = batch.last().map(|e| e.seq) else {
            break;
        };
        for e in &batch {
            if e.seq > upto {
                break 'read;
            }
            match statuses.get(&e.seq) {
                None | Some(FlagStatus::Released) => det.accept(&e.event.player_id, &e.event.kind),
                Some(_) => {}
            }
        }
        after = last;
    }
    *state.detector.write() = det;
    Ok(())
}

/// Judges the log until `shutdown`.
pub async fn run_worker(
    state: FairnessState,
    log: Arc<dyn EventLog>,
    cursors: Arc<dyn liveops_store::ProgressStore>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // From the stored cursor, not the in-memory one: after a takeover from another process,
    // that process's decisions are the starting point.
    let cursor = cursors.cursor(CONSUMER).await?;
    let leading = LeadingGuard::new(state.leading.clone());
    state.decided_head.send_if_modified(|head| {
        let moved = cursor > *head;
        *head = (*head).max(cursor);
        moved
    });
    let history = state.history.clone();
    rebuild_detector(&state, &history, cursor).await?;
    tracing::info!(upto = cursor, "fairness baselines rebuilt from the log");
    crate::pipeline::consume(CONSUMER, log, cursor, shutdown, move |batch| {
        let state = state.clone();
        async move { decide(&state, batch).await }
    })
    .await;
    drop(leading);
    Ok(())
}

/// Marks this process as the one deciding while the worker runs (also when it fails or is
/// cancelled), so the stored-cursor follower stands aside only that long.
struct LeadingGuard(Arc<AtomicBool>);

impl LeadingGuard {
    fn new(flag: Arc<AtomicBool>) -> Self {
        flag.store(true, Ordering::Release);
        Self(flag)
    }
}

impl Drop for LeadingGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Judges one batch, records it and hands it on; returns the new fairness cursor.
async fn decide(state: &FairnessState, batch: Arc<Vec<LoggedEvent>>) -> Result<u64, StoreError> {
    let prev = *state.decided_head.borrow();
    let now = state.clock.now();
    let status = match state.action {
        AnomalyAction::Quarantine => FlagStatus::Quarantined,
        AnomalyAction::Flag => FlagStatus::Flagged,
    };
    let mut flags = Vec::new();
    let mut to_block = Vec::new();
    {
        let mut det = state.detector.write();
        let mut windows = state.windows.lock();
        let erased = state.erased.read();
        for e in batch.iter().filter(|e| e.seq > prev) {
            if erased
                .get(&e.event.player_id)
                .is_some_and(|upto| e.seq <= *upto)
            {
                continue;
            }
            match det.judge(&e.event.player_id, &e.event.kind) {
                Verdict::Pass => det.accept(&e.event.player_id, &e.event.kind),
                Verdict::Flag {
                    metric,
                    value,
                    rule,
                    reason,
                } => {
                    flags.push(FlagRecord {
                        seq: e.seq,
                        event_id: e.event.event_id.clone(),
                        player_id: e.event.player_id.clone(),
                        metric,
                        value,
                        rule: rule.as_str().to_string(),
                        reason,
                        status,
                        flagged_at: now,
                        resolved_at: None,
                        resolved_by: None,
                    });
                    let window = windows
                        .entry(e.event.player_id.clone())
                        .or_insert_with(|| FlagWindow::from_rules(&state.rules));
                    if window.record(now) {
                        to_block.push(e.event.player_id.clone());
                    }
                }
            }
        }
    }
    let Some(last) = batch.last().map(|e| e.seq) else {
        return Ok(prev);
    };
    let recorded = if state.records_events {
        // A batch is in seq order: what follows `prev` is its tail, recorded without a copy.
        let fresh = &batch[batch.partition_point(|e| e.seq <= prev)..];
        state
            .store
            .record_sequenced(CONSUMER, fresh, flags.clone(), last)
            .await
            .map(|seqs| Some(seqs.into_iter().collect::<HashSet<u64>>()))
    } else {
        state
            .store
            .record_flags(CONSUMER, flags.clone(), last)
            .await
            .map(|()| None)
    };
    let recorded = match recorded {
        Ok(r) => r,
        Err(e) => {
            // The detector moved for a batch that is not recorded: start it again from the
            // log so the retry judges the batch afresh.
            rebuild_detector(state, &state.history, prev).await?;
            return Err(e);
        }
    };
    // An eventId the store already had (a repeat past the bus's dedup window) is not applied.
    let flags: Vec<FlagRecord> = match &recorded {
        Some(seqs) => flags
            .into_iter()
            .filter(|f| seqs.contains(&f.seq))
            .collect(),
        None => flags,
    };
    for f in &flags {
        metrics::counter!("anomaly_flags_total", "rule" => f.rule.clone()).increment(1);
        metrics::counter!("cheating_events_detected").increment(1);
        tracing::info!(service = "fairness", player_id = %f.player_id, event_id = %f.event_id, reason = %f.reason, status = f.status.as_str(), "event flagged");
    }
    to_block.dedup();
    for player in to_block {
        if let Err(e) = block(state, &player).await {
            tracing::error!(player_id = %player, error = %e, "blocking a flagged player failed");
        }
    }
    let held: HashSet<u64> = flags
        .iter()
        .filter(|f| !f.status.applies())
        .map(|f| f.seq)
        .collect();
    let events =
        if held.is_empty() && recorded.is_none() && batch.first().is_some_and(|e| e.seq > prev) {
            batch.clone()
        } else {
            Arc::new(
                batch
                    .iter()
                    .filter(|e| e.seq > prev && !held.contains(&e.seq))
                    .filter(|e| recorded.as_ref().is_none_or(|r| r.contains(&e.seq)))
                    .cloned()
                    .collect(),
            )
        };
    let _ = state.decided_tail.send(CommittedBatch {
        prev_head: prev,
        head: last,
        events,
    });
    state.decided_head.send_replace(last);
    Ok(last)
}

/// Three flags within the window: block for `BLOCK_SEC`, in the store and at the gateway.
async fn block(state: &FairnessState, player: &PlayerId) -> Result<(), StoreError> {
    let now = state.clock.now();
    let until = now + state.rules.block_duration();
    let reason = format!(
        "{} fairness flags within {} minutes",
        state.rules.flags_to_block,
        state.rules.flag_window_sec / 60
    );
    state
        .admin
        .set_block(Block {
            player_id: player.clone(),
            until: Some(until),
            reason: reason.clone(),
            created_at: now,
        })
        .await?;
    state
        .blocks
        .set(player, Some(until))
        .await
        .map_err(|e| StoreError::Database(format!("hot state: {e}")))?;
    state
        .admin
        .append_audit(AuditEntry {
            at: now,
            actor: "fairness".into(),
            action: "block".into(),
            target: player.to_string(),
            detail: json!({"until": until, "reason": reason}),
        })
        .await
}
