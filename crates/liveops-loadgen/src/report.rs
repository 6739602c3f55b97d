//! How a run's figures ([`Stats`]) are shown: the human table, the `--json` object, and hints
//! for the usual misconfigurations.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};

use super::http::TransportError;
use super::options::{Pace, Plan};
use super::probe::ProbeStats;
use super::stats::{Percentiles, Stats};

/// `docs/api.md`: an accepted event shows on the leaderboard within this, at p99 under load.
const VISIBILITY_TARGET: Duration = Duration::from_millis(100);

/// The figures of a finished run.
pub struct Report<'a> {
    pub plan: &'a Plan,
    pub stats: &'a Stats,
    /// From the first due time to the last answer.
    pub elapsed: Duration,
    /// Where the secret came from, for the 401 hint.
    pub secret_source: &'a str,
    /// Whether the run was cut short by Ctrl-C.
    pub interrupted: bool,
    /// Paced `--duration` runs: requests that were due but not sent by the end because every
    /// connection was busy (the server fell behind the target rate).
    pub unsent: u64,
    /// What the visibility probes saw, with `--probe-visibility`.
    pub probe: Option<&'a ProbeStats>,
}

fn per_sec(n: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
}

/// `850us`, `12.34ms`, `1.20s`.
pub fn fmt_us(us: u64) -> String {
    if us < 1_000 {
        format!("{us}us")
    } else if us < 1_000_000 {
        format!("{:.2}ms", us as f64 / 1e3)
    } else {
        format!("{:.2}s", us as f64 / 1e6)
    }
}

/// `47719.4` -> `47,719`.
pub fn fmt_rate(per_sec: f64) -> String {
    fmt_count(per_sec.round() as u64)
}

/// `1234567` -> `1,234,567`.
pub fn fmt_count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    // Digits left before the next comma: the leading group holds 1 to 3 of them.
    let mut left = match digits.len() % 3 {
        0 => 3,
        r => r,
    };
    for c in digits.chars() {
        if left == 0 {
            out.push(',');
            left = 3;
        }
        out.push(c);
        left -= 1;
    }
    out
}

fn status_text(status: u16) -> &'static str {
    match status {
        200 => "ok",
        202 => "accepted",
        208 => "duplicate",
        400 => "bad request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not found",
        409 => "conflict",
        413 => "too large",
        415 => "unsupported media type",
        429 => "too many requests",
        500 => "internal server error",
        503 => "unavailable",
        _ => "",
    }
}

