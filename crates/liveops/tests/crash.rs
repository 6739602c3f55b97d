//! Durability under `kill -9` (SPEC section 2): a `202` means the event is in the system of
//! record, so a crash loses nothing that was acknowledged, and after the restart every event is
//! applied exactly once, to progression and to the leaderboards alike.
//!
//! The test runs the real binary under concurrent load (single events, batches, retries of
//! acknowledged eventIds), kills it with SIGKILL mid-flight, restarts it on the same data
//! directory and resends everything: acknowledged events must be known (208), events whose fate
//! was unknown (the request failed in transport) may be either. Then each player's XP and
//! seasonal score must equal the sum of its events' XP, each counted once.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Server;
use futures::StreamExt;
use liveops_client::{unix_now, ApiResponse, Client};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const PLAYERS: usize = 50;
const TASKS: usize = 16;
const BATCH_SIZE: usize = 20;
/// How long the load runs before the SIGKILL, per kill/restart cycle.
const LOAD_BEFORE_KILL: [Duration; 2] = [Duration::from_millis(2000), Duration::from_millis(1600)];
/// How long the pipeline may take to catch up after the last restart.
const CATCH_UP: Duration = Duration::from_secs(20);
/// The fairness guard is not under test here: nothing may be flooded, quarantined or blocked,
/// or the fate of a resent event could not be told from its answer.
const SERVER_ENV: &[(&str, &str)] = &[
    ("FLOOD_MAX_PER_SEC", "1000000"),
    ("ANOMALY_Z", "1000"),
    ("ANOMALY_ACTION", "flag"),
];

fn player_id(i: usize) -> String {
    format!("crash_player_{i:02}")
}

/// What the test knows about an event it sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    /// Sent, but the answer was lost (transport error): it may or may not be committed.
    Unknown,
    /// Answered 202 (or 208): committed; it must survive the crash and count exactly once.
    Acked,
    /// Refused with a 4xx: never applied.
    Rejected,
}

struct Sent {
    player: usize,
    xp: u64,
    /// The exact event, resent as is.
    event: Value,
    fate: Fate,
}

#[derive(Default)]
struct Ledger {
    events: HashMap<String, Sent>,
    /// Acknowledged eventIds, to pick retries from.
    acked: Vec<String>,
    /// Contract violations seen while sending; the test fails on any.
    violations: Vec<String>,
    /// Counts by outcome, for the summary.
    outcomes: BTreeMap<String, u64>,
}

impl Ledger {
    fn count(&mut self, what: impl Into<String>) {
        *self.outcomes.entry(what.into()).or_default() += 1;
    }

    fn record_new(&mut self, id: &str, player: usize, xp: u64, event: &Value) {
        self.events.insert(
            id.to_string(),
            Sent {
                player,
                xp,
                event: event.clone(),
                fate: Fate::Unknown,
            },
        );
    }

    fn set_fate(&mut self, id: &str, fate: Fate) {
        let sent = self.events.get_mut(id).expect("a recorded event");
        if sent.fate != Fate::Acked && fate == Fate::Acked {
            self.acked.push(id.to_string());
        }
        sent.fate = fate;
    }

    /// Applies the answer to a first send of a new event (single or in a batch).
    fn first_answer(&mut self, id: &str, status: u16, body: &Value) {
        match status {
            202 => {
                self.count("new event: 202");
                self.set_fate(id, Fate::Acked);
            }
            208 => {
                self.count("new event: 208");
                self.violations.push(format!(
                    "new eventId {id} answered 208 on its first send: {body}"
                ));
                self.set_fate(id, Fate::Acked);
            }
            400..=499 => {
                self.count(format!("new event: {status}"));
                self.set_fate(id, Fate::Rejected);
            }
            _ => {
                self.count(format!("new event: {status}"));
                self.violations
                    .push(format!("new eventId {id} answered {status}: {body}"));
            }
        }
    }

    /// Applies the answer to a resend of an acknowledged event.
    fn retry_answer(&mut self, id: &str, status: u16, body: &Value, when: &str) {
        self.count(format!("{when} retry of an acked event: {status}"));
        if status != 208 {
            let why = if status == 202 {
                "it was stored again, so it would count twice (or it was lost)"
            } else {
                "expected 208"
            };
            self.violations.push(format!(
                "{when}: acknowledged eventId {id} answered {status} when resent ({why}): {body}"
            ));
        }
    }
}

