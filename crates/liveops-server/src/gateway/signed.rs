//! The checks every signed request passes before its body is read as JSON (`docs/api.md`), as
//! one axum extractor: `POST /events`, `POST /events/batch` and `POST /rewards/claim` take a
//! [`SignedRequest`] instead of checking inside each handler (realworld's `AuthUser`).
//!
//! In order: content type (415), the client IP's `RATE_LIMIT_MAX` (429 with `Retry-After`, or
//! 503 when the hot state cannot answer), body size (413), signature and timestamp (401). Every
//! refusal is counted in `dropped_events_total` by reason and kept in the failed-events store;
//! a 503 is the server's failure, not a refused request, and is neither. What needs the body's
//! meaning stays with the handler, which reads the player first: the guest-session binding
//! ([`SignedRequest::bind`]) and the refusals it records itself ([`SignedRequest::refuse`]).
//!
//! `POST /events` is the hottest path of the server, so the extractor costs no more than the
//! plain `HeaderMap` + `Body` extractors it replaces: its state is one `Arc` cloned from the
//! router's ([`SignedChecks`] through `FromRef`), the request head is taken apart rather than
//! copied (the headers move into the [`SignedRequest`]), the body limit is a const parameter,
//! and its future is the `async fn` itself, polled inside the handler's, not boxed.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRef, FromRequest, Request};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use liveops_domain::{Clock, PlayerId};

use super::auth::Verifier;
use super::failed::{FailedEvent, FailedEvents};
use super::rate_limit::IpRateLimiter;
use crate::error::{ApiError, ErrorCode};

/// What the signed-request checks need, shared by every role that takes signed requests (the
/// gateway's ingest and progression's claims): a handle on one `Arc`, cloned per request.
#[derive(Clone)]
pub struct SignedChecks(Arc<Checks>);

struct Checks {
    /// Signatures, rotated keys, timestamps and guest-session tokens; its default key also
    /// signs reward receipts.
    verifier: Verifier,
    /// Who the client is (the socket peer, or the forwarded address behind a trusted proxy)
    /// and its `RATE_LIMIT_MAX`.
    ip_limiter: IpRateLimiter,
    /// Where refusals are kept; the admin API lists them.
    failed: Arc<FailedEvents>,
    /// Stamps the kept refusals.
    clock: Arc<dyn Clock>,
}

impl SignedChecks {
    pub fn new(
        verifier: Verifier,
        ip_limiter: IpRateLimiter,
        failed: Arc<FailedEvents>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self(Arc::new(Checks {
            verifier,
            ip_limiter,
            failed,
            clock,
        }))
    }

    pub fn verifier(&self) -> &Verifier {
        &self.0.verifier
    }

    pub fn ip_limiter(&self) -> &IpRateLimiter {
        &self.0.ip_limiter
    }

    pub fn failed(&self) -> &Arc<FailedEvents> {
        &self.0.failed
    }

    /// Counts a refusal by reason and keeps it, with the body as sent, in the failed-events
    /// store. A 503 (the hot state or the store could not answer) is not a refusal: skipped.
    pub fn record(&self, ip: IpAddr, error: &ApiError, body: &[u8]) {
        if error.code() == ErrorCode::Unavailable {
            return;
        }
        let code = error.code().as_str();
        metrics::counter!("dropped_events_total", "reason" => code).increment(1);
        let (body, truncated) = FailedEvents::body_excerpt(body);
        self.0.failed.push(FailedEvent {
            at: self.0.clock.now(),
            status: error.status().as_u16(),
            code,
            message: error.body.message.clone(),
            field: error.body.field.clone(),
            client_ip: ip.to_string(),
            body,
            truncated,
        });
    }

