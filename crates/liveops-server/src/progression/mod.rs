//! The progression role (SPEC section 5): applies the committed log to player progress and the
//! reward ledger, and serves progress, rewards, claims and receipt checks.
//!
//! Exactly once: the store moves this consumer's cursor in the same transaction as the
//! effects, so after a crash the worker resumes from the last committed batch.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use liveops_domain::progression::level_progress;
use liveops_domain::signing::Receipt;
use liveops_domain::window::{Calendar, Window};
use liveops_domain::{Clock, PlayerId};
use liveops_store::{ClaimOutcome, EventLog, ProgressStore};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::error::{ApiError, ErrorCode};
use crate::gateway::{self, GatewayState};

pub const CONSUMER: &str = "progression";

#[derive(Clone)]
pub struct ProgressionState {
    pub store: Arc<dyn ProgressStore>,
    pub calendar: Arc<Calendar>,
    pub clock: Arc<dyn Clock>,
    /// Signature checks, rate limits and the failed store are the gateway's; claims are
    /// signed like events and go through the same checks.
    pub gateway: GatewayState,
}

pub fn router(state: ProgressionState) -> Router {
    Router::new()
        .route("/players/{player_id}/progress", get(get_progress))
        .route("/players/{player_id}/rewards", get(get_rewards))
        .route("/rewards/claim", post(claim_reward))
        .route("/receipts/verify", post(verify_receipt))
        .with_state(state)
}

/// Applies the log to progression until `shutdown`.
pub async fn run_worker(
    log: Arc<dyn EventLog>,
    store: Arc<dyn ProgressStore>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let cursor = store.cursor(CONSUMER).await?;
    crate::pipeline::consume(CONSUMER, log, cursor, shutdown, |batch| {
        let store = store.clone();
        async move { store.apply_events(CONSUMER, batch).await }
    })
    .await;
    Ok(())
}

pub fn parse_player(raw: &str) -> Result<PlayerId, ApiError> {
    PlayerId::parse(raw).map_err(|m| ApiError::invalid("playerId", format!("playerId {m}")))
}

#[utoipa::path(get, path = "/players/{playerId}/progress", tag = "progression",
    params(("playerId" = String, Path, description = "3-50 of [A-Za-z0-9_]")),
    responses((status = 200, description = "{playerId, season, xp, level, xpIntoLevel, xpForNextLevel, bossKills, drops, updatedAt}"),
               (status = 400, description = "malformed playerId"), (status = 404, description = "unknown player")))]
pub async fn get_progress(
    State(s): State<ProgressionState>,
    Path(player): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let player = parse_player(&player)?;
    let stored = s
        .store
        .progress(&player)
        .await
        .map_err(ApiError::unavailable)?;
    let Some(stored) = stored else {
        return Err(ApiError::not_found(format!(
            "no progress for player {player}"
        )));
    };
    let p = &stored.progress;
    let (into, span) = level_progress(p.xp);
    let season = s.calendar.period_at(Window::Seasonal, s.clock.now());
    Ok(Json(json!({
        "playerId": player.as_str(),
        "season": season.id,
        "xp": p.xp,
        "level": p.level,
        "xpIntoLevel": into,
        "xpForNextLevel": span,
        "bossKills": p.boss_kills,
        "drops": p.drops,
        "updatedAt": stored.updated_at,
    })))
}

#[utoipa::path(get, path = "/players/{playerId}/rewards", tag = "progression",
    params(("playerId" = String, Path)),
    responses((status = 200, description = "{playerId, pending: [...], claimed: [...]}"), (status = 404, description = "unknown player")))]
