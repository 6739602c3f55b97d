//! The progression role (`docs/api.md`): applies the committed log to player progress and the
//! reward ledger, and serves progress, rewards, claims and receipt checks.
//!
//! Exactly once: the store moves this consumer's cursor in the same transaction as the
//! effects, so after a crash the worker resumes from the last committed batch.
//!
//! Claims are signed like events and pass the same signed-request checks
//! ([`SignedRequest`]); their answers and bodies are typed in [`api`].

pub mod api;

use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use liveops_domain::progression::level_progress;
use liveops_domain::signing::Receipt;
use liveops_domain::window::{Calendar, Window};
use liveops_domain::Clock;
use liveops_store::{ClaimOutcome, EventLog, ProgressStore};
use tokio_util::sync::CancellationToken;

use crate::error::{ApiError, ErrorCode, ErrorEnvelope};
use crate::extract::{parse_player_id, PlayerPath};
use crate::gateway::signed::SignatureHeaders;
use crate::gateway::{SignedChecks, SignedRequest, MAX_EVENT_BYTES};
use api::{ClaimRequest, ProgressAnswer, ReceiptBody, RewardsAnswer, VerifyAnswer};

pub const CONSUMER: &str = "progression";

/// The longest `rewardId` a claim may name.
const MAX_REWARD_ID_LEN: usize = 64;

/// A signed `POST /rewards/claim` request: at most [`MAX_EVENT_BYTES`], like one event.
pub type SignedClaim = SignedRequest<MAX_EVENT_BYTES>;

#[derive(Clone)]
pub struct ProgressionState {
    /// Progress, the reward ledger and claims: the system of record.
    pub store: Arc<dyn ProgressStore>,
    /// Names the current season in progress answers.
    pub calendar: Arc<Calendar>,
    pub clock: Arc<dyn Clock>,
    /// The signed-request checks claims pass, shared with the gateway; its verifier's default
    /// key also signs and verifies receipts.
    pub checks: SignedChecks,
}

impl FromRef<ProgressionState> for SignedChecks {
    fn from_ref(state: &ProgressionState) -> Self {
        state.checks.clone()
    }
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

#[utoipa::path(get, path = "/players/{playerId}/progress", tag = "progression",
    params(("playerId" = String, Path, description = "3 to 50 of [A-Za-z0-9_]")),
    responses(
        (status = 200, body = ProgressAnswer, description = "the player's XP, level, boss kills and recent drops"),
        (status = 400, body = ErrorEnvelope, description = "invalid_request: a malformed playerId"),
        (status = 404, body = ErrorEnvelope, description = "not_found: no event of this player was applied"),
        (status = 503, body = ErrorEnvelope, description = "unavailable: the store cannot answer; retry"),
    ))]
pub async fn get_progress(
    State(s): State<ProgressionState>,
    PlayerPath(player): PlayerPath,
) -> Result<Json<ProgressAnswer>, ApiError> {
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
    let p = stored.progress;
    let (xp_into_level, xp_for_next_level) = level_progress(p.xp);
    let season = s.calendar.period_at(Window::Seasonal, s.clock.now());
    Ok(Json(ProgressAnswer {
        player_id: player,
        season: season.id,
        xp: p.xp,
        level: p.level,
        xp_into_level,
        xp_for_next_level,
        boss_kills: p.boss_kills,
        drops: p.drops.into_iter().map(Into::into).collect(),
        updated_at: stored.updated_at,
    }))
}

#[utoipa::path(get, path = "/players/{playerId}/rewards", tag = "progression",
    params(("playerId" = String, Path, description = "3 to 50 of [A-Za-z0-9_]")),
    responses(
        (status = 200, body = RewardsAnswer, description = "the player's pending and claimed rewards"),
        (status = 400, body = ErrorEnvelope, description = "invalid_request: a malformed playerId"),
        (status = 404, body = ErrorEnvelope, description = "not_found: no event of this player was applied"),
        (status = 503, body = ErrorEnvelope, description = "unavailable: the store cannot answer; retry"),
    ))]
