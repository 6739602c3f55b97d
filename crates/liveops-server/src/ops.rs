//! Operations endpoints (SPEC section 8): liveness, readiness, Prometheus metrics, the OpenAPI
//! document. The HTTP metrics are counted at the edge (`edge`).

use std::sync::{Arc, OnceLock};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use liveops_store::EventLog;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use utoipa::OpenApi;

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
        description = "Game LiveOps backend: signed ingest, progression, leaderboards. See SPEC.md."
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

/// The process-wide Prometheus recorder. `metrics` has one global recorder, so every
/// application in the process (several in the test binary) shares it.
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ];
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("http_requests_duration_seconds".into()),
                    &buckets,
                )
                .unwrap_or_else(|_| PrometheusBuilder::new());
            match builder.install_recorder() {
                Ok(h) => h,
                // Another recorder is installed (an embedding program): render ours unregistered.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            }
        })
        .clone()
}

#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, description = "alive")))]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

#[utoipa::path(get, path = "/readyz", tag = "ops", responses((status = 200, description = "every backend answers"), (status = 503, description = "a backend is down")))]
pub async fn readyz(State(s): State<OpsState>) -> Response {
    let mut checks = serde_json::Map::new();
    let mut ready = true;
    let mut check = |name: &str, r: Result<(), String>| {
        ready &= r.is_ok();
        checks.insert(name.into(), r.err().unwrap_or_else(|| "ok".into()).into());
    };
    check("store", s.log.ping().await.map_err(|e| e.to_string()));
    if let Some(bus) = &s.bus {
        check("bus", bus.ping().await.map_err(|e| e.to_string()));
    }
    if let Some(redis) = &s.redis {
        check("redis", redis.ping().await.map_err(|e| e.to_string()));
    }
    let status = if ready { "ready" } else { "unavailable" };
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(json!({"status": status, "checks": checks}))).into_response()
}

#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, description = "Prometheus text format")))]
pub async fn metrics_text(State(s): State<OpsState>) -> Response {
    match &s.metrics {
        Some(h) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            h.render(),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "metrics are disabled (METRICS_ENABLED=false)\n",
        )
            .into_response(),
    }
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
