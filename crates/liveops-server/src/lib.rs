//! The liveops server: the roles and the composition root.
//!
//! - [`config`]: the typed configuration (`.env.example`).
//! - [`app`]: `Application::build(config, clock)`, `port()`, `run_until_stopped(shutdown)`.
//! - [`gateway`]: signed ingest, `POST /events`, `POST /events/batch` (`docs/api.md`).
//! - [`progression`]: progress, rewards, claims, receipts, and the worker applying the log
//!   (`docs/api.md`).
//! - [`leaderboard`]: rankings, history, rollover, the worker applying the log, and the live
//!   SSE stream (`docs/api.md`).
//! - [`fairness`]: the fairness guard: judges the log before the other consumers, flags,
//!   quarantine, blocks, `/fairness/*` (`docs/fairness.md`).
//! - [`pipeline`]: the consumer loop the workers share.
//! - [`admin`]: the admin API under `/admin/*` (blocks, failed events, audit, rebuild).
//! - [`ops`]: health, readiness, metrics, OpenAPI (`docs/api.md`).
//! - [`error`]: the API error type and the API error codes (docs/api.md).
//! - [`extract`]: request extractors shared by the routes: path ids, paging, typed queries.
//! - [`edge`]: the layer every request passes: trace id, HTTP metrics, JSON errors, panics.
//! - [`telemetry`]: JSON logs.
//! - [`web`]: the operator dashboard `/` and the demo game `/play`, embedded static files.
//!
//! A request goes: router (`app`) -> role handler -> store / hot state. Roles never call each
//! other; the workers read the committed log.

pub mod admin;
pub mod app;
pub mod backends;
pub mod config;
pub mod edge;
pub mod error;
pub mod extract;
pub mod fairness;
pub mod gateway;
pub mod leader;
pub mod leaderboard;
pub mod ops;
pub mod pipeline;
pub mod progression;
pub mod telemetry;
pub mod web;

pub use app::{Application, Services};
pub use config::{Config, Settings};
