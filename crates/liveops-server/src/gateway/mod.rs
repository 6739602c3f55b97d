//! The gateway role (`docs/api.md`): signed ingest and guest sessions.
//!
//! - [`signed`]: the signed-request checks as one extractor, [`SignedRequest`]: content type
//!   (415), the client IP's rate limit (429), body size (413), signature and timestamp (401);
//!   progression's claims take it too.
//! - [`events`]: `POST /events`, one event.
//! - [`batch`]: `POST /events/batch`, up to 500 events with one result each.
//! - [`envelope`]: the event envelope and the batch as OpenAPI schemas.
//! - [`sessions`]: `POST /sessions` and the stateless guest-session tokens (`docs/api.md`).
//! - [`auth`]: signature verification; [`rate_limit`]: the per-IP limit and the client address;
//!   [`failed`]: the failed-events store.
//!
//! After the signed-request checks an event goes through validation (400), the player's
//! session binding, block and flood gate (403 / 429), its idempotency key (208 / 409), and the
//! durable append (202, or 208 for a known eventId). The 202 is written only after the append
//! returned, i.e. after the commit. Every refusal is counted by reason and kept in the
//! failed-events store.
//!
//! The guards (rate limits, blocks, idempotency keys) are hot state behind traits, in memory or
//! in Redis. When that hot state cannot answer, the request gets 503 with `Retry-After` and
//! nothing is appended: the gateway never accepts what it could not check.

pub mod auth;
pub mod batch;
pub mod envelope;
pub mod events;
pub mod failed;
pub mod rate_limit;
pub mod sessions;
pub mod signed;

use std::sync::Arc;

use axum::extract::FromRef;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use liveops_domain::{Clock, PlayerId};
use liveops_hotstate::rate_limit::retry_after_secs;
use liveops_hotstate::{BlockList, IdempotencyKeys, PlayerGate, RateLimits};
use liveops_store::EventLog;

use crate::error::{ApiError, ErrorCode};
pub use signed::{SignedChecks, SignedRequest};

// The OpenAPI document (`crate::ops`) names the handlers, and with them the path items
// `utoipa::path` generates beside each, at the role's root.
pub use batch::{__path_post_batch, post_batch};
pub use events::{__path_post_event, post_event};
pub use sessions::{__path_post_session, post_session};

pub const MAX_EVENT_BYTES: usize = 64 * 1024;
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;
pub const MAX_BATCH_EVENTS: usize = 500;
const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// A signed `POST /events` request: one event, at most [`MAX_EVENT_BYTES`].
pub type SignedEvent = SignedRequest<MAX_EVENT_BYTES>;
/// A signed `POST /events/batch` request: at most [`MAX_BATCH_BYTES`].
pub type SignedBatch = SignedRequest<MAX_BATCH_BYTES>;

/// What the gateway handlers share. Built once by the composition root; the router holds it
/// behind one `Arc`.
#[derive(Clone)]
pub struct GatewayState {
    /// The signed-request checks (signatures, the per-IP limit, the failed-events store), the
    /// same ones progression's claims pass.
    pub checks: SignedChecks,
    /// The durable log; an append returns after the commit.
    pub log: Arc<dyn EventLog>,
    /// `Idempotency-Key` reservations, for `IDEMP_TTL`.
    pub idempotency: Arc<dyn IdempotencyKeys>,
    /// Players blocked by an operator or the fairness guard: 403 before anything is stored
    /// (swept here; asked through `gate`).
    pub blocks: Arc<dyn BlockList>,
    /// Guest sessions issued per client IP.
    pub session_limiter: Arc<dyn RateLimits>,
    /// Per-player `FLOOD_MAX_PER_SEC`, keyed by playerId (swept here; drawn on through `gate`).
    pub flood: Arc<dyn RateLimits>,
    /// `blocks` and `flood` asked together for every event: one command on a Redis node.
    pub gate: Arc<dyn PlayerGate>,
    pub clock: Arc<dyn Clock>,
}

/// The router's state is `Arc<GatewayState>`; the signed-request extractor takes its checks
/// from it (one reference count, no copy of the state).
impl FromRef<Arc<GatewayState>> for SignedChecks {
    fn from_ref(state: &Arc<GatewayState>) -> Self {
        state.checks.clone()
    }
}

pub fn router(state: GatewayState) -> Router {
    // Behind one `Arc`: axum clones the state for every request, and a clone of the struct
    // itself is a reference count per field touched from both cores (about 1% of the CPU per
    // event in `perf`).
    let state = Arc::new(state);
    Router::new()
        .route("/events", post(post_event))
        .route("/events/batch", post(post_batch))
        .route("/sessions", post(post_session))
        .with_state(state)
}

