//! Guest sessions for browsers (`docs/api.md`): `POST /sessions` gives a player id, a token
//! and a per-session signing key. The browser signs its events with the key and sends
//! `X-Session: <token>`; such events (and claims) may only be for the session's own player
//! ([`SignedRequest::bind`](super::signed::SignedRequest::bind)).
//!
//! Stateless on purpose: the token carries the player, the expiry and a nonce, MACed with the
//! server secret, and the key is derived from the token (`HMAC(secret, "session-key:" + token)`),
//! so any gateway process can check a session without shared state and a restart loses none.
//! A forged or edited token fails the MAC; an expired one is refused.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::Json;
use chrono::{DateTime, Duration, TimeZone, Utc};
use liveops_domain::signing::{sign_request, RequestKey};
use liveops_domain::PlayerId;
use liveops_hotstate::rate_limit::retry_after_secs;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::signed::{check_json_content_type, read_body};
use super::GatewayState;
use crate::error::{ApiError, ErrorCode, ErrorEnvelope};

/// How long a guest session lasts.
pub const SESSION_TTL_SECS: i64 = 3600;

/// The largest `POST /sessions` body read.
const MAX_SESSION_REQUEST_BYTES: usize = 4096;

/// The answer of `POST /sessions`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuedSession {
    /// The player the session is for: the one asked for, or a generated `guest_...` id.
    #[schema(example = "guest_kqzjwtmbae")]
    pub player_id: String,
    /// Sent as `X-Session` with every signed request of the session.
    pub token: String,
    /// The hex text whose bytes are the HMAC key for this session's requests.
    pub key: String,
    /// An hour after issue; then open a new session.
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SessionError {
    #[error("X-Session is not a session token issued by this server")]
    Invalid,
    #[error("the guest session expired at {0}; open a new one with POST /sessions")]
    Expired(DateTime<Utc>),
}

pub struct Sessions {
    secret: Vec<u8>,
}

impl Sessions {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            secret: secret.to_vec(),
        }
    }

    fn token_mac(&self, body: &str) -> String {
        sign_request(&self.secret, format!("session:{body}").as_bytes(), None)
    }

    fn key_for(&self, token: &str) -> String {
        sign_request(
            &self.secret,
            format!("session-key:{token}").as_bytes(),
            None,
        )
    }

    pub fn issue(&self, player: &PlayerId, now: DateTime<Utc>) -> IssuedSession {
        let expires = now.timestamp() + SESSION_TTL_SECS;
        let nonce = hex::encode(rand::random::<[u8; 12]>());
        let body = format!("{player}.{expires}.{nonce}");
        let token = format!("{body}.{}", self.token_mac(&body));
        IssuedSession {
            player_id: player.to_string(),
            key: self.key_for(&token),
            token,
            expires_at: Utc
                .timestamp_opt(expires, 0)
                .single()
                .unwrap_or(now + Duration::seconds(SESSION_TTL_SECS)),
        }
    }

    /// The session's player and signing key, if the token is genuine and current.
    pub fn open(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<(PlayerId, RequestKey), SessionError> {
        let (body, mac) = token.rsplit_once('.').ok_or(SessionError::Invalid)?;
        // Constant-time: the MAC check is what stops forged tokens.
        if !liveops_domain::signing::verify_request(
            &self.secret,
            format!("session:{body}").as_bytes(),
            None,
            mac,
        ) {
            return Err(SessionError::Invalid);
        }
        let mut parts = body.split('.');
        let (Some(player), Some(expires), Some(_nonce), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(SessionError::Invalid);
        };
        let player = PlayerId::parse(player).map_err(|_| SessionError::Invalid)?;
        let expires: i64 = expires.parse().map_err(|_| SessionError::Invalid)?;
        if expires <= now.timestamp() {
            return Err(SessionError::Expired(
                Utc.timestamp_opt(expires, 0).single().unwrap_or(now),
            ));
        }
        Ok((player, RequestKey::new(self.key_for(token).as_bytes())))
    }
}

/// The body of `POST /sessions`; an empty body asks for a generated guest id.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SessionRequest {
    /// The player to open the session for (3 to 50 of `[A-Za-z0-9_]`); a `guest_...` id is
    /// generated without it.
    #[serde(default)]
    #[schema(min_length = 3, max_length = 50, pattern = "^[A-Za-z0-9_]+$")]
    pub player_id: Option<String>,
}

#[utoipa::path(post, path = "/sessions", tag = "gateway",
    request_body(content = SessionRequest, description = "may be empty: a guest id is then generated", content_type = "application/json"),
    responses(
        (status = 200, body = IssuedSession, description = "sign events with `key`, send `X-Session: <token>`"),
        (status = 400, body = ErrorEnvelope, description = "invalid_request: a malformed body or playerId"),
        (status = 404, body = ErrorEnvelope, description = "not_found: guest sessions are disabled (GUEST_SESSIONS)"),
        (status = 413, body = ErrorEnvelope, description = "payload_too_large: a body over 4 KiB"),
        (status = 415, body = ErrorEnvelope, description = "unsupported_media_type: a body that is not application/json"),
        (status = 429, body = ErrorEnvelope, description = "rate_limited: too many sessions from this client; see Retry-After"),
        (status = 503, body = ErrorEnvelope, description = "unavailable: the hot state cannot answer; retry"),
    ))]
pub async fn post_session(
    State(s): State<Arc<GatewayState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<IssuedSession>, ApiError> {
    let ip = s.checks.ip_limiter().client_ip(peer.ip(), &headers);
    let Some(sessions) = &s.checks.verifier().sessions else {
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
    let body = read_body(&headers, body, MAX_SESSION_REQUEST_BYTES).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_open_to_their_player_and_key() {
        let s = Sessions::new(b"0123456789abcdef0123456789abcdef");
        let now = Utc::now();
        let issued = s.issue(&PlayerId::parse("guest_abc").unwrap(), now);
        let (player, key) = s.open(&issued.token, now).unwrap();
        assert_eq!(player.as_str(), "guest_abc");
        let sig = sign_request(issued.key.as_bytes(), b"{}", None);
        assert!(key.verify(b"{}", None, &sig));
    }

    #[test]
    fn forged_edited_and_expired_tokens_are_refused() {
        let s = Sessions::new(b"0123456789abcdef0123456789abcdef");
        let now = Utc::now();
        let issued = s.issue(&PlayerId::parse("guest_abc").unwrap(), now);
        let edited = issued.token.replacen("guest_abc", "guest_abd", 1);
        assert_eq!(s.open(&edited, now).unwrap_err(), SessionError::Invalid);
        let other = Sessions::new(b"another-secret-another-secret-xx");
        assert_eq!(
            other.open(&issued.token, now).unwrap_err(),
            SessionError::Invalid
        );
        assert_eq!(s.open("garbage", now).unwrap_err(), SessionError::Invalid);
        assert!(matches!(
            s.open(&issued.token, now + Duration::seconds(SESSION_TTL_SECS + 1)),
            Err(SessionError::Expired(_))
        ));
    }
}
