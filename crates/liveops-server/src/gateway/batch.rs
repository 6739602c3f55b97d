//! `POST /events/batch`: up to 500 signed events in one request (`docs/api.md`), answered 200
//! with one result per item, in order.
//!
//! The whole request passes the signed-request checks ([`SignedBatch`]) and the batch's own
//! shape (400 for a body that is not `{"events": [...]}` with 1 to 500 items); then each item is
//! judged on its own (validation, session binding, block, flood) and refused in its slot, and
//! the admitted ones go to the log in one durable append. A hot state or store that cannot
//! answer fails the whole request (503) and nothing of it is appended.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use liveops_domain::{Event, EventId};
use liveops_hotstate::{Lookup, Recorded};
use liveops_store::{Appended, NewEvent};
use serde::Serialize;
use serde_json::value::RawValue;
use utoipa::ToSchema;

use super::envelope::BatchRequest;
use super::signed::SignatureHeaders;
use super::{idempotency_key, GatewayState, SignedBatch, MAX_BATCH_EVENTS};
use crate::error::{ApiError, ErrorBody, ErrorCode, ErrorEnvelope};

/// The answer of `POST /events/batch`: one result per item, in order.
#[derive(Serialize, ToSchema)]
pub struct BatchAnswer {
    pub results: Vec<ItemResult>,
}

/// One item's outcome: accepted (`"status": 202, "eventId"`), a duplicate (`"status": 208,
/// "eventId", "duplicate": true`) or refused (`"status"` and `"error"`, as a single event's
/// refusal would be answered). Typed rather than built as `json!` maps: a batch answer has up to
/// 500 of them.
#[derive(Serialize, ToSchema)]
pub struct ItemResult {
    /// The item's position in `events`, from 0.
    pub index: usize,
    /// 202, 208, or the status the refusal would have as a single event (400, 403, 429).
    #[schema(example = 202)]
    pub status: u16,
    /// The event's id, for an accepted or duplicate item.
    #[serde(rename = "eventId", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    pub event_id: Option<EventId>,
    /// Present (and true) only for a duplicate.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
    /// Why the item was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = ErrorBody)]
    pub error: Option<ErrorBody>,
}

impl ItemResult {
    fn refused(index: usize, e: ApiError) -> Self {
        Self {
            index,
            status: e.status().as_u16(),
            event_id: None,
            duplicate: false,
            error: Some(e.body),
        }
    }

    fn duplicate(index: usize, id: EventId) -> Self {
        Self {
            index,
            status: StatusCode::ALREADY_REPORTED.as_u16(),
            event_id: Some(id),
            duplicate: true,
            error: None,
        }
    }

    /// An item handed to the append, answered by [`settle`](Self::settle) once it returns.
    fn appending(index: usize, id: EventId) -> Self {
        Self {
            index,
            status: 0,
            event_id: Some(id),
            duplicate: false,
            error: None,
        }
    }

    fn settle(&mut self, outcome: Appended) {
        let duplicate = matches!(outcome, Appended::Duplicate);
        self.status = if duplicate {
            StatusCode::ALREADY_REPORTED
        } else {
            StatusCode::ACCEPTED
        }
        .as_u16();
        self.duplicate = duplicate;
    }
}

#[utoipa::path(post, path = "/events/batch", tag = "gateway",
    request_body(content = BatchRequest, description = "1 to 500 events, signed as one body", content_type = "application/json"),
    params(
        SignatureHeaders,
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 255 characters; the same key and body within IDEMP_TTL replays every item as 208 with its original eventId"),
    ),
    responses(
        (status = 200, body = BatchAnswer, description = "one result per event, in order"),
        (status = 400, body = ErrorEnvelope, description = "invalid_json / invalid_event (field `events`): not a batch of 1 to 500 events; invalid_request (Idempotency-Key)"),
        (status = 401, body = ErrorEnvelope, description = "missing_signature / invalid_signature / stale_timestamp / invalid_session"),
        (status = 409, body = ErrorEnvelope, description = "idempotency_key_reuse: the key was used with another body"),
        (status = 413, body = ErrorEnvelope, description = "payload_too_large: a body over 1 MiB"),
        (status = 415, body = ErrorEnvelope, description = "unsupported_media_type: not application/json"),
        (status = 429, body = ErrorEnvelope, description = "rate_limited: the client IP is over RATE_LIMIT_MAX; see Retry-After"),
        (status = 503, body = ErrorEnvelope, description = "unavailable: the store or the hot state cannot answer; nothing was appended; retry after Retry-After"),
    ))]
