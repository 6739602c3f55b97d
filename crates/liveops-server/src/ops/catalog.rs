//! The metrics the server exports (`docs/api.md`), in one place: each name, what it measures
//! (its `# HELP` text), its kind, its labels and the label values known in advance.
//!
//! [`register`] describes every metric and creates a zero-valued series for each known label
//! set, so that a fresh server's `/metrics` lists every metric from the first scrape: a
//! dashboard or an alert on `rate(dropped_events_total[5m])` works before the first refusal,
//! and a metric missing from a scrape means a broken exporter, not a quiet server. Label values
//! not known in advance (route templates, statuses) appear with the first request that has them.
//!
//! The roles record with `metrics::counter!` and its siblings under these names; a unit test
//! reads the crate's source and fails when a metric is recorded that this catalog does not list.

use liveops_domain::fairness::Rule;
use metrics::Unit;

use crate::config::Role;
use crate::error::ErrorCode;

pub const HTTP_REQUESTS_TOTAL: &str = "http_requests_total";
pub const HTTP_REQUESTS_DURATION_SECONDS: &str = "http_requests_duration_seconds";
pub const EVENTS_ACCEPTED_TOTAL: &str = "events_accepted_total";
pub const EVENTS_PROCESSED_TOTAL: &str = "events_processed_total";
pub const DROPPED_EVENTS_TOTAL: &str = "dropped_events_total";
pub const PIPELINE_LAG_EVENTS: &str = "pipeline_lag_events";
pub const ANOMALY_FLAGS_TOTAL: &str = "anomaly_flags_total";
pub const CHEATING_EVENTS_DETECTED: &str = "cheating_events_detected";
pub const LEADERBOARD_UPDATES_TOTAL: &str = "leaderboard_updates_total";
pub const LEADERBOARD_LATE_EVENTS_TOTAL: &str = "leaderboard_late_events_total";
pub const LEADERBOARD_REBUILDS_TOTAL: &str = "leaderboard_rebuilds_total";
pub const ACTIVE_PLAYERS_GAUGE: &str = "active_players_gauge";
pub const DATABASE_CONNECTIONS_ACTIVE: &str = "database_connections_active";
pub const REDIS_OPERATIONS_TOTAL: &str = "redis_operations_total";
pub const MEMORY_USAGE_BYTES: &str = "memory_usage_bytes";
pub const CPU_USAGE_PERCENT: &str = "cpu_usage_percent";

/// How a metric is exported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One exported metric.
#[derive(Clone, Copy, Debug)]
pub struct Metric {
    pub name: &'static str,
    pub kind: Kind,
    pub unit: Option<Unit>,
    /// The `# HELP` text.
    pub help: &'static str,
    /// The label names, in the order the series carry them.
    pub labels: &'static [&'static str],
}

const fn metric(
    name: &'static str,
    kind: Kind,
    unit: Option<Unit>,
    labels: &'static [&'static str],
    help: &'static str,
) -> Metric {
    Metric {
        name,
        kind,
        unit,
        help,
        labels,
    }
}

/// Every metric the server records itself. The `process_*` metrics come from
/// `metrics-process` (see `ops::process`), which describes its own.
pub const METRICS: &[Metric] = &[
    metric(
        HTTP_REQUESTS_TOTAL,
        Kind::Counter,
        None,
        &["method", "path", "status", "service"],
        "HTTP requests answered, by method, route template, status and the role of the process",
    ),
    metric(
        HTTP_REQUESTS_DURATION_SECONDS,
        Kind::Histogram,
        Some(Unit::Seconds),
        &["method", "path", "status", "service"],
        "Time from a request's arrival to its answer, by method, route template, status and role",
    ),
    metric(
        EVENTS_ACCEPTED_TOTAL,
        Kind::Counter,
        None,
        &[],
        "Events durably appended to the log and answered 202 (repeats answered 208 excluded)",
    ),
    metric(
        EVENTS_PROCESSED_TOTAL,
        Kind::Counter,
        None,
        &["consumer"],
        "Logged events a consumer (fairness, progression, leaderboard) has applied and committed",
    ),
    metric(
        DROPPED_EVENTS_TOTAL,
        Kind::Counter,
        None,
        &["reason"],
        "Signed requests refused, by the error code of the refusal",
    ),
    metric(
        PIPELINE_LAG_EVENTS,
        Kind::Gauge,
        None,
        &["consumer"],
        "Events committed to the log that a consumer running in this process has not applied yet",
    ),
    metric(
        ANOMALY_FLAGS_TOTAL,
        Kind::Counter,
        None,
        &["rule"],
        "Events the fairness guard flagged, by the rule that flagged them",
    ),
    metric(
        CHEATING_EVENTS_DETECTED,
        Kind::Counter,
        None,
        &[],
        "Events the fairness guard flagged, all rules together",
    ),
    metric(
        LEADERBOARD_UPDATES_TOTAL,
        Kind::Counter,
        None,
        &[],
        "Leaderboard score changes applied from the log",
    ),
    metric(
        LEADERBOARD_LATE_EVENTS_TOTAL,
        Kind::Counter,
        None,
        &[],
        "Events that arrived after their leaderboard period had been archived, not counted on it",
    ),
    metric(
        LEADERBOARD_REBUILDS_TOTAL,
        Kind::Counter,
        None,
        &["reason"],
        "Leaderboards rebuilt from the system of record, by cause (wiped: the hot state lost them)",
    ),
    metric(
        ACTIVE_PLAYERS_GAUGE,
        Kind::Gauge,
        None,
        &[],
        "Players with a score on the current period of the first configured leaderboard window",
    ),
    metric(
        DATABASE_CONNECTIONS_ACTIVE,
        Kind::Gauge,
        None,
        &[],
        "Open connections to the system of record",
    ),
    metric(
        REDIS_OPERATIONS_TOTAL,
        Kind::Counter,
        None,
        &[],
        "Commands sent to Redis (stays 0 when the hot state is in memory)",
    ),
    metric(
        MEMORY_USAGE_BYTES,
        Kind::Gauge,
        Some(Unit::Bytes),
        &[],
        "Resident memory of the process in bytes (process_resident_memory_bytes), read when scraped",
    ),
    metric(
        CPU_USAGE_PERCENT,
        Kind::Gauge,
        Some(Unit::Percent),
        &[],
        "CPU time the process used between the last two scrapes, in percent of one core",
    ),
];