impl Report<'_> {
    fn mode(&self) -> String {
        match self.plan.pace {
            Pace::Rate { .. } => format!(
                "open loop at {} events/s over {} connections",
                fmt_count(self.plan.rate.unwrap_or_default().round() as u64),
                self.plan.concurrency
            ),
            Pace::FlatOut => format!("flat out, {} connections", self.plan.concurrency),
        }
    }

    /// Advice for the usual misconfigurations, judged on event outcomes.
    pub fn hints(&self) -> Vec<String> {
        let s = self.stats;
        let total = s.events.max(1);
        let mut hints = Vec::new();
        let share = |n: u64| n as f64 / total as f64;
        if share(s.events_with(429, "rate_limited")) > 0.5 {
            hints.push(
                "most answers were 429 rate_limited: the server applies its per-IP limit \
                 (RATE_LIMIT_MAX, default 50 per minute); run it with RATE_LIMIT_MAX=0 for load tests"
                    .to_string(),
            );
        }
        if share(s.events_with(429, "player_flooding")) > 0.1 {
            hints.push(format!(
                "many answers were 429 player_flooding: each of the {} players gets about {:.0} events/s, \
                 over the server's FLOOD_MAX_PER_SEC (default 10); raise --players or FLOOD_MAX_PER_SEC",
                self.plan.players,
                per_sec(s.events, self.elapsed) / f64::from(self.plan.players)
            ));
        }
        if share(s.events_with_status(401)) > 0.5 {
            hints.push(format!(
                "most answers were 401: the signing secret (from {}) is not the server's; \
                 set HMAC_SECRET (or --key-id with HMAC_KEYS, or DATA_DIR) to match it",
                self.secret_source
            ));
        }
        if share(s.events_with(403, "player_blocked")) > 0.1 {
            hints.push(
                "many players are blocked (403 player_blocked): fairness blocked them, or an operator did; \
                 wait BLOCK_SEC or unblock them"
                    .to_string(),
            );
        }
        let connect = s
            .transport
            .get(&TransportError::Connect)
            .copied()
            .unwrap_or(0);
        if s.requests > 0 && connect == s.requests {
            hints.push(format!(
                "could not connect to {}: is the server running (liveops serve) on that port?",
                self.plan.addr
            ));
        }
        if let Some(probe) = self.probe {
            hints.extend(probe_hints(probe));
        }
        if let (Pace::Rate { .. }, Some(rate)) = (self.plan.pace, self.plan.rate) {
            let achieved = per_sec(s.events, self.elapsed);
            let behind = achieved < rate * 0.9 || self.unsent * 200 > s.requests;
            if !self.interrupted && behind && s.requests > 10 {
                hints.push(format!(
                    "the target of {} events/s was not reached ({} events/s): the server is saturated \
                     or --concurrency {} is too small for its latency; latencies count from each request's due time",
                    fmt_rate(rate),
                    fmt_rate(achieved),
                    self.plan.concurrency
                ));
            }
        }
        hints
    }

    pub fn human(&self) -> String {
        let s = self.stats;
        let p = Percentiles::of(&s.latency);
        let secs = self.elapsed;
        let mut out = String::new();
        let mut line = |k: &str, v: String| {
            out.push_str(&format!("  {k:<12}{v}\n"));
        };
        let header = format!(
            "liveops loadgen: POST {}{} ({}), {} players{}{}\n",
            self.plan.host,
            self.plan.path,
            self.mode(),
            fmt_count(u64::from(self.plan.players)),
            if self.plan.batch {
                format!(", {} events per request", self.plan.batch_size)
            } else {
                String::new()
            },
            if self.interrupted {
                ", interrupted"
            } else {
                ""
            },
        );
        line(
            "requests",
            format!(
                "{} ({}/s)",
                fmt_count(s.requests),
                fmt_rate(per_sec(s.requests, secs))
            ),
        );
        line(
            "events",
            format!(
                "{} sent, {}/s; {} answered 2xx, {}/s",
                fmt_count(s.events),
                fmt_rate(per_sec(s.events, secs)),
                fmt_count(s.ok_events()),
                fmt_rate(per_sec(s.ok_events(), secs))
            ),
        );
        line("elapsed", format!("{:.2}s", secs.as_secs_f64()));
        if self.unsent > 0 {
            line(
                "backlog",
                format!(
                    "{} requests were due but not sent by the end",
                    fmt_count(self.unsent)
                ),
            );
        }
        line(
            "latency",
            format!(
                "p50 {}  p95 {}  p99 {}  p99.9 {}  max {}  (mean {})",
                fmt_us(p.p50),
                fmt_us(p.p95),
                fmt_us(p.p99),
                fmt_us(p.p999),
                fmt_us(p.max),
                fmt_us(p.mean.round() as u64)
            ),
        );
        if let Some(probe) = self.probe {
            for (i, text) in probe_lines(probe).into_iter().enumerate() {
                line(if i == 0 { "visibility" } else { "" }, text);
            }
        }
        let mut first = true;
        for (status, code, n) in s.sorted_outcomes() {
            let what = code.unwrap_or_else(|| status_text(status));
            line(
                if first { "outcomes" } else { "" },
                format!("{status} {what:<24}{:>12}", fmt_count(n)),
            );
            first = false;
        }
        if self.plan.batch && !s.batch_statuses.is_empty() {
            let v: Vec<String> = s
                .batch_statuses
                .iter()
                .map(|(st, n)| format!("{st}: {}", fmt_count(*n)))
                .collect();
            line("batch HTTP", v.join(", "));
        }
        if !s.transport.is_empty() {
            let v: Vec<String> = s
                .transport
                .iter()
                .map(|(k, n)| format!("{} {}", k.as_str(), fmt_count(*n)))
                .collect();
            line("no answer", v.join(", "));
        }
        let mut text = header + &out;
        for h in self.hints() {
            text.push_str(&format!("hint: {h}\n"));
        }
        text
    }

    pub fn json(&self) -> Value {
        let s = self.stats;
        let p = Percentiles::of(&s.latency);
        let mut statuses = BTreeMap::<String, u64>::new();
        for (st, _, n) in &s.outcomes {
            *statuses.entry(st.to_string()).or_default() += n;
        }
        let errors: Vec<Value> = s
            .sorted_outcomes()
            .into_iter()
            .filter(|(st, code, _)| code.is_some() || !(200..300).contains(st))
            .map(|(st, code, n)| json!({"status": st, "code": code, "count": n}))
            .collect();
        let transport: BTreeMap<&str, u64> =
            s.transport.iter().map(|(k, n)| (k.as_str(), *n)).collect();
        let batch_statuses: BTreeMap<String, u64> = s
            .batch_statuses
            .iter()
            .map(|(k, n)| (k.to_string(), *n))
            .collect();
        json!({
            "url": self.plan.url,
            "path": self.plan.path,
            "mode": match self.plan.pace { Pace::Rate { .. } => "rate", Pace::FlatOut => "flat" },
            "targetRate": self.plan.rate,
            "concurrency": self.plan.concurrency,
            "batch": if self.plan.batch { Some(self.plan.batch_size) } else { None },
            "players": self.plan.players,
            "mix": self.plan.mix.describe(),
            "interrupted": self.interrupted,
            "unsent": self.unsent,
            "requests": s.requests,
            "events": s.events,
            "okEvents": s.ok_events(),
            "elapsedSecs": self.elapsed.as_secs_f64(),
            "requestsPerSec": per_sec(s.requests, self.elapsed),
            "eventsPerSec": per_sec(s.events, self.elapsed),
            "okEventsPerSec": per_sec(s.ok_events(), self.elapsed),
            "latencyUs": {
                "p50": p.p50, "p90": p.p90, "p95": p.p95, "p99": p.p99, "p999": p.p999,
                "max": p.max, "mean": p.mean,
            },
            "statuses": statuses,
            "errors": errors,
            "batchStatuses": batch_statuses,
            "transportErrors": transport,
            "visibilityMs": self.probe.map(probe_json),
            "hints": self.hints(),
        })
    }
}