fn new_event(rng: &mut StdRng, id: &str) -> (usize, u64, Value) {
    let player = rng.gen_range(0..PLAYERS);
    let xp = rng.gen_range(1..=100u64);
    let event = json!({
        "eventId": id,
        "type": "progression",
        "playerId": player_id(player),
        "ts": unix_now(),
        "payload": {"deltaXp": xp, "activity": "quest_completion"},
    });
    (player, xp, event)
}

/// One load task: new single events, batches of new events (sometimes with an acknowledged one
/// inside) and retries of acknowledged events, until `stop`.
async fn load_task(
    client: Client,
    ledger: Arc<Mutex<Ledger>>,
    stop: Arc<AtomicBool>,
    cycle: usize,
    task: usize,
) {
    let mut rng = StdRng::seed_from_u64(0x5eed_0000 + (cycle * 100 + task) as u64);
    let mut seq = 0u64;
    let mut next_id = || {
        seq += 1;
        format!("crash-c{cycle}-t{task:02}-{seq:06}")
    };
    while !stop.load(Ordering::Relaxed) {
        let roll = rng.gen_range(0..100);
        let retry = if roll < 12 {
            let l = ledger.lock().unwrap();
            (!l.acked.is_empty()).then(|| {
                let id = l.acked[rng.gen_range(0..l.acked.len())].clone();
                let event = l.events[&id].event.clone();
                (id, event)
            })
        } else {
            None
        };
        if let Some((id, event)) = retry {
            match client.post_event_json(&event).await {
                Ok(r) => ledger
                    .lock()
                    .unwrap()
                    .retry_answer(&id, r.status, &r.body, "during load"),
                Err(_) => ledger.lock().unwrap().count("transport error"),
            }
        } else if roll < 30 {
            let mut events = Vec::with_capacity(BATCH_SIZE + 1);
            let mut ids = Vec::with_capacity(BATCH_SIZE + 1);
            {
                let mut l = ledger.lock().unwrap();
                for _ in 0..BATCH_SIZE {
                    let id = next_id();
                    let (player, xp, event) = new_event(&mut rng, &id);
                    l.record_new(&id, player, xp, &event);
                    ids.push((id, false));
                    events.push(event);
                }
                if !l.acked.is_empty() && rng.gen_bool(0.5) {
                    let id = l.acked[rng.gen_range(0..l.acked.len())].clone();
                    let at = rng.gen_range(0..=events.len());
                    events.insert(at, l.events[&id].event.clone());
                    ids.insert(at, (id, true));
                }
            }
            match client.post_batch(&events).await {
                Ok(r) => batch_answer(&mut ledger.lock().unwrap(), &ids, &r),
                Err(_) => ledger.lock().unwrap().count("transport error (batch)"),
            }
        } else {
            let id = next_id();
            let (player, xp, event) = new_event(&mut rng, &id);
            ledger.lock().unwrap().record_new(&id, player, xp, &event);
            match client.post_event_json(&event).await {
                Ok(r) => ledger.lock().unwrap().first_answer(&id, r.status, &r.body),
                Err(_) => ledger.lock().unwrap().count("transport error"),
            }
        }
    }
}

/// Applies a batch answer; `ids` says which entries were retries of acknowledged events.
fn batch_answer(l: &mut Ledger, ids: &[(String, bool)], r: &ApiResponse) {
    match r.status {
        200 => {}
        400..=499 => {
            l.count(format!("batch: {}", r.status));
            for (id, retry) in ids {
                if !retry {
                    l.set_fate(id, Fate::Rejected);
                }
            }
            return;
        }
        s => {
            l.count(format!("batch: {s}"));
            l.violations
                .push(format!("a batch answered {s} (expected 200): {}", r.text));
            return;
        }
    }
    let results = r.body["results"].as_array().cloned().unwrap_or_default();
    if results.len() != ids.len() {
        l.violations.push(format!(
            "a batch of {} answered {} results: {}",
            ids.len(),
            results.len(),
            r.text
        ));
        return;
    }
    for (i, ((id, retry), result)) in ids.iter().zip(&results).enumerate() {
        if result["index"].as_u64() != Some(i as u64) {
            l.violations
                .push(format!("batch result {i} has the wrong index: {result}"));
        }
        let status = result["status"].as_u64().unwrap_or(0) as u16;
        if *retry {
            l.retry_answer(id, status, result, "during load (in a batch)");
        } else {
            l.first_answer(id, status, result);
        }
    }
}

