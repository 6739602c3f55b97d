//! The ledger of a fault test: every event the test sent, what its answer proves about its
//! fate, and the per-player XP sums the server must show once the pipeline has drained.
//!
//! A `202` (or `208`) proves the event is committed, a `4xx` that it never will be; a transport
//! error (the process was killed) or a `503` (an engine was down) proves nothing, so such an
//! event is resent after the fault with the same eventId and body, and its answer then (`202`:
//! it had been lost; `208`: it had been committed) settles it. Afterwards every event has a
//! known fate, and each player's XP and scores must equal the sum over its committed events,
//! each counted once: a smaller value is a lost event, a larger one a double count.
//!
//! The load ([`LoadRun`]) mixes new single events, batches of new events (sometimes with an
//! acknowledged event inside) and resends of acknowledged events, spread over several gateways
//! ([`Targets`]) that the test may kill and restart under it.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use liveops_client::{unix_now, ApiResponse, Client};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// The shape of the load.
#[derive(Clone, Copy, Debug)]
pub struct LoadSpec {
    /// Players are `<player_prefix>_<index>`.
    pub player_prefix: &'static str,
    pub players: usize,
    /// Concurrent senders; sender `t` uses target `t % targets`.
    pub tasks: usize,
    pub batch_size: usize,
    /// Whether a `503` with `Retry-After` is an acceptable answer (a test that stops an engine);
    /// otherwise it is a violation. Either way it leaves the event's fate unknown.
    pub unavailable_ok: bool,
}

impl LoadSpec {
    pub fn player_id(&self, i: usize) -> String {
        format!("{}_{i:03}", self.player_prefix)
    }
}

/// What the test knows about an event it sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Sent, but the answer proves nothing (transport error, 503): it may or may not be
    /// committed.
    Unknown,
    /// Answered 202 (or 208): committed; it must survive every fault and count exactly once.
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

/// How a request carrying new events ended, as seen by the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A 202 for the event, or for at least one event of the batch.
    Accepted,
    /// 503 (with `Retry-After`, else it is also a violation).
    Unavailable,
    /// No answer: connection refused or reset.
    Transport,
    /// Any other status.
    Other(u16),
}

/// One request carrying new events, with its timing: fault tests check what was answered
/// while the fault lasted.
#[derive(Clone, Copy, Debug)]
pub struct Answer {
    pub sent: Instant,
    pub answered: Instant,
    pub outcome: Outcome,
}

pub struct Ledger {
    pub spec: LoadSpec,
    events: HashMap<String, Sent>,
    /// Acknowledged eventIds, to pick resends from.
    acked: Vec<String>,
    /// Contract violations seen while sending; the test fails on any.
    violations: Vec<String>,
    /// Counts by outcome, for the summary.
    outcomes: BTreeMap<String, u64>,
    /// Every request with new events, in the order the answers came.
    pub answers: Vec<Answer>,
}

impl Ledger {
    pub fn new(spec: LoadSpec) -> Arc<Mutex<Ledger>> {
        Arc::new(Mutex::new(Ledger {
            spec,
            events: HashMap::new(),
            acked: Vec::new(),
            violations: Vec::new(),
            outcomes: BTreeMap::new(),
            answers: Vec::new(),
        }))
    }

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

