//! Guest sessions for browsers (SPEC section 8): `POST /sessions` gives a player id, a token
//! and a per-session signing key. The browser signs its events with the key and sends
//! `X-Session: <token>`; such events may only be for the session's own player.
//!
//! Stateless on purpose: the token carries the player, the expiry and a nonce, MACed with the
//! server secret, and the key is derived from the token (`HMAC(secret, "session-key:" + token)`),
//! so any gateway process can check a session without shared state and a restart loses none.
//! A forged or edited token fails the MAC; an expired one is refused.

use chrono::{DateTime, Duration, TimeZone, Utc};
use liveops_domain::signing::{sign_request, RequestKey};
use liveops_domain::PlayerId;
use serde::Serialize;

/// How long a guest session lasts.
pub const SESSION_TTL_SECS: i64 = 3600;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IssuedSession {
    pub player_id: String,
    pub token: String,
    /// The hex text whose bytes are the HMAC key for this session's requests.
    pub key: String,
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
