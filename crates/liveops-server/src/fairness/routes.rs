//! The fairness reads (`docs/fairness.md`): a player's standing (blocked or not, their baselines,
//! their recent flags) and the list of flags for review. Every answer is a typed struct whose
//! schema `/openapi.json` shows; [`Flag`] is also what the admin API's release and reject
//! answer.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use liveops_store::{FlagFilter, FlagRecord, FlagStatus};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::FairnessState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{parse_player_id, Paging, PlayerPath, QueryParams};

/// Flags shown with a player's standing, newest first.
const RECENT_FLAGS: usize = 20;

/// What became of a flagged event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FlagState {
    /// Held out of progression and leaderboards until an operator decides.
    Quarantined,
    /// Applied, only recorded (`ANOMALY_ACTION=flag`).
    Flagged,
    /// Released by an operator: applied once.
    Released,
    /// Rejected by an operator: never applied.
    Rejected,
}

impl From<FlagStatus> for FlagState {
    fn from(s: FlagStatus) -> Self {
        match s {
            FlagStatus::Quarantined => FlagState::Quarantined,
            FlagStatus::Flagged => FlagState::Flagged,
            FlagStatus::Released => FlagState::Released,
            FlagStatus::Rejected => FlagState::Rejected,
        }
    }
}

/// One flagged event: which rule caught it, why, and what became of it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Flag {
    pub event_id: String,
    pub player_id: String,
    /// The metric judged, e.g. `deltaXp:quest_completion` or `points:tier3`.
    pub metric: String,
    /// The event's value of that metric.
    pub value: f64,
    /// The rule that flagged it, e.g. `hard_cap`, `player_z`, `population_z`.
    pub rule: String,
    /// Why, in words a reviewer understands.
    pub reason: String,
    pub status: FlagState,
    pub flagged_at: DateTime<Utc>,
    /// When an operator released or rejected it (null until then).
    pub resolved_at: Option<DateTime<Utc>>,
    /// Who released or rejected it (null until then).
    pub resolved_by: Option<String>,
}

impl From<FlagRecord> for Flag {
    fn from(f: FlagRecord) -> Self {
        Flag {
            event_id: f.event_id.into(),
            player_id: f.player_id.into(),
            metric: f.metric,
            value: f.value,
            rule: f.rule,
            reason: f.reason,
            status: f.status.into(),
            flagged_at: f.flagged_at,
            resolved_at: f.resolved_at,
            resolved_by: f.resolved_by,
        }
    }
}

/// Whether a player may send events.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PlayerStatus {
    Ok,
    Blocked,
}

/// A player's accepted samples of one metric.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Baseline {
    /// Samples accepted.
    pub n: u64,
    pub mean: f64,
    /// Standard deviation.
    pub std: f64,
}

/// `GET /fairness/players/{playerId}`: the player's standing with the fairness guard.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlayerFairness {
    pub player_id: String,
    pub status: PlayerStatus,
    /// When the block ends; null when not blocked or blocked until unblocked.
    pub blocked_until: Option<DateTime<Utc>>,
    /// Per metric, the samples that judge the player's next events.
    pub baselines: BTreeMap<String, Baseline>,
    /// All the player's flags.
    pub flag_count: u64,
    /// The newest 20 of them.
    pub recent_flags: Vec<Flag>,
}

/// `GET /fairness/flags`: a page of flags, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct FlagPage {
    /// Flags matching the filter.
    pub total: u64,
    pub limit: usize,
    pub offset: usize,
    pub flags: Vec<Flag>,
}

/// `GET /fairness/flags`'s filters (`limit` and `offset` are the paging).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct FlagsQuery {
    /// Only this player's flags.
    pub player_id: Option<String>,
    /// quarantined | flagged | released | rejected
    pub status: Option<String>,
}

#[utoipa::path(get, path = "/fairness/players/{playerId}", tag = "fairness",
    params(("playerId" = String, Path, description = "3-50 of [A-Za-z0-9_]")),
    responses(
        (status = 200, description = "the player's standing", body = PlayerFairness),
        (status = 400, description = "malformed playerId", body = ErrorEnvelope),
        (status = 503, description = "the store or the block list did not answer; retry after Retry-After", body = ErrorEnvelope),
    ))]
pub async fn get_player(
    State(s): State<FairnessState>,
    PlayerPath(player): PlayerPath,
) -> Result<Json<PlayerFairness>, ApiError> {
    let baselines: BTreeMap<String, Baseline> = s
        .detector
        .read()
        .player(&player)
        .map(|b| {
            b.iter()
                .map(|(k, w)| {
                    (
                        k.to_string(),
                        Baseline {
                            n: w.count(),
                            mean: w.mean(),
                            std: w.std(),
                        },
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
            limit: RECENT_FLAGS,
            offset: 0,
        })
        .await
        .map_err(ApiError::unavailable)?;
    let blocked = s
        .blocks
        .blocked(&player)
        .await
        .map_err(ApiError::unavailable)?;
    Ok(Json(PlayerFairness {
        player_id: player.into(),
        status: if blocked.is_some() {
            PlayerStatus::Blocked
        } else {
            PlayerStatus::Ok
        },
        blocked_until: blocked.flatten(),
        baselines,
        flag_count: total,
        recent_flags: flags.into_iter().map(Flag::from).collect(),
    }))
}

#[utoipa::path(get, path = "/fairness/flags", tag = "fairness",
    params(
        FlagsQuery,
        ("limit" = Option<usize>, Query, description = "flags per page: 0 to 500 (default 50; 0 reads one)"),
        ("offset" = Option<usize>, Query, description = "flags skipped: 0 or more (default 0)"),
    ),
    responses(
        (status = 200, description = "a page of flags, newest first", body = FlagPage),
        (status = 400, description = "bad parameter, named in error.field", body = ErrorEnvelope),
        (status = 503, description = "the store did not answer; retry after Retry-After", body = ErrorEnvelope),
    ))]
pub async fn get_flags(
    State(s): State<FairnessState>,
    paging: Paging,
    QueryParams(q): QueryParams<FlagsQuery>,
) -> Result<Json<FlagPage>, ApiError> {
    let player = q.player_id.as_deref().map(parse_player_id).transpose()?;
    let status = q
        .status
        .as_deref()
        .map(|v| {
            FlagStatus::parse(v).ok_or_else(|| {
                ApiError::invalid(
                    "status",
                    format!("status must be quarantined, flagged, released or rejected, got {v:?}"),
                )
            })
        })
        .transpose()?;
    let limit = paging.limit.max(1);
    let (flags, total) = s
        .store
        .flags(FlagFilter {
            player,
            status,
            limit,
            offset: paging.offset,
        })
        .await
        .map_err(ApiError::unavailable)?;
    Ok(Json(FlagPage {
        total,
        limit,
        offset: paging.offset,
        flags: flags.into_iter().map(Flag::from).collect(),
    }))
}
