//! The fairness role (SPEC section 7): judges every committed event before progression and
//! leaderboards apply it, records flags, quarantines or only flags them (`ANOMALY_ACTION`),
//! blocks a player after three flags in ten minutes, and serves `/fairness/*`.
//!
//! Exactly once: the worker records a batch's flags and moves its cursor in one transaction.
//! Downstream consumers read the [`DecidedLog`]: the log up to the fairness cursor without the
//! held (quarantined, rejected) events. A release applies the event to progression in the same
//! transaction as the status change, and to the in-memory boards right after; the decided view
//! never shows released events, so they count once.
//!
//! The detector's baselines are derived state: at start-up they are rebuilt by replaying the
//! accepted events of the log in order (a flagged event never moved a baseline, so it is
//! skipped), which gives back exactly the state the worker had.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use liveops_domain::fairness::{Detector, FairnessRules, FlagWindow, Verdict};
use liveops_domain::{Clock, PlayerId};
use liveops_store::{
    AdminStore, AuditEntry, Block, CommittedBatch, EventLog, FairnessStore, FlagFilter, FlagRecord,
    FlagStatus, LoggedEvent, NewEvent, StoreError,
};
use parking_lot::{Mutex, RwLock};
use serde_json::{json, Value};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use crate::config::AnomalyAction;
use crate::error::ApiError;
use crate::progression::parse_player;
use liveops_hotstate::BlockList;

pub const CONSUMER: &str = "fairness";

/// The log as progression and leaderboards see it: decided events only.
pub struct DecidedLog {
    store: Arc<dyn FairnessStore>,
    raw: Arc<dyn EventLog>,
    head: watch::Receiver<u64>,
    tail: broadcast::Sender<CommittedBatch>,
}

#[async_trait]
impl EventLog for DecidedLog {
    async fn append(
        &self,
        _events: Vec<NewEvent>,
    ) -> Result<Vec<liveops_store::Appended>, StoreError> {
        Err(StoreError::Database(
            "the decided view of the log is read-only".into(),
        ))
    }

    async fn read_after(&self, after: u64, limit: usize) -> Result<Vec<LoggedEvent>, StoreError> {
        let upto = *self.head.borrow();
        self.store.read_decided_after(after, limit, upto).await
    }

    fn committed(&self) -> watch::Receiver<u64> {
        self.head.clone()
    }

    fn tail(&self) -> Option<broadcast::Receiver<CommittedBatch>> {
        Some(self.tail.subscribe())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.raw.ping().await
    }
}

#[derive(Clone)]
pub struct FairnessState {
    /// Baselines per player and metric; written by the worker (and a release), read by the API.
    pub detector: Arc<RwLock<Detector>>,
    pub rules: FairnessRules,
    pub action: AnomalyAction,
    pub store: Arc<dyn FairnessStore>,
    pub admin: Arc<dyn AdminStore>,
    pub blocks: Arc<dyn BlockList>,
    pub clock: Arc<dyn Clock>,
    /// The system of record's copy of the log, replayed to rebuild the baselines (the bus may
    /// keep only recent events).
    pub history: Arc<dyn EventLog>,
    /// Whether the durable log is outside the store (JetStream): then the worker records each
    /// batch's events into the store with its decisions.
    pub records_events: bool,
    /// Recent flags per player, for the three-in-ten-minutes block (lost on restart: a block
    /// already set is in the store).
    windows: Arc<Mutex<HashMap<PlayerId, FlagWindow>>>,
    /// Erased players and the last seq erased (shared with the leaderboards): their in-flight
    /// events are neither judged nor recorded.
    pub erased: Arc<RwLock<HashMap<PlayerId, u64>>>,
    /// The fairness cursor: everything up to it is decided.
    decided_head: Arc<watch::Sender<u64>>,
    decided_tail: broadcast::Sender<CommittedBatch>,
    /// Whether this process's worker is judging now (it leads the role). The stored-cursor
    /// follower stands aside meanwhile: it would move the head before the worker hands its
    /// batch to the tail, sending progression and leaderboards to read it back from the store.
    leading: Arc<std::sync::atomic::AtomicBool>,
}

impl FairnessState {
    /// The state and the decided view, starting from the stored fairness cursor.
    pub fn new(
        cfg: &crate::Config,
        services: &crate::Services,
        blocks: Arc<dyn BlockList>,
        cursor: u64,
    ) -> (Self, Arc<DecidedLog>) {
        let (head_tx, head_rx) = watch::channel(cursor);
        let (tail_tx, _) = broadcast::channel(4096);
        let decided = Arc::new(DecidedLog {
            store: services.fairness.clone(),
            raw: services.log.clone(),
            head: head_rx,
            tail: tail_tx.clone(),
        });
        let state = FairnessState {
            detector: Arc::new(RwLock::new(Detector::new(cfg.fairness.clone()))),
            rules: cfg.fairness.clone(),
            action: cfg.anomaly_action,
            store: services.fairness.clone(),
            admin: services.admin.clone(),
            blocks,
            clock: services.clock.clone(),
            history: services.history.clone(),
            records_events: services.external_log,
            windows: Arc::new(Mutex::new(HashMap::new())),
            erased: Default::default(),
            decided_head: Arc::new(head_tx),
            decided_tail: tail_tx,
            leading: Default::default(),
        };
        (state, decided)
    }
}

