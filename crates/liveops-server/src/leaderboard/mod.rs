//! The leaderboard role (`docs/api.md`): applies the decided log to the boards (in memory or in
//! Redis, behind [`Leaderboards`]), rolls periods over and archives their final standings, and
//! serves rankings.
//!
//! - [`worker`]: the consumer applying the decided log to the boards, and every rebuild of them
//!   from the system of record (at start-up, after a wipe, on an operator's demand).
//! - [`rollover`]: once a second, ends the periods that are over, archives their final
//!   standings, catches up with released events and snapshots the boards on `SNAPSHOT_CRON`.
//! - [`routes`]: `GET /leaderboard`, `/leaderboard/players/{playerId}`, `/leaderboard/history`.
//! - [`stream`]: `GET /leaderboard/stream`, the boards as Server-Sent Events.
//! - [`control`]: [`BoardControl`], what the admin API may do to the boards (rebuild, reset,
//!   erase a player), without reaching into this role's state.
//!
//! The boards are derived state. Each apply moves a cursor stored with the boards, atomically,
//! so an event counts once even if a batch is applied twice. At start-up, unless the boards'
//! cursor is exactly the decided head, they are rebuilt from the system of record up to that
//! head; then the worker applies every event after it. When the boards lose their cursor
//! mid-run (Redis wiped or flushed), the worker notices, on its next batch or within a second
//! when idle, and rebuilds them exactly up to what it had applied.

use std::collections::HashMap;
use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use liveops_domain::{Clock, PlayerId};
use liveops_hotstate::{HotStateError, Leaderboards};
use liveops_store::{Archive, BoardSource, StoreError};

use crate::extract::{LimitRule, Paged};

pub mod control;
pub mod rollover;
pub mod routes;
pub mod stream;
pub mod worker;

pub use control::BoardControl;
pub use rollover::{snapshot, standings};
// The OpenAPI document (`ops`) names the handlers by these paths.
pub use routes::{
    __path_get_history, __path_get_leaderboard, __path_get_player, get_history, get_leaderboard,
    get_player,
};
pub use worker::{rebuild_boards, run_worker};

pub const CONSUMER: &str = "leaderboard";

/// The leaderboard role's shared state; cheap to clone. Built once by the composition root and
/// given to the worker, the routes, the stream and [`BoardControl`].
#[derive(Clone)]
pub struct LeaderboardState {
    /// The boards themselves (derived state, in memory or in Redis).
    pub boards: Arc<dyn Leaderboards>,
    /// The system of record's view for rebuilds and archives: XP per player and period.
    pub source: Arc<dyn BoardSource>,
    /// Where ended periods and snapshots are kept.
    pub archive: Arc<dyn Archive>,
    pub clock: Arc<dyn Clock>,
    /// `LB_TOPN`: the largest page, and the default one.
    pub topn: usize,
    /// `SNAPSHOT_CRON`: when to snapshot the running boards into the archive.
    pub snapshot_cron: Option<cron::Schedule>,
    /// Erased players and the last seq erased: their events up to it still in flight are not
    /// applied (GDPR erasure removes them from the boards at once). The composition root
    /// shares one map with the fairness role, which skips the same events.
    pub erased: Arc<parking_lot::RwLock<HashMap<PlayerId, u64>>>,
    /// The worker's cursor (the last seq it applied), held while a batch is applied: a live
    /// rebuild takes it so that the boards are rebuilt up to exactly the events the worker has
    /// applied, and the worker goes on after them (no event counted twice or missed).
    pub applied: Arc<tokio::sync::Mutex<u64>>,
}

impl Paged for LeaderboardState {
    /// Pages of a board are 1 to `LB_TOPN` entries, `LB_TOPN` by default.
    fn limit_rule(&self) -> LimitRule {
        LimitRule {
            min: 1,
            max: self.topn,
            default: self.topn,
        }
    }
}

pub fn router(state: LeaderboardState) -> Router {
    Router::new()
        .route("/leaderboard", get(routes::get_leaderboard))
        .route("/leaderboard/players/{player_id}", get(routes::get_player))
        .route("/leaderboard/history", get(routes::get_history))
        .with_state(state)
}

/// The system of record or the hot state did not answer while the boards were rebuilt,
/// reset, archived or erased from.
#[derive(Debug, thiserror::Error)]
pub enum BoardsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    HotState(#[from] HotStateError),
}

/// The consumer loop speaks `StoreError`; a hot-state failure is logged and retried like one.
fn hot(e: HotStateError) -> StoreError {
    StoreError::Database(format!("hot state: {e}"))
}

impl From<BoardsError> for StoreError {
    fn from(e: BoardsError) -> Self {
        match e {
            BoardsError::Store(e) => e,
            BoardsError::HotState(e) => hot(e),
        }
    }
}
