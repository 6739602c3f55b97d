//! Graceful stop of the real binary (`docs/api.md`: "SIGTERM: stop accepting, drain in-flight
//! work, exit within 2 s of idle").
//!
//! Idle: after a few accepted events (and with the test's client still holding its idle
//! keep-alive connections, as any real client would), SIGTERM must end the process by itself,
//! with status 0, within 2 s.
//!
//! Busy: SIGTERM lands while 16 connections each have a request in flight. Every request must
//! get either a complete answer or a connection error, never a cut one, so a client can always
//! tell "answered" from "retry": requests go over a hand-written HTTP/1.1 client that sees the
//! raw bytes (a library client would fold a cut answer into a generic error). The process must
//! still exit by itself, and after a restart on the same data directory every acknowledged event
//! must be known (208 when resent) and counted exactly once in progression.

mod common;

use std::collections::BTreeMap;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Server;
use futures::StreamExt;
use liveops_client::{unix_now, Client};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `docs/api.md`: the exit deadline once the server is idle.
const IDLE_EXIT: Duration = Duration::from_secs(2);
/// Under load the drain may take longer than when idle; "a few seconds".
const BUSY_EXIT: Duration = Duration::from_secs(5);
/// How long the test keeps watching after a missed deadline, to report when the server did
/// exit (or that it never did).
const WATCH_AFTER_DEADLINE: Duration = Duration::from_secs(20);
/// Concurrent connections, each with one request in flight.
const CONNECTIONS: usize = 16;
const PLAYERS_PER_CONNECTION: usize = 4;
/// Odd connections send batches of this many events (longer in-flight work), even ones single
/// events.
const BATCH: usize = 8;
/// The load runs at least this long (and until 500 events are acknowledged) before SIGTERM.
const MIN_LOAD: Duration = Duration::from_millis(500);
/// No answer within this is a hang, which the test reports as such.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long progression may take to catch up after a (re)start.
const CATCH_UP: Duration = Duration::from_secs(20);
/// Neither flood limits nor the fairness guard are under test: nothing may be refused or held.
const SERVER_ENV: &[(&str, &str)] = &[
    ("FLOOD_MAX_PER_SEC", "1000000"),
    ("ANOMALY_Z", "1000"),
    ("ANOMALY_ACTION", "flag"),
    // The drain is logged at info; the log tail goes into failure messages.
    ("LOG_LEVEL", "info"),
];

fn progression(event_id: &str, player: &str, xp: u64) -> Value {
    json!({
        "eventId": event_id,
        "type": "progression",
        "playerId": player,
        "ts": unix_now(),
        "payload": {"deltaXp": xp, "activity": "quest_completion"},
    })
}

/// A player's progression XP; `None` while it has none (404).
async fn xp_of(client: &Client, player: &str) -> Result<Option<u64>, String> {
    let r = client
        .get(&format!("/players/{player}/progress"))
        .await
        .map_err(|e| format!("progress of {player}: {e}"))?;
    match r.status {
        200 => r.body["xp"]
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("progress of {player} has no integer xp: {}", r.text)),
        404 => Ok(None),
        s => Err(format!("progress of {player} answered {s}: {}", r.text)),
    }
}

