//! The admin API (SPEC section 8) under `/admin/*`: `Authorization: Bearer $ADMIN_TOKEN`,
//! compared in constant time; without `ADMIN_TOKEN` every admin route answers 401 and start-up
//! logs that the admin API is disabled. Every action is written to the audit log (who, what,
//! when) in the system of record.
//!
//! This slice covers blocks, the failed-events store, the audit log and an on-demand
//! leaderboard rebuild; quarantine review and erasure arrive with the fairness guard.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use liveops_domain::Clock;
use liveops_store::{AdminStore, AuditEntry, Block, EventLog};
use serde::Deserialize;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use crate::config::Secret;
use crate::error::{ApiError, ErrorCode};
use crate::gateway::blocks::BlockList;
use crate::gateway::failed::FailedEvents;
use crate::leaderboard::LeaderboardState;
use crate::progression::parse_player;

/// The longest block an operator can set with a duration (a year); no duration blocks until
/// unblocked.
const MAX_BLOCK_SECS: i64 = 366 * 24 * 3600;

#[derive(Clone)]
pub struct AdminState {
    /// `None`: the admin API is disabled.
    pub token: Option<Secret>,
    pub store: Arc<dyn AdminStore>,
    pub blocks: Arc<BlockList>,
    pub failed: Arc<FailedEvents>,
    pub leaderboards: LeaderboardState,
    pub log: Arc<dyn EventLog>,
    pub clock: Arc<dyn Clock>,
}

pub fn router(state: AdminState) -> Router {
    Router::new()
        .route(
            "/admin/players/{player_id}/block",
            post(block).delete(unblock),
        )
        .route("/admin/blocks", get(list_blocks))
        .route("/admin/failed-events", get(failed_events))
        .route("/admin/audit", get(audit))
        .route("/admin/leaderboards/rebuild", post(rebuild))
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

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct BlockBody {
    duration_sec: Option<i64>,
    reason: Option<String>,
}

async fn block(
    State(s): State<AdminState>,
    Path(player): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Block>, ApiError> {
    let player = parse_player(&player)?;
    let req: BlockBody = if body.is_empty() {
        BlockBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidRequest,
                format!("expected {{\"durationSec\"?, \"reason\"?}}: {e}"),
            )
        })?
    };
    let now = s.clock.now();
    let until = match req.duration_sec {
        None => None,
        Some(d) if (1..=MAX_BLOCK_SECS).contains(&d) => Some(now + chrono::Duration::seconds(d)),
        Some(d) => {
            return Err(ApiError::invalid(
                "durationSec",
                format!("durationSec must be 1 to {MAX_BLOCK_SECS}, got {d}"),
            ))
        }
    };
    let reason = req
        .reason
        .unwrap_or_else(|| "blocked by an operator".into());
    if reason.chars().count() > 200 {
        return Err(ApiError::invalid(
            "reason",
            "reason must be at most 200 characters",
        ));
    }
    let b = Block {
        player_id: player.clone(),
        until,
        reason,
        created_at: now,
    };
    s.store
        .set_block(b.clone())
        .await
        .map_err(ApiError::unavailable)?;
    s.blocks.set(player.clone(), until);
    s.audit(
        &headers,
        "block",
        player.as_str(),
        json!({"until": until, "reason": b.reason}),
    )
    .await?;
    Ok(Json(b))
}

async fn unblock(
    State(s): State<AdminState>,
    Path(player): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let player = parse_player(&player)?;
    s.store
        .clear_block(&player)
        .await
        .map_err(ApiError::unavailable)?;
    s.blocks.clear(&player);
    s.audit(&headers, "unblock", player.as_str(), Value::Null)
        .await?;
    Ok(Json(json!({"playerId": player.as_str(), "blocked": false})))
}

async fn list_blocks(State(s): State<AdminState>) -> Result<Json<Value>, ApiError> {
    let now = s.clock.now();
    let blocks: Vec<Block> = s
        .store
        .blocks()
        .await
        .map_err(ApiError::unavailable)?
        .into_iter()
        .filter(|b| b.until.is_none_or(|t| t > now))
        .collect();
    Ok(Json(json!({ "blocks": blocks })))
}

fn limit(q: &HashMap<String, String>) -> Result<usize, ApiError> {
    match q.get("limit") {
        None => Ok(100),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(
                    "limit",
                    format!("limit must be an integer from 1 to 1000, got {v:?}"),
                )
            }),
    }
}

async fn failed_events(
    State(s): State<AdminState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "failed": s.failed.recent(limit(&q)?) })))
}

async fn audit(
    State(s): State<AdminState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let entries = s
        .store
        .audit(limit(&q)?)
        .await
        .map_err(ApiError::unavailable)?;
    Ok(Json(json!({ "entries": entries })))
}

/// Rebuilds the in-memory leaderboards from the system of record (what `liveops rebuild`
/// checks offline), exactly: see `leaderboard::rebuild_live`.
async fn rebuild(State(s): State<AdminState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let totals = crate::leaderboard::rebuild_live(&s.leaderboards, &s.log)
        .await
        .map_err(ApiError::unavailable)?;
    s.audit(
        &headers,
        "rebuild_leaderboards",
        "leaderboards",
        json!(totals),
    )
    .await?;
    Ok(Json(json!({ "rebuilt": totals })))
}
