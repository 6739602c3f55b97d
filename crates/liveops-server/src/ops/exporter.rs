//! The Prometheus exporter: one process-wide recorder, the catalog's metrics described and
//! registered at zero when it is installed, and the process metrics read at each scrape.
//!
//! The process metrics are those of the Prometheus client libraries (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, `process_open_fds`, ...), from `metrics-process`; from the
//! same reading come `memory_usage_bytes` (the resident memory) and `cpu_usage_percent` (CPU
//! time between two scrapes over the wall time between them, so 100 is one busy core). Reading
//! them when scraped keeps them current for whoever looks without a timer of their own.

use std::sync::OnceLock;
use std::time::Instant;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use parking_lot::Mutex;

use super::catalog;
use crate::config::Role;

/// The buckets of `http_requests_duration_seconds`: from half a millisecond (a cached read)
/// to 2.5 s (past any client's patience).
const HTTP_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Installs the process-wide recorder (once: `metrics` has one global recorder, so every
/// application in the process, several in the test binary, shares it), then describes every
/// metric and registers the known series of `role`.
pub fn install(role: Role) -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    let handle = HANDLE
        .get_or_init(|| {
            let handle = match builder().install_recorder() {
                Ok(h) => h,
                // Another recorder is installed (an embedding program): render ours unregistered.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            };
            process().collector.describe();
            handle
        })
        .clone();
    catalog::register(role);
    process().refresh();
    handle
}

/// The recorder's settings: the HTTP histogram's buckets.
pub(crate) fn builder() -> PrometheusBuilder {
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(catalog::HTTP_REQUESTS_DURATION_SECONDS.into()),
            &HTTP_BUCKETS,
        )
        // Cannot fail: the bucket list is not empty.
        .unwrap_or_else(|_| PrometheusBuilder::new())
}

/// The text of a scrape, with the process metrics read just before.
pub fn render(handle: &PrometheusHandle) -> String {
    process().refresh();
    handle.render()
}

struct ProcessMetrics {
    collector: metrics_process::Collector,
    /// The CPU seconds and the instant of the last reading, for `cpu_usage_percent`.
    last: Mutex<Option<(f64, Instant)>>,
}

fn process() -> &'static ProcessMetrics {
    static PROCESS: OnceLock<ProcessMetrics> = OnceLock::new();
    PROCESS.get_or_init(|| ProcessMetrics {
        collector: metrics_process::Collector::default(),
        last: Mutex::new(None),
    })
}

impl ProcessMetrics {
    fn refresh(&self) {
        self.collector.collect();
        let reading = metrics_process::collector::collect();
        if let Some(rss) = reading.resident_memory_bytes {
            metrics::gauge!(catalog::MEMORY_USAGE_BYTES).set(rss as f64);
        }
        let Some(cpu) = reading.cpu_seconds_total else {
            return;
        };
        let now = Instant::now();
        let mut last = self.last.lock();
        let percent = match *last {
            Some((cpu_before, at)) => {
                let wall = now.duration_since(at).as_secs_f64();
                // Two scrapes in the same instant say nothing new: keep the last figure.
                (wall > 0.001).then(|| cpu_usage_percent(cpu - cpu_before, wall))
            }
            // The first reading: the average since the process started.
            None => reading
                .start_time_seconds
                .and_then(|start| {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .ok()?
                        .as_secs_f64();
                    Some(now - start as f64)
                })
                .filter(|up| *up >= 1.0)
                .map(|up| cpu_usage_percent(cpu, up)),
        };
        if let Some(p) = percent {
            metrics::gauge!(catalog::CPU_USAGE_PERCENT).set(p);
        }
        if percent.is_some() || last.is_none() {
            *last = Some((cpu, now));
        }
    }
}

/// CPU seconds used over wall seconds, in percent of one core (never negative).
fn cpu_usage_percent(cpu_secs: f64, wall_secs: f64) -> f64 {
    (cpu_secs.max(0.0) / wall_secs * 100.0).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_usage_is_cpu_time_over_wall_time_in_percent_of_a_core() {
        assert_eq!(cpu_usage_percent(0.5, 1.0), 50.0);
        assert_eq!(cpu_usage_percent(3.0, 2.0), 150.0);
        assert_eq!(cpu_usage_percent(-1.0, 2.0), 0.0);
    }

    #[test]
    fn the_process_is_read_on_this_platform() {
        let m = metrics_process::collector::collect();
        assert!(m.resident_memory_bytes.is_some_and(|b| b > 0));
        assert!(m.cpu_seconds_total.is_some());
    }
}