/// Runs the load for `duration`, then SIGKILLs the server while requests are in flight.
async fn load_then_kill(
    server: &mut Server,
    ledger: &Arc<Mutex<Ledger>>,
    cycle: usize,
    duration: Duration,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            tokio::spawn(load_task(
                server.client.clone(),
                ledger.clone(),
                stop.clone(),
                cycle,
                task,
            ))
        })
        .collect();
    tokio::time::sleep(duration).await;
    server.sigkill();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("a load task panicked");
    }
}

/// After a restart: resends every event that is acknowledged or of unknown fate, once, with its
/// eventId and body. Acknowledged ones must be known (208); unknown ones are settled by the
/// answer (202: it was lost and is stored now; 208: it had been committed).
async fn resend_all(client: &Client, ledger: &Arc<Mutex<Ledger>>, cycle: usize) -> (usize, usize) {
    let todo: Vec<(String, Value, Fate)> = {
        let l = ledger.lock().unwrap();
        let mut todo: Vec<_> = l
            .events
            .iter()
            .filter(|(_, s)| s.fate != Fate::Rejected)
            .map(|(id, s)| (id.clone(), s.event.clone(), s.fate))
            .collect();
        todo.sort_by(|a, b| a.0.cmp(&b.0));
        todo
    };
    let unknown = todo.iter().filter(|t| t.2 == Fate::Unknown).count();
    let answers: Vec<_> = futures::stream::iter(todo)
        .map(|(id, event, fate)| {
            let client = client.clone();
            async move {
                let answer = client.post_event_json(&event).await;
                (id, fate, answer)
            }
        })
        .buffer_unordered(TASKS)
        .collect()
        .await;
    let mut l = ledger.lock().unwrap();
    let when = format!("after restart {cycle}");
    let total = answers.len();
    for (id, fate, answer) in answers {
        let r = match answer {
            Ok(r) => r,
            Err(e) => {
                l.violations
                    .push(format!("{when}: resending {id} failed in transport: {e}"));
                continue;
            }
        };
        match fate {
            Fate::Acked => l.retry_answer(&id, r.status, &r.body, &when),
            Fate::Unknown => {
                l.count(format!("{when} resend of an unknown event: {}", r.status));
                if r.status == 202 || r.status == 208 {
                    l.set_fate(&id, Fate::Acked);
                } else {
                    l.violations.push(format!(
                        "{when}: event {id} of unknown fate answered {} when resent (expected 202 or 208): {}",
                        r.status, r.text
                    ));
                }
            }
            Fate::Rejected => unreachable!("rejected events are not resent"),
        }
    }
    (total, unknown)
}

/// What the server says about every player.
#[derive(PartialEq)]
struct Observed {
    /// Progress `xp` by player index; `None` = 404 (no progress).
    xp: Vec<Option<u64>>,
    /// The full seasonal board, read page by page: playerId -> score.
    board: HashMap<String, u64>,
}

async fn observe(client: &Client) -> Result<Observed, String> {
    let mut xp = Vec::with_capacity(PLAYERS);
    for p in 0..PLAYERS {
        let r = client
            .get(&format!("/players/{}/progress", player_id(p)))
            .await
            .map_err(|e| e.to_string())?;
        match r.status {
            200 => xp.push(Some(r.body["xp"].as_u64().ok_or_else(|| {
                format!("progress of {} has no integer xp: {}", player_id(p), r.text)
            })?)),
            404 => xp.push(None),
            s => {
                return Err(format!(
                    "progress of {} answered {s}: {}",
                    player_id(p),
                    r.text
                ))
            }
        }
    }
    let mut board = HashMap::new();
    let page = 20;
    let mut offset = 0;
    loop {
        let r = client
            .get(&format!(
                "/leaderboard?window=seasonal&limit={page}&offset={offset}"
            ))
            .await
            .map_err(|e| e.to_string())?;
        if r.status != 200 {
            return Err(format!(
                "the seasonal board answered {}: {}",
                r.status, r.text
            ));
        }
        let entries = r.body["entries"].as_array().cloned().unwrap_or_default();
        for e in &entries {
            let id = e["playerId"].as_str().unwrap_or_default().to_string();
            let score = e["score"].as_u64().unwrap_or(u64::MAX);
            if board.insert(id.clone(), score).is_some() {
                return Err(format!("{id} appears twice on the seasonal board"));
            }
        }
        offset += page;
        let total = r.body["total"].as_u64().unwrap_or(0) as usize;
        if entries.is_empty() || offset >= total {
            break;
        }
    }
    Ok(Observed { xp, board })
}

