//! The fairness role (`docs/fairness.md`): judges every committed event before progression and
//! leaderboards apply it, records flags, quarantines or only flags them (`ANOMALY_ACTION`),
//! blocks a player after three flags in ten minutes, and serves `/fairness/*`.
//!
//! - [`worker`]: the judge: reads the log, records each batch's flags with the fairness cursor,
//!   blocks repeat offenders, and hands the decided batch on.
//! - [`decided`]: [`DecidedLog`], the log as progression and leaderboards read it: decided
//!   events only, without the held ones.
//! - [`routes`]: `GET /fairness/players/{playerId}` and `GET /fairness/flags`.
//! - [`review`]: [`Review`], the operator's release or rejection of a quarantined event, for
//!   the admin API, without reaching into this role's state.
//!
//! Exactly once: the worker records a batch's flags and moves its cursor in one transaction.
//! Downstream consumers read the [`DecidedLog`]: the log up to the fairness cursor without the
//! held (quarantined, rejected) events. A release applies the event to progression in the same
//! transaction as the status change, and to the boards right after; the decided view never
//! shows released events, so they count once.
//!
//! The detector's baselines are derived state: at start-up they are rebuilt by replaying the
//! accepted events of the log in order (a flagged event never moved a baseline, so it is
//! skipped), which gives back exactly the state the worker had.

use std::collections::HashMap;
use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use liveops_domain::fairness::{Detector, FairnessRules, FlagWindow};
use liveops_domain::{Clock, PlayerId};
use liveops_hotstate::BlockList;
use liveops_store::{AdminStore, CommittedBatch, EventLog, FairnessStore};
use parking_lot::{Mutex, RwLock};
use tokio::sync::{broadcast, watch};

use crate::config::AnomalyAction;
use crate::extract::{LimitRule, Paged};

pub mod decided;
pub mod review;
pub mod routes;
pub mod worker;

pub use decided::DecidedLog;
pub use review::Review;
// The OpenAPI document (`ops`) names the handlers by these paths.
pub use routes::{__path_get_flags, __path_get_player, get_flags, get_player};
pub use worker::run_worker;

pub const CONSUMER: &str = "fairness";

/// The fairness role's shared state; cheap to clone. Built once by the composition root and
/// given to the worker, the routes and [`Review`].
#[derive(Clone)]
pub struct FairnessState {
    /// Baselines per player and metric; written by the worker (and a release), read by the API.
    pub detector: Arc<RwLock<Detector>>,
    pub rules: FairnessRules,
    pub action: AnomalyAction,
    pub store: Arc<dyn FairnessStore>,
    /// Where the worker records the blocks it sets and their audit entries.
    pub admin: Arc<dyn AdminStore>,
    /// The hot block list the gateway checks.
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
    /// Erased players and the last seq erased (the composition root shares the map with the
    /// leaderboards): their in-flight events are neither judged nor recorded.
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
    /// The state and the decided view, starting from the stored fairness cursor. `erased` is
    /// the map of erased players shared with the leaderboards.
    pub fn new(
        cfg: &crate::Config,
        services: &crate::Services,
        blocks: Arc<dyn BlockList>,
        erased: Arc<RwLock<HashMap<PlayerId, u64>>>,
        cursor: u64,
    ) -> (Self, Arc<DecidedLog>) {
        let (head_tx, head_rx) = watch::channel(cursor);
        let (tail_tx, _) = broadcast::channel(4096);
        let decided = Arc::new(DecidedLog::new(
            services.fairness.clone(),
            services.log.clone(),
            head_rx,
            tail_tx.clone(),
        ));
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
            erased,
            decided_head: Arc::new(head_tx),
            decided_tail: tail_tx,
            leading: Default::default(),
        };
        (state, decided)
    }
}

impl Paged for FairnessState {
    /// `GET /fairness/flags`: `limit` 0 to 500, 50 by default (0 reads one flag).
    fn limit_rule(&self) -> LimitRule {
        LimitRule {
            min: 0,
            max: 500,
            default: 50,
        }
    }
}

pub fn router(state: FairnessState) -> Router {
    Router::new()
        .route("/fairness/players/{player_id}", get(routes::get_player))
        .route("/fairness/flags", get(routes::get_flags))
        .with_state(state)
}
