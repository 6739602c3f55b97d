//! The admin handlers and their typed answers. Each action is audited after it is done; a
//! backend that does not answer is a 503 the operator retries (every action is idempotent).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use chrono::{DateTime, Utc};
use liveops_store::{AuditEntry, Block, Resolution, ResolveOutcome};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::{actor, AdminState};
use crate::error::{ApiError, ErrorCode, ErrorEnvelope};
use crate::extract::{EventIdPath, Limit, PlayerPath};
use crate::fairness::routes::Flag;
use crate::gateway::failed::FailedEvent;
use crate::leaderboard::routes::WindowName;

/// The longest block an operator can set with a duration (a year); no duration blocks until
/// unblocked.
const MAX_BLOCK_SECS: i64 = 366 * 24 * 3600;
/// The longest block reason, in characters.
const MAX_REASON_CHARS: usize = 200;

/// `POST /admin/players/{playerId}/block`'s body; an empty body blocks until unblocked.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BlockRequest {
    /// 1 to 31,622,400 seconds (a year); absent: until unblocked.
    pub duration_sec: Option<i64>,
    /// At most 200 characters (default "blocked by an operator").
    pub reason: Option<String>,
}

/// A player's block.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlayerBlock {
    pub player_id: String,
    /// When the block ends; null: until unblocked.
    pub until: Option<DateTime<Utc>>,
    pub reason: String,
    pub created_at: DateTime<Utc>,
}

impl From<Block> for PlayerBlock {
    fn from(b: Block) -> Self {
        PlayerBlock {
            player_id: b.player_id.into(),
            until: b.until,
            reason: b.reason,
            created_at: b.created_at,
        }
    }
}

/// `DELETE /admin/players/{playerId}/block`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Unblocked {
    pub player_id: String,
    /// Always false.
    pub blocked: bool,
}

/// `GET /admin/blocks`: the blocks in force.
#[derive(Debug, Serialize, ToSchema)]
pub struct Blocks {
    pub blocks: Vec<PlayerBlock>,
}

/// A request the gateway refused, as the failed-events store keeps it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailedRequest {
    pub at: DateTime<Utc>,
    /// The HTTP status answered.
    pub status: u16,
    /// The error code answered.
    pub code: String,
    pub message: String,
    /// The request field at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub client_ip: String,
    /// The refused body (lossy UTF-8), truncated to 4 KiB.
    pub body: String,
    /// Whether `body` was truncated.
    pub truncated: bool,
}

impl From<FailedEvent> for FailedRequest {
    fn from(f: FailedEvent) -> Self {
        FailedRequest {
            at: f.at,
            status: f.status,
            code: f.code.to_string(),
            message: f.message,
            field: f.field,
            client_ip: f.client_ip,
            body: f.body,
            truncated: f.truncated,
        }
    }
}

/// `GET /admin/failed-events`: the last refused requests, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct FailedRequests {
    pub failed: Vec<FailedRequest>,
}

/// One audited action: who did what, on what, when.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditRecord {
    pub at: DateTime<Utc>,
    /// `X-Operator`, else `admin`; `fairness` for the guard's own blocks.
    pub actor: String,
    /// e.g. block, unblock, release, reject, erase, rebuild_leaderboards, reset_leaderboard.
    pub action: String,
    /// The player, event or board acted on.
    pub target: String,
    /// The action's details (null when it has none).
    pub detail: Value,
}

impl From<AuditEntry> for AuditRecord {
    fn from(e: AuditEntry) -> Self {
        AuditRecord {
            at: e.at,
            actor: e.actor,
            action: e.action,
            target: e.target,
            detail: e.detail,
        }
    }
}

/// `GET /admin/audit`: the newest audited actions first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditLog {
    pub entries: Vec<AuditRecord>,
}

/// `POST /admin/leaderboards/rebuild`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Rebuilt {
    /// Players on each rebuilt board, by window.
    pub rebuilt: BTreeMap<String, u64>,
}

