//! What a run measured: [`Stats`], one per worker, merged at the end (latencies, answers by
//! status and error code, transport failures), and the [`Percentiles`] read from it.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Deserialize;

use super::http::TransportError;

/// Latencies are kept in microseconds, from 1 us to 10 minutes, with 3 significant digits.
const HIST_MAX_US: u64 = 600_000_000;

/// What one worker saw. Merged into one at the end of the run.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Request latency in microseconds (from the due time when paced).
    pub latency: Histogram<u64>,
    /// Requests that got an answer or a transport error.
    pub requests: u64,
    /// Events in those requests.
    pub events: u64,
    /// Events by outcome: the request's status for single events, each result's for batches.
    /// A short list searched linearly: a run sees a handful of distinct outcomes.
    pub outcomes: Vec<(u16, Option<String>, u64)>,
    /// Batch requests by HTTP status (empty for single events).
    pub batch_statuses: BTreeMap<u16, u64>,
    /// Requests without an answer, by kind.
    pub transport: BTreeMap<TransportError, u64>,
    /// Events in requests that failed in transport.
    pub transport_events: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            // Bounds are constants that hdrhistogram accepts.
            latency: Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("valid histogram bounds"),
            requests: 0,
            events: 0,
            outcomes: Vec::new(),
            batch_statuses: BTreeMap::new(),
            transport: BTreeMap::new(),
            transport_events: 0,
        }
    }
}

#[derive(Deserialize)]
struct ErrorBody<'a> {
    #[serde(borrow)]
    error: Option<ErrorInner<'a>>,
}

#[derive(Deserialize)]
struct ErrorInner<'a> {
    #[serde(borrow)]
    code: Option<std::borrow::Cow<'a, str>>,
}

#[derive(Deserialize)]
struct BatchBody<'a> {
    #[serde(borrow)]
    results: Vec<BatchResult<'a>>,
}

#[derive(Deserialize)]
struct BatchResult<'a> {
    status: u16,
    #[serde(borrow)]
    error: Option<ErrorInner<'a>>,
}

/// The `error.code` of an error answer, if it has one.
pub fn error_code(body: &[u8]) -> Option<String> {
    let parsed = serde_json::from_slice::<ErrorBody<'_>>(body).ok()?;
    Some(parsed.error?.code?.into_owned())
}

impl Stats {
    pub fn record_latency(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.latency.saturating_record(us);
    }

    fn count(&mut self, status: u16, code: Option<&str>, n: u64) {
        if let Some(entry) = self
            .outcomes
            .iter_mut()
            .find(|(s, c, _)| *s == status && c.as_deref() == code)
        {
            entry.2 += n;
        } else {
            self.outcomes.push((status, code.map(str::to_string), n));
        }
    }

