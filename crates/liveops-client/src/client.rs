//! [`Client`]: signs and sends liveops API requests (`docs/api.md`).
//!
//! Every method returns the status and body whatever the status ([`ApiResponse`]); only transport
//! failures (connection refused, timeout) are errors. This keeps refusals (401, 409, 429...) as easy
//! to assert on as successes, and lets the CLI print whatever the server said.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};

use crate::headers::{signature_headers, unix_now};

/// How long one request may take before it fails with [`ClientError::Transport`].
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What a [`Client`] needs. `Debug` never prints the secret.
#[derive(Clone)]
pub struct ClientConfig {
    /// `http://host:port`, optionally with a path prefix; no trailing slash needed.
    pub base_url: String,
    pub secret: Vec<u8>,
    /// Sent as `X-Key-Id` to pick a rotated key from the server's `HMAC_KEYS`.
    pub key_id: Option<String>,
    /// Send `X-Timestamp` (now) and bind the MAC to it (the replay guard).
    pub with_timestamp: bool,
}

impl ClientConfig {
    pub fn new(base_url: impl Into<String>, secret: impl Into<Vec<u8>>) -> Self {
        ClientConfig {
            base_url: base_url.into(),
            secret: secret.into(),
            key_id: None,
            with_timestamp: false,
        }
    }
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("base_url", &self.base_url)
            .field("secret", &"<redacted>")
            .field("key_id", &self.key_id)
            .field("with_timestamp", &self.with_timestamp)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid base url {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("{method} {url} failed: {source}")]
    Transport {
        method: Method,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("could not encode the request body: {0}")]
    Encode(#[from] serde_json::Error),
}

/// A server answer: the status, the headers, the body as text and parsed.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub status: u16,
    pub headers: HeaderMap,
    /// The parsed JSON body; `Null` for an empty body, `Value::String(text)` for a body that is
    /// not JSON.
    pub body: Value,
    /// The body as received.
    pub text: String,
}

impl ApiResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// A header's value, when present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `error.code` of an error body (`docs/api.md`).
    pub fn error_code(&self) -> Option<&str> {
        self.body.pointer("/error/code").and_then(Value::as_str)
    }

    /// `"202 Accepted"`.
    pub fn status_line(&self) -> String {
        let reason = reqwest::StatusCode::from_u16(self.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        format!("{} {reason}", self.status).trim_end().to_string()
    }
}

/// A signing client for one server. Cheap to clone (the connection pool is shared).
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    cfg: ClientConfig,
}

impl Client {
    pub fn new(cfg: ClientConfig) -> Result<Self, ClientError> {
        let base = cfg.base_url.trim_end_matches('/').to_string();
        let url = reqwest::Url::parse(&base).map_err(|e| ClientError::InvalidUrl {
            url: cfg.base_url.clone(),
            reason: e.to_string(),
        })?;
        if url.scheme() != "http" {
            return Err(ClientError::InvalidUrl {
                url: cfg.base_url.clone(),
                reason: "only http:// is supported (this build has no TLS)".into(),
            });
        }
        let mut builder = reqwest::Client::builder().timeout(REQUEST_TIMEOUT);
        // A proxy from the environment must not intercept loopback tests.
        if is_loopback_host(url.host_str().unwrap_or_default()) {
            builder = builder.no_proxy();
        }
        let http = builder.build().map_err(|e| ClientError::InvalidUrl {
            url: cfg.base_url.clone(),
            reason: e.to_string(),
        })?;
        Ok(Client { http, base, cfg })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.cfg
    }