pub async fn get_rewards(
    State(s): State<ProgressionState>,
    Path(player): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let player = parse_player(&player)?;
    let rewards = s
        .store
        .rewards(&player)
        .await
        .map_err(ApiError::unavailable)?;
    if rewards.is_empty()
        && s.store
            .progress(&player)
            .await
            .map_err(ApiError::unavailable)?
            .is_none()
    {
        return Err(ApiError::not_found(format!(
            "no progress for player {player}"
        )));
    }
    let (claimed, pending): (Vec<_>, Vec<_>) =
        rewards.into_iter().partition(|r| r.receipt_id.is_some());
    Ok(Json(
        json!({"playerId": player.as_str(), "pending": pending, "claimed": claimed}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ClaimBody {
    player_id: String,
    reward_id: String,
}

#[utoipa::path(post, path = "/rewards/claim", tag = "progression",
    request_body(content = Object, description = "{playerId, rewardId}, signed like events", content_type = "application/json"),
    responses((status = 200, description = "the receipt {receiptId, playerId, item, sig, timestamp}; the same receipt again on a repeated claim"),
               (status = 401, description = "signature refused"), (status = 404, description = "the player did not earn this reward")))]
pub async fn claim_reward(
    State(s): State<ProgressionState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let g = &s.gateway;
    let ip = g.ip_limiter.client_ip(peer.ip(), &headers);
    let result = async {
        gateway::check_json_content_type(&headers)?;
        g.check_ip(ip).await?;
        let body = gateway::read_body(&headers, body, gateway::MAX_EVENT_BYTES).await?;
        let session = g.verifier.verify(&headers, &body)?;
        let req: ClaimBody = serde_json::from_slice(&body).map_err(|e| {
            let field = if e.to_string().contains("rewardId") {
                "rewardId"
            } else {
                "playerId"
            };
            ApiError::new(
                ErrorCode::InvalidRequest,
                format!("expected {{\"playerId\", \"rewardId\"}}: {e}"),
            )
            .with_field(field)
        })?;
        let player = parse_player(&req.player_id)?;
        if let Some(own) = session.filter(|own| *own != player) {
            return Err(ApiError::new(
                ErrorCode::SessionPlayerMismatch,
                format!("this guest session is for player {own}; it cannot claim for {player}"),
            )
            .with_field("playerId"));
        }
        if req.reward_id.is_empty() || req.reward_id.len() > 64 {
            return Err(ApiError::invalid(
                "rewardId",
                "rewardId must be 1 to 64 characters",
            ));
        }
        let secret = g.verifier.default_key().to_vec();
        let now = s.clock.now().timestamp();
        let pid = player.to_string();
        let make = Box::new(move |item: &str| {
            Receipt::issue(
                &secret,
                uuid::Uuid::now_v7().to_string(),
                pid,
                item.to_string(),
                now,
            )
        });
        match s
            .store
            .claim(&player, &req.reward_id, make)
            .await
            .map_err(ApiError::unavailable)?
        {
            ClaimOutcome::Claimed(r) | ClaimOutcome::AlreadyClaimed(r) => Ok(Json(r)),
            ClaimOutcome::NotEarned => Err(ApiError::not_found(format!(
                "player {player} has not earned reward {:?}",
                req.reward_id
            ))),
        }
    }
    .await;
    match result {
        Ok(r) => r.into_response(),
        Err(e) => {
            if matches!(
                e.code(),
                ErrorCode::MissingSignature
                    | ErrorCode::InvalidSignature
                    | ErrorCode::StaleTimestamp
            ) {
                metrics::counter!("dropped_events_total", "reason" => e.code().as_str())
                    .increment(1);
            }
            e.into_response()
        }
    }
}

#[utoipa::path(post, path = "/receipts/verify", tag = "progression",
    request_body(content = Object, description = "a receipt as returned by /rewards/claim", content_type = "application/json"),
    responses((status = 200, description = "{valid, expired}"), (status = 400, description = "not a receipt")))]
pub async fn verify_receipt(
    State(s): State<ProgressionState>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let receipt: Receipt = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!("expected a receipt {{receiptId, playerId, item, sig, timestamp}}: {e}"),
        )
    })?;
    let (valid, expired) =
        receipt.verify(s.gateway.verifier.default_key(), s.clock.now().timestamp());
    Ok(Json(json!({"valid": valid, "expired": expired})))
}
