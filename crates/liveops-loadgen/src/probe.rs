//! `--probe-visibility`: how soon an accepted event shows on the leaderboard, seen from outside
//! while the load runs (`docs/api.md`: "within 100 ms at p99 under the benchmark load").
//!
//! Every `--probe-interval` a probe sends one signed progression event for a player nobody else
//! writes (`probe_<run>_<n>`), and from the moment its 202 arrives polls
//! `GET /leaderboard/players/<id>?window=daily` every millisecond until the answer is 200 with the
//! event's `deltaXp` as the score. A fresh player makes that score exact: its daily score is this
//! one event. The visibility latency is the time from the 202 to that first 200; it includes one
//! poll round trip and up to one poll period of waiting, so it errs on the slow side by about a
//! millisecond, never on the fast side.
//!
//! Probes use connections of their own, kept in a small pool apart from the load's, and each
//! takes one connection to send and another to poll: a probe never waits behind a load request,
//! and probes overlap freely when visibility is slower than the interval. Their events are not
//! in the load's figures. A probe that is still invisible after [`PROBE_TIMEOUT`] counts as a
//! timeout, and as that long in the percentiles, so a lost event cannot flatter the p99.
//! (An event sent in the last moments of a day lands in the day that ended and times out.)

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use liveops_client::Signer;
use rand::Rng;
use serde::Deserialize;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::http::{Conn, TransportError};
use super::options::Plan;
use super::payload::SignedPost;
use super::stats::error_code;

/// How long a probe waits for its event to show before it counts as a timeout.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// The time between two polls of one probe (timers have millisecond resolution anyway).
const POLL_PERIOD: Duration = Duration::from_millis(1);
/// Latencies are kept in microseconds up to a minute, well past [`PROBE_TIMEOUT`].
const HIST_MAX_US: u64 = 60_000_000;

/// What the probes saw.
#[derive(Debug, Clone)]
pub struct ProbeStats {
    /// The time between two probes.
    pub interval: Duration,
    /// How long a probe waited before counting as a timeout.
    pub timeout: Duration,
    /// Probes started.
    pub sent: u64,
    /// Visibility latency in microseconds: the probes that showed, and the timeouts at `timeout`.
    pub latency: Histogram<u64>,
    /// Probes whose event showed with the expected score.
    pub visible: u64,
    /// Probes accepted (202) but not visible within `timeout`.
    pub timeouts: u64,
    /// Probes that could not be measured, by reason: the event was not accepted (`401
    /// invalid_signature`, `transport io`) or the board refused the poll (`poll 400 ...`).
    pub failed: BTreeMap<String, u64>,
    /// Poll answers that were neither 200 nor 404 (or broke), retried within the probe.
    pub poll_errors: u64,
}

impl ProbeStats {
    pub fn new(interval: Duration, timeout: Duration) -> ProbeStats {
        ProbeStats {
            interval,
            timeout,
            sent: 0,
            // Bounds are constants that hdrhistogram accepts.
            latency: Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("valid histogram bounds"),
            visible: 0,
            timeouts: 0,
            failed: BTreeMap::new(),
            poll_errors: 0,
        }
    }

    fn record_latency(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.latency.saturating_record(us);
    }

    pub fn record(&mut self, outcome: ProbeOutcome) {
        self.sent += 1;
        match outcome {
            ProbeOutcome::Visible { after, poll_errors } => {
                self.visible += 1;
                self.poll_errors += poll_errors;
                self.record_latency(after);
            }
            ProbeOutcome::TimedOut { poll_errors } => {
                self.timeouts += 1;
                self.poll_errors += poll_errors;
                self.record_latency(self.timeout);
            }
            ProbeOutcome::Failed(reason) => *self.failed.entry(reason).or_default() += 1,
        }
    }

    /// Probes that could not be measured.
    pub fn failed_total(&self) -> u64 {
        self.failed.values().sum()
    }
}