impl GatewayState {
    /// The per-player gates, after validation and before the append: the session binding
    /// (403), blocked (403), then flooding (429); 503 when the hot state cannot answer.
    async fn admit_player<const LIMIT: usize>(
        &self,
        player: &PlayerId,
        signed: &SignedRequest<LIMIT>,
    ) -> Result<(), ApiError> {
        signed.bind(player, "send events for")?;
        let admission = self
            .gate
            .admit(player)
            .await
            .map_err(ApiError::unavailable)?;
        if let Some(until) = admission.blocked {
            let when = until.map_or("until an operator unblocks them".to_string(), |t| {
                format!("until {}", t.to_rfc3339())
            });
            return Err(ApiError::new(
                ErrorCode::PlayerBlocked,
                format!("player {player} is blocked {when}"),
            ));
        }
        match admission.flood_wait {
            Some(wait) => Err(ApiError::new(
                ErrorCode::PlayerFlooding,
                format!(
                    "player {player} is sending more events than FLOOD_MAX_PER_SEC allows; slow down"
                ),
            )
            .retry_after(retry_after_secs(wait))),
            None => Ok(()),
        }
    }

    /// Forgets an idempotency reservation after a failed append, so the client's retry is not
    /// answered as a replay. If that fails too, the key simply expires after `IDEMP_TTL`.
    async fn release_key(&self, key: Option<&str>) {
        if let Some(k) = key {
            if let Err(e) = self.idempotency.release(k).await {
                tracing::warn!(error = %e, "releasing an idempotency key failed");
            }
        }
    }
}

/// The `Idempotency-Key` header, when sent: 1 to 255 visible ASCII characters (400 otherwise).
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = v
        .to_str()
        .map_err(|_| ApiError::invalid("Idempotency-Key", "Idempotency-Key must be visible ASCII"))?
        .trim();
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LEN {
        return Err(ApiError::invalid(
            "Idempotency-Key",
            "Idempotency-Key must be 1 to 255 characters",
        ));
    }
    Ok(Some(key.to_string()))
}

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use utoipa::OpenApi;

    fn document() -> Value {
        serde_json::to_value(crate::ops::ApiDoc::openapi()).unwrap()
    }

    /// The schema a `$ref` names, as `#/components/schemas/<name>`.
    fn referenced(content: &Value) -> &str {
        content["application/json"]["schema"]["$ref"]
            .as_str()
            .and_then(|r| r.strip_prefix("#/components/schemas/"))
            .unwrap_or_default()
    }

    #[test]
    fn the_signed_routes_document_their_bodies_and_every_status() {
        let doc = document();
        let routes = [
            (
                "/events",
                "EventEnvelope",
                vec![("202", "EventAnswer"), ("208", "EventAnswer")],
            ),
            (
                "/events/batch",
                "BatchRequest",
                vec![("200", "BatchAnswer")],
            ),
            (
                "/rewards/claim",
                "ClaimRequest",
                vec![("200", "ReceiptBody")],
            ),
        ];
        for (path, request, answers) in routes {
            let op = &doc["paths"][path]["post"];
            assert_eq!(referenced(&op["requestBody"]["content"]), request, "{path}");
            for (status, body) in answers {
                assert_eq!(
                    referenced(&op["responses"][status]["content"]),
                    body,
                    "{path} {status}"
                );
            }
            for status in ["400", "401", "413", "415", "429", "503"] {
                assert_eq!(
                    referenced(&op["responses"][status]["content"]),
                    "ErrorEnvelope",
                    "{path} {status}"
                );
            }
            let headers: Vec<&str> = op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["in"] == "header")
                .filter_map(|p| p["name"].as_str())
                .collect();
            for header in ["X-Signature", "X-Timestamp", "X-Key-Id", "X-Session"] {
                assert!(headers.contains(&header), "{path} lacks {header}");
            }
        }
    }

    #[test]
    fn the_envelope_schema_holds_the_three_payloads_and_optional_fields_are_not_required() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        let envelope = &schemas["EventEnvelope"];
        let required: Vec<&str> = envelope["required"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(
            required,
            ["type", "playerId", "ts", "payload"],
            "{envelope}"
        );
        let payloads: Vec<&str> = schemas["EventPayload"]["oneOf"]
            .as_array()
            .unwrap_or_else(|| panic!("{}", schemas["EventPayload"]))
            .iter()
            .filter_map(|s| s["$ref"].as_str())
            .collect();
        assert_eq!(payloads.len(), 3, "{}", schemas["EventPayload"]);
        // A batch item has `eventId`, `duplicate` and `error` only when they apply.
        let item = &schemas["ItemResult"];
        assert_eq!(
            item["required"],
            serde_json::json!(["index", "status"]),
            "{item}"
        );
    }
}