/// The consumers that read the log, as their `consumer` label.
pub const CONSUMERS: [&str; 3] = [
    crate::fairness::CONSUMER,
    crate::progression::CONSUMER,
    crate::leaderboard::CONSUMER,
];

/// Why a signed request can be refused: the `reason` label of `dropped_events_total`, the API
/// section 4 error code of the answer. A backend failure (`unavailable`) is not a refusal.
pub const REFUSAL_REASONS: [ErrorCode; 14] = [
    ErrorCode::MissingSignature,
    ErrorCode::InvalidSignature,
    ErrorCode::StaleTimestamp,
    ErrorCode::InvalidJson,
    ErrorCode::InvalidEvent,
    ErrorCode::InvalidRequest,
    ErrorCode::UnsupportedMediaType,
    ErrorCode::PayloadTooLarge,
    ErrorCode::RateLimited,
    ErrorCode::PlayerFlooding,
    ErrorCode::PlayerBlocked,
    ErrorCode::SessionPlayerMismatch,
    ErrorCode::InvalidSession,
    ErrorCode::IdempotencyKeyReuse,
];

/// The fairness rules, as the `rule` label of `anomaly_flags_total`.
pub const RULES: [Rule; 3] = [Rule::HardLimit, Rule::PlayerZ, Rule::PopulationZ];

/// The routes every process serves, whatever its role: their successful `GET` is a known series
/// of the HTTP metrics, labelled with the role as `service`.
pub const OPS_ROUTES: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// The label sets of `name` known before anything happens, in a process running `role`.
/// Every metric without labels has the one empty set. The lag of a consumer exists only where
/// the consumer runs: a zero there would claim a lag that nobody measures.
pub fn known_series(name: &str, role: Role) -> Vec<Vec<(&'static str, String)>> {
    match name {
        HTTP_REQUESTS_TOTAL | HTTP_REQUESTS_DURATION_SECONDS => OPS_ROUTES
            .iter()
            .map(|path| {
                vec![
                    ("method", "GET".to_string()),
                    ("path", path.to_string()),
                    ("status", "200".to_string()),
                    ("service", role.as_str().to_string()),
                ]
            })
            .collect(),
        EVENTS_PROCESSED_TOTAL => one("consumer", CONSUMERS),
        PIPELINE_LAG_EVENTS => one(
            "consumer",
            CONSUMERS
                .into_iter()
                .filter(|c| consumer_role(c).is_some_and(|r| role.runs(r))),
        ),
        DROPPED_EVENTS_TOTAL => one("reason", REFUSAL_REASONS.map(ErrorCode::as_str)),
        ANOMALY_FLAGS_TOTAL => one("rule", RULES.map(Rule::as_str)),
        LEADERBOARD_REBUILDS_TOTAL => one("reason", ["wiped"]),
        _ => vec![vec![]],
    }
}

/// One label set per value of a single label.
fn one(
    label: &'static str,
    values: impl IntoIterator<Item = &'static str>,
) -> Vec<Vec<(&'static str, String)>> {
    values
        .into_iter()
        .map(|v| vec![(label, v.to_string())])
        .collect()
}

fn consumer_role(consumer: &str) -> Option<Role> {
    match consumer {
        crate::fairness::CONSUMER => Some(Role::Fairness),
        crate::progression::CONSUMER => Some(Role::Progression),
        crate::leaderboard::CONSUMER => Some(Role::Leaderboard),
        _ => None,
    }
}