/// How one probe ended.
#[derive(Debug, Clone, PartialEq)]
pub enum ProbeOutcome {
    /// The board showed the event's score this long after the 202.
    Visible { after: Duration, poll_errors: u64 },
    /// Accepted, but not on the board within the timeout.
    TimedOut { poll_errors: u64 },
    /// Nothing to measure (see [`ProbeStats::failed`]).
    Failed(String),
}

/// Sends the probes; shared by the probe tasks.
pub struct Prober {
    post: SignedPost,
    /// The `Host` header and the URL's path prefix, for the polls.
    host: String,
    prefix: String,
    addr: std::net::SocketAddr,
    /// Gives up on the probe's own POST after this long (the load's --timeout).
    request_timeout: Duration,
    run_id: String,
    interval: Duration,
    timeout: Duration,
    /// Idle probe connections. Taken for one request or one probe's polling, given back when
    /// the connection is still usable; opened on demand when empty, so the pool grows to twice
    /// the number of overlapping probes and no further.
    pool: Mutex<Vec<Conn>>,
}

#[derive(Deserialize)]
struct PlayerRank {
    score: Option<i64>,
}

impl Prober {
    pub fn new(
        plan: &Plan,
        interval: Duration,
        signer: Signer,
        key_id: Option<&str>,
        run_id: &str,
    ) -> Arc<Prober> {
        Arc::new(Prober {
            post: SignedPost::new(
                &format!("{}/events", plan.prefix),
                &plan.host,
                signer,
                key_id,
                plan.timestamp,
            ),
            host: plan.host.clone(),
            prefix: plan.prefix.clone(),
            addr: plan.addr,
            request_timeout: plan.timeout,
            run_id: run_id.to_string(),
            interval,
            timeout: PROBE_TIMEOUT,
            pool: Mutex::new(Vec::new()),
        })
    }

    /// Opens the first probe's two connections before the clock starts.
    pub async fn warm_up(&self) -> std::io::Result<()> {
        for _ in 0..2 {
            let conn = Conn::connect(self.addr).await?;
            self.give_back(conn);
        }
        Ok(())
    }

    fn take(&self) -> Option<Conn> {
        // A poisoned pool only means a probe task panicked while pushing; the Vec is intact.
        self.pool.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    fn give_back(&self, conn: Conn) {
        if conn.reusable {
            self.pool
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(conn);
        }
    }

    async fn conn(&self) -> Result<Conn, TransportError> {
        match self.take() {
            Some(c) => Ok(c),
            None => Conn::connect(self.addr)
                .await
                .map_err(|_| TransportError::Connect),
        }
    }

    /// Starts a probe every interval from `start` until `stop`, then waits for the probes in
    /// flight (each bounded by the timeout) and returns what they saw.
    pub async fn run(self: Arc<Self>, start: Instant, stop: CancellationToken) -> ProbeStats {
        let mut stats = ProbeStats::new(self.interval, self.timeout);
        let mut tick = tokio::time::interval_at(start, self.interval);
        // A late tick is skipped rather than bunched: probes sample the load, they need not
        // keep a count.
        tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut probes = JoinSet::new();
        let mut n = 0u64;
        loop {
            tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                Some(done) = probes.join_next(), if !probes.is_empty() => {
                    if let Ok(outcome) = done {
                        stats.record(outcome);
                    }
                }
                _ = tick.tick() => {
                    probes.spawn(self.clone().probe(n, rand::thread_rng().gen_range(1..=200)));
                    n += 1;
                }
            }
        }
        while let Some(done) = probes.join_next().await {
            // A probe only ends by returning its outcome; a panic would be a bug, and losing one
            // sample is better than losing the report.
            if let Ok(outcome) = done {
                stats.record(outcome);
            }
        }
        stats
    }

