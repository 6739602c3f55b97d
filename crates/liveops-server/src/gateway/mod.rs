//! The gateway role (SPEC section 4): `POST /events` and `POST /events/batch`.
//!
//! A request goes through, in order: content type (415), per-IP rate limit (429), body size
//! (413), signature (401), validation (400), the player's block (403) and flood gate (429), idempotency key
//! (208 / 409), and the durable append (202, or 208 for a known eventId). The 202 is written only after the append returned,
//! i.e. after the commit. Every refusal is counted by reason and kept in the failed-events store.
//!
//! The guards (rate limits, blocks, idempotency keys) are hot state behind traits, in memory or
//! in Redis. When that hot state cannot answer, the request gets 503 with `Retry-After` and
//! nothing is appended: the gateway never accepts what it could not check.

pub mod auth;
pub mod failed;
pub mod rate_limit;
pub mod session;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use liveops_domain::{Clock, Event, EventId, PlayerId};
use liveops_store::{Appended, EventLog, NewEvent};
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::error::{ApiError, ErrorCode};
use auth::Verifier;
use failed::{FailedEvent, FailedEvents};
use liveops_hotstate::rate_limit::retry_after_secs;
use liveops_hotstate::{BlockList, IdempotencyKeys, Lookup, PlayerGate, RateLimits, Recorded};
use rate_limit::IpRateLimiter;

pub const MAX_EVENT_BYTES: usize = 64 * 1024;
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;
pub const MAX_BATCH_EVENTS: usize = 500;
const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// What the gateway handlers share. Built once by the composition root.
#[derive(Clone)]
pub struct GatewayState {
    /// The durable log; an append returns after the commit.
    pub log: Arc<dyn EventLog>,
    pub verifier: Arc<Verifier>,
    pub idempotency: Arc<dyn IdempotencyKeys>,
    pub ip_limiter: Arc<IpRateLimiter>,
    /// Players blocked by an operator or the fairness guard: 403 before anything is stored.
    pub blocks: Arc<dyn BlockList>,
    /// Guest sessions issued per client IP.
    pub session_limiter: Arc<dyn RateLimits>,
    /// Per-player `FLOOD_MAX_PER_SEC`, keyed by playerId (swept here; drawn on through `gate`).
    pub flood: Arc<dyn RateLimits>,
    /// `blocks` and `flood` asked together for every event: one command on a Redis node.
    pub gate: Arc<dyn PlayerGate>,
    pub failed: Arc<FailedEvents>,
    pub clock: Arc<dyn Clock>,
}

pub fn router(state: GatewayState) -> Router {
    // Behind one `Arc`: axum clones the state for every request, and a clone of the struct
    // itself is a dozen reference counts touched from both cores (about 1% of the CPU per
    // event in `perf`).
    let state = Arc::new(state);
    Router::new()
        .route("/events", post(post_event))
        .route("/events/batch", post(post_batch))
        .route("/sessions", post(post_session))
        .with_state(state)
}

/// A refused request: the error to answer with and the body to keep in the failed store.
struct Refusal {
    error: ApiError,
    body: Bytes,
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Self {
        Refusal {
            error,
            body: Bytes::new(),
        }
    }
}

impl GatewayState {
    /// Counts and records a refusal, then turns it into the response. A 503 (the hot state
    /// could not answer) is the server's failure, not a refused event: it is not recorded.
    fn refuse(&self, ip: &std::net::IpAddr, r: Refusal) -> Response {
        if r.error.code() != ErrorCode::Unavailable {
            self.record_refusal(ip, &r.error, &r.body);
        }
        r.error.into_response()
    }

    fn record_refusal(&self, ip: &std::net::IpAddr, error: &ApiError, body: &[u8]) {
        let code = error.code().as_str();
        metrics::counter!("dropped_events_total", "reason" => code).increment(1);
        let (body, truncated) = FailedEvents::body_excerpt(body);
        self.failed.push(FailedEvent {
            at: self.clock.now(),
            status: error.status().as_u16(),
            code,
            message: error.body.message.clone(),
            field: error.body.field.clone(),
            client_ip: ip.to_string(),
            body,
            truncated,
        });
    }

