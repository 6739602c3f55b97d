//! `POST /events`: one signed event, answered 202 only once it is durable (`docs/api.md`).
//!
//! After the signed-request checks ([`SignedEvent`]): validation (400), the player's session
//! binding, block and flood gate (403 / 429), the idempotency key (208 / 409), then the durable
//! append (202, or 208 for a known eventId). This is the server's hottest path: nothing here
//! copies the body or the event, and the answer is written straight from a typed struct.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use liveops_domain::{Event, EventId};
use liveops_hotstate::{Lookup, Recorded};
use liveops_store::{Appended, NewEvent};
use serde::Serialize;
use utoipa::ToSchema;

use super::envelope::EventEnvelope;
use super::signed::SignatureHeaders;
use super::{idempotency_key, GatewayState, SignedEvent};
use crate::error::{ApiError, ErrorCode, ErrorEnvelope};

/// The answer to an event taken in: 202 `accepted`, or 208 `duplicate` with the original
/// eventId (a repeated eventId, or a replayed Idempotency-Key).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventAnswer {
    /// The event's id: the client's, or the one the server assigned.
    #[schema(value_type = String, example = "quest-7f3a")]
    pub event_id: EventId,
    pub status: EventStatus,
}

#[derive(Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    /// Stored durably for the first time (202).
    Accepted,
    /// Already stored: nothing new was appended (208).
    Duplicate,
}

impl EventStatus {
    fn http(self) -> StatusCode {
        match self {
            Self::Accepted => StatusCode::ACCEPTED,
            Self::Duplicate => StatusCode::ALREADY_REPORTED,
        }
    }
}

impl IntoResponse for EventAnswer {
    fn into_response(self) -> Response {
        (self.status.http(), Json(self)).into_response()
    }
}

#[utoipa::path(post, path = "/events", tag = "gateway",
    request_body(content = EventEnvelope, description = "one event, signed", content_type = "application/json"),
    params(
        SignatureHeaders,
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 255 characters; the same key and body within IDEMP_TTL is answered 208 with the original eventId"),
    ),
    responses(
        (status = 202, body = EventAnswer, description = "accepted and durable"),
        (status = 208, body = EventAnswer, description = "duplicate: the original eventId"),
        (status = 400, body = ErrorEnvelope, description = "invalid_json / invalid_event (with the field) / invalid_request (Idempotency-Key)"),
        (status = 401, body = ErrorEnvelope, description = "missing_signature / invalid_signature / stale_timestamp / invalid_session"),
        (status = 403, body = ErrorEnvelope, description = "player_blocked / session_player_mismatch"),
        (status = 409, body = ErrorEnvelope, description = "idempotency_key_reuse: the key was used with another body"),
        (status = 413, body = ErrorEnvelope, description = "payload_too_large: a body over 64 KiB"),
        (status = 415, body = ErrorEnvelope, description = "unsupported_media_type: not application/json"),
        (status = 429, body = ErrorEnvelope, description = "rate_limited (client IP) / player_flooding (player); see Retry-After"),
        (status = 503, body = ErrorEnvelope, description = "unavailable: the store or the hot state cannot answer; retry after Retry-After"),
    ))]
pub async fn post_event(State(s): State<Arc<GatewayState>>, signed: SignedEvent) -> Response {
    let started = Instant::now();
    let event = match Event::from_slice(&signed.body) {
        Ok(e) => e,
        Err(e) => return signed.refuse(e.into()),
    };
    if let Err(e) = s.admit_player(&event.player_id, &signed).await {
        return signed.refuse(e);
    }
    let key = match idempotency_key(&signed.headers) {
        Ok(k) => k,
        Err(e) => return signed.refuse(e),
    };
    if let Some(key) = &key {
        let lookup = s
            .idempotency
            .check_and_reserve(
                key,
                &signed.body,
                Recorded(vec![Some(event.event_id.clone())]),
            )
            .await;
        match lookup {
            Err(e) => return ApiError::unavailable(e).into_response(),
            Ok(Lookup::Fresh) => {}
            Ok(Lookup::Replay(Recorded(ids))) => {
                let id = ids.into_iter().flatten().next().unwrap_or(event.event_id);
                return EventAnswer {
                    event_id: id,
                    status: EventStatus::Duplicate,
                }
                .into_response();
            }
            Ok(Lookup::Conflict) => {
                let e = ApiError::new(
                    ErrorCode::IdempotencyKeyReuse,
                    "this Idempotency-Key was used with a different body",
                )
                .with_field("Idempotency-Key");
                return signed.refuse(e);
            }
        }
    }
    let event_type = event.kind.event_type().as_str();
    // Only copied when the debug line will be written: this is the hottest path.
    let player = tracing::enabled!(tracing::Level::DEBUG).then(|| event.player_id.clone());
    let id = event.event_id.clone();
    let appended = s
        .log
        .append(vec![NewEvent {
            event,
            received_at: s.clock.now(),
        }])
        .await;
    let status = match appended.as_deref() {
        Ok([Appended::New { .. }]) => {
            metrics::counter!("events_accepted_total").increment(1);
            Ok(EventStatus::Accepted)
        }
        Ok([Appended::Duplicate]) => Ok(EventStatus::Duplicate),
        Ok(_) => Err(ApiError::unavailable(
            "append returned an unexpected result count",
        )),
        Err(e) => Err(ApiError::unavailable(e)),
    };
    if status.is_err() {
        s.release_key(key.as_deref()).await;
    }
    tracing::debug!(service = "gateway", player_id = ?player, event_type, event_id = %id,
        status = status.as_ref().map_or_else(ApiError::status, |s| s.http()).as_u16(),
        duration_ms = started.elapsed().as_secs_f64() * 1000.0, "event");
    match status {
        Ok(status) => EventAnswer {
            event_id: id,
            status,
        }
        .into_response(),
        Err(e) => e.into_response(),
    }
}