pub async fn get_rewards(
    State(s): State<ProgressionState>,
    PlayerPath(player): PlayerPath,
) -> Result<Json<RewardsAnswer>, ApiError> {
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
    let (claimed, pending): (Vec<_>, Vec<_>) = rewards
        .into_iter()
        .map(api::RewardView::from)
        .partition(|r| r.receipt_id.is_some());
    Ok(Json(RewardsAnswer {
        player_id: player,
        pending,
        claimed,
    }))
}

#[utoipa::path(post, path = "/rewards/claim", tag = "progression",
    request_body(content = ClaimRequest, description = "signed like an event", content_type = "application/json"),
    params(SignatureHeaders),
    responses(
        (status = 200, body = ReceiptBody, description = "the signed receipt; the same receipt again on a repeated claim"),
        (status = 400, body = ErrorEnvelope, description = "invalid_request: not {playerId, rewardId}, a malformed playerId or rewardId"),
        (status = 401, body = ErrorEnvelope, description = "missing_signature / invalid_signature / stale_timestamp / invalid_session"),
        (status = 403, body = ErrorEnvelope, description = "session_player_mismatch: a guest session claims for another player"),
        (status = 404, body = ErrorEnvelope, description = "not_found: the player did not earn this reward"),
        (status = 413, body = ErrorEnvelope, description = "payload_too_large: a body over 64 KiB"),
        (status = 415, body = ErrorEnvelope, description = "unsupported_media_type: not application/json"),
        (status = 429, body = ErrorEnvelope, description = "rate_limited: the client IP is over RATE_LIMIT_MAX; see Retry-After"),
        (status = 503, body = ErrorEnvelope, description = "unavailable: the store or the hot state cannot answer; retry"),
    ))]
pub async fn claim_reward(
    State(s): State<ProgressionState>,
    signed: SignedClaim,
) -> Result<Json<ReceiptBody>, ApiError> {
    let req: ClaimRequest = serde_json::from_slice(&signed.body).map_err(|e| {
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
    let player = parse_player_id(&req.player_id)?;
    signed.bind(&player, "claim for")?;
    if req.reward_id.is_empty() || req.reward_id.len() > MAX_REWARD_ID_LEN {
        return Err(ApiError::invalid(
            "rewardId",
            "rewardId must be 1 to 64 characters",
        ));
    }
    let secret = s.checks.verifier().default_key().to_vec();
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
        ClaimOutcome::Claimed(r) | ClaimOutcome::AlreadyClaimed(r) => Ok(Json(r.into())),
        ClaimOutcome::NotEarned => Err(ApiError::not_found(format!(
            "player {player} has not earned reward {:?}",
            req.reward_id
        ))),
    }
}

#[utoipa::path(post, path = "/receipts/verify", tag = "progression",
    request_body(content = ReceiptBody, description = "a receipt as `POST /rewards/claim` answered it", content_type = "application/json"),
    responses(
        (status = 200, body = VerifyAnswer, description = "whether the signature matches and whether the receipt is over 24 hours old"),
        (status = 400, body = ErrorEnvelope, description = "invalid_request: not a receipt"),
        (status = 413, body = ErrorEnvelope, description = "payload_too_large: a body over 2 MiB"),
    ))]
pub async fn verify_receipt(
    State(s): State<ProgressionState>,
    body: axum::body::Bytes,
) -> Result<Json<VerifyAnswer>, ApiError> {
    let receipt: ReceiptBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!("expected a receipt {{receiptId, playerId, item, sig, timestamp}}: {e}"),
        )
    })?;
    let (valid, expired) =
        Receipt::from(receipt).verify(s.checks.verifier().default_key(), s.clock.now().timestamp());
    Ok(Json(VerifyAnswer { valid, expired }))
}
