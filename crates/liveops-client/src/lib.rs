//! A signing HTTP client for the liveops API (`docs/api.md`), shared by the `liveops`
//! CLI (`send`, `sign`, `loadgen`) and the integration tests.
//!
//! - [`headers`]: the signature headers of a request (`X-Signature`, `X-Timestamp`, `X-Key-Id`)
//!   and [`Signer`], a pre-keyed MAC for hot paths such as the load generator.
//! - [`secret`]: where the CLI finds the HMAC secret (`HMAC_SECRET`, `HMAC_KEYS` + key id, or the
//!   dev secret in `$DATA_DIR/hmac_secret`), and the one reader and writer of that file, which
//!   `liveops serve` uses too.
//! - [`client`]: [`Client`], which signs and sends requests and hands back the raw status and the
//!   parsed JSON body whatever the status, so tests can assert on refusals as easily as on success.
//! - [`cli`]: the flags and helpers the signing commands share ([`cli::KeyArgs`], the default
//!   URL, reading `FILE|-`).

pub mod cli;
pub mod client;
pub mod headers;
pub mod secret;

pub use client::{is_loopback_host, ApiResponse, Client, ClientConfig, ClientError};
pub use headers::{signature_headers, unix_now, Signer};
pub use reqwest::Method;
pub use secret::{
    load_or_create_dev_secret, parse_hmac_keys, read_dev_secret, resolve_secret, ResolvedSecret,
    SecretError, SecretSources,
};