/// `POST /admin/flags/{eventId}/release` and `/reject`: the flag as it now stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct Resolved {
    pub flag: Flag,
}

/// `POST /admin/players/{playerId}/erase`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Erased {
    pub player_id: String,
    /// Always true.
    pub erased: bool,
    /// Archived standings and snapshots the player was removed from.
    pub archive_files_changed: usize,
}

/// `POST /admin/leaderboards/{window}/reset`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BoardReset {
    #[schema(value_type = WindowName)]
    pub window: &'static str,
    /// The period whose board starts empty now.
    pub period: String,
    /// Always true.
    pub reset: bool,
}

#[utoipa::path(post, path = "/admin/players/{playerId}/block", tag = "admin",
    params(("playerId" = String, Path, description = "3-50 of [A-Za-z0-9_]")),
    request_body(content = BlockRequest, description = "optional: an empty body blocks until unblocked", content_type = "application/json"),
    responses(
        (status = 200, description = "the block, in force at once", body = PlayerBlock),
        (status = 400, description = "malformed playerId or body, named in error.field", body = ErrorEnvelope),
        (status = 401, description = "no or wrong ADMIN_TOKEN", body = ErrorEnvelope),
        (status = 503, description = "a backend did not answer; retry after Retry-After", body = ErrorEnvelope),
    ))]
pub async fn block(
    State(s): State<AdminState>,
    PlayerPath(player): PlayerPath,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<PlayerBlock>, ApiError> {
    let req: BlockRequest = if body.is_empty() {
        BlockRequest::default()
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
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(ApiError::invalid(
            "reason",
            format!("reason must be at most {MAX_REASON_CHARS} characters"),
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
    Ok(Json(b.into()))
}

#[utoipa::path(delete, path = "/admin/players/{playerId}/block", tag = "admin",
    params(("playerId" = String, Path, description = "3-50 of [A-Za-z0-9_]")),
    responses(
        (status = 200, description = "unblocked (also when the player was not blocked)", body = Unblocked),
        (status = 400, description = "malformed playerId", body = ErrorEnvelope),
        (status = 401, description = "no or wrong ADMIN_TOKEN", body = ErrorEnvelope),
        (status = 503, description = "a backend did not answer; retry after Retry-After", body = ErrorEnvelope),
    ))]
pub async fn unblock(
    State(s): State<AdminState>,
    PlayerPath(player): PlayerPath,
    headers: HeaderMap,
) -> Result<Json<Unblocked>, ApiError> {
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
    Ok(Json(Unblocked {
        player_id: player.into(),
        blocked: false,
    }))
}

#[utoipa::path(get, path = "/admin/blocks", tag = "admin",
    responses(
        (status = 200, description = "the blocks in force", body = Blocks),
        (status = 401, description = "no or wrong ADMIN_TOKEN", body = ErrorEnvelope),
        (status = 503, description = "the store did not answer; retry after Retry-After", body = ErrorEnvelope),
    ))]
pub async fn list_blocks(State(s): State<AdminState>) -> Result<Json<Blocks>, ApiError> {
    let now = s.clock.now();
    let blocks = s
        .store
        .blocks()
        .await
        .map_err(ApiError::unavailable)?
        .into_iter()
        .filter(|b| b.until.is_none_or(|t| t > now))
        .map(PlayerBlock::from)
        .collect();
    Ok(Json(Blocks { blocks }))
}

#[utoipa::path(get, path = "/admin/failed-events", tag = "admin",
    params(("limit" = Option<usize>, Query, description = "entries: 1 to 1000 (default 100)")),
    responses(
        (status = 200, description = "the last refused requests, newest first", body = FailedRequests),
        (status = 400, description = "bad limit", body = ErrorEnvelope),
        (status = 401, description = "no or wrong ADMIN_TOKEN", body = ErrorEnvelope),
    ))]