/// Waits until every player's XP is exactly the expected sum; the mismatches if it never is.
async fn wait_for_xp(client: &Client, expected: &BTreeMap<String, u64>) -> Result<(), String> {
    let deadline = Instant::now() + CATCH_UP;
    loop {
        let mut wrong = Vec::new();
        for (player, want) in expected {
            match xp_of(client, player).await {
                Ok(got) if got.unwrap_or(0) == *want => {}
                Ok(got) => wrong.push(format!("{player}: xp {got:?}, expected {want}")),
                Err(e) => wrong.push(e),
            }
        }
        if wrong.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "after {CATCH_UP:?}, {} of {} players are wrong: {}",
                wrong.len(),
                expected.len(),
                wrong.join("; ")
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How the server ended after SIGTERM.
struct Stop {
    /// From the signal to the exit, if it exited at all.
    after: Option<Duration>,
    status: Option<ExitStatus>,
}

/// Sends SIGTERM and watches the process until `deadline` past the signal and, if it is still
/// running then, for a while longer so a failure can say when it did exit. A server that never
/// exits is killed (and reaped) so the data directory is free for the restart.
async fn sigterm_and_watch(server: &mut Server, deadline: Duration) -> Stop {
    let signalled = Instant::now();
    server.sigterm();
    let status = match server.wait_exit(deadline).await {
        Some(s) => Some(s),
        None => server.wait_exit(WATCH_AFTER_DEADLINE).await,
    };
    let after = status.map(|_| signalled.elapsed());
    if status.is_none() {
        server.sigkill();
    }
    Stop { after, status }
}

/// Checks a stop against the deadline: exited by itself, in time, with status 0.
fn stop_problems(stop: &Stop, deadline: Duration, what: &str) -> Vec<String> {
    match (stop.after, stop.status) {
        (Some(after), Some(status)) => {
            let mut problems = Vec::new();
            if after > deadline {
                problems.push(format!(
                    "{what}: the server exited {after:?} after SIGTERM, over the {deadline:?} allowed"
                ));
            }
            if !status.success() {
                problems.push(format!("{what}: the server exited with {status}, not 0"));
            }
            problems
        }
        _ => vec![format!(
            "{what}: the server was still running {:?} after SIGTERM (killed with SIGKILL)",
            deadline + WATCH_AFTER_DEADLINE
        )],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_drains_and_exits_promptly() {
    let data = tempfile::TempDir::new().unwrap();
    let logs = tempfile::TempDir::new().unwrap();
    let mut server = Server::start(data.path(), logs.path(), SERVER_ENV).await;

    let player = "shutdown_idle_player";
    let mut total = 0;
    for i in 0..5u64 {
        let xp = 10 + i * 7;
        let r = server
            .client
            .post_event_json(&progression(&format!("idle.{i}"), player, xp))
            .await
            .expect("sending an event");
        assert_eq!(r.status, 202, "{}", r.text);
        total += xp;
    }
    let expected = BTreeMap::from([(player.to_string(), total)]);
    // Idle means the pipeline too has nothing left to apply.
    if let Err(e) = wait_for_xp(&server.client, &expected).await {
        panic!("before the stop: {e}; log:\n{}", server.log_tail());
    }

    // The client keeps its pooled keep-alive connections open through the stop: an idle
    // connection must not hold the server up.
    let stop = sigterm_and_watch(&mut server, IDLE_EXIT).await;
    let problems = stop_problems(&stop, IDLE_EXIT, "idle");
    assert!(
        problems.is_empty(),
        "{}; log:\n{}",
        problems.join("; "),
        server.log_tail()
    );
    eprintln!(
        "idle: exited {:?} after SIGTERM",
        stop.after.unwrap_or_default()
    );

    let server = Server::start(data.path(), logs.path(), SERVER_ENV).await;
    if let Err(e) = wait_for_xp(&server.client, &expected).await {
        panic!("after the restart: {e}; log:\n{}", server.log_tail());
    }
}

/// What became of one request, as seen on the wire.
#[derive(Debug)]
enum Answer {
    /// A complete HTTP answer.
    Complete {
        status: u16,
        body: Vec<u8>,
        close: bool,
    },
    /// The connection could not be opened: the server no longer accepts.
    Refused(String),
    /// The connection failed before a single byte of the answer: the request may or may not
    /// have been applied, and the client knows to retry it.
    ConnectionError(String),
    /// Part of an answer, then the connection ended: the contract violation under test.
    Truncated { received: Vec<u8>, why: String },
    /// Bytes that are not an HTTP answer this test understands.
    Malformed(String),
    /// Nothing within [`ANSWER_TIMEOUT`].
    Hung,
}

/// Parses `buf` as a complete answer; `Ok(None)` while more bytes are needed.
fn complete_answer(buf: &[u8]) -> Result<Option<(u16, Vec<u8>, bool)>, String> {
    let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP/1.1 status line: {status_line:?}"))?;
    let mut length = None;
    let mut close = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| format!("bad content-length {value:?}"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(format!(
                "transfer-encoding {value:?}: this test expects content-length answers"
            ));
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        }
    }
    let length = length.ok_or("an answer without content-length")?;
    let body_start = head_end + 4;
    if buf.len() < body_start + length {
        return Ok(None);
    }
    if buf.len() > body_start + length {
        return Err(format!(
            "{} bytes after the answer on a one-request-at-a-time connection",
            buf.len() - body_start - length
        ));
    }
    Ok(Some((status, buf[body_start..].to_vec(), close)))
}

/// Sends one request on `conn` (opening it if needed) and reads its answer. The connection is
/// dropped after anything but a complete keep-alive answer.
async fn exchange(conn: &mut Option<TcpStream>, port: u16, request: &[u8]) -> Answer {
    if conn.is_none() {
        match TcpStream::connect(("127.0.0.1", port)).await {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                *conn = Some(s);
            }
            Err(e) => return Answer::Refused(e.to_string()),
        }
    }
    let Some(stream) = conn.as_mut() else {
        unreachable!("opened above")
    };
    if let Err(e) = stream.write_all(request).await {
        *conn = None;
        return Answer::ConnectionError(format!("writing the request: {e}"));
    }
    let mut received = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let answer = loop {
        match complete_answer(&received) {
            Ok(Some((status, body, close))) => {
                break Answer::Complete {
                    status,
                    body,
                    close,
                }
            }
            Ok(None) => {}
            Err(e) => break Answer::Malformed(e),
        }
        match tokio::time::timeout(ANSWER_TIMEOUT, stream.read(&mut chunk)).await {
            Err(_) => break Answer::Hung,
            Ok(Ok(0)) if received.is_empty() => {
                break Answer::ConnectionError("closed before any answer".into())
            }
            Ok(Err(e)) if received.is_empty() => {
                break Answer::ConnectionError(format!("reading the answer: {e}"))
            }
            Ok(Ok(0)) => {
                break Answer::Truncated {
                    received,
                    why: "end of stream".into(),
                }
            }
            Ok(Err(e)) => {
                break Answer::Truncated {
                    received,
                    why: e.to_string(),
                }
            }
            Ok(Ok(n)) => received.extend_from_slice(&chunk[..n]),
        }
    };
    if !matches!(answer, Answer::Complete { close: false, .. }) {
        *conn = None;
    }
    answer
}

fn signed_request(client: &Client, port: u16, path: &str, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in client.sign(body) {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    /// Not answered (connection error or never sent): may or may not be committed.
    Unknown,
    /// Answered 202: committed, must survive and count once.
    Acked,
}

struct Sent {
    player: String,
    xp: u64,
    event: Value,
    fate: Fate,
}

#[derive(Default)]
struct Ledger {
    events: BTreeMap<String, Sent>,
    violations: Vec<String>,
    /// Outcomes by kind and by whether SIGTERM had been sent, for the summary.
    outcomes: BTreeMap<String, u64>,
}

impl Ledger {
    fn count(&mut self, what: String) {
        *self.outcomes.entry(what).or_default() += 1;
    }
}

/// Shared between the load tasks and the test.
struct Load {
    port: u16,
    client: Client,
    ledger: Mutex<Ledger>,
    /// Set just before SIGTERM is sent.
    signalled: AtomicBool,
    /// Set when the test is done watching the server: tasks stop sending.
    stop: AtomicBool,
    /// Requests written and not yet answered or failed.
    in_flight: AtomicUsize,
    /// Events answered 202 so far.
    acked: AtomicUsize,
}

/// One connection's loop: sends events (single or batches) until the server refuses
/// connections after SIGTERM, or the test stops it.
async fn load_task(load: Arc<Load>, task: usize) {
    let batch = task % 2 == 1;
    let mut conn = None;
    let mut seq = 0u64;
    while !load.stop.load(Ordering::SeqCst) {
        let n = if batch { BATCH } else { 1 };
        let mut events = Vec::with_capacity(n);
        {
            let mut ledger = load.ledger.lock().unwrap();
            for _ in 0..n {
                let id = format!("sd.{task}.{seq}");
                let player = format!("sd_t{task:02}_p{}", seq as usize % PLAYERS_PER_CONNECTION);
                let xp = 1 + (seq * 7 + task as u64) % 100;
                let event = progression(&id, &player, xp);
                ledger.events.insert(
                    id.clone(),
                    Sent {
                        player,
                        xp,
                        event: event.clone(),
                        fate: Fate::Unknown,
                    },
                );
                events.push((id, event));
                seq += 1;
            }
        }
        let (path, body) = if batch {
            let list: Vec<&Value> = events.iter().map(|(_, e)| e).collect();
            (
                "/events/batch",
                serde_json::to_vec(&json!({ "events": list })).unwrap(),
            )
        } else {
            ("/events", serde_json::to_vec(&events[0].1).unwrap())
        };
        let request = signed_request(&load.client, load.port, path, &body);

        let after_signal = load.signalled.load(Ordering::SeqCst);
        load.in_flight.fetch_add(1, Ordering::SeqCst);
        let answer = exchange(&mut conn, load.port, &request).await;
        load.in_flight.fetch_sub(1, Ordering::SeqCst);
        // Whether the signal went out while this request was being sent or answered.
        let when = match (after_signal, load.signalled.load(Ordering::SeqCst)) {
            (false, false) => "before SIGTERM",
            (false, true) => "in flight at SIGTERM",
            _ => "after SIGTERM",
        };
        let signalled = load.signalled.load(Ordering::SeqCst);

        let mut ledger = load.ledger.lock().unwrap();
        let ids: Vec<&str> = events.iter().map(|(id, _)| id.as_str()).collect();
        match answer {
            Answer::Complete { status, body, .. } => {
                let text = String::from_utf8_lossy(&body).to_string();
                let accepted: Vec<bool> = if batch {
                    match serde_json::from_slice::<Value>(&body) {
                        Ok(v) if status == 200 => {
                            (0..n).map(|i| v["results"][i]["status"] == 202).collect()
                        }
                        _ => vec![false; n],
                    }
                } else {
                    vec![status == 202]
                };
                ledger.count(format!("{when}: complete answer {status}"));
                for (id, ok) in ids.iter().zip(&accepted) {
                    if *ok {
                        if let Some(sent) = ledger.events.get_mut(*id) {
                            sent.fate = Fate::Acked;
                        }
                        load.acked.fetch_add(1, Ordering::SeqCst);
                    }
                }
                if accepted.iter().any(|ok| !ok) {
                    ledger.violations.push(format!(
                        "{path} {when}: answered {status} without accepting every event: {text}"
                    ));
                }
            }
            Answer::Refused(e) => {
                ledger.count(format!("{when}: connection refused"));
                if !signalled {
                    ledger
                        .violations
                        .push(format!("connection refused before SIGTERM: {e}"));
                }
                // The server no longer accepts: this connection's part is over.
                break;
            }
            Answer::ConnectionError(e) => {
                ledger.count(format!("{when}: connection error"));
                if !signalled {
                    ledger.violations.push(format!(
                        "{path} {when}: connection error before SIGTERM: {e}"
                    ));
                }
            }
            Answer::Truncated { received, why } => {
                ledger.count(format!("{when}: TRUNCATED answer"));
                ledger.violations.push(format!(
                    "{path} {when}: a truncated answer ({why}) after {} bytes: {:?}",
                    received.len(),
                    String::from_utf8_lossy(&received)
                ));
            }
            Answer::Malformed(e) => {
                ledger.count(format!("{when}: malformed answer"));
                ledger
                    .violations
                    .push(format!("{path} {when}: a malformed answer: {e}"));
            }
            Answer::Hung => {
                ledger.count(format!("{when}: no answer (hung)"));
                ledger.violations.push(format!(
                    "{path} {when}: no answer within {ANSWER_TIMEOUT:?}"
                ));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_answers_completely_or_not_at_all_and_loses_nothing() {
    let started = Instant::now();
    let data = tempfile::TempDir::new().unwrap();
    let logs = tempfile::TempDir::new().unwrap();
    let mut server = Server::start(data.path(), logs.path(), SERVER_ENV).await;

    let load = Arc::new(Load {
        port: server.port,
        client: server.client.clone(),
        ledger: Mutex::new(Ledger::default()),
        signalled: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        in_flight: AtomicUsize::new(0),
        acked: AtomicUsize::new(0),
    });
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|t| tokio::spawn(load_task(load.clone(), t)))
        .collect();

    // Enough load that every connection is busy, then the signal lands mid-flight.
    let load_start = Instant::now();
    while (load.acked.load(Ordering::SeqCst) < 500 || load_start.elapsed() < MIN_LOAD)
        && load_start.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let acked_before = load.acked.load(Ordering::SeqCst);
    let in_flight_at_signal = load.in_flight.load(Ordering::SeqCst);
    load.signalled.store(true, Ordering::SeqCst);
    let stop = sigterm_and_watch(&mut server, BUSY_EXIT).await;
    load.stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.expect("a load task panicked");
    }
    let shutdown_log = server.log_tail();

    let mut problems = stop_problems(&stop, BUSY_EXIT, "under load");
    let (summary, violations, events) = {
        let mut ledger = load.ledger.lock().unwrap();
        let events: Vec<(String, String, u64, Value, Fate)> = ledger
            .events
            .iter()
            .map(|(id, s)| (id.clone(), s.player.clone(), s.xp, s.event.clone(), s.fate))
            .collect();
        (
            format!("{:#?}", ledger.outcomes),
            std::mem::take(&mut ledger.violations),
            events,
        )
    };
    let acked = events.iter().filter(|e| e.4 == Fate::Acked).count();
    eprintln!(
        "under load: {in_flight_at_signal} requests in flight and {acked_before} events acknowledged at SIGTERM; \
         exit {:?} after it with {:?}; {acked} of {} events acknowledged in all; outcomes {summary}",
        stop.after,
        stop.status,
        events.len()
    );
    problems.extend(violations.into_iter().take(20));

    // Restart on the same data: every event is resent. An acknowledged one must be known
    // (208); one whose answer was lost may be either; then each counts exactly once.
    let server = Server::start(data.path(), logs.path(), SERVER_ENV).await;
    let client = server.client.clone();
    let answers: Vec<(String, Fate, Result<u16, String>)> =
        futures::stream::iter(events.iter().map(|(id, _, _, event, fate)| {
            let client = client.clone();
            async move {
                let r = client
                    .post_event_json(event)
                    .await
                    .map(|r| r.status)
                    .map_err(|e| e.to_string());
                (id.clone(), *fate, r)
            }
        }))
        .buffer_unordered(CONNECTIONS)
        .collect()
        .await;
    let mut lost = Vec::new();
    for (id, fate, r) in &answers {
        match (fate, r) {
            (Fate::Acked, Ok(208)) | (Fate::Unknown, Ok(202 | 208)) => {}
            (Fate::Acked, Ok(202)) => lost.push(id.clone()),
            (_, other) => problems.push(format!("resending {id} ({fate:?}): {other:?}")),
        }
    }
    if !lost.is_empty() {
        problems.push(format!(
            "{} acknowledged events were unknown after the restart (answered 202 when resent), e.g. {:?}",
            lost.len(),
            &lost[..lost.len().min(5)]
        ));
    }
    let mut expected = BTreeMap::<String, u64>::new();
    for (_, player, xp, _, _) in &events {
        *expected.entry(player.clone()).or_default() += xp;
    }
    if let Err(e) = wait_for_xp(&client, &expected).await {
        problems.push(format!("after the restart and resend: {e}"));
    }
    eprintln!("under load: test took {:?}", started.elapsed());
    assert!(
        problems.is_empty(),
        "{} problem(s):\n- {}\nshutdown log:\n{shutdown_log}",
        problems.len(),
        problems.join("\n- ")
    );
}