/// The human lines of the visibility probes: percentiles, then counts, then failures.
fn probe_lines(p: &ProbeStats) -> Vec<String> {
    let mut lines = Vec::new();
    if p.latency.is_empty() {
        lines.push("no probe event was accepted: nothing measured".to_string());
    } else {
        let q = Percentiles::of(&p.latency);
        lines.push(format!(
            "p50 {}  p95 {}  p99 {}  max {}  (202 -> on the daily board)",
            fmt_us(q.p50),
            fmt_us(q.p95),
            fmt_us(q.p99),
            fmt_us(q.max),
        ));
    }
    lines.push(format!(
        "{} probes, one per {}: {} visible, {} timed out after {}{}",
        fmt_count(p.sent),
        fmt_us(duration_us(p.interval)),
        fmt_count(p.visible),
        fmt_count(p.timeouts),
        fmt_us(duration_us(p.timeout)),
        if p.poll_errors > 0 {
            format!(", {} polls retried", fmt_count(p.poll_errors))
        } else {
            String::new()
        },
    ));
    if !p.failed.is_empty() {
        let v: Vec<String> = p
            .failed
            .iter()
            .map(|(why, n)| format!("{why} {}", fmt_count(*n)))
            .collect();
        lines.push(format!("not measured: {}", v.join(", ")));
    }
    lines
}

fn probe_json(p: &ProbeStats) -> Value {
    let q = Percentiles::of(&p.latency);
    let ms = |us: u64| us as f64 / 1e3;
    json!({
        "probes": p.sent,
        "visible": p.visible,
        "timeouts": p.timeouts,
        "failed": p.failed_total(),
        "failures": p.failed,
        "pollErrors": p.poll_errors,
        "intervalMs": p.interval.as_secs_f64() * 1e3,
        "timeoutMs": p.timeout.as_secs_f64() * 1e3,
        "p50": ms(q.p50), "p95": ms(q.p95), "p99": ms(q.p99), "max": ms(q.max),
        "mean": q.mean / 1e3,
    })
}