/// The differences between what the server shows and what was committed.
fn mismatches(expected: &[u64], seen: &Observed) -> Vec<String> {
    let Observed { xp, board } = seen;
    let mut out = Vec::new();
    for (p, &want) in expected.iter().enumerate() {
        let id = player_id(p);
        let got = xp[p].unwrap_or(0);
        if got != want {
            out.push(format!(
                "{id}: progress xp {got} != {want} committed ({})",
                verdict(got, want)
            ));
        }
        let score = board.get(&id).copied().unwrap_or(0);
        if score != want {
            out.push(format!(
                "{id}: seasonal score {score} != {want} committed ({})",
                verdict(score, want)
            ));
        }
    }
    for id in board.keys() {
        if !(0..PLAYERS).any(|p| &player_id(p) == id) {
            out.push(format!("unexpected player {id} on the seasonal board"));
        }
    }
    out
}

fn verdict(got: u64, want: u64) -> String {
    if got < want {
        format!("{} XP missing: lost or not yet applied", want - got)
    } else {
        format!("{} XP too many: double counted", got - want)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_events_survive_sigkill_exactly_once() {
    let started = Instant::now();
    let data = tempfile::TempDir::new().unwrap();
    let logs = tempfile::TempDir::new().unwrap();
    let ledger = Arc::new(Mutex::new(Ledger::default()));

    let mut server = Server::start(data.path(), logs.path(), SERVER_ENV).await;
    for (cycle, duration) in LOAD_BEFORE_KILL.iter().enumerate() {
        let cycle = cycle + 1;
        load_then_kill(&mut server, &ledger, cycle, *duration).await;
        let killed_at = Instant::now();
        server = Server::start(data.path(), logs.path(), SERVER_ENV).await;
        let restart = killed_at.elapsed();
        let (resent, unknown) = resend_all(&server.client, &ledger, cycle).await;
        eprintln!(
            "cycle {cycle}: restarted in {restart:?}, resent {resent} events ({unknown} of unknown fate) in {:?}",
            killed_at.elapsed() - restart
        );
    }

    let (expected, committed) = {
        let l = ledger.lock().unwrap();
        eprintln!("outcomes: {:#?}", l.outcomes);
        assert!(
            l.violations.is_empty(),
            "{} contract violations, first ones:\n{}",
            l.violations.len(),
            l.violations
                .iter()
                .take(20)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
        let mut expected = vec![0u64; PLAYERS];
        let mut committed = 0;
        for s in l.events.values() {
            match s.fate {
                Fate::Acked => {
                    expected[s.player] += s.xp;
                    committed += 1;
                }
                Fate::Rejected => {}
                Fate::Unknown => unreachable!("every unknown event was settled by its resend"),
            }
        }
        (expected, committed)
    };
    assert!(
        committed > 500,
        "only {committed} events were committed: the load did not run"
    );

    // Wait for the pipeline to apply everything; give up early if nothing moves for 3 s while
    // the numbers are still wrong (an overcount never heals).
    let deadline = Instant::now() + CATCH_UP;
    let mut last: Option<Observed> = None;
    let mut unchanged_since = Instant::now();
    let problems = loop {
        let seen = observe(&server.client).await.unwrap_or_else(|e| {
            panic!(
                "reading progress and boards failed: {e}; log:\n{}",
                server.log_tail()
            )
        });
        let problems = mismatches(&expected, &seen);
        if problems.is_empty() {
            break problems;
        }
        if last.as_ref() != Some(&seen) {
            unchanged_since = Instant::now();
            last = Some(seen);
        }
        if Instant::now() > deadline || unchanged_since.elapsed() > Duration::from_secs(3) {
            break problems;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        problems.is_empty(),
        "after two SIGKILLs, {} of {committed} committed events' effects differ:\n{}",
        problems.len(),
        problems.join("\n")
    );

    // The per-player rank endpoint reads the same board.
    for (p, &want) in expected.iter().enumerate() {
        let r = server
            .client
            .get(&format!(
                "/leaderboard/players/{}?window=seasonal",
                player_id(p)
            ))
            .await
            .unwrap();
        if want == 0 {
            assert_eq!(r.status, 404, "{}: {}", player_id(p), r.text);
        } else {
            assert_eq!(r.status, 200, "{}: {}", player_id(p), r.text);
            assert_eq!(r.body["score"].as_u64(), Some(want), "{}", player_id(p));
        }
    }
    eprintln!(
        "{committed} events committed over {PLAYERS} players, verified in {:?} total",
        started.elapsed()
    );
}