pub async fn failed_events(
    State(s): State<AdminState>,
    Limit(limit): Limit,
) -> Result<Json<FailedRequests>, ApiError> {
    Ok(Json(FailedRequests {
        failed: s
            .failed
            .recent(limit)
            .into_iter()
            .map(FailedRequest::from)
            .collect(),
    }))
}

#[utoipa::path(get, path = "/admin/audit", tag = "admin",
    params(("limit" = Option<usize>, Query, description = "entries: 1 to 1000 (default 100)")),
    responses(
        (status = 200, description = "the audited actions, newest first", body = AuditLog),
        (status = 400, description = "bad limit", body = ErrorEnvelope),
        (status = 401, description = "no or wrong ADMIN_TOKEN", body = ErrorEnvelope),
        (status = 503, description = "the store did not answer; retry after Retry-After", body = ErrorEnvelope),
    ))]
pub async fn audit(
    State(s): State<AdminState>,
    Limit(limit): Limit,
) -> Result<Json<AuditLog>, ApiError> {
    let entries = s.store.audit(limit).await.map_err(ApiError::unavailable)?;
    Ok(Json(AuditLog {
        entries: entries.into_iter().map(AuditRecord::from).collect(),
    }))
}

/// Rebuilds the live leaderboards from the system of record (what `liveops rebuild` checks
/// offline), exactly: see [`crate::leaderboard::BoardControl::rebuild`].
#[utoipa::path(post, path = "/admin/leaderboards/rebuild", tag = "admin",
    responses(
        (status = 200, description = "the boards, rebuilt", body = Rebuilt),
        (status = 401, description = "no or wrong ADMIN_TOKEN", body = ErrorEnvelope),
        (status = 503, description = "the store or the boards did not answer; retry after Retry-After", body = ErrorEnvelope),
    ))]
pub async fn rebuild(
    State(s): State<AdminState>,
    headers: HeaderMap,
) -> Result<Json<Rebuilt>, ApiError> {
    let totals = s.boards.rebuild().await.map_err(ApiError::unavailable)?;
    s.audit(
        &headers,
        "rebuild_leaderboards",
        "leaderboards",
        json!(totals),
    )
    .await?;
    Ok(Json(Rebuilt {
        rebuilt: totals
            .into_iter()
            .map(|(w, n)| (w.to_string(), n))
            .collect(),
    }))
}

#[utoipa::path(post, path = "/admin/flags/{eventId}/release", tag = "admin",
    params(("eventId" = String, Path, description = "the flagged event's id")),
    responses(
        (status = 200, description = "released: applied once to progression and the boards", body = Resolved),
        (status = 400, description = "malformed eventId", body = ErrorEnvelope),
        (status = 401, description = "no or wrong ADMIN_TOKEN", body = ErrorEnvelope),
        (status = 404, description = "no such flag", body = ErrorEnvelope),
        (status = 409, description = "the event is not quarantined", body = ErrorEnvelope),
        (status = 503, description = "the store did not answer; retry after Retry-After", body = ErrorEnvelope),
    ))]
pub async fn release(
    State(s): State<AdminState>,
    EventIdPath(event_id): EventIdPath,
    headers: HeaderMap,
) -> Result<Json<Resolved>, ApiError> {
    resolve(s, event_id, headers, Resolution::Release).await
}

#[utoipa::path(post, path = "/admin/flags/{eventId}/reject", tag = "admin",
    params(("eventId" = String, Path, description = "the flagged event's id")),
    responses(
        (status = 200, description = "rejected: never applied", body = Resolved),
        (status = 400, description = "malformed eventId", body = ErrorEnvelope),
        (status = 401, description = "no or wrong ADMIN_TOKEN", body = ErrorEnvelope),
        (status = 404, description = "no such flag", body = ErrorEnvelope),
        (status = 409, description = "the event is not quarantined", body = ErrorEnvelope),
        (status = 503, description = "the store did not answer; retry after Retry-After", body = ErrorEnvelope),
    ))]