fn probe_hints(p: &ProbeStats) -> Vec<String> {
    let mut hints = Vec::new();
    let target_us = duration_us(VISIBILITY_TARGET);
    let p99 = Percentiles::of(&p.latency).p99;
    if !p.latency.is_empty() && p99 > target_us {
        hints.push(format!(
            "accepted events took {} at p99 to show on the leaderboard{}, over the {} of `docs/api.md`",
            fmt_us(p99),
            if p.timeouts > 0 {
                format!(" ({} never showed within {})", fmt_count(p.timeouts), fmt_us(duration_us(p.timeout)))
            } else {
                String::new()
            },
            fmt_us(target_us),
        ));
    }
    if p.sent > 0 && p.failed_total() * 2 > p.sent {
        hints.push(
            "most visibility probes could not be measured (see \"not measured\"): their event was refused \
             or the daily leaderboard was not readable"
                .to_string(),
        );
    }
    hints
}

fn duration_us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::{Bound, Mix};
    use crate::probe::ProbeOutcome;

    fn plan(batch: bool) -> Plan {
        Plan {
            url: "http://127.0.0.1:8080".into(),
            addr: "127.0.0.1:8080".parse().unwrap(),
            host: "127.0.0.1:8080".into(),
            prefix: String::new(),
            path: if batch { "/events/batch" } else { "/events" }.into(),
            pace: Pace::FlatOut,
            rate: None,
            concurrency: 8,
            threads: 1,
            bound: Bound::Duration(Duration::from_secs(1)),
            players: 1000,
            batch_size: if batch { 3 } else { 1 },
            batch,
            mix: Mix::parse("progression").unwrap(),
            timestamp: false,
            timeout: Duration::from_secs(1),
            json: false,
            probe: None,
        }
    }

    #[test]
    fn human_report_shows_figures_breakdown_and_hints() {
        let mut s = Stats::default();
        for _ in 0..9 {
            s.record_latency(Duration::from_micros(800));
            s.record_answer(false, 1, 429, br#"{"error":{"code":"rate_limited"}}"#);
        }
        s.record_latency(Duration::from_millis(12));
        s.record_answer(false, 1, 202, b"{}");
        s.record_transport(TransportError::Connect, 1);
        let p = plan(false);
        let r = Report {
            plan: &p,
            stats: &s,
            elapsed: Duration::from_secs(2),
            secret_source: "HMAC_SECRET",
            interrupted: false,
            unsent: 0,
            probe: None,
        };
        let text = r.human();
        assert!(text.contains("requests    11 (6/s)"), "{text}");
        assert!(text.contains("11 sent, 6/s; 1 answered 2xx, 1/s"), "{text}");
        assert!(text.contains("1 answered 2xx"), "{text}");
        assert!(text.contains("429 rate_limited"), "{text}");
        assert!(text.contains("202 accepted"), "{text}");
        assert!(text.contains("max 12.0"), "{text}");
        assert!(text.contains("p50 800us"), "{text}");
        assert!(text.contains("no answer   connect 1"), "{text}");
        assert!(
            text.contains("hint: most answers were 429 rate_limited"),
            "{text}"
        );
        assert!(text.contains("RATE_LIMIT_MAX=0"), "{text}");

        let j = r.json();
        assert_eq!(j["requests"], 11);
        assert_eq!(j["okEvents"], 1);
        assert_eq!(j["statuses"]["429"], 9);
        assert_eq!(j["errors"][0]["code"], "rate_limited");
        assert_eq!(j["transportErrors"]["connect"], 1);
        assert_eq!(j["latencyUs"]["p50"], 800);
        assert_eq!(j["mode"], "flat");
        assert_eq!(j["eventsPerSec"], 5.5);
        assert!(j["visibilityMs"].is_null());
        assert!(!text.contains("visibility"), "{text}");
    }

    fn one_ok_request() -> Stats {
        let mut s = Stats::default();
        s.record_latency(Duration::from_micros(500));
        s.record_answer(false, 1, 202, b"{}");
        s
    }

    fn report<'a>(plan: &'a Plan, stats: &'a Stats, probe: &'a ProbeStats) -> Report<'a> {
        Report {
            plan,
            stats,
            elapsed: Duration::from_secs(10),
            secret_source: "HMAC_SECRET",
            interrupted: false,
            unsent: 0,
            probe: Some(probe),
        }
    }

    #[test]
    fn visibility_figures_are_shown_apart_from_the_load() {
        let mut probe = ProbeStats::new(Duration::from_millis(50), Duration::from_secs(5));
        // 20 us .. 2 ms, where the histogram is exact.
        for i in 1..=100u64 {
            probe.record(ProbeOutcome::Visible {
                after: Duration::from_micros(i * 20),
                poll_errors: 0,
            });
        }
        probe.record(ProbeOutcome::Failed("401 invalid_signature".into()));
        let (p, s) = (plan(false), one_ok_request());
        let r = report(&p, &s, &probe);
        let text = r.human();
        assert!(
            text.contains("  visibility  p50 1.00ms  p95 1.90ms  p99 1.98ms  max 2.00ms"),
            "{text}"
        );
        assert!(
            text.contains("101 probes, one per 50.00ms: 100 visible, 0 timed out after 5.00s\n"),
            "{text}"
        );
        assert!(
            text.contains("not measured: 401 invalid_signature 1"),
            "{text}"
        );
        // Probes are not load: the load's figures stay those of its one request.
        assert!(text.contains("requests    1 ("), "{text}");
        assert!(!text.contains("hint:"), "{text}");

        let j = r.json();
        let v = &j["visibilityMs"];
        assert_eq!(v["probes"], 101);
        assert_eq!(v["visible"], 100);
        assert_eq!(v["timeouts"], 0);
        assert_eq!(v["failed"], 1);
        assert_eq!(v["failures"]["401 invalid_signature"], 1);
        assert_eq!(v["intervalMs"], 50.0);
        assert_eq!(v["p50"], 1.0);
        assert_eq!(v["p99"], 1.98);
        assert_eq!(v["max"], 2.0);
        assert_eq!(j["requests"], 1);
    }

    #[test]
    fn slow_or_lost_visibility_gets_a_hint_and_counts_in_the_p99() {
        let mut probe = ProbeStats::new(Duration::from_millis(50), Duration::from_secs(5));
        for _ in 0..98 {
            probe.record(ProbeOutcome::Visible {
                after: Duration::from_millis(2),
                poll_errors: 0,
            });
        }
        probe.record(ProbeOutcome::TimedOut { poll_errors: 3 });
        probe.record(ProbeOutcome::TimedOut { poll_errors: 0 });
        let (p, s) = (plan(false), one_ok_request());
        let r = report(&p, &s, &probe);
        let text = r.human();
        assert!(text.contains("p99 5.00s"), "{text}");
        assert!(
            text.contains(
                "100 probes, one per 50.00ms: 98 visible, 2 timed out after 5.00s, 3 polls retried"
            ),
            "{text}"
        );
        assert!(
            text.contains("hint: accepted events took 5.00s at p99 to show on the leaderboard (2 never showed within 5.00s), over the 100.00ms of `docs/api.md`"),
            "{text}"
        );
        assert_eq!(r.json()["visibilityMs"]["timeouts"], 2);
        assert_eq!(r.json()["visibilityMs"]["pollErrors"], 3);
    }

    #[test]
    fn probes_that_measured_nothing_say_so() {
        let mut probe = ProbeStats::new(Duration::from_millis(50), Duration::from_secs(5));
        probe.record(ProbeOutcome::Failed("transport connect".into()));
        let (p, s) = (plan(false), one_ok_request());
        let r = report(&p, &s, &probe);
        let text = r.human();
        assert!(
            text.contains("visibility  no probe event was accepted"),
            "{text}"
        );
        assert!(text.contains("hint: most visibility probes"), "{text}");
        assert_eq!(r.json()["visibilityMs"]["p99"], 0.0);
    }

    #[test]
    fn number_formatting() {
        assert_eq!(fmt_count(0), "0");
        assert_eq!(fmt_count(999), "999");
        assert_eq!(fmt_count(1000), "1,000");
        assert_eq!(fmt_count(1234567), "1,234,567");
        assert_eq!(fmt_rate(47_719.6), "47,720");
        assert_eq!(fmt_us(999), "999us");
        assert_eq!(fmt_us(1500), "1.50ms");
        assert_eq!(fmt_us(2_500_000), "2.50s");
    }
}