/// Describes every metric and registers its known series at zero (a counter incremented by
/// nothing, a gauge moved by nothing: a value another application in the same process already
/// set stays). Needs the recorder installed first. The edge finds the same series again when a
/// request has their labels (a recorder keeps one series per name and label set).
pub fn register(role: Role) {
    for m in METRICS {
        match (m.kind, m.unit) {
            (Kind::Counter, Some(u)) => metrics::describe_counter!(m.name, u, m.help),
            (Kind::Counter, None) => metrics::describe_counter!(m.name, m.help),
            (Kind::Gauge, Some(u)) => metrics::describe_gauge!(m.name, u, m.help),
            (Kind::Gauge, None) => metrics::describe_gauge!(m.name, m.help),
            (Kind::Histogram, Some(u)) => metrics::describe_histogram!(m.name, u, m.help),
            (Kind::Histogram, None) => metrics::describe_histogram!(m.name, m.help),
        }
        for labels in known_series(m.name, role) {
            match m.kind {
                Kind::Counter => metrics::counter!(m.name, &labels).increment(0),
                Kind::Gauge => metrics::gauge!(m.name, &labels).increment(0.0),
                Kind::Histogram => {
                    let _ = metrics::histogram!(m.name, &labels);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `metrics::counter!("name"` (and gauge, histogram) in the crate's source names a
    /// metric of the catalog, so that none is exported without help text or known series.
    #[test]
    fn every_metric_the_code_records_is_in_the_catalog() {
        let roots = [
            concat!(env!("CARGO_MANIFEST_DIR"), "/src"),
            concat!(env!("CARGO_MANIFEST_DIR"), "/../liveops-hotstate/src"),
            concat!(env!("CARGO_MANIFEST_DIR"), "/../liveops-store/src"),
            concat!(env!("CARGO_MANIFEST_DIR"), "/../liveops-bus/src"),
        ];
        let mut found = Vec::new();
        let mut dirs: Vec<std::path::PathBuf> = roots.iter().map(Into::into).collect();
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("source dir") {
                let path = entry.expect("dir entry").path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs")
                    && !path.ends_with("ops/catalog.rs")
                {
                    let text = std::fs::read_to_string(&path).expect("source file");
                    for kind in ["counter!(", "gauge!(", "histogram!("] {
                        for (at, _) in text.match_indices(kind) {
                            let rest = text[at + kind.len()..].trim_start();
                            if let Some(quoted) = rest.strip_prefix('"') {
                                let name = quoted.split('"').next().unwrap_or_default();
                                found.push((name.to_string(), path.display().to_string()));
                            }
                        }
                    }
                }
            }
        }
        assert!(
            found.iter().any(|(n, _)| n == DROPPED_EVENTS_TOTAL),
            "the scan finds the roles' metrics: {found:?}"
        );
        for (name, file) in found {
            assert!(
                METRICS.iter().any(|m| m.name == name),
                "{file} records {name}, which ops::catalog does not list"
            );
        }
    }

    /// What a fresh process's first scrape shows: each metric with its help text, and each
    /// known series at zero.
    #[test]
    fn registering_exports_every_metric_with_help_and_zeroed_known_series() {
        let recorder = crate::ops::exporter::builder().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || register(Role::All));
        let text = handle.render();
        for m in METRICS {
            assert!(
                text.contains(&format!("# HELP {} {}", m.name, m.help)),
                "no help for {}:\n{text}",
                m.name
            );
            for labels in known_series(m.name, Role::All) {
                let labels: Vec<String> =
                    labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
                let series = if m.kind == Kind::Histogram {
                    let mut with_le = labels.clone();
                    with_le.push("le=\"+Inf\"".into());
                    format!("{}_bucket{{{}}} 0", m.name, with_le.join(","))
                } else if labels.is_empty() {
                    format!("{} 0", m.name)
                } else {
                    format!("{}{{{}}} 0", m.name, labels.join(","))
                };
                assert!(
                    text.lines().any(|l| l == series),
                    "no zero series {series}:\n{text}"
                );
            }
        }
    }

    #[test]
    fn every_metric_has_help_and_known_series() {
        let mut names: Vec<&str> = METRICS.iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), METRICS.len(), "a name is listed twice");
        for m in METRICS {
            assert!(!m.help.is_empty(), "{}", m.name);
            for labels in known_series(m.name, Role::All) {
                let names: Vec<&str> = labels.iter().map(|(k, _)| *k).collect();
                assert!(
                    names.is_empty() || names == m.labels,
                    "{}: {names:?}",
                    m.name
                );
            }
        }
        // A process running only the gateway measures no consumer's lag.
        assert!(known_series(PIPELINE_LAG_EVENTS, Role::Gateway).is_empty());
        assert_eq!(known_series(PIPELINE_LAG_EVENTS, Role::All).len(), 3);
    }
}
