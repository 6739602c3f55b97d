//! Request signatures (`docs/api.md`): `X-Signature` over the raw body (or `<body>.<ts>` with
//! `X-Timestamp`), `X-Key-Id` for rotated keys, the replay window `SIGNATURE_TOLERANCE`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use liveops_domain::{signing, Clock, PlayerId};

use crate::config::{Config, Secret};
use crate::error::{ApiError, ErrorCode};

pub struct Verifier {
    default_key: Secret,
    /// The default key's prepared HMAC state; see [`signing::RequestKey`].
    default_mac: signing::RequestKey,
    keys: HashMap<String, signing::RequestKey>,
    tolerance: Duration,
    require_timestamp: bool,
    /// `None` when guest sessions are off (`GUEST_SESSIONS`).
    pub sessions: Option<super::sessions::Sessions>,
    clock: Arc<dyn Clock>,
}

impl Verifier {
    pub fn new(cfg: &Config, clock: Arc<dyn Clock>) -> Self {
        Self {
            default_key: cfg.hmac_secret.clone(),
            default_mac: signing::RequestKey::new(cfg.hmac_secret.expose()),
            keys: cfg
                .hmac_keys
                .iter()
                .map(|(id, s)| (id.clone(), signing::RequestKey::new(s.expose())))
                .collect(),
            tolerance: cfg.signature_tolerance,
            require_timestamp: cfg.require_timestamp,
            sessions: cfg
                .guest_sessions
                .then(|| super::sessions::Sessions::new(cfg.hmac_secret.expose())),
            clock,
        }
    }

    /// The default secret, also used to sign receipts.
    pub fn default_key(&self) -> &[u8] {
        self.default_key.expose()
    }

    /// Checks the signature headers against the raw body. With `X-Session`, the MAC must be
    /// made with that guest session's key, and the session's player is returned: the caller
    /// then refuses events for anyone else.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<Option<PlayerId>, ApiError> {
        let text = |name: &str| -> Result<Option<&str>, ApiError> {
            match headers.get(name) {
                None => Ok(None),
                Some(v) => v.to_str().map(|s| Some(s.trim())).map_err(|_| {
                    ApiError::new(
                        ErrorCode::InvalidSignature,
                        format!("{name} is not valid text"),
                    )
                }),
            }
        };
        let Some(signature) = text("x-signature")?.filter(|s| !s.is_empty()) else {
            return Err(ApiError::new(
                ErrorCode::MissingSignature,
                "X-Signature is required: hex HMAC-SHA256 of the raw body (or sha256=<hex>)",
            ));
        };
        let timestamp = text("x-timestamp")?;
        match timestamp {
            None if self.require_timestamp => {
                return Err(ApiError::new(
                    ErrorCode::StaleTimestamp,
                    "X-Timestamp is required (REQUIRE_TIMESTAMP=true); sign <body>.<timestamp>",
                ))
            }
            None => {}
            Some(ts) => {
                let ts: i64 = ts.parse().map_err(|_| {
                    ApiError::new(
                        ErrorCode::StaleTimestamp,
                        "X-Timestamp must be unix seconds",
                    )
                })?;
                let now = self.clock.now().timestamp();
                let skew = now.abs_diff(ts);
                if skew > self.tolerance.as_secs() {
                    let dir = if ts > now { "in the future" } else { "old" };
                    return Err(ApiError::new(
                        ErrorCode::StaleTimestamp,
                        format!(
                            "X-Timestamp is {skew}s {dir}; the tolerance is {}s",
                            self.tolerance.as_secs()
                        ),
                    ));
                }
            }
        }
        let session = match text("x-session")? {
            None | Some("") => None,
            Some(token) => {
                let Some(sessions) = &self.sessions else {
                    return Err(ApiError::new(
                        ErrorCode::InvalidSession,
                        "guest sessions are disabled on this server (GUEST_SESSIONS)",
                    ));
                };
                Some(
                    sessions
                        .open(token, self.clock.now())
                        .map_err(|e| ApiError::new(ErrorCode::InvalidSession, e.to_string()))?,
                )
            }
        };
        if let Some((player, key)) = session {
            return if key.verify(body, timestamp, signature) {
                Ok(Some(player))
            } else {
                Err(ApiError::new(
                    ErrorCode::InvalidSignature,
                    "X-Signature does not match the body for this session's key",
                ))
            };
        }
        let key = match text("x-key-id")? {
            None | Some("") => &self.default_mac,
            Some(id) => self.keys.get(id).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidSignature,
                    format!("unknown X-Key-Id {id:?}"),
                )
            })?,
        };
        if key.verify(body, timestamp, signature) {
            Ok(None)
        } else {
            Err(ApiError::new(
                ErrorCode::InvalidSignature,
                "X-Signature does not match the body",
            ))
        }
    }
}
