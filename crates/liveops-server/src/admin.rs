//! The admin API (SPEC section 8) under `/admin/*`: `Authorization: Bearer $ADMIN_TOKEN`,
//! compared in constant time; without `ADMIN_TOKEN` every admin route answers 401 and start-up
//! logs that the admin API is disabled. Every action is written to the audit log (who, what,
//! when) in the system of record.
//!
//! Covered: blocks, quarantine review (release / reject), the failed-events store, the audit
//! log, an on-demand leaderboard rebuild and GDPR erasure.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use liveops_domain::Clock;
use liveops_domain::EventId;
use liveops_hotstate::BlockList;
use liveops_store::{AdminStore, AuditEntry, Block, Resolution, ResolveOutcome};
use serde::Deserialize;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use crate::config::Secret;
use crate::error::{ApiError, ErrorCode};
use crate::fairness::FairnessState;
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
    pub blocks: Arc<dyn BlockList>,
    pub failed: Arc<FailedEvents>,
    pub leaderboards: LeaderboardState,
    /// Quarantine review: the flags and the detector a release teaches.
    pub fairness: FairnessState,
    pub clock: Arc<dyn Clock>,
}

pub fn router(state: AdminState) -> Router {
    Router::new()
        .route(
            "/admin/players/{player_id}/block",
            post(block).delete(unblock),
        )
        .route("/admin/players/{player_id}/erase", post(erase))
        .route("/admin/blocks", get(list_blocks))
        .route("/admin/failed-events", get(failed_events))
        .route("/admin/audit", get(audit))
        .route("/admin/leaderboards/rebuild", post(rebuild))
        .route("/admin/leaderboards/{window}/reset", post(reset_board))
        .route("/admin/flags/{event_id}/release", post(release))
        .route("/admin/flags/{event_id}/reject", post(reject))
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

#[utoipa::path(post, path = "/admin/players/{playerId}/block", tag = "admin", params(("playerId" = String, Path)), request_body(content = Object, description = "{durationSec?, reason?}", content_type = "application/json"), responses((status = 200, description = "the block"), (status = 401, description = "no or wrong ADMIN_TOKEN")))]
pub async fn block(
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
    s.blocks
        .set(&player, until)
        .await
        .map_err(ApiError::unavailable)?;
    s.audit(
        &headers,
        "block",
        player.as_str(),
        json!({"until": until, "reason": b.reason}),
    )
    .await?;
    Ok(Json(b))
}

#[utoipa::path(delete, path = "/admin/players/{playerId}/block", tag = "admin", params(("playerId" = String, Path)), responses((status = 200, description = "unblocked"), (status = 401, description = "no or wrong ADMIN_TOKEN")))]
pub async fn unblock(
    State(s): State<AdminState>,
    Path(player): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let player = parse_player(&player)?;
    s.store
        .clear_block(&player)
        .await
        .map_err(ApiError::unavailable)?;
    s.blocks
        .clear(&player)
        .await
        .map_err(ApiError::unavailable)?;
    s.audit(&headers, "unblock", player.as_str(), Value::Null)
        .await?;
    Ok(Json(json!({"playerId": player.as_str(), "blocked": false})))
}

#[utoipa::path(get, path = "/admin/blocks", tag = "admin", responses((status = 200, description = "{blocks: [...]}")))]
pub async fn list_blocks(State(s): State<AdminState>) -> Result<Json<Value>, ApiError> {
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

#[utoipa::path(get, path = "/admin/failed-events", tag = "admin", params(("limit" = Option<usize>, Query)), responses((status = 200, description = "{failed: [...]} newest first")))]
pub async fn failed_events(
    State(s): State<AdminState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "failed": s.failed.recent(limit(&q)?) })))
}