    /// One probe: event number `n` with `delta_xp`, then polls until the board shows it.
    pub async fn probe(self: Arc<Self>, n: u64, delta_xp: u32) -> ProbeOutcome {
        let player = format!("probe_{}_{n}", self.run_id);
        let now = liveops_client::unix_now();
        let body = format!(
            r#"{{"eventId":"probe.{}.{n}","type":"progression","playerId":"{player}","ts":{now},"payload":{{"deltaXp":{delta_xp},"activity":"quest_completion"}}}}"#,
            self.run_id
        );
        let mut post = Vec::with_capacity(512);
        self.post.write(body.as_bytes(), now, &mut post);
        let mut get = Vec::with_capacity(256);
        // Writing into a Vec<u8> cannot fail.
        let _ = write!(
            get,
            "GET {}/leaderboard/players/{player}?window=daily HTTP/1.1\r\nHost: {}\r\nUser-Agent: liveops-loadgen\r\n\r\n",
            self.prefix, self.host
        );

        // Both connections are in hand before the event goes out, so no connect falls inside
        // the measured interval.
        let mut sender = match self.conn().await {
            Ok(c) => c,
            Err(kind) => return transport_failure(kind),
        };
        let poller = match self.conn().await {
            Ok(c) => c,
            Err(kind) => {
                self.give_back(sender);
                return transport_failure(kind);
            }
        };
        match tokio::time::timeout(self.request_timeout, sender.round_trip(&post)).await {
            Ok(Ok(r)) if r.status == 202 => {}
            Ok(Ok(r)) => {
                let reason = answer_reason("", r.status, r.body);
                self.give_back(sender);
                self.give_back(poller);
                return ProbeOutcome::Failed(reason);
            }
            Ok(Err(kind)) => {
                self.give_back(poller);
                return transport_failure(kind);
            }
            Err(_elapsed) => {
                self.give_back(poller);
                return transport_failure(TransportError::Timeout);
            }
        }
        let accepted = Instant::now();
        self.give_back(sender);

        let deadline = accepted + self.timeout;
        let mut poll_errors = 0;
        let mut next_poll = accepted;
        let mut poller = Some(poller);
        loop {
            if poller.is_none() {
                match Conn::connect(self.addr).await {
                    Ok(c) => poller = Some(c),
                    Err(_) => poll_errors += 1,
                }
            }
            if let Some(conn) = poller.as_mut() {
                let left = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(left, conn.round_trip(&get)).await {
                    Ok(Ok(r)) => {
                        let at = Instant::now();
                        match r.status {
                            200 => {
                                let score = serde_json::from_slice::<PlayerRank>(r.body)
                                    .ok()
                                    .and_then(|p| p.score);
                                if score == Some(i64::from(delta_xp)) {
                                    if let Some(c) = poller.take() {
                                        self.give_back(c);
                                    }
                                    return ProbeOutcome::Visible {
                                        after: at - accepted,
                                        poll_errors,
                                    };
                                }
                            }
                            // Not applied yet.
                            404 => {}
                            // Busy or broken for now: worth another poll.
                            429 | 500..=599 => poll_errors += 1,
                            // The poll itself is refused (the daily window is off, ...): it
                            // would be refused for the whole timeout.
                            status => {
                                let reason = answer_reason("poll ", status, r.body);
                                if let Some(c) = poller.take() {
                                    self.give_back(c);
                                }
                                return ProbeOutcome::Failed(reason);
                            }
                        }
                        if !conn.reusable {
                            poller = None;
                        }
                    }
                    Ok(Err(_)) => {
                        poll_errors += 1;
                        poller = None;
                    }
                    // The deadline passed during the poll.
                    Err(_elapsed) => return ProbeOutcome::TimedOut { poll_errors },
                }
            }
            let now = Instant::now();
            if now >= deadline {
                if let Some(c) = poller.take() {
                    self.give_back(c);
                }
                return ProbeOutcome::TimedOut { poll_errors };
            }
            // Polls keep their period when answers are quick, and follow at once when an answer
            // took longer than the period.
            next_poll = (next_poll + POLL_PERIOD).max(now).min(deadline);
            tokio::time::sleep_until(next_poll).await;
        }
    }
}

