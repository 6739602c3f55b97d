//! Signature headers (`docs/api.md`).
//!
//! `X-Signature: sha256=<hex>` is the HMAC-SHA256 of the raw body, or of `<body>.<timestamp>`
//! when `X-Timestamp` is sent; `X-Key-Id` names a rotated key from `HMAC_KEYS`. The MAC itself
//! is `liveops_domain::signing`; [`Signer`] computes the same MAC without per-request key setup or
//! allocation, for the load generator (a unit test pins the two together).

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const SIGNATURE_HEADER: &str = "X-Signature";
pub const TIMESTAMP_HEADER: &str = "X-Timestamp";
pub const KEY_ID_HEADER: &str = "X-Key-Id";

/// The headers that authenticate `body`: `X-Signature` always, `X-Timestamp` when a timestamp is
/// given (the MAC then covers `<body>.<timestamp>`), `X-Key-Id` when a key id is given.
/// Content-Type is not included: it is not part of the signature.
pub fn signature_headers(
    secret: &[u8],
    body: &[u8],
    key_id: Option<&str>,
    timestamp: Option<i64>,
) -> Vec<(String, String)> {
    let ts = timestamp.map(|t| t.to_string());
    let sig = liveops_domain::signing::sign_request(secret, body, ts.as_deref());
    let mut headers = vec![(SIGNATURE_HEADER.to_string(), format!("sha256={sig}"))];
    if let Some(ts) = ts {
        headers.push((TIMESTAMP_HEADER.to_string(), ts));
    }
    if let Some(id) = key_id {
        headers.push((KEY_ID_HEADER.to_string(), id.to_string()));
    }
    headers
}

/// The current time in unix seconds, as sent in `X-Timestamp`.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// An HMAC-SHA256 keyed once and cloned per message: the key schedule (two compression rounds)
/// is paid once, and the hex lands in a caller's buffer, so signing allocates nothing.
#[derive(Clone)]
pub struct Signer {
    keyed: Hmac<Sha256>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    pub fn new(secret: &[u8]) -> Self {
        Signer {
            // HMAC accepts keys of any length, so this cannot fail.
            keyed: Hmac::<Sha256>::new_from_slice(secret).expect("hmac accepts any key length"),
        }
    }

    /// Writes the lowercase hex MAC of `body` (or `<body>.<timestamp>`) into `out`.
    pub fn sign_into(&self, body: &[u8], timestamp: Option<&[u8]>, out: &mut [u8; 64]) {
        let mut m = self.keyed.clone();
        m.update(body);
        if let Some(ts) = timestamp {
            m.update(b".");
            m.update(ts);
        }
        let mac = m.finalize().into_bytes();
        // Encoding 32 bytes into a 64-byte buffer cannot fail.
        hex::encode_to_slice(mac, out).expect("64 hex digits for 32 bytes");
    }

    /// The lowercase hex MAC as a `String`, for callers off the hot path.
    pub fn sign(&self, body: &[u8], timestamp: Option<&[u8]>) -> String {
        let mut out = [0u8; 64];
        self.sign_into(body, timestamp, &mut out);
        // Hex digits are ASCII.
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use liveops_domain::signing::{sign_request, verify_request};

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn get<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn plain_signature_covers_the_raw_body() {
        let h = signature_headers(SECRET, br#"{"a":1}"#, None, None);
        assert_eq!(h.len(), 1);
        let sig = get(&h, "X-Signature").unwrap();
        assert!(sig.starts_with("sha256="));
        assert_eq!(sig.len(), "sha256=".len() + 64);
        assert!(verify_request(SECRET, br#"{"a":1}"#, None, sig));
        assert!(!verify_request(SECRET, br#"{"a":2}"#, None, sig));
    }

    #[test]
    fn timestamped_signature_covers_body_dot_timestamp() {
        let h = signature_headers(SECRET, b"{}", None, Some(1_700_000_000));
        assert_eq!(get(&h, "X-Timestamp"), Some("1700000000"));
        let sig = get(&h, "X-Signature").unwrap();
        assert!(verify_request(SECRET, b"{}", Some("1700000000"), sig));
        assert!(!verify_request(SECRET, b"{}", None, sig));
        assert!(get(&h, "X-Key-Id").is_none());
    }

    #[test]
    fn key_id_is_sent_when_given() {
        let h = signature_headers(SECRET, b"{}", Some("k2"), None);
        assert_eq!(get(&h, "X-Key-Id"), Some("k2"));
        assert!(get(&h, "X-Timestamp").is_none());
        let names: Vec<&str> = h.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["X-Signature", "X-Key-Id"]);
    }

    #[test]
    fn signer_matches_the_domain_signature() {
        let s = Signer::new(SECRET);
        let body = br#"{"eventId":"e1","type":"progression"}"#;
        assert_eq!(s.sign(body, None), sign_request(SECRET, body, None));
        assert_eq!(
            s.sign(body, Some(b"123")),
            sign_request(SECRET, body, Some("123"))
        );
        // Cloning the keyed state must not leak one message into the next.
        assert_eq!(s.sign(b"x", None), sign_request(SECRET, b"x", None));
    }
}