    /// The absolute URL of `path_and_query` (which starts with `/`).
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{}", self.base, path_and_query)
    }

    /// The signature headers this client would send for `body` now.
    pub fn sign(&self, body: &[u8]) -> Vec<(String, String)> {
        let ts = self.cfg.with_timestamp.then(unix_now);
        signature_headers(&self.cfg.secret, body, self.cfg.key_id.as_deref(), ts)
    }

    /// `POST /events` with a raw body, signed as is.
    pub async fn post_event(&self, body: &[u8]) -> Result<ApiResponse, ClientError> {
        self.post_signed("/events", body.to_vec(), &[]).await
    }

    /// `POST /events` with a JSON event.
    pub async fn post_event_json(&self, event: &Value) -> Result<ApiResponse, ClientError> {
        let body = serde_json::to_vec(event)?;
        self.post_signed("/events", body, &[]).await
    }

    /// `POST /events/batch` with `{"events": [...]}`.
    pub async fn post_batch(&self, events: &[Value]) -> Result<ApiResponse, ClientError> {
        let body = serde_json::to_vec(&json!({ "events": events }))?;
        self.post_signed("/events/batch", body, &[]).await
    }

    /// `POST /events/batch` with a raw body, signed as is.
    pub async fn post_batch_body(&self, body: &[u8]) -> Result<ApiResponse, ClientError> {
        self.post_signed("/events/batch", body.to_vec(), &[]).await
    }

    /// A signed JSON `POST` to any path, with extra headers (e.g. `Idempotency-Key`).
    pub async fn post_signed(
        &self,
        path: &str,
        body: impl Into<Vec<u8>>,
        extra_headers: &[(&str, &str)],
    ) -> Result<ApiResponse, ClientError> {
        let body = body.into();
        let mut headers: Vec<(String, String)> =
            vec![("Content-Type".into(), "application/json".into())];
        headers.extend(self.sign(&body));
        headers.extend(
            extra_headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        self.send(Method::POST, path, Some(body), &headers).await
    }

    /// An unsigned `POST` with exactly the given headers (no Content-Type added), for tests of
    /// refusals: missing signature, stale timestamp, wrong content type.
    pub async fn post_raw(
        &self,
        path: &str,
        body: impl Into<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Result<ApiResponse, ClientError> {
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.send(Method::POST, path, Some(body.into()), &headers)
            .await
    }

    /// `POST /rewards/claim` `{"playerId", "rewardId"}`, signed like events (`docs/api.md`).
    pub async fn claim_reward(
        &self,
        player_id: &str,
        reward_id: &str,
    ) -> Result<ApiResponse, ClientError> {
        let body = serde_json::to_vec(&json!({ "playerId": player_id, "rewardId": reward_id }))?;
        self.post_signed("/rewards/claim", body, &[]).await
    }

    /// `POST /receipts/verify` with a receipt (as returned by a claim). Signed too: a server
    /// that does not check signatures on this route ignores the headers.
    pub async fn verify_receipt(&self, receipt: &Value) -> Result<ApiResponse, ClientError> {
        let body = serde_json::to_vec(receipt)?;
        self.post_signed("/receipts/verify", body, &[]).await
    }

    /// `GET` a path with its query string, e.g. `/leaderboard?window=daily`.
    pub async fn get(&self, path_and_query: &str) -> Result<ApiResponse, ClientError> {
        self.send(Method::GET, path_and_query, None, &[]).await
    }

    /// `GET` with headers, e.g. `Authorization: Bearer ...` for `/admin/*`.
    pub async fn get_with(
        &self,
        path_and_query: &str,
        headers: &[(&str, &str)],
    ) -> Result<ApiResponse, ClientError> {
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.send(Method::GET, path_and_query, None, &headers).await
    }

    /// Any request, unsigned, with exactly the given headers. The other methods are built on it.
    pub async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
        headers: &[(String, String)],
    ) -> Result<ApiResponse, ClientError> {
        let url = self.url(path_and_query);
        let mut req = self.http.request(method.clone(), &url);
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        if let Some(body) = body {
            req = req.body(body);
        }
        let transport = |source| ClientError::Transport {
            method: method.clone(),
            url: url.clone(),
            source,
        };
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.map_err(transport)?;
        Ok(ApiResponse {
            status,
            body: parse_body(&text),
            headers,
            text,
        })
    }
}

fn parse_body(text: &str) -> Value {
    if text.trim().is_empty() {
        return Value::Null;
    }
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

/// `127.0.0.1`, `::1` (bracketed or not), `localhost` and the rest of 127/8.
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    if h.eq_ignore_ascii_case("localhost") {
        return true;
    }
    h.parse::<std::net::IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for h in ["127.0.0.1", "localhost", "::1", "[::1]", "127.1.2.3"] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in ["10.0.0.1", "example.com", "0.0.0.0", ""] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }

    #[test]
    fn base_url_must_be_http() {
        let err = Client::new(ClientConfig::new("https://x", b"s".to_vec())).unwrap_err();
        assert!(err.to_string().contains("only http://"), "{err}");
        assert!(Client::new(ClientConfig::new("not a url", b"s".to_vec())).is_err());
        let c = Client::new(ClientConfig::new("http://127.0.0.1:1/", b"s".to_vec())).unwrap();
        assert_eq!(c.url("/events"), "http://127.0.0.1:1/events");
    }

    #[test]
    fn config_debug_redacts_the_secret() {
        let cfg = ClientConfig::new("http://127.0.0.1:1", b"topsecret".to_vec());
        assert!(!format!("{cfg:?}").contains("topsecret"));
    }

    #[test]
    fn bodies_parse_leniently() {
        assert_eq!(parse_body(""), Value::Null);
        assert_eq!(parse_body("{\"a\":1}"), json!({"a": 1}));
        assert_eq!(parse_body("oops"), json!("oops"));
    }

    #[tokio::test]
    async fn connection_refused_is_a_transport_error() {
        // Port 1 on loopback is closed on any sane test machine.
        let c = Client::new(ClientConfig::new("http://127.0.0.1:1", b"s".to_vec())).unwrap();
        let err = c.post_event(b"{}").await.unwrap_err();
        assert!(matches!(err, ClientError::Transport { .. }), "{err}");
    }
}
