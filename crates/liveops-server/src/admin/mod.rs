//! The admin API (`docs/api.md`) under `/admin/*`: `Authorization: Bearer $ADMIN_TOKEN`,
//! compared in constant time; without `ADMIN_TOKEN` every admin route answers 401 and start-up
//! logs that the admin API is disabled. Every action is written to the audit log (who, what,
//! when) in the system of record.
//!
//! Covered: blocks, quarantine review (release / reject), the failed-events store, the audit
//! log, an on-demand leaderboard rebuild, a board reset and GDPR erasure. The handlers are in
//! [`routes`]. The admin API acts on the other roles only through the handles they give it,
//! [`BoardControl`] and [`Review`]: it never holds or changes their state.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use liveops_domain::Clock;
use liveops_hotstate::BlockList;
use liveops_store::{AdminStore, AuditEntry};
use serde_json::Value;
use subtle::ConstantTimeEq;

use crate::config::Secret;
use crate::error::{ApiError, ErrorCode};
use crate::extract::{LimitRule, Paged};
use crate::fairness::Review;
use crate::gateway::failed::FailedEvents;
use crate::leaderboard::BoardControl;

pub mod routes;

// The OpenAPI document (`ops`) names the handlers by these paths.
pub use routes::*;

/// The admin API's state; cheap to clone. Built once by the composition root.
#[derive(Clone)]
pub struct AdminState {
    /// `None`: the admin API is disabled.
    pub token: Option<Secret>,
    /// Blocks, erasure and the audit log in the system of record.
    pub store: Arc<dyn AdminStore>,
    /// The hot block list the gateway checks.
    pub blocks: Arc<dyn BlockList>,
    /// The refused requests the gateway keeps.
    pub failed: Arc<FailedEvents>,
    /// Rebuild, reset and erasure on the leaderboards.
    pub boards: Arc<BoardControl>,
    /// Quarantine review: release and reject.
    pub review: Arc<Review>,
    pub clock: Arc<dyn Clock>,
}

impl Paged for AdminState {
    /// The failed-events store and the audit log: 1 to 1000 entries, 100 by default.
    fn limit_rule(&self) -> LimitRule {
        LimitRule {
            min: 1,
            max: 1000,
            default: 100,
        }
    }
}

pub fn router(state: AdminState) -> Router {
    Router::new()
        .route(
            "/admin/players/{player_id}/block",
            post(routes::block).delete(routes::unblock),
        )
        .route("/admin/players/{player_id}/erase", post(routes::erase))
        .route("/admin/blocks", get(routes::list_blocks))
        .route("/admin/failed-events", get(routes::failed_events))
        .route("/admin/audit", get(routes::audit))
        .route("/admin/leaderboards/rebuild", post(routes::rebuild))
        .route(
            "/admin/leaderboards/{window}/reset",
            post(routes::reset_board),
        )
        .route("/admin/flags/{event_id}/release", post(routes::release))
        .route("/admin/flags/{event_id}/reject", post(routes::reject))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_token,
        ))
        .with_state(state)
}

async fn require_token(State(s): State<AdminState>, req: Request, next: Next) -> Response {
    let Some(token) = &s.token else {
        return ApiError::new(
            ErrorCode::Unauthorized,
            "the admin API is disabled: set ADMIN_TOKEN",
        )
        .into_response();
    };
    let given = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if bool::from(given.as_bytes().ct_eq(token.expose())) {
        next.run(req).await
    } else {
        ApiError::new(
            ErrorCode::Unauthorized,
            "Authorization: Bearer <ADMIN_TOKEN> is required",
        )
        .into_response()
    }
}

/// Who did it: `X-Operator` when the client names the person, else `admin`.
fn actor(headers: &HeaderMap) -> String {
    headers
        .get("x-operator")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 64)
        .map_or_else(|| "admin".to_string(), str::to_string)
}

impl AdminState {
    /// Writes one action to the audit log; the action is not answered as done without it.
    async fn audit(
        &self,
        headers: &HeaderMap,
        action: &str,
        target: &str,
        detail: Value,
    ) -> Result<(), ApiError> {
        self.store
            .append_audit(AuditEntry {
                at: self.clock.now(),
                actor: actor(headers),
                action: action.to_string(),
                target: target.to_string(),
                detail,
            })
            .await
            .map_err(ApiError::unavailable)
    }
}