    /// Records an answer to a request carrying `events` events. Success bodies of single events
    /// are not parsed (that is the hot path); error bodies are, for their `error.code`; batch
    /// answers are, for each event's own status.
    pub fn record_answer(&mut self, batch: bool, events: u32, status: u16, body: &[u8]) {
        self.requests += 1;
        self.events += u64::from(events);
        if batch {
            *self.batch_statuses.entry(status).or_default() += 1;
            if status == 200 {
                if let Ok(parsed) = serde_json::from_slice::<BatchBody<'_>>(body) {
                    let mut seen = 0u64;
                    for r in &parsed.results {
                        let code = r.error.as_ref().and_then(|e| e.code.as_deref());
                        self.count(r.status, code, 1);
                        seen += 1;
                    }
                    if seen < u64::from(events) {
                        self.count(200, Some("missing_result"), u64::from(events) - seen);
                    }
                    return;
                }
                self.count(200, Some("unreadable_batch_answer"), u64::from(events));
                return;
            }
        }
        if (200..300).contains(&status) {
            self.count(status, None, u64::from(events));
        } else {
            let parsed = serde_json::from_slice::<ErrorBody<'_>>(body).ok();
            let code = parsed
                .as_ref()
                .and_then(|b| b.error.as_ref())
                .and_then(|e| e.code.as_deref());
            self.count(status, code, u64::from(events));
        }
    }

    pub fn record_transport(&mut self, kind: TransportError, events: u32) {
        self.requests += 1;
        self.events += u64::from(events);
        self.transport_events += u64::from(events);
        *self.transport.entry(kind).or_default() += 1;
    }

    pub fn merge(&mut self, other: &Stats) {
        // Both histograms share bounds, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
        self.requests += other.requests;
        self.events += other.events;
        for (s, c, n) in &other.outcomes {
            self.count(*s, c.as_deref(), *n);
        }
        for (s, n) in &other.batch_statuses {
            *self.batch_statuses.entry(*s).or_default() += n;
        }
        for (k, n) in &other.transport {
            *self.transport.entry(*k).or_default() += n;
        }
        self.transport_events += other.transport_events;
    }

    /// Events answered 2xx.
    pub fn ok_events(&self) -> u64 {
        self.outcomes
            .iter()
            .filter(|(s, c, _)| (200..300).contains(s) && c.is_none())
            .map(|(_, _, n)| n)
            .sum()
    }

    pub fn events_with(&self, status: u16, code: &str) -> u64 {
        self.outcomes
            .iter()
            .filter(|(s, c, _)| *s == status && c.as_deref() == Some(code))
            .map(|(_, _, n)| n)
            .sum()
    }

    pub fn events_with_status(&self, status: u16) -> u64 {
        self.outcomes
            .iter()
            .filter(|(s, _, _)| *s == status)
            .map(|(_, _, n)| n)
            .sum()
    }

    /// Outcomes, most frequent first.
    pub fn sorted_outcomes(&self) -> Vec<(u16, Option<&str>, u64)> {
        let mut v: Vec<_> = self
            .outcomes
            .iter()
            .map(|(s, c, n)| (*s, c.as_deref(), *n))
            .collect();
        v.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));
        v
    }
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    pub p50: u64,
    pub p90: u64,
    pub p95: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles {
                p50: 0,
                p90: 0,
                p95: 0,
                p99: 0,
                p999: 0,
                max: 0,
                mean: 0.0,
            };
        }
        Percentiles {
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p95: h.value_at_quantile(0.95),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            mean: h.mean(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_uniform_distribution() {
        let mut s = Stats::default();
        for us in 1..=10_000u64 {
            s.record_latency(Duration::from_micros(us));
        }
        let p = Percentiles::of(&s.latency);
        // hdrhistogram keeps 3 significant digits: within 0.1%.
        let close =
            |got: u64, want: u64| (got as f64 - want as f64).abs() <= want as f64 * 0.001 + 1.0;
        assert!(close(p.p50, 5_000), "{p:?}");
        assert!(close(p.p95, 9_500), "{p:?}");
        assert!(close(p.p99, 9_900), "{p:?}");
        assert!(close(p.p999, 9_990), "{p:?}");
        assert!(close(p.max, 10_000), "{p:?}");
        assert!((p.mean - 5_000.5).abs() < 10.0, "{p:?}");
        assert_eq!(Percentiles::of(&Stats::default().latency).max, 0);
    }

    #[test]
    fn merged_stats_add_up() {
        let mut a = Stats::default();
        a.record_latency(Duration::from_micros(100));
        a.record_answer(false, 1, 202, b"{}");
        a.record_answer(
            false,
            1,
            429,
            br#"{"error":{"code":"rate_limited","message":"x"}}"#,
        );
        let mut b = Stats::default();
        b.record_latency(Duration::from_millis(5));
        b.record_answer(false, 1, 429, br#"{"error":{"code":"rate_limited"}}"#);
        b.record_answer(false, 1, 500, b"oops");
        b.record_transport(TransportError::Timeout, 1);
        a.merge(&b);
        assert_eq!(a.requests, 5);
        assert_eq!(a.events, 5);
        assert_eq!(a.ok_events(), 1);
        assert_eq!(a.events_with(429, "rate_limited"), 2);
        assert_eq!(a.sorted_outcomes()[0], (429, Some("rate_limited"), 2));
        assert_eq!(a.transport[&TransportError::Timeout], 1);
        assert_eq!(a.latency.len(), 2);
    }

    #[test]
    fn batch_answers_count_each_event() {
        let mut s = Stats::default();
        s.record_answer(
            true,
            3,
            200,
            br#"{"results":[{"index":0,"status":202,"eventId":"a"},
                {"index":1,"status":429,"error":{"code":"player_flooding","message":"m"}},
                {"index":2,"status":208,"eventId":"c"}]}"#,
        );
        s.record_answer(true, 3, 401, br#"{"error":{"code":"invalid_signature"}}"#);
        assert_eq!(s.events, 6);
        assert_eq!(s.ok_events(), 2);
        assert_eq!(s.events_with(429, "player_flooding"), 1);
        assert_eq!(s.events_with(401, "invalid_signature"), 3);
        assert_eq!(s.batch_statuses[&200], 1);
    }
}