#[utoipa::path(get, path = "/admin/audit", tag = "admin", params(("limit" = Option<usize>, Query)), responses((status = 200, description = "{entries: [{at, actor, action, target, detail}]} newest first")))]
pub async fn audit(
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
#[utoipa::path(post, path = "/admin/leaderboards/rebuild", tag = "admin", responses((status = 200, description = "{rebuilt: {window: players}}")))]
pub async fn rebuild(
    State(s): State<AdminState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let totals = crate::leaderboard::rebuild_live(&s.leaderboards)
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

#[utoipa::path(post, path = "/admin/flags/{eventId}/release", tag = "admin", params(("eventId" = String, Path)), responses((status = 200, description = "{flag}"), (status = 404, description = "no such flag"), (status = 409, description = "not quarantined")))]
pub async fn release(
    State(s): State<AdminState>,
    Path(event_id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    resolve(s, event_id, headers, Resolution::Release).await
}

#[utoipa::path(post, path = "/admin/flags/{eventId}/reject", tag = "admin", params(("eventId" = String, Path)), responses((status = 200, description = "{flag}"), (status = 404, description = "no such flag"), (status = 409, description = "not quarantined")))]
pub async fn reject(
    State(s): State<AdminState>,
    Path(event_id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    resolve(s, event_id, headers, Resolution::Reject).await
}

/// Releases or rejects a quarantined event once. A release was applied to progression in the
/// store's transaction, which also numbered it; here the boards catch up with it (by release
/// number, so exactly once) and it teaches the detector, as an accepted event would have. If
/// the boards cannot take it now (hot state down), the answer is still 200: the release is
/// committed, and the leaderboard worker applies it within a second of the hot state's return.
async fn resolve(
    s: AdminState,
    event_id: String,
    headers: HeaderMap,
    resolution: Resolution,
) -> Result<Json<Value>, ApiError> {
    let event_id = EventId::parse(event_id)
        .map_err(|m| ApiError::invalid("eventId", format!("eventId {m}")))?;
    let by = actor(&headers);
    let outcome = s
        .fairness
        .store
        .resolve(&event_id, resolution, &by, s.clock.now())
        .await
        .map_err(ApiError::unavailable)?;
    let flag = match outcome {
        ResolveOutcome::NotFound => {
            return Err(ApiError::not_found(format!("no flagged event {event_id}")))
        }
        ResolveOutcome::NotQuarantined(flag) => {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!(
                    "event {event_id} is {}, not quarantined",
                    flag.status.as_str()
                ),
            ))
        }
        ResolveOutcome::Resolved { flag, event } => {
            if let Some(e) = event {
                if let Err(err) = crate::leaderboard::catch_up_releases(&s.leaderboards).await {
                    tracing::warn!(event_id = %e.event.event_id, error = %err,
                        "a released event is not on the leaderboards yet; they catch up when the hot state is back");
                }
                s.fairness
                    .detector
                    .write()
                    .accept(&e.event.player_id, &e.event.kind);
            }
            flag
        }
    };
    let action = match resolution {
        Resolution::Release => "release",
        Resolution::Reject => "reject",
    };
    s.audit(
        &headers,
        action,
        event_id.as_str(),
        json!({"playerId": flag.player_id, "reason": flag.reason}),
    )
    .await?;
    Ok(Json(json!({ "flag": flag })))
}

/// Erases a player (GDPR): the store deletes their events, progress, drops, rewards, receipts,
/// flags and blocks in one transaction; then the boards, the archive, the detector's baselines,
/// the block list and the failed-events store forget them. The audit log keeps the fact of the
/// erasure (who, when), which is its legal purpose.
#[utoipa::path(post, path = "/admin/players/{playerId}/erase", tag = "admin", params(("playerId" = String, Path)), responses((status = 200, description = "{playerId, erased, archiveFilesChanged}")))]
pub async fn erase(
    State(s): State<AdminState>,
    Path(player): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let player = parse_player(&player)?;
    let upto = s
        .store
        .erase_player(&player)
        .await
        .map_err(ApiError::unavailable)?;
    {
        let _applied = s.leaderboards.applied.lock().await;
        s.leaderboards.erased.write().insert(player.clone(), upto);
        s.leaderboards
            .boards
            .remove_player(&player, upto)
            .await
            .map_err(ApiError::unavailable)?;
    }
    let files = s
        .leaderboards
        .archive
        .erase_player(&player)
        .await
        .map_err(ApiError::unavailable)?;
    s.fairness.detector.write().forget(&player);
    s.blocks
        .clear(&player)
        .await
        .map_err(ApiError::unavailable)?;
    s.failed.forget(player.as_str());
    s.audit(
        &headers,
        "erase",
        player.as_str(),
        json!({"archiveFiles": files}),
    )
    .await?;
    Ok(Json(
        json!({"playerId": player.as_str(), "erased": true, "archiveFilesChanged": files}),
    ))
}

/// Resets the current period of one window: its board starts empty now, and the reset is
/// recorded in the store so a restart or rebuild does not bring the old scores back. Taken under
/// the leaderboard worker's lock, so every event it has applied is before the reset and every
/// later one after it.
#[utoipa::path(post, path = "/admin/leaderboards/{window}/reset", tag = "admin", params(("window" = String, Path)), responses((status = 200, description = "{window, period, reset}"), (status = 400, description = "unknown or disabled window")))]
pub async fn reset_board(
    State(s): State<AdminState>,
    Path(window): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let w = liveops_domain::window::Window::parse(&window)
        .filter(|w| s.leaderboards.boards.is_enabled(*w))
        .ok_or_else(|| {
            ApiError::invalid(
                "window",
                format!("window must be an enabled one of daily, weekly, seasonal, got {window:?}"),
            )
        })?;
    let now = s.clock.now();
    let period = s.leaderboards.boards.period(w, now);
    {
        let applied = s.leaderboards.applied.lock().await;
        s.leaderboards
            .source
            .reset_period(&period, *applied, now)
            .await
            .map_err(ApiError::unavailable)?;
        s.leaderboards
            .boards
            .reset(w, now)
            .await
            .map_err(ApiError::unavailable)?;
    }
    s.audit(
        &headers,
        "reset_leaderboard",
        &format!("{}/{}", w.as_str(), period.id),
        Value::Null,
    )
    .await?;
    Ok(Json(
        json!({"window": w.as_str(), "period": period.id, "reset": true}),
    ))
}
