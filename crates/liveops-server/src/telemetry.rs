//! JSON log lines (`docs/api.md`): `timestamp`, `level`, fields such as `service`,
//! `player_id`, `event_type`, `duration_ms` flattened to the top level, and the request span
//! with its `trace_id` (see `edge`).

use tracing_subscriber::EnvFilter;

/// Installs the process-wide subscriber; later calls are no-ops.
pub fn init(level: &str) {
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