    /// A 503: acceptable only when the spec says an engine may be down, and then only with
    /// `Retry-After` (`docs/api.md`: the client must know when to retry).
    fn unavailable(&mut self, what: &str, r: &ApiResponse) {
        self.count(format!("{what}: 503"));
        if !self.spec.unavailable_ok {
            self.violations.push(format!(
                "{what} answered 503 with no engine down: {}",
                r.text
            ));
        } else if r.header("retry-after").is_none() {
            self.violations.push(format!(
                "{what} answered 503 without Retry-After: {}",
                r.text
            ));
        }
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

    /// Keeps the timing of one answer; true when the server could not be reached or was
    /// unavailable, so the caller pauses before its next request.
    fn answered(&mut self, sent: Instant, answered: Instant, outcome: Outcome) -> bool {
        self.answers.push(Answer {
            sent,
            answered,
            outcome,
        });
        matches!(outcome, Outcome::Transport | Outcome::Unavailable)
    }

    /// Applies a batch answer; `ids` says which entries were resends of acknowledged events.
    fn batch_answer(&mut self, ids: &[(String, bool)], r: &ApiResponse) -> Outcome {
        match r.status {
            200 => {}
            503 => {
                self.unavailable("a batch", r);
                return Outcome::Unavailable;
            }
            400..=499 => {
                self.count(format!("batch: {}", r.status));
                for (id, retry) in ids {
                    if !retry {
                        self.set_fate(id, Fate::Rejected);
                    }
                }
                return Outcome::Other(r.status);
            }
            s => {
                self.count(format!("batch: {s}"));
                self.violations
                    .push(format!("a batch answered {s} (expected 200): {}", r.text));
                return Outcome::Other(s);
            }
        }
        let results = r.body["results"].as_array().cloned().unwrap_or_default();
        if results.len() != ids.len() {
            self.violations.push(format!(
                "a batch of {} answered {} results: {}",
                ids.len(),
                results.len(),
                r.text
            ));
            return Outcome::Other(200);
        }
        let mut outcome = Outcome::Other(200);
        for (i, ((id, retry), result)) in ids.iter().zip(&results).enumerate() {
            if result["index"].as_u64() != Some(i as u64) {
                self.violations
                    .push(format!("batch result {i} has the wrong index: {result}"));
            }
            let status = result["status"].as_u64().unwrap_or(0) as u16;
            if *retry {
                self.retry_answer(id, status, result, "during load (in a batch)");
            } else {
                if status == 202 {
                    outcome = Outcome::Accepted;
                }
                self.first_answer(id, status, result);
            }
        }
        outcome
    }

    /// The events sent for `player` (by index): eventId, XP and fate, for failure reports.
    pub fn events_of(&self, player: usize) -> Vec<(String, u64, Fate)> {
        let mut out: Vec<_> = self
            .events
            .iter()
            .filter(|(_, s)| s.player == player)
            .map(|(id, s)| (id.clone(), s.xp, s.fate))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The violations seen so far, as a report; `None` if there are none.
    pub fn violations_report(&self) -> Option<String> {
        (!self.violations.is_empty()).then(|| {
            format!(
                "{} contract violations, first ones:\n{}\noutcomes: {:#?}",
                self.violations.len(),
                self.violations
                    .iter()
                    .take(20)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n"),
                self.outcomes
            )
        })
    }

    /// Panics with the violations seen so far, if any.
    pub fn assert_no_violations(&self) {
        if let Some(report) = self.violations_report() {
            panic!("{report}");
        }
    }

    /// After every unknown event was settled by [`resend_all`]: the XP each player must have
    /// (by player index) and how many events were committed. Panics on any violation.
    pub fn expected(&self) -> (Vec<u64>, usize) {
        eprintln!("outcomes: {:#?}", self.outcomes);
        self.assert_no_violations();
        let mut expected = vec![0u64; self.spec.players];
        let mut committed = 0;
        for (id, s) in &self.events {
            match s.fate {
                Fate::Acked => {
                    expected[s.player] += s.xp;
                    committed += 1;
                }
                Fate::Rejected => {}
                Fate::Unknown => panic!("event {id} is still of unknown fate: resend_all first"),
            }
        }
        (expected, committed)
    }
}

fn new_event(spec: &LoadSpec, rng: &mut StdRng, id: &str) -> (usize, u64, Value) {
    let player = rng.gen_range(0..spec.players);
    let xp = rng.gen_range(1..=100u64);
    let event = json!({
        "eventId": id,
        "type": "progression",
        "playerId": spec.player_id(player),
        "ts": unix_now(),
        "payload": {"deltaXp": xp, "activity": "quest_completion"},
    });
    (player, xp, event)
}

/// The gateways the load goes to; the test replaces one when it restarts it on a new port.
#[derive(Clone)]
pub struct Targets(Arc<RwLock<Vec<Client>>>);

impl Targets {
    pub fn new(clients: Vec<Client>) -> Targets {
        assert!(!clients.is_empty(), "a load needs at least one target");
        Targets(Arc::new(RwLock::new(clients)))
    }

    pub fn set(&self, index: usize, client: Client) {
        self.0.write().unwrap()[index] = client;
    }

    fn pick(&self, task: usize) -> Client {
        let clients = self.0.read().unwrap();
        clients[task % clients.len()].clone()
    }
}

/// How long a sender pauses after a request that got no answer or a 503: a killed gateway
/// refuses at once, and spinning on it would only flood the ledger with unknown events.
const PAUSE_AFTER_FAILURE: Duration = Duration::from_millis(25);

/// Concurrent senders filling the ledger until [`LoadRun::stop`].
pub struct LoadRun {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl LoadRun {
    /// Starts the senders; `label` makes this run's eventIds unique within the test.
    pub fn start(ledger: &Arc<Mutex<Ledger>>, targets: &Targets, label: &str) -> LoadRun {
        let stop = Arc::new(AtomicBool::new(false));
        let spec = ledger.lock().unwrap().spec;
        let tasks = (0..spec.tasks)
            .map(|task| {
                tokio::spawn(load_task(
                    targets.clone(),
                    ledger.clone(),
                    stop.clone(),
                    format!("{label}-t{task:02}"),
                    task,
                ))
            })
            .collect();
        LoadRun { stop, tasks }
    }

    /// Stops the senders and waits for their last requests to be answered (or fail).
    pub async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.expect("a load task panicked");
        }
    }
}

/// One sender: new single events, batches of new events (sometimes with an acknowledged one
/// inside) and resends of acknowledged events, until `stop`.
async fn load_task(
    targets: Targets,
    ledger: Arc<Mutex<Ledger>>,
    stop: Arc<AtomicBool>,
    prefix: String,
    task: usize,
) {
    let spec = ledger.lock().unwrap().spec;
    let seed = prefix.bytes().fold(0x5eed_u64, |h, b| {
        h.wrapping_mul(31).wrapping_add(u64::from(b))
    });
    let mut rng = StdRng::seed_from_u64(seed);
    let mut seq = 0u64;
    let mut next_id = || {
        seq += 1;
        format!("{prefix}-{seq:06}")
    };
    while !stop.load(Ordering::Relaxed) {
        let client = targets.pick(task);
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
        let failed = if let Some((id, event)) = retry {
            let answer = client.post_event_json(&event).await;
            let mut l = ledger.lock().unwrap();
            match answer {
                Ok(r) if r.status == 503 => {
                    l.unavailable("a retry of an acked event", &r);
                    true
                }
                Ok(r) => {
                    l.retry_answer(&id, r.status, &r.body, "during load");
                    false
                }
                Err(_) => {
                    l.count("transport error");
                    true
                }
            }
        } else if roll < 30 {
            let mut events = Vec::with_capacity(spec.batch_size + 1);
            let mut ids = Vec::with_capacity(spec.batch_size + 1);
            {
                let mut l = ledger.lock().unwrap();
                for _ in 0..spec.batch_size {
                    let id = next_id();
                    let (player, xp, event) = new_event(&spec, &mut rng, &id);
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
            let sent = Instant::now();
            let answer = client.post_batch(&events).await;
            let answered = Instant::now();
            let mut l = ledger.lock().unwrap();
            let outcome = match answer {
                Ok(r) => l.batch_answer(&ids, &r),
                Err(_) => {
                    l.count("transport error (batch)");
                    Outcome::Transport
                }
            };
            l.answered(sent, answered, outcome)
        } else {
            let id = next_id();
            let (player, xp, event) = new_event(&spec, &mut rng, &id);
            ledger.lock().unwrap().record_new(&id, player, xp, &event);
            let sent = Instant::now();
            let answer = client.post_event_json(&event).await;
            let answered = Instant::now();
            let mut l = ledger.lock().unwrap();
            let outcome = match answer {
                Ok(r) if r.status == 503 => {
                    l.unavailable("a new event", &r);
                    Outcome::Unavailable
                }
                Ok(r) => {
                    l.first_answer(&id, r.status, &r.body);
                    if r.status == 202 {
                        Outcome::Accepted
                    } else {
                        Outcome::Other(r.status)
                    }
                }
                Err(_) => {
                    l.count("transport error");
                    Outcome::Transport
                }
            };
            l.answered(sent, answered, outcome)
        };
        if failed {
            tokio::time::sleep(PAUSE_AFTER_FAILURE).await;
        }
    }
}

/// After the fault: resends every event that is acknowledged or of unknown fate, once, with its
/// eventId and body. Acknowledged ones must be known (208); unknown ones are settled by the
/// answer (202: it was lost and is stored now; 208: it had been committed). Returns how many
/// were resent and how many of them were of unknown fate.
pub async fn resend_all(
    client: &Client,
    ledger: &Arc<Mutex<Ledger>>,
    when: &str,
    concurrency: usize,
) -> (usize, usize) {
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
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut l = ledger.lock().unwrap();
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
            Fate::Acked => l.retry_answer(&id, r.status, &r.body, when),
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

/// Waits for the pipeline to show what was committed: calls `observe` until `mismatches` of
/// its answer is empty, for at most `catch_up`, and gives up early when nothing changed for
/// 3 s while the numbers are still wrong (an overcount never heals). Returns the last
/// mismatches (empty: all good). `observe` failing fails the test with its message.
pub async fn settle<O, F, Fut>(
    mut observe: F,
    mismatches: impl Fn(&O) -> Vec<String>,
    catch_up: Duration,
) -> Vec<String>
where
    O: PartialEq,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<O, String>>,
{
    let deadline = Instant::now() + catch_up;
    let mut last: Option<O> = None;
    let mut unchanged_since = Instant::now();
    loop {
        let seen = observe()
            .await
            .unwrap_or_else(|e| panic!("reading what the server shows failed: {e}"));
        let problems = mismatches(&seen);
        if problems.is_empty() {
            return problems;
        }
        if last.as_ref() != Some(&seen) {
            unchanged_since = Instant::now();
            last = Some(seen);
        }
        if Instant::now() > deadline || unchanged_since.elapsed() > Duration::from_secs(3) {
            return problems;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Why a value differs from the committed sum, in words.
pub fn verdict(got: u64, want: u64) -> String {
    if got < want {
        format!("{} XP missing: lost or not yet applied", want - got)
    } else {
        format!("{} XP too many: double counted", got - want)
    }
}