    /// The per-player gates, after validation and before the append: blocked (403), then
    /// flooding (429); 503 when the hot state cannot answer.
    async fn admit_player(
        &self,
        player: &PlayerId,
        session: Option<&PlayerId>,
    ) -> Result<(), ApiError> {
        if let Some(own) = session.filter(|own| *own != player) {
            return Err(ApiError::new(
                ErrorCode::SessionPlayerMismatch,
                format!(
                    "this guest session is for player {own}; it cannot send events for {player}"
                ),
            )
            .with_field("playerId"));
        }
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
            Some(wait) => Err(flooding(player, retry_after_secs(wait))),
            None => Ok(()),
        }
    }

    /// The per-IP limit `RATE_LIMIT_MAX`: 429 over it, 503 when the hot state cannot answer.
    pub async fn check_ip(&self, ip: std::net::IpAddr) -> Result<(), ApiError> {
        match self
            .ip_limiter
            .check(ip)
            .await
            .map_err(ApiError::unavailable)?
        {
            Some(wait) => Err(ApiError::new(
                ErrorCode::RateLimited,
                "too many requests from this client; slow down",
            )
            .retry_after(wait)),
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

    /// The checks every signed request passes before its body is looked at; returns the body
    /// and, for a guest session, its player.
    async fn admit(
        &self,
        ip: std::net::IpAddr,
        headers: &HeaderMap,
        body: Body,
        limit: usize,
    ) -> Result<(Bytes, Option<PlayerId>), Refusal> {
        check_json_content_type(headers)?;
        self.check_ip(ip).await?;
        let body = read_body(headers, body, limit).await?;
        match self.verifier.verify(headers, &body) {
            Ok(session) => Ok((body, session)),
            Err(error) => Err(Refusal { error, body }),
        }
    }
}

pub fn check_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let ct = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = ct.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!(
                "Content-Type must be application/json, got {:?}",
                if ct.is_empty() { "nothing" } else { ct }
            ),
        ))
    }
}

/// Reads at most `limit` bytes; a larger body is 413 whether or not it announced its length.
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the body must be at most {} KiB", limit / 1024),
        )
    };
    let announced = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(s) = source {
            if s.is::<http_body_util::LengthLimitError>() {
                return too_large();
            }
            source = s.source();
        }
        ApiError::new(ErrorCode::InvalidRequest, "could not read the request body")
    })
}

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

fn flooding(player: &liveops_domain::PlayerId, wait: u64) -> ApiError {
    ApiError::new(
        ErrorCode::PlayerFlooding,
        format!("player {player} is sending more events than FLOOD_MAX_PER_SEC allows; slow down"),
    )
    .retry_after(wait)
}

fn accepted(id: &EventId) -> Value {
    json!({"eventId": id.as_str(), "status": "accepted"})
}

fn duplicate(id: &EventId) -> Value {
    json!({"eventId": id.as_str(), "status": "duplicate"})
}

#[utoipa::path(post, path = "/events", tag = "gateway",
    request_body(content = Object, description = "one event envelope (SPEC section 4)", content_type = "application/json"),
    params(
        ("X-Signature" = String, Header, description = "hex HMAC-SHA256 of the body, or sha256=<hex>"),
        ("X-Timestamp" = Option<String>, Header, description = "unix seconds; the MAC then covers <body>.<timestamp>"),
        ("X-Key-Id" = Option<String>, Header, description = "which HMAC_KEYS secret signed the request"),
        ("Idempotency-Key" = Option<String>, Header, description = "<= 255 characters"),
    ),
    responses(
        (status = 202, description = "accepted and durable"),
        (status = 208, description = "duplicate: the original eventId"),
        (status = 400, description = "invalid_json / invalid_event"),
        (status = 401, description = "missing_signature / invalid_signature / stale_timestamp"),
        (status = 409, description = "idempotency_key_reuse"),
        (status = 413, description = "body over 64 KiB"),
        (status = 403, description = "player_blocked"),
        (status = 415, description = "not application/json"),
        (status = 429, description = "rate_limited (client IP) / player_flooding (player)"),
        (status = 503, description = "the store is unavailable; retry"),
    ))]