fn transport_failure(kind: TransportError) -> ProbeOutcome {
    ProbeOutcome::Failed(format!("transport {}", kind.as_str()))
}

/// `401 invalid_signature`, or just the status when the body has no error code.
fn answer_reason(prefix: &str, status: u16, body: &[u8]) -> String {
    match error_code(body) {
        Some(code) => format!("{prefix}{status} {code}"),
        None => format!("{prefix}{status}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::{Bound, Mix, Pace};
    use std::sync::atomic::{AtomicU32, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn plan(addr: std::net::SocketAddr) -> Plan {
        Plan {
            url: format!("http://{addr}"),
            addr,
            host: addr.to_string(),
            prefix: String::new(),
            path: "/events".into(),
            pace: Pace::FlatOut,
            rate: None,
            concurrency: 1,
            threads: 1,
            bound: Bound::Duration(Duration::from_secs(1)),
            players: 1,
            batch_size: 1,
            batch: false,
            mix: Mix::parse("progression").unwrap(),
            timestamp: false,
            timeout: Duration::from_secs(2),
            json: false,
            probe: Some(Duration::from_millis(50)),
        }
    }

    /// How the fake server behaves.
    #[derive(Clone, Copy)]
    struct Fake {
        /// The status for the POST.
        post_status: u16,
        /// Polls answered 404 before the board shows the score.
        misses: u32,
        /// Added to the score the board shows (non-zero: never the expected one).
        score_offset: i64,
    }

    /// A tiny keep-alive HTTP server: checks the POST's signature, remembers its deltaXp, and
    /// answers the polls as `fake` says. Counts the polls.
    async fn fake_server(fake: Fake) -> (std::net::SocketAddr, Arc<AtomicU32>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let polls = Arc::new(AtomicU32::new(0));
        let delta = Arc::new(Mutex::new(None::<i64>));
        let counted = polls.clone();
        tokio::spawn(async move {
            loop {
                let (sock, _) = listener.accept().await.unwrap();
                tokio::spawn(serve(sock, fake, counted.clone(), delta.clone()));
            }
        });
        (addr, polls)
    }

    async fn serve(
        mut sock: TcpStream,
        fake: Fake,
        polls: Arc<AtomicU32>,
        delta: Arc<Mutex<Option<i64>>>,
    ) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let head_end = loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                match sock.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
            let header = |name: &str| {
                head.lines().find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                })
            };
            let len: usize = header("content-length").map_or(0, |v| v.parse().unwrap());
            while buf.len() < head_end + len {
                let n = sock.read(&mut chunk).await.unwrap();
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = buf[head_end..head_end + len].to_vec();
            buf.drain(..head_end + len);
            let (status, answer) = if head.starts_with("POST /events ") {
                let sig = header("x-signature").unwrap();
                assert!(liveops_domain::signing::verify_request(
                    SECRET, &body, None, &sig
                ));
                let event: serde_json::Value = serde_json::from_slice(&body).unwrap();
                assert!(event["playerId"]
                    .as_str()
                    .unwrap()
                    .starts_with("probe_run1_"));
                *delta.lock().unwrap() = event["payload"]["deltaXp"].as_i64();
                let answer = if fake.post_status == 202 {
                    r#"{"eventId":"e","status":"accepted"}"#
                } else {
                    r#"{"error":{"code":"player_flooding"}}"#
                };
                (fake.post_status, answer.to_string())
            } else {
                assert!(
                    head.starts_with("GET /leaderboard/players/probe_run1_"),
                    "{head}"
                );
                assert!(head.contains("?window=daily "), "{head}");
                let n = polls.fetch_add(1, Ordering::SeqCst);
                if n < fake.misses {
                    (404, r#"{"error":{"code":"not_found"}}"#.to_string())
                } else {
                    let score = delta.lock().unwrap().unwrap() + fake.score_offset;
                    (200, format!(r#"{{"rank":1,"score":{score}}}"#))
                }
            };
            let reply = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
                answer.len()
            );
            sock.write_all(reply.as_bytes()).await.unwrap();
        }
    }

    fn prober(addr: std::net::SocketAddr, timeout: Duration) -> Arc<Prober> {
        let p = Prober::new(
            &plan(addr),
            Duration::from_millis(50),
            Signer::new(SECRET),
            None,
            "run1",
        );
        let mut p = Arc::try_unwrap(p).ok().unwrap();
        p.timeout = timeout;
        Arc::new(p)
    }

    #[tokio::test]
    async fn a_probe_is_visible_at_the_first_poll_with_its_score() {
        let (addr, polls) = fake_server(Fake {
            post_status: 202,
            misses: 3,
            score_offset: 0,
        })
        .await;
        let p = prober(addr, Duration::from_secs(5));
        p.warm_up().await.unwrap();
        match p.clone().probe(7, 123).await {
            ProbeOutcome::Visible { after, poll_errors } => {
                assert_eq!(poll_errors, 0);
                // Three misses a millisecond apart, then the hit.
                assert!(after >= Duration::from_millis(3), "{after:?}");
                assert!(after < Duration::from_secs(1), "{after:?}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(polls.load(Ordering::SeqCst), 4);
        // Both connections went back to the pool.
        assert_eq!(p.pool.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_wrong_score_is_not_visible_and_times_out() {
        let (addr, polls) = fake_server(Fake {
            post_status: 202,
            misses: 0,
            score_offset: 1,
        })
        .await;
        let p = prober(addr, Duration::from_millis(100));
        assert_eq!(
            p.probe(0, 50).await,
            ProbeOutcome::TimedOut { poll_errors: 0 }
        );
        assert!(polls.load(Ordering::SeqCst) > 10);
    }

    #[tokio::test]
    async fn a_refused_event_is_a_failure_not_a_sample() {
        let (addr, polls) = fake_server(Fake {
            post_status: 429,
            misses: 0,
            score_offset: 0,
        })
        .await;
        let p = prober(addr, Duration::from_secs(5));
        assert_eq!(
            p.probe(0, 50).await,
            ProbeOutcome::Failed("429 player_flooding".into())
        );
        assert_eq!(polls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn run_probes_at_the_interval_until_stopped() {
        let (addr, _) = fake_server(Fake {
            post_status: 202,
            misses: 0,
            score_offset: 0,
        })
        .await;
        let mut p = Arc::try_unwrap(prober(addr, Duration::from_secs(5)))
            .ok()
            .unwrap();
        p.interval = Duration::from_millis(20);
        let p = Arc::new(p);
        let stop = CancellationToken::new();
        let task = tokio::spawn(p.run(Instant::now(), stop.clone()));
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop.cancel();
        let stats = task.await.unwrap();
        // Ticks at 0, 20, ... 180 ms (maybe 200): about ten, all visible.
        assert!((8..=11).contains(&stats.sent), "{stats:?}");
        assert_eq!(stats.visible, stats.sent);
        assert_eq!(stats.latency.len(), stats.sent);
        assert_eq!(stats.timeouts + stats.failed_total(), 0);
    }

    #[test]
    fn timeouts_count_as_the_timeout_in_the_percentiles() {
        let mut s = ProbeStats::new(Duration::from_millis(50), Duration::from_secs(5));
        s.record(ProbeOutcome::Visible {
            after: Duration::from_millis(3),
            poll_errors: 1,
        });
        s.record(ProbeOutcome::TimedOut { poll_errors: 2 });
        s.record(ProbeOutcome::Failed("transport io".into()));
        s.record(ProbeOutcome::Failed("transport io".into()));
        assert_eq!((s.sent, s.visible, s.timeouts), (4, 1, 1));
        assert_eq!(s.failed_total(), 2);
        assert_eq!(s.poll_errors, 3);
        assert_eq!(s.latency.len(), 2);
        assert!(s.latency.max() >= 4_990_000, "{}", s.latency.max());
    }
}