pub async fn post_batch(State(s): State<Arc<GatewayState>>, signed: SignedBatch) -> Response {
    let body = &signed.body;
    let items = match parse_batch(body) {
        Ok(items) => items,
        Err(e) => return signed.refuse(e),
    };
    let key = match idempotency_key(&signed.headers) {
        Ok(k) => k,
        Err(e) => return signed.refuse(e),
    };
    // Each item is validated from its own bytes, which are also what the failed-events store
    // keeps when it is refused: no JSON tree of the whole batch is built, copied or printed back.
    let validated: Vec<Result<Event, ApiError>> = items
        .iter()
        .map(|raw| Event::from_slice(raw.get().as_bytes()).map_err(ApiError::from))
        .collect();
    // Each event passes its player's gates; a refusal (400, 403, 429) goes in its slot, and
    // the refused item itself goes to the failed-events store.
    // A hot state that cannot answer fails the whole request (503): no event of it is appended.
    // The players' gates of all items run at once: on Redis that is one round trip's wait for
    // the batch instead of two per item. Requests go out (and are answered, on one
    // connection) in item order, so a flooding player's first items are the ones admitted.
    let gates = futures::future::join_all(validated.iter().map(|r| async {
        match r {
            Ok(event) => Some(s.admit_player(&event.player_id, &signed).await),
            Err(_) => None,
        }
    }))
    .await;
    let mut parsed: Vec<Result<Event, ApiError>> = Vec::with_capacity(validated.len());
    for (r, gate) in validated.into_iter().zip(gates) {
        match (r, gate) {
            (Err(refused), _) => parsed.push(Err(refused)),
            (Ok(event), Some(Ok(()))) | (Ok(event), None) => parsed.push(Ok(event)),
            (Ok(_), Some(Err(e))) if e.code() == ErrorCode::Unavailable => {
                return e.into_response()
            }
            (Ok(_), Some(Err(e))) => parsed.push(Err(e)),
        }
    }
    let mut replayed: Option<Vec<Option<EventId>>> = None;
    if let Some(key) = &key {
        let ids = parsed
            .iter()
            .map(|r| r.as_ref().ok().map(|e| e.event_id.clone()))
            .collect();
        match s
            .idempotency
            .check_and_reserve(key, body, Recorded(ids))
            .await
        {
            Err(e) => return ApiError::unavailable(e).into_response(),
            Ok(Lookup::Fresh) => {}
            Ok(Lookup::Replay(Recorded(ids))) => replayed = Some(ids),
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
    let mut results: Vec<ItemResult> = Vec::with_capacity(parsed.len());
    let mut to_append = Vec::new();
    let mut positions = Vec::new();
    let now = s.clock.now();
    for (index, (r, raw)) in parsed.into_iter().zip(&items).enumerate() {
        match r {
            Err(e) => {
                signed.record(&e, raw.get().as_bytes());
                results.push(ItemResult::refused(index, e));
            }
            Ok(event) => {
                if let Some(ids) = &replayed {
                    let id = ids.get(index).cloned().flatten().unwrap_or(event.event_id);
                    results.push(ItemResult::duplicate(index, id));
                    continue;
                }
                // Settled by the append's outcome below (or the whole request is a 503).
                results.push(ItemResult::appending(index, event.event_id.clone()));
                positions.push(index);
                to_append.push(NewEvent {
                    event,
                    received_at: now,
                });
            }
        }
    }
    if !to_append.is_empty() {
        match s.log.append(to_append).await {
            Ok(outcomes) if outcomes.len() == positions.len() => {
                let mut fresh = 0u64;
                for (index, outcome) in positions.into_iter().zip(outcomes) {
                    if let Appended::New { .. } = outcome {
                        fresh += 1;
                    }
                    results[index].settle(outcome);
                }
                metrics::counter!("events_accepted_total").increment(fresh);
            }
            Ok(_) => {
                s.release_key(key.as_deref()).await;
                return ApiError::unavailable("append returned an unexpected result count")
                    .into_response();
            }
            Err(e) => {
                s.release_key(key.as_deref()).await;
                return ApiError::unavailable(e).into_response();
            }
        }
    }
    (StatusCode::OK, Json(BatchAnswer { results })).into_response()
}

/// Splits a batch body into its items, each left as raw JSON for [`Event::from_slice`].
///
/// Two cheap passes instead of one JSON tree: the first checks the whole body's syntax (so a
/// broken body is `invalid_json` wherever the break is), the second reads the top-level object
/// down to the `events` array's item boundaries.
fn parse_batch(body: &[u8]) -> Result<Vec<&RawValue>, ApiError> {
    let whole: &RawValue = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidJson,
            format!("body is not valid JSON: {e}"),
        )
    })?;
    let Ok(mut obj) = serde_json::from_str::<HashMap<String, &RawValue>>(whole.get()) else {
        return Err(ApiError::new(
            ErrorCode::InvalidEvent,
            "a batch must be an object {\"events\": [...]}",
        )
        .with_field("events"));
    };
    let events = obj
        .remove("events")
        .map(|raw| serde_json::from_str::<Vec<&RawValue>>(raw.get()).map_err(|_| raw));
    match events {
        Some(Ok(items)) if items.is_empty() => Err(ApiError::new(
            ErrorCode::InvalidEvent,
            "events must hold at least one event",
        )
        .with_field("events")),
        Some(Ok(items)) if items.len() > MAX_BATCH_EVENTS => Err(ApiError::new(
            ErrorCode::InvalidEvent,
            format!(
                "a batch holds at most {MAX_BATCH_EVENTS} events, got {}",
                items.len()
            ),
        )
        .with_field("events")),
        Some(Ok(items)) => Ok(items),
        Some(Err(_)) => Err(
            ApiError::new(ErrorCode::InvalidEvent, "events must be an array").with_field("events"),
        ),
        None => {
            let hint = obj
                .keys()
                .find_map(|k| liveops_domain::event::suggest(k, &["events"]))
                .map(|_| "; did you mean \"events\"?")
                .unwrap_or("");
            Err(ApiError::new(
                ErrorCode::InvalidEvent,
                format!("missing field \"events\"{hint}"),
            )
            .with_field("events"))
        }
    }
}