pub async fn reject(
    State(s): State<AdminState>,
    EventIdPath(event_id): EventIdPath,
    headers: HeaderMap,
) -> Result<Json<Resolved>, ApiError> {
    resolve(s, event_id, headers, Resolution::Reject).await
}

/// Releases or rejects a quarantined event once (see [`crate::fairness::Review::resolve`]);
/// then the boards catch up with a release, by its release number, so exactly once. If the
/// boards cannot take it now (hot state down), the answer is still 200: the release is
/// committed, and the leaderboard worker applies it within a second of the hot state's return.
async fn resolve(
    s: AdminState,
    event_id: liveops_domain::EventId,
    headers: HeaderMap,
    resolution: Resolution,
) -> Result<Json<Resolved>, ApiError> {
    let by = actor(&headers);
    let outcome = s
        .review
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
                if let Err(err) = s.boards.catch_up_releases().await {
                    tracing::warn!(event_id = %e.event.event_id, error = %err,
                        "a released event is not on the leaderboards yet; they catch up when the hot state is back");
                }
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
    Ok(Json(Resolved { flag: flag.into() }))
}

/// Erases a player (GDPR): the store deletes their events, progress, drops, rewards, receipts,
/// flags and blocks in one transaction; then the boards, the archive, the detector's baselines,
/// the block list and the failed-events store forget them. The audit log keeps the fact of the
/// erasure (who, when), which is its legal purpose.
#[utoipa::path(post, path = "/admin/players/{playerId}/erase", tag = "admin",
    params(("playerId" = String, Path, description = "3-50 of [A-Za-z0-9_]")),
    responses(
        (status = 200, description = "erased (also when nothing was stored about the player)", body = Erased),
        (status = 400, description = "malformed playerId", body = ErrorEnvelope),
        (status = 401, description = "no or wrong ADMIN_TOKEN", body = ErrorEnvelope),
        (status = 503, description = "a backend did not answer; retry after Retry-After", body = ErrorEnvelope),
    ))]
pub async fn erase(
    State(s): State<AdminState>,
    PlayerPath(player): PlayerPath,
    headers: HeaderMap,
) -> Result<Json<Erased>, ApiError> {
    let upto = s
        .store
        .erase_player(&player)
        .await
        .map_err(ApiError::unavailable)?;
    let files = s
        .boards
        .erase_player(&player, upto)
        .await
        .map_err(ApiError::unavailable)?;
    s.review.forget(&player);
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
    Ok(Json(Erased {
        player_id: player.into(),
        erased: true,
        archive_files_changed: files,
    }))
}

/// Resets the current period of one window (see [`crate::leaderboard::BoardControl::reset`]).
#[utoipa::path(post, path = "/admin/leaderboards/{window}/reset", tag = "admin",
    params(("window" = String, Path, description = "daily | weekly | seasonal, enabled in LB_WINDOWS")),
    responses(
        (status = 200, description = "the window's current board starts empty now", body = BoardReset),
        (status = 400, description = "unknown or disabled window", body = ErrorEnvelope),
        (status = 401, description = "no or wrong ADMIN_TOKEN", body = ErrorEnvelope),
        (status = 503, description = "the store or the boards did not answer; retry after Retry-After", body = ErrorEnvelope),
    ))]
pub async fn reset_board(
    State(s): State<AdminState>,
    axum::extract::Path(window): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Result<Json<BoardReset>, ApiError> {
    let w = s.boards.enabled_window(&window).ok_or_else(|| {
        ApiError::invalid(
            "window",
            format!("window must be an enabled one of daily, weekly, seasonal, got {window:?}"),
        )
    })?;
    let period = s.boards.reset(w).await.map_err(ApiError::unavailable)?;
    s.audit(
        &headers,
        "reset_leaderboard",
        &format!("{}/{}", w.as_str(), period.id),
        Value::Null,
    )
    .await?;
    Ok(Json(BoardReset {
        window: w.as_str(),
        period: period.id,
        reset: true,
    }))
}
