//! Operations endpoints (`docs/api.md`): liveness, readiness, Prometheus metrics, the OpenAPI
//! document.
//!
//! - [`catalog`]: every metric's name, help text and known label values;
//! - [`exporter`]: the Prometheus recorder and the process metrics read at each scrape.
//!
//! The HTTP metrics are counted at the edge (`edge`).

pub mod catalog;
pub mod exporter;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use liveops_store::EventLog;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use crate::error::{ApiError, ErrorEnvelope};

#[derive(Clone)]
pub struct OpsState {
    /// The system of record.
    pub log: Arc<dyn EventLog>,
    /// The durable bus, when the log is outside the store (JetStream).
    pub bus: Option<Arc<dyn EventLog>>,
    /// The hot state's Redis, checked by `/readyz`; `None` when the hot state is in memory.
    pub redis: Option<liveops_hotstate::RedisHotState>,
    /// `None` when `METRICS_ENABLED=false`.
    pub metrics: Option<PrometheusHandle>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "liveops",
        description = "Game LiveOps backend: signed event ingest, fairness guard, progression, leaderboards. The contract in words, with examples, is `docs/api.md` in the repository."
    ),
    paths(
        crate::gateway::post_event,
        crate::gateway::post_batch,
        crate::gateway::post_session,
        crate::progression::get_progress,
        crate::progression::get_rewards,
        crate::progression::claim_reward,
        crate::progression::verify_receipt,
        crate::leaderboard::get_leaderboard,
        crate::leaderboard::get_player,
        crate::leaderboard::get_history,
        crate::leaderboard::stream::stream,
        crate::fairness::get_player,
        crate::fairness::get_flags,
        crate::admin::block,
        crate::admin::unblock,
        crate::admin::list_blocks,
        crate::admin::failed_events,
        crate::admin::audit,
        crate::admin::rebuild,
        crate::admin::reset_board,
        crate::admin::release,
        crate::admin::reject,
        crate::admin::erase,
        healthz,
        readyz,
        metrics_text,
    )
)]
pub struct ApiDoc;

pub fn router(state: OpsState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/openapi.json", get(openapi))
        .with_state(state)
}

/// `GET /healthz`: the process is up.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: Alive,
}

/// Always `ok`: a process that answers is alive.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Alive {
    Ok,
}

/// `GET /readyz`: whether every backend this process uses answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    pub status: ReadyStatus,
    pub checks: Checks,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReadyStatus {
    /// Every backend answers (200).
    Ready,
    /// A backend does not answer (503).
    Unavailable,
}

/// Each backend's answer: `ok`, or why it failed. A backend this process does not use is
/// absent.
#[derive(Debug, Serialize, ToSchema)]
pub struct Checks {
    /// The system of record (SQLite or PostgreSQL).
    #[schema(example = "ok")]
    pub store: String,
    /// The durable bus, when the log is outside the store (NATS JetStream).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "ok")]
    pub bus: Option<String>,
    /// The hot state's Redis, when the hot state is not in memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "ok")]
    pub redis: Option<String>,
}

#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, description = "alive", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: Alive::Ok })
}

#[utoipa::path(
    get,
    path = "/readyz",
    tag = "ops",
    responses(
        (status = 200, description = "every backend answers", body = Readiness),
        (status = 503, description = "a backend is down; `checks` says which and why", body = Readiness),
    )
)]
pub async fn readyz(State(s): State<OpsState>) -> Response {
    fn check(r: Result<(), impl std::fmt::Display>) -> String {
        match r {
            Ok(()) => "ok".into(),
            Err(e) => e.to_string(),
        }
    }
    let checks = Checks {
        store: check(s.log.ping().await),
        bus: match &s.bus {
            Some(bus) => Some(check(bus.ping().await)),
            None => None,
        },
        redis: match &s.redis {
            Some(redis) => Some(check(redis.ping().await)),
            None => None,
        },
    };
    let ready = [
        Some(&checks.store),
        checks.bus.as_ref(),
        checks.redis.as_ref(),
    ]
    .into_iter()
    .flatten()
    .all(|c| c == "ok");
    let (code, status) = if ready {
        (StatusCode::OK, ReadyStatus::Ready)
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, ReadyStatus::Unavailable)
    };
    (code, Json(Readiness { status, checks })).into_response()
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "ops",
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain", body = String),
        (status = 404, description = "metrics are disabled (`METRICS_ENABLED=false`)", body = ErrorEnvelope),
    )
)]
pub async fn metrics_text(State(s): State<OpsState>) -> Response {
    match &s.metrics {
        Some(h) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            exporter::render(h),
        )
            .into_response(),
        None => ApiError::not_found("metrics are disabled (METRICS_ENABLED=false)").into_response(),
    }
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
