//! HMAC-SHA256 signatures (`docs/api.md`).
//!
//! Requests: the MAC covers the raw body, or `<body>.<timestamp>` when `X-Timestamp` is sent.
//! Receipts: the MAC covers `receiptId:playerId:item:timestamp`. Comparison is constant-time
//! (`Mac::verify_slice`), so response timing leaks nothing about the expected MAC.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The minimum secret length in production (`.env.example`).
pub const MIN_SECRET_LEN: usize = 32;

fn mac(secret: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    HmacSha256::new_from_slice(secret).expect("hmac accepts any key length")
}

/// The MAC of a request body, optionally bound to a timestamp, as lowercase hex.
pub fn sign_request(secret: &[u8], body: &[u8], timestamp: Option<&str>) -> String {
    let mut m = mac(secret);
    m.update(body);
    if let Some(ts) = timestamp {
        m.update(b".");
        m.update(ts.as_bytes());
    }
    hex::encode(m.finalize().into_bytes())
}

/// Checks an `X-Signature` header value (`<hex>` or `sha256=<hex>`) in constant time.
pub fn verify_request(secret: &[u8], body: &[u8], timestamp: Option<&str>, header: &str) -> bool {
    RequestKey::new(secret).verify(body, timestamp, header)
}

/// A request-signing key with its HMAC state prepared once: hashing the key's inner and outer
/// pads costs as much as a short body, so the gateway keeps one per configured key and clones it.
#[derive(Clone)]
pub struct RequestKey(HmacSha256);

impl std::fmt::Debug for RequestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RequestKey(***)")
    }
}

impl RequestKey {
    pub fn new(secret: &[u8]) -> Self {
        Self(mac(secret))
    }

    /// Checks an `X-Signature` header value (`<hex>` or `sha256=<hex>`) in constant time.
    pub fn verify(&self, body: &[u8], timestamp: Option<&str>, header: &str) -> bool {
        let hex_part = header.trim();
        let hex_part = hex_part.strip_prefix("sha256=").unwrap_or(hex_part);
        let mut given = [0u8; 32];
        if hex::decode_to_slice(hex_part, &mut given).is_err() {
            return false;
        }
        let mut m = self.0.clone();
        m.update(body);
        if let Some(ts) = timestamp {
            m.update(b".");
            m.update(ts.as_bytes());
        }
        m.verify_slice(&given).is_ok()
    }
}

/// A signed reward receipt (`docs/api.md`). `timestamp` is unix seconds at issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    pub receipt_id: String,
    pub player_id: String,
    pub item: String,
    pub sig: String,
    pub timestamp: i64,
}

/// How long a receipt stays valid.
pub const RECEIPT_VALIDITY_SECS: i64 = 24 * 3600;

fn receipt_message(receipt_id: &str, player_id: &str, item: &str, timestamp: i64) -> String {
    format!("{receipt_id}:{player_id}:{item}:{timestamp}")
}

impl Receipt {
    pub fn issue(
        secret: &[u8],
        receipt_id: String,
        player_id: String,
        item: String,
        timestamp: i64,
    ) -> Self {
        let msg = receipt_message(&receipt_id, &player_id, &item, timestamp);
        let sig = sign_request(secret, msg.as_bytes(), None);
        Receipt {
            receipt_id,
            player_id,
            item,
            sig,
            timestamp,
        }
    }

    /// `(valid, expired)`: valid when the signature matches; expired when older than 24 h at `now`.
    pub fn verify(&self, secret: &[u8], now_secs: i64) -> (bool, bool) {
        let msg = receipt_message(
            &self.receipt_id,
            &self.player_id,
            &self.item,
            self.timestamp,
        );
        let valid = verify_request(secret, msg.as_bytes(), None, &self.sig);
        // Saturating: a client-supplied timestamp can be any i64.
        let expired = now_secs.saturating_sub(self.timestamp) > RECEIPT_VALIDITY_SECS;
        (valid, expired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_both_header_forms() {
        let s = b"0123456789abcdef0123456789abcdef";
        let sig = sign_request(s, b"{}", None);
        assert!(verify_request(s, b"{}", None, &sig));
        assert!(verify_request(s, b"{}", None, &format!("sha256={sig}")));
        assert!(!verify_request(s, b"{ }", None, &sig));
        assert!(!verify_request(s, b"{}", None, "zz"));
        let tsig = sign_request(s, b"{}", Some("100"));
        assert!(verify_request(s, b"{}", Some("100"), &tsig));
        assert!(!verify_request(s, b"{}", Some("101"), &tsig));
        assert!(!verify_request(s, b"{}", None, &tsig));
    }

    #[test]
    fn receipts_verify_and_expire() {
        let s = b"secret-secret-secret-secret-secret";
        let r = Receipt::issue(s, "r1".into(), "p_1".into(), "gold_100".into(), 1000);
        assert_eq!(r.verify(s, 1000), (true, false));
        assert_eq!(r.verify(s, 1000 + RECEIPT_VALIDITY_SECS + 1), (true, true));
        let mut forged = r.clone();
        forged.item = "chest_rare".into();
        assert!(!forged.verify(s, 1000).0);
        let mut extreme = r.clone();
        extreme.timestamp = i64::MIN;
        assert_eq!(extreme.verify(s, 1000), (false, true));
    }
}