pub async fn post_event(
    State(s): State<Arc<GatewayState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let ip = s.ip_limiter.client_ip(peer.ip(), &headers);
    let (body, session) = match s.admit(ip, &headers, body, MAX_EVENT_BYTES).await {
        Ok(b) => b,
        Err(r) => return s.refuse(&ip, r),
    };
    let fail = |error: ApiError, body: &Bytes| Refusal {
        error,
        body: body.clone(),
    };
    let event = match Event::from_slice(&body) {
        Ok(e) => e,
        Err(e) => return s.refuse(&ip, fail(e.into(), &body)),
    };
    if let Err(e) = s.admit_player(&event.player_id, session.as_ref()).await {
        return s.refuse(&ip, fail(e, &body));
    }
    let key = match idempotency_key(&headers) {
        Ok(k) => k,
        Err(e) => return s.refuse(&ip, fail(e, &body)),
    };
    if let Some(key) = &key {
        let lookup = s
            .idempotency
            .check_and_reserve(key, &body, Recorded(vec![Some(event.event_id.clone())]))
            .await;
        match lookup {
            Err(e) => return ApiError::unavailable(e).into_response(),
            Ok(Lookup::Fresh) => {}
            Ok(Lookup::Replay(Recorded(ids))) => {
                let id = ids.into_iter().flatten().next().unwrap_or(event.event_id);
                return (StatusCode::ALREADY_REPORTED, Json(duplicate(&id))).into_response();
            }
            Ok(Lookup::Conflict) => {
                let e = ApiError::new(
                    ErrorCode::IdempotencyKeyReuse,
                    "this Idempotency-Key was used with a different body",
                )
                .with_field("Idempotency-Key");
                return s.refuse(&ip, fail(e, &body));
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
    let response = match appended.as_deref() {
        Ok([Appended::New { .. }]) => {
            metrics::counter!("events_accepted_total").increment(1);
            (StatusCode::ACCEPTED, Json(accepted(&id))).into_response()
        }
        Ok([Appended::Duplicate]) => {
            (StatusCode::ALREADY_REPORTED, Json(duplicate(&id))).into_response()
        }
        Ok(_) => {
            s.release_key(key.as_deref()).await;
            ApiError::unavailable("append returned an unexpected result count").into_response()
        }
        Err(e) => {
            s.release_key(key.as_deref()).await;
            ApiError::unavailable(e).into_response()
        }
    };
    tracing::debug!(service = "gateway", player_id = ?player, event_type, event_id = %id,
        status = response.status().as_u16(), duration_ms = started.elapsed().as_secs_f64() * 1000.0, "event");
    response
}

#[utoipa::path(post, path = "/events/batch", tag = "gateway",
    request_body(content = Object, description = "{\"events\": [envelope, ...]} with up to 500 events", content_type = "application/json"),
    responses(
        (status = 200, description = "one result per event, in order: {results: [{index, status, eventId | error}]}"),
        (status = 400, description = "not JSON, no events array, or more than 500 events"),
        (status = 401, description = "signature refused"),
        (status = 413, description = "body over 1 MiB"),
        (status = 415, description = "not application/json"),
        (status = 429, description = "rate_limited"),
        (status = 503, description = "the store is unavailable; retry"),
    ))]
pub async fn post_batch(
    State(s): State<Arc<GatewayState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let ip = s.ip_limiter.client_ip(peer.ip(), &headers);
    let (body, session) = match s.admit(ip, &headers, body, MAX_BATCH_BYTES).await {
        Ok(b) => b,
        Err(r) => return s.refuse(&ip, r),
    };
    let fail = |error: ApiError| Refusal {
        error,
        body: body.clone(),
    };
    let items = match parse_batch(&body) {
        Ok(items) => items,
        Err(e) => return s.refuse(&ip, fail(e)),
    };
    let key = match idempotency_key(&headers) {
        Ok(k) => k,
        Err(e) => return s.refuse(&ip, fail(e)),
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
            Ok(event) => Some(s.admit_player(&event.player_id, session.as_ref()).await),
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
            .check_and_reserve(key, &body, Recorded(ids))
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
                return s.refuse(&ip, fail(e));
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
                s.record_refusal(&ip, &e, raw.get().as_bytes());
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

/// The answer of `POST /events/batch` (SPEC section 4): one result per item, in order.
#[derive(serde::Serialize)]
struct BatchAnswer {
    results: Vec<ItemResult>,
}

/// One item's outcome: `{"index", "status": 202, "eventId"}`, a duplicate
/// (`"status": 208, "eventId", "duplicate": true`) or a refusal (`"status", "error"`). Typed
/// rather than built as `json!` maps: a batch answer has 500 of them.
#[derive(serde::Serialize)]
struct ItemResult {
    index: usize,
    status: u16,
    #[serde(rename = "eventId", skip_serializing_if = "Option::is_none")]
    event_id: Option<EventId>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    duplicate: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<crate::error::ErrorBody>,
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

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SessionRequest {
    player_id: Option<String>,
}

#[utoipa::path(post, path = "/sessions", tag = "gateway",
    request_body(content = Object, description = "{\"playerId\"?}; without one a guest id is generated", content_type = "application/json"),
    responses(
        (status = 200, description = "{playerId, token, key, expiresAt}: sign events with `key`, send `X-Session: <token>`"),
        (status = 400, description = "malformed playerId"),
        (status = 404, description = "guest sessions are disabled (GUEST_SESSIONS)"),
        (status = 429, description = "too many sessions from this client"),
    ))]
pub async fn post_session(
    State(s): State<Arc<GatewayState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let ip = s.ip_limiter.client_ip(peer.ip(), &headers);
    let result = async {
        let Some(sessions) = &s.verifier.sessions else {
            return Err(ApiError::not_found(
                "guest sessions are disabled on this server (GUEST_SESSIONS)",
            ));
        };
        if let Some(wait) = s
            .session_limiter
            .check(&ip.to_string())
            .await
            .map_err(ApiError::unavailable)?
        {
            return Err(ApiError::new(
                ErrorCode::RateLimited,
                "too many guest sessions from this client; slow down",
            )
            .retry_after(retry_after_secs(wait)));
        }
        let body = read_body(&headers, body, 4096).await?;
        let req: SessionRequest = if body.iter().all(u8::is_ascii_whitespace) {
            SessionRequest::default()
        } else {
            check_json_content_type(&headers)?;
            serde_json::from_slice(&body).map_err(|e| {
                ApiError::invalid("playerId", format!("expected {{\"playerId\"?}}: {e}"))
            })?
        };
        let player = match req.player_id {
            Some(p) => PlayerId::parse(p)
                .map_err(|m| ApiError::invalid("playerId", format!("playerId {m}")))?,
            None => {
                let suffix: String = (0..10)
                    .map(|_| (b'a' + rand::random::<u8>() % 26) as char)
                    .collect();
                PlayerId::parse(format!("guest_{suffix}"))
                    .map_err(|m| ApiError::invalid("playerId", m))?
            }
        };
        Ok(Json(sessions.issue(&player, s.clock.now())))
    }
    .await;
    match result {
        Ok(r) => r.into_response(),
        Err(e) => e.into_response(),
    }
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