    /// The per-IP limit `RATE_LIMIT_MAX`: 429 over it, 503 when the hot state cannot answer.
    async fn check_ip(&self, ip: IpAddr) -> Result<(), ApiError> {
        match self
            .0
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

    /// The checks in their order; a refusal comes back with the body read so far (empty
    /// unless the signature was what failed), which is what the failed-events store keeps.
    async fn admit(
        &self,
        ip: IpAddr,
        headers: &HeaderMap,
        body: Body,
        limit: usize,
    ) -> Result<(Bytes, Option<PlayerId>), (ApiError, Bytes)> {
        let no_body = |error| (error, Bytes::new());
        check_json_content_type(headers).map_err(no_body)?;
        self.check_ip(ip).await.map_err(no_body)?;
        let body = read_body(headers, body, limit).await.map_err(no_body)?;
        match self.0.verifier.verify(headers, &body) {
            Ok(session) => Ok((body, session)),
            Err(error) => Err((error, body)),
        }
    }
}

/// A request that passed the signed-request checks, with a body of at most `LIMIT` bytes.
pub struct SignedRequest<const LIMIT: usize> {
    /// The client's address, as the rate limit counted it.
    pub ip: IpAddr,
    pub headers: HeaderMap,
    /// The raw body the signature covers.
    pub body: Bytes,
    /// The guest session's player, when the request was signed with a session key.
    pub session: Option<PlayerId>,
    checks: SignedChecks,
}

impl<const LIMIT: usize> SignedRequest<LIMIT> {
    /// The guest-session binding (`docs/api.md`): a request signed with a session's key is
    /// only for the session's own player (403). `acts` completes the refusal's sentence
    /// ("send events for", "claim for").
    pub fn bind(&self, player: &PlayerId, acts: &str) -> Result<(), ApiError> {
        match self.session.as_ref().filter(|own| *own != player) {
            None => Ok(()),
            Some(own) => Err(ApiError::new(
                ErrorCode::SessionPlayerMismatch,
                format!("this guest session is for player {own}; it cannot {acts} {player}"),
            )
            .with_field("playerId")),
        }
    }

    /// Records a refusal of the whole request (see [`SignedChecks::record`]) and answers it.
    pub fn refuse(&self, error: ApiError) -> Response {
        self.checks.record(self.ip, &error, &self.body);
        error.into_response()
    }

    /// Records the refusal of one part of the request (a batch item), kept as its own bytes.
    pub fn record(&self, error: &ApiError, part: &[u8]) {
        self.checks.record(self.ip, error, part);
    }
}

impl<S, const LIMIT: usize> FromRequest<S> for SignedRequest<LIMIT>
where
    SignedChecks: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let checks = SignedChecks::from_ref(state);
        let (parts, body) = req.into_parts();
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>().copied()
        else {
            tracing::error!("the server is not serving with connect info: no client address");
            return Err(ApiError::new(
                ErrorCode::Internal,
                "the server could not tell the client's address",
            ));
        };
        let ip = checks.0.ip_limiter.client_ip(peer.ip(), &parts.headers);
        match checks.admit(ip, &parts.headers, body, LIMIT).await {
            Ok((body, session)) => Ok(SignedRequest {
                ip,
                headers: parts.headers,
                body,
                session,
                checks,
            }),
            Err((error, body)) => {
                checks.record(ip, &error, &body);
                Err(error)
            }
        }
    }
}

pub fn check_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
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
        .get(header::CONTENT_LENGTH)
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

/// The headers of a signed request, for the OpenAPI document of the routes that take a
/// [`SignedRequest`]; the extractor reads them from the request, this type is never built.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct SignatureHeaders {
    /// Hex HMAC-SHA256 of the raw body (of `<body>.<X-Timestamp>` when that is sent), or
    /// `sha256=<hex>`.
    #[param(rename = "X-Signature")]
    pub signature: String,
    /// Unix seconds, within `SIGNATURE_TOLERANCE` of the server's clock; required when
    /// `REQUIRE_TIMESTAMP=true`.
    #[param(rename = "X-Timestamp")]
    pub timestamp: Option<String>,
    /// Which `HMAC_KEYS` secret signed the request; the default `HMAC_SECRET` without it.
    #[param(rename = "X-Key-Id")]
    pub key_id: Option<String>,
    /// A guest session's token (`POST /sessions`); the request is then signed with the
    /// session's `key` and is only for the session's player.
    #[param(rename = "X-Session")]
    pub session: Option<String>,
}