impl FairnessState {
    /// Moves the decided head to the stored fairness cursor as it moves. In a deployment of
    /// several processes another one may lead fairness; this process's progression and
    /// leaderboard workers then learn of its decisions here (and read them from the store).
    pub async fn follow_stored_cursor(
        &self,
        mut stored: watch::Receiver<u64>,
        shutdown: CancellationToken,
    ) {
        use std::sync::atomic::Ordering;
        loop {
            let cursor = *stored.borrow_and_update();
            if self.leading.load(Ordering::Acquire) {
                // This process decides; its worker moves the head itself.
            } else {
                self.decided_head.send_if_modified(|head| {
                    let moved = cursor > *head;
                    *head = (*head).max(cursor);
                    moved
                });
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = stored.changed() => if changed.is_err() { return },
            }
        }
    }
}

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
    let raw = log.clone();
    crate::pipeline::consume(CONSUMER, log, cursor, shutdown, move |batch| {
        let state = state.clone();
        let raw = raw.clone();
        async move { decide(&state, &raw, batch).await }
    })
    .await;
    drop(leading);
    Ok(())
}

/// Marks this process as the one deciding while the worker runs (also when it fails or is
/// cancelled), so the stored-cursor follower stands aside only that long.
struct LeadingGuard(Arc<std::sync::atomic::AtomicBool>);

impl LeadingGuard {
    fn new(flag: Arc<std::sync::atomic::AtomicBool>) -> Self {
        flag.store(true, std::sync::atomic::Ordering::Release);
        Self(flag)
    }
}

impl Drop for LeadingGuard {
    fn drop(&mut self) {
        self.0.store(false, std::sync::atomic::Ordering::Release);
    }
}

async fn decide(
    state: &FairnessState,
    _log: &Arc<dyn EventLog>,
    batch: Arc<Vec<LoggedEvent>>,
) -> Result<u64, StoreError> {
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
            .map(|seqs| Some(seqs.into_iter().collect::<std::collections::HashSet<u64>>()))
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
    let held: std::collections::HashSet<u64> = flags
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

pub fn router(state: FairnessState) -> Router {
    Router::new()
        .route("/fairness/players/{player_id}", get(get_player))
        .route("/fairness/flags", get(get_flags))
        .with_state(state)
}

#[utoipa::path(get, path = "/fairness/players/{playerId}", tag = "fairness", params(("playerId" = String, Path)),
    responses((status = 200, description = "{playerId, status, blockedUntil, baselines, flagCount, recentFlags}")))]
pub async fn get_player(
    State(s): State<FairnessState>,
    Path(player): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let player = parse_player(&player)?;
    let baselines: serde_json::Map<String, Value> = s
        .detector
        .read()
        .player(&player)
        .map(|b| {
            b.iter()
                .map(|(k, w)| {
                    (
                        k.to_string(),
                        json!({"n": w.count(), "mean": w.mean(), "std": w.std()}),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let (flags, total) = s
        .store
        .flags(FlagFilter {
            player: Some(player.clone()),
            status: None,
            limit: 20,
            offset: 0,
        })
        .await
        .map_err(ApiError::unavailable)?;
    let blocked = s
        .blocks
        .blocked(&player)
        .await
        .map_err(ApiError::unavailable)?;
    Ok(Json(json!({
        "playerId": player.as_str(),
        "status": if blocked.is_some() { "blocked" } else { "ok" },
        "blockedUntil": blocked.flatten(),
        "baselines": baselines,
        "flagCount": total,
        "recentFlags": flags,
    })))
}

#[utoipa::path(get, path = "/fairness/flags", tag = "fairness",
    params(("playerId" = Option<String>, Query), ("status" = Option<String>, Query, description = "quarantined | flagged | released | rejected"),
           ("limit" = Option<usize>, Query), ("offset" = Option<usize>, Query)),
    responses((status = 200, description = "{total, limit, offset, flags: [{eventId, playerId, metric, value, rule, reason, status, flaggedAt}]}")))]
pub async fn get_flags(
    State(s): State<FairnessState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let player = q.get("playerId").map(|p| parse_player(p)).transpose()?;
    let status = q
        .get("status")
        .map(|v| {
            FlagStatus::parse(v).ok_or_else(|| {
                ApiError::invalid(
                    "status",
                    format!("status must be quarantined, flagged, released or rejected, got {v:?}"),
                )
            })
        })
        .transpose()?;
    let num = |name: &str, default: usize, max: usize| -> Result<usize, ApiError> {
        match q.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| {
                    ApiError::invalid(
                        name,
                        format!("{name} must be an integer from 0 to {max}, got {v:?}"),
                    )
                }),
        }
    };
    let limit = num("limit", 50, 500)?.max(1);
    let offset = num("offset", 0, usize::MAX)?;
    let (flags, total) = s
        .store
        .flags(FlagFilter {
            player,
            status,
            limit,
            offset,
        })
        .await
        .map_err(ApiError::unavailable)?;
    Ok(Json(
        json!({"total": total, "limit": limit, "offset": offset, "flags": flags}),
    ))
}
