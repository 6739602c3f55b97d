//! `--scenario fairness`: how well the fairness guard (SPEC section 7) tells cheaters from
//! honest players, measured from outside.
//!
//! An honest population (each player with a typical `deltaXp` drawn log-normally around 100,
//! ±30% noise per event, 1 to 3 activities, occasional boss kills of tier 1-5 at about 100 points
//! per tier) plays about 30 events each, never faster than 5 events/s. Its first third goes out
//! first (the warm-up), so the population baselines exist before the cheaters start. Then five
//! kinds of cheaters play next to the rest of the honest events:
//!
//! - `jump`: 15 honest-looking events, then 2 at 100x the player's mean;
//! - `ramp`: +10% per event over 30 events (slow drift; not expected to be caught);
//! - `boss`: 12 normal boss kills of one tier, then 3 at 20x the points;
//! - `fresh`: a new account whose first 3 events are 50x the population's typical `deltaXp`;
//! - `flood`: 40 events for one player within one second.
//!
//! Every event's id is remembered with its label (honest, a cheat kind, or a cheater's
//! honest-looking warm-up). Once the flag count has been stable for a second, every flag is
//! paged in, and an event counts as caught when it was flagged or refused at the gateway
//! (403 `player_blocked`, 429 `player_flooding`). Values are drawn from a seeded RNG; the ids are
//! unique per run (players are fresh every run, so earlier runs cannot bias the baselines).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use liveops_client::Signer;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::http::Conn;
use super::options::Plan;
use super::payload::SignedPost;
use super::report::error_code;

const ACTIVITIES: [&str; 3] = ["quest_completion", "monster_hunt", "exploration"];
/// Honest events per player, and how many of them go out in the warm-up.
const HONEST_EVENTS: usize = 30;
const HONEST_WARMUP: usize = 10;
/// One event every 200 ms at most: 5 events/s, half the default flood limit.
const PACE: Duration = Duration::from_millis(200);
/// The share of honest events that are boss kills.
const BOSS_SHARE: f64 = 0.1;
/// The population's typical deltaXp (the median of the log-normal strengths).
const TYPICAL_XP: f64 = 100.0;
/// Players sending at once (each holds one connection).
const MAX_PARALLEL: usize = 512;
/// The sending phases end by then whatever is left (a measurement is always bounded).
const SEND_DEADLINE: Duration = Duration::from_secs(120);
/// How long to wait for the flag count to settle.
const SETTLE_MAX: Duration = Duration::from_secs(30);
const SETTLE_STABLE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Jump,
    Ramp,
    Boss,
    Fresh,
    Flood,
}

impl Kind {
    pub const ALL: [Kind; 5] = [Kind::Jump, Kind::Ramp, Kind::Boss, Kind::Fresh, Kind::Flood];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Jump => "jump",
            Kind::Ramp => "ramp",
            Kind::Boss => "boss",
            Kind::Fresh => "fresh",
            Kind::Flood => "flood",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Kind::Jump => "2 events at 100x the player's mean",
            Kind::Ramp => "+10%/event drift (not expected to be caught)",
            Kind::Boss => "boss points at 20x",
            Kind::Fresh => "new account, first 3 events at 50x typical",
            Kind::Flood => "40 events within one second",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Label {
    Honest,
    /// A cheater's honest-looking events before the cheat.
    Warmup(Kind),
    Cheat(Kind),
}

impl Label {
    pub fn name(self) -> String {
        match self {
            Label::Honest => "honest".into(),
            Label::Warmup(k) => format!("{} warm-up", k.as_str()),
            Label::Cheat(k) => format!("{} cheat", k.as_str()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Body {
    Xp { xp: u32, activity: &'static str },
    Boss { tier: u32, points: u32 },
}

#[derive(Debug, Clone)]
pub struct PlannedEvent {
    pub id: String,
    pub label: Label,
    pub body: Body,
}

/// One player's events in order, sent on one connection.
#[derive(Debug, Clone)]
pub struct Script {
    pub player: String,
    pub events: Vec<PlannedEvent>,
    /// At most 5 events/s; false for the flooders (as fast as the answers come).
    pub paced: bool,
}

/// The whole run: the warm-up phase, then the main phase.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub warmup: Vec<Script>,
    pub main: Vec<Script>,
}

/// A log-normal strength around `median` with log-sd 0.5 (so players differ by factors).
fn strength(rng: &mut SmallRng, median: f64) -> f64 {
    // Box-Muller.
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.gen();
    let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    median * (0.5 * z).exp()
}

fn noisy(rng: &mut SmallRng, mean: f64) -> u32 {
    (mean * rng.gen_range(0.7..=1.3)).round().max(1.0) as u32
}

struct Builder {
    run: String,
    rng: SmallRng,
}

impl Builder {
    fn script(&mut self, player: String, paced: bool, events: Vec<(Label, Body)>) -> Script {
        let events = events
            .into_iter()
            .enumerate()
            .map(|(i, (label, body))| PlannedEvent {
                id: format!("fg.{}.{player}.{i}", self.run),
                label,
                body,
            })
            .collect();
        Script {
            player,
            events,
            paced,
        }
    }

    fn player(&self, tag: &str, i: u32) -> String {
        format!("fg_{}_{tag}{i:04}", self.run)
    }

    fn xp(&mut self, mean: f64, activity: &'static str) -> Body {
        Body::Xp {
            xp: noisy(&mut self.rng, mean),
            activity,
        }
    }
}

impl Scenario {
    /// Builds every player's events; deterministic for a seed (apart from `run` in the ids).
    pub fn build(run: &str, honest: u32, cheaters: u32, seed: u64) -> Scenario {
        let mut b = Builder {
            run: run.to_string(),
            rng: SmallRng::seed_from_u64(seed),
        };
        let (mut warmup, mut main) = (Vec::new(), Vec::new());
        for i in 0..honest {
            let s = strength(&mut b.rng, TYPICAL_XP);
            let n_act = b.rng.gen_range(1..=3usize);
            let first = b.rng.gen_range(0..ACTIVITIES.len());
            let acts: Vec<&'static str> = (0..n_act)
                .map(|k| ACTIVITIES[(first + k) % ACTIVITIES.len()])
                .collect();
            let events: Vec<(Label, Body)> = (0..HONEST_EVENTS)
                .map(|_| {
                    let body = if b.rng.gen_bool(BOSS_SHARE) {
                        let tier = b.rng.gen_range(1..=5u32);
                        Body::Boss {
                            tier,
                            points: noisy(&mut b.rng, 100.0 * f64::from(tier)),
                        }
                    } else {
                        let a = acts[b.rng.gen_range(0..acts.len())];
                        b.xp(s, a)
                    };
                    (Label::Honest, body)
                })
                .collect();
            let player = b.player("h", i);
            let mut all = b.script(player, true, events);
            let rest = all.events.split_off(HONEST_WARMUP);
            main.push(Script {
                player: all.player.clone(),
                events: rest,
                paced: true,
            });
            warmup.push(all);
        }
        for i in 0..cheaters {
            // (a) one huge jump.
            let s = strength(&mut b.rng, TYPICAL_XP);
            let a = ACTIVITIES[b.rng.gen_range(0..ACTIVITIES.len())];
            let mut ev: Vec<(Label, Body)> = (0..15)
                .map(|_| (Label::Warmup(Kind::Jump), b.xp(s, a)))
                .collect();
            for _ in 0..2 {
                let xp = (s * 100.0).round() as u32;
                ev.push((Label::Cheat(Kind::Jump), Body::Xp { xp, activity: a }));
            }
            let p = b.player("jump", i);
            main.push(b.script(p, true, ev));

            // (b) slow ramp: the first 10 build the baseline, the other 20 are the drift.
            let s = strength(&mut b.rng, TYPICAL_XP);
            let a = ACTIVITIES[b.rng.gen_range(0..ACTIVITIES.len())];
            let ev = (0..30)
                .map(|k| {
                    let label = if k < 10 {
                        Label::Warmup(Kind::Ramp)
                    } else {
                        Label::Cheat(Kind::Ramp)
                    };
                    (label, b.xp(s * 1.1f64.powi(k), a))
                })
                .collect();
            let p = b.player("ramp", i);
            main.push(b.script(p, true, ev));

            // (c) boss-point inflation at one tier.
            let tier = b.rng.gen_range(1..=5u32);
            let base = 100.0 * f64::from(tier);
            let ev = (0..15)
                .map(|k| {
                    let (label, mean) = if k < 12 {
                        (Label::Warmup(Kind::Boss), base)
                    } else {
                        (Label::Cheat(Kind::Boss), base * 20.0)
                    };
                    let points = noisy(&mut b.rng, mean);
                    (label, Body::Boss { tier, points })
                })
                .collect();
            let p = b.player("boss", i);
            main.push(b.script(p, true, ev));

            // (d) fresh account, first 3 events at 50x the typical deltaXp.
            let a = ACTIVITIES[b.rng.gen_range(0..ACTIVITIES.len())];
            let ev = (0..3)
                .map(|_| (Label::Cheat(Kind::Fresh), b.xp(TYPICAL_XP * 50.0, a)))
                .collect();
            let p = b.player("fresh", i);
            main.push(b.script(p, true, ev));

            // (e) flooding: 40 honest-looking events as fast as possible.
            let s = strength(&mut b.rng, TYPICAL_XP);
            let a = ACTIVITIES[b.rng.gen_range(0..ACTIVITIES.len())];
            let ev = (0..40)
                .map(|_| (Label::Cheat(Kind::Flood), b.xp(s, a)))
                .collect();
            let p = b.player("flood", i);
            main.push(b.script(p, false, ev));
        }
        Scenario { warmup, main }
    }
}

/// What the gateway answered to one event.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    Accepted,
    /// 403 `player_blocked`.
    Blocked,
    /// 429 `player_flooding`.
    Flooding,
    /// Any other answer: status and error code.
    Error(String),
    /// No answer (connection or timeout).
    Transport,
    /// Not sent before the deadline.
    Unsent,
}

impl Outcome {
    pub fn classify(status: u16, body: &[u8]) -> Outcome {
        if (200..300).contains(&status) {
            return Outcome::Accepted;
        }
        let code = error_code(body);
        match (status, code.as_deref()) {
            (403, Some("player_blocked")) => Outcome::Blocked,
            (429, Some("player_flooding")) => Outcome::Flooding,
            (s, c) => Outcome::Error(format!("{s} {}", c.unwrap_or("-"))),
        }
    }

    fn refused(&self) -> bool {
        matches!(self, Outcome::Blocked | Outcome::Flooding)
    }
}

/// One line of the table: the events of one label.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    pub label: String,
    pub players: usize,
    /// Events attempted (answered or not; not counting unsent).
    pub sent: u64,
    pub flagged: u64,
    pub blocked: u64,
    pub flooding: u64,
    /// Other answers and transport failures.
    pub errors: u64,
    pub unsent: u64,
    /// Flagged or refused.
    pub caught: u64,
    /// Players with at least one caught event of this label.
    pub players_caught: usize,
    /// Flags by rule.
    pub rules: BTreeMap<String, u64>,
}

impl Row {
    pub fn rate(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            self.caught as f64 / self.sent as f64
        }
    }
}

/// Scores every event: `flags` maps a flagged event id to its rule.
pub fn score(
    events: &[(&str, &PlannedEvent, Outcome)],
    flags: &HashMap<String, String>,
) -> Vec<Row> {
    let mut rows: BTreeMap<Label, (Row, HashSet<&str>, HashSet<&str>)> = BTreeMap::new();
    for (player, ev, outcome) in events {
        let (row, players, caught_players) = rows.entry(ev.label).or_default();
        players.insert(player);
        if *outcome == Outcome::Unsent {
            row.unsent += 1;
            continue;
        }
        row.sent += 1;
        let rule = flags.get(&ev.id);
        match outcome {
            Outcome::Blocked => row.blocked += 1,
            Outcome::Flooding => row.flooding += 1,
            Outcome::Error(_) | Outcome::Transport => row.errors += 1,
            _ => {}
        }
        if let Some(rule) = rule {
            row.flagged += 1;
            *row.rules.entry(rule.clone()).or_default() += 1;
        }
        if rule.is_some() || outcome.refused() {
            row.caught += 1;
            caught_players.insert(player);
        }
    }
    let mut rows: Vec<(Label, _)> = rows.into_iter().collect();
    // Honest first, then per kind its warm-up and its cheat.
    rows.sort_by_key(|(label, _)| match label {
        Label::Honest => (0, 0),
        Label::Warmup(k) => (1 + *k as u8, 0),
        Label::Cheat(k) => (1 + *k as u8, 1),
    });
    rows.into_iter()
        .map(|(label, (mut row, players, caught))| {
            row.label = label.name();
            row.players = players.len();
            row.players_caught = caught.len();
            row
        })
        .collect()
}

/// What one player's events got.
type Sent = Vec<(usize, Outcome)>;

struct Sender {
    addr: std::net::SocketAddr,
    post: SignedPost,
    timeout: Duration,
    deadline: Instant,
}

impl Sender {
    async fn play(&self, script: &Script, seed: u64) -> Sent {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut out = Vec::with_capacity(script.events.len());
        let (mut body, mut req) = (Vec::with_capacity(512), Vec::with_capacity(1024));
        let mut conn: Option<Conn> = None;
        // Spread the players' starts over one pace period.
        let mut next = Instant::now()
            + if script.paced {
                PACE.mul_f64(rng.gen())
            } else {
                Duration::ZERO
            };
        for (i, ev) in script.events.iter().enumerate() {
            if script.paced {
                tokio::time::sleep_until(next).await;
                next =
                    Instant::now().max(next) + PACE + Duration::from_millis(rng.gen_range(0..40));
            }
            if Instant::now() >= self.deadline {
                out.push((i, Outcome::Unsent));
                continue;
            }
            let now = liveops_client::unix_now();
            body.clear();
            write_event(&mut body, &ev.id, &script.player, now, ev.body);
            self.post.write(&body, now, &mut req);
            let outcome = self.send(&mut conn, &req).await;
            out.push((i, outcome));
        }
        out
    }

    async fn send(&self, conn: &mut Option<Conn>, req: &[u8]) -> Outcome {
        if conn.is_none() {
            match tokio::time::timeout(self.timeout, Conn::connect(self.addr)).await {
                Ok(Ok(c)) => *conn = Some(c),
                _ => return Outcome::Transport,
            }
        }
        let Some(c) = conn.as_mut() else {
            return Outcome::Transport;
        };
        let (outcome, keep) = match tokio::time::timeout(self.timeout, c.round_trip(req)).await {
            Ok(Ok(r)) => (Outcome::classify(r.status, r.body), true),
            _ => (Outcome::Transport, false),
        };
        if !keep || !c.reusable {
            *conn = None;
        }
        outcome
    }
}

fn write_event(out: &mut Vec<u8>, id: &str, player: &str, ts: i64, body: Body) {
    use std::io::Write;
    let _ = match body {
        Body::Xp { xp, activity } => write!(
            out,
            r#"{{"eventId":"{id}","type":"progression","playerId":"{player}","ts":{ts},"payload":{{"deltaXp":{xp},"activity":"{activity}"}}}}"#
        ),
        Body::Boss { tier, points } => write!(
            out,
            r#"{{"eventId":"{id}","type":"boss_kill","playerId":"{player}","ts":{ts},"payload":{{"bossId":"boss_{tier}","tier":{tier},"points":{points}}}}}"#
        ),
    };
}

async fn run_phase(
    sender: &Arc<Sender>,
    scripts: &Arc<Vec<Script>>,
    seed: u64,
) -> anyhow::Result<Vec<Sent>> {
    let permits = Arc::new(Semaphore::new(MAX_PARALLEL));
    let mut set = JoinSet::new();
    for i in 0..scripts.len() {
        let (sender, scripts, permits) = (sender.clone(), scripts.clone(), permits.clone());
        set.spawn(async move {
            let _permit = permits.acquire_owned().await;
            (i, sender.play(&scripts[i], seed ^ (i as u64 + 1)).await)
        });
    }
    let mut results = vec![Vec::new(); scripts.len()];
    while let Some(r) = set.join_next().await {
        let (i, sent) = r.context("a player task died")?;
        results[i] = sent;
    }
    Ok(results)
}

#[derive(Deserialize)]
struct FlagPage {
    total: u64,
    #[serde(default)]
    flags: Vec<FlagItem>,
}

#[derive(Deserialize)]
struct FlagItem {
    #[serde(rename = "eventId")]
    event_id: String,
    #[serde(default)]
    rule: Option<String>,
}

async fn get_flags(plan: &Plan, conn: &mut Option<Conn>, query: &str) -> anyhow::Result<FlagPage> {
    let req = format!(
        "GET {}/fairness/flags?{query} HTTP/1.1\r\nHost: {}\r\nUser-Agent: liveops-loadgen\r\n\r\n",
        plan.prefix, plan.host
    );
    if conn.is_none() {
        *conn = Some(Conn::connect(plan.addr).await?);
    }
    let Some(c) = conn.as_mut() else {
        bail!("no connection");
    };
    let r = match tokio::time::timeout(plan.timeout, c.round_trip(req.as_bytes())).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            *conn = None;
            bail!("GET /fairness/flags: {}", e.as_str());
        }
        Err(_) => {
            *conn = None;
            bail!("GET /fairness/flags: timeout");
        }
    };
    if r.status != 200 {
        bail!(
            "GET /fairness/flags answered {}: {}",
            r.status,
            String::from_utf8_lossy(r.body)
        );
    }
    let page: FlagPage =
        serde_json::from_slice(r.body).context("GET /fairness/flags: unexpected body")?;
    if !c.reusable {
        *conn = None;
    }
    Ok(page)
}

/// Waits until the flag total has been stable for [`SETTLE_STABLE`] (at most [`SETTLE_MAX`]),
/// then pages in every flag: event id -> rule.
async fn collect_flags(plan: &Plan) -> anyhow::Result<(HashMap<String, String>, u64, Duration)> {
    let mut conn = None;
    let start = Instant::now();
    let mut last = get_flags(plan, &mut conn, "limit=1").await?.total;
    let mut since = Instant::now();
    while start.elapsed() < SETTLE_MAX && since.elapsed() < SETTLE_STABLE {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let total = get_flags(plan, &mut conn, "limit=1").await?.total;
        if total != last {
            (last, since) = (total, Instant::now());
        }
    }
    let waited = start.elapsed();
    let mut flags = HashMap::new();
    let mut offset = 0u64;
    loop {
        let page = get_flags(plan, &mut conn, &format!("limit=500&offset={offset}")).await?;
        let n = page.flags.len() as u64;
        for f in page.flags {
            flags.insert(f.event_id, f.rule.unwrap_or_else(|| "-".into()));
        }
        offset += n;
        if n == 0 || offset >= page.total {
            break;
        }
    }
    Ok((flags, last, waited))
}

pub struct Options {
    pub honest: u32,
    pub cheaters: u32,
    pub seed: u64,
}

pub async fn run(
    plan: &Plan,
    opts: Options,
    signer: Signer,
    key_id: Option<&str>,
    run_id: &str,
) -> anyhow::Result<()> {
    let scenario = Scenario::build(run_id, opts.honest, opts.cheaters, opts.seed);
    let path = format!("{}/events", plan.prefix);
    let start = Instant::now();
    let sender = Arc::new(Sender {
        addr: plan.addr,
        post: SignedPost::new(&path, &plan.host, signer, key_id, plan.timestamp),
        timeout: plan.timeout,
        deadline: start + SEND_DEADLINE,
    });
    Conn::connect(plan.addr).await.with_context(|| {
        format!(
            "could not connect to {}: is the server running (liveops serve, with RATE_LIMIT_MAX=0)?",
            plan.addr
        )
    })?;
    let log = |msg: &str| {
        if !plan.json {
            eprintln!("{msg}");
        }
    };
    let warmup = Arc::new(scenario.warmup);
    let main = Arc::new(scenario.main);
    log(&format!(
        "warm-up: {} honest players x {HONEST_WARMUP} events",
        warmup.len()
    ));
    let sent_warmup = run_phase(&sender, &warmup, opts.seed).await?;
    // Let the pipeline commit the warm-up so the population baselines are in place.
    tokio::time::sleep(Duration::from_secs(1)).await;
    log(&format!(
        "main: {} players ({} honest, {} x {} cheaters)",
        main.len(),
        opts.honest,
        Kind::ALL.len(),
        opts.cheaters
    ));
    let sent_main = run_phase(&sender, &main, opts.seed.rotate_left(17)).await?;
    let send_elapsed = start.elapsed();
    log("waiting for the flags to settle");
    let (flags, flags_total, waited) = collect_flags(plan).await?;

    let mut events = Vec::new();
    for (scripts, sent) in [(&warmup, &sent_warmup), (&main, &sent_main)] {
        for (script, outcomes) in scripts.iter().zip(sent) {
            for (i, outcome) in outcomes {
                events.push((script.player.as_str(), &script.events[*i], outcome.clone()));
            }
        }
    }
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for (_, _, o) in &events {
        match o {
            Outcome::Error(e) => *errors.entry(e.clone()).or_default() += 1,
            Outcome::Transport => *errors.entry("transport".into()).or_default() += 1,
            _ => {}
        }
    }
    let rows = score(&events, &flags);
    let ours = events
        .iter()
        .filter(|(_, e, _)| flags.contains_key(&e.id))
        .count();
    if plan.json {
        let j = json!({
            "scenario": "fairness",
            "url": plan.url,
            "run": run_id,
            "seed": opts.seed,
            "honestPlayers": opts.honest,
            "cheatersPerKind": opts.cheaters,
            "sendSeconds": send_elapsed.as_secs_f64(),
            "settleSeconds": waited.as_secs_f64(),
            "flagsTotalOnServer": flags_total,
            "flagsForThisRun": ours,
            "errors": errors,
            "rows": rows.iter().map(row_json).collect::<Vec<Value>>(),
        });
        println!("{}", serde_json::to_string_pretty(&j)?);
    } else {
        print!(
            "{}",
            human(
                plan,
                &opts,
                run_id,
                &rows,
                send_elapsed,
                waited,
                ours,
                &errors
            )
        );
    }
    Ok(())
}

fn row_json(r: &Row) -> Value {
    json!({
        "label": r.label,
        "players": r.players,
        "sent": r.sent,
        "flagged": r.flagged,
        "refusedBlocked": r.blocked,
        "refusedFlooding": r.flooding,
        "errors": r.errors,
        "unsent": r.unsent,
        "caught": r.caught,
        "rate": r.rate(),
        "playersCaught": r.players_caught,
        "flagsByRule": r.rules,
    })
}

#[allow(clippy::too_many_arguments)]
fn human(
    plan: &Plan,
    opts: &Options,
    run_id: &str,
    rows: &[Row],
    send: Duration,
    waited: Duration,
    ours: usize,
    errors: &BTreeMap<String, u64>,
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "fairness scenario against {}: {} honest players, {} x {} cheaters, seed {}, run {run_id}",
        plan.url,
        opts.honest,
        Kind::ALL.len(),
        opts.cheaters,
        opts.seed
    );
    let _ = writeln!(
        s,
        "sent in {:.1}s, flags settled after {:.1}s, {ours} flags on this run's events\n",
        send.as_secs_f64(),
        waited.as_secs_f64()
    );
    let _ = writeln!(
        s,
        "{:<15} {:>7} {:>7} {:>7} {:>7} {:>7} {:>6} {:>7} {:>7}  {:>9}",
        "events",
        "players",
        "sent",
        "flagged",
        "403blk",
        "429fld",
        "errors",
        "caught",
        "rate",
        "plrs hit"
    );
    for r in rows {
        let _ = writeln!(
            s,
            "{:<15} {:>7} {:>7} {:>7} {:>7} {:>7} {:>6} {:>7} {:>6.1}%  {:>9}",
            r.label,
            r.players,
            r.sent,
            r.flagged,
            r.blocked,
            r.flooding,
            r.errors,
            r.caught,
            100.0 * r.rate(),
            r.players_caught
        );
    }
    let _ = writeln!(
        s,
        "\ncaught = flagged, or refused at the gateway (403 player_blocked, 429 player_flooding);"
    );
    let _ = writeln!(
        s,
        "for honest and warm-up rows that is the false-positive rate. plrs hit = players with one or more caught events."
    );
    for k in Kind::ALL {
        let _ = writeln!(s, "  {:<6} {}", k.as_str(), k.describe());
    }
    let unsent: u64 = rows.iter().map(|r| r.unsent).sum();
    if unsent > 0 {
        let _ = writeln!(s, "{unsent} events not sent within {SEND_DEADLINE:?}");
    }
    if !errors.is_empty() {
        let list: Vec<String> = errors.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        let _ = writeln!(s, "other answers: {}", list.join(", "));
    }
    let rules: BTreeMap<&str, u64> =
        rows.iter()
            .flat_map(|r| r.rules.iter())
            .fold(BTreeMap::new(), |mut m, (k, v)| {
                *m.entry(k.as_str()).or_default() += v;
                m
            });
    if !rules.is_empty() {
        let list: Vec<String> = rules.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        let _ = writeln!(s, "flags by rule: {}", list.join(", "));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_labels_values_and_ids() {
        let sc = Scenario::build("r1", 30, 4, 7);
        assert_eq!(sc.warmup.len(), 30);
        assert_eq!(sc.main.len(), 30 + 5 * 4);
        let mut ids = HashSet::new();
        let mut by_label: BTreeMap<Label, usize> = BTreeMap::new();
        for s in sc.warmup.iter().chain(&sc.main) {
            assert!(s.player.len() <= 50, "{}", s.player);
            for e in &s.events {
                assert!(ids.insert(e.id.clone()), "duplicate {}", e.id);
                *by_label.entry(e.label).or_default() += 1;
                let mut out = Vec::new();
                write_event(&mut out, &e.id, &s.player, 1_700_000_000, e.body);
                liveops_domain::event::Event::from_slice(&out)
                    .unwrap_or_else(|err| panic!("{err:?}: {}", String::from_utf8_lossy(&out)));
            }
        }
        assert_eq!(by_label[&Label::Honest], 30 * HONEST_EVENTS);
        assert_eq!(by_label[&Label::Warmup(Kind::Jump)], 4 * 15);
        assert_eq!(by_label[&Label::Cheat(Kind::Jump)], 4 * 2);
        assert_eq!(by_label[&Label::Cheat(Kind::Ramp)], 4 * 20);
        assert_eq!(by_label[&Label::Cheat(Kind::Boss)], 4 * 3);
        assert_eq!(by_label[&Label::Cheat(Kind::Fresh)], 4 * 3);
        assert_eq!(by_label[&Label::Cheat(Kind::Flood)], 4 * 40);
        assert!(sc
            .main
            .iter()
            .filter(|s| !s.paced)
            .all(|s| s.player.contains("flood")));

        // The jump is ~100x the warm-up's mean; the fresh account's events ~50x typical.
        let jump = sc.main.iter().find(|s| s.player.contains("jump")).unwrap();
        let xp = |e: &PlannedEvent| match e.body {
            Body::Xp { xp, .. } => f64::from(xp),
            Body::Boss { .. } => panic!("not xp"),
        };
        let mean = jump.events[..15].iter().map(xp).sum::<f64>() / 15.0;
        let ratio = xp(&jump.events[15]) / mean;
        assert!((60.0..160.0).contains(&ratio), "{ratio}");
        let fresh = sc.main.iter().find(|s| s.player.contains("fresh")).unwrap();
        assert!(fresh.events.iter().all(|e| xp(e) >= 3500.0));
        // Seeded: the same seed gives the same values.
        let again = Scenario::build("r1", 30, 4, 7);
        assert_eq!(again.main[3].events[2].body, sc.main[3].events[2].body);
    }

    #[test]
    fn scoring_counts_flags_and_refusals_once() {
        let ev = |id: &str, label| PlannedEvent {
            id: id.into(),
            label,
            body: Body::Xp {
                xp: 1,
                activity: "exploration",
            },
        };
        let (h1, h2, c1, c2, c3, c4) = (
            ev("h1", Label::Honest),
            ev("h2", Label::Honest),
            ev("c1", Label::Cheat(Kind::Jump)),
            ev("c2", Label::Cheat(Kind::Jump)),
            ev("c3", Label::Cheat(Kind::Jump)),
            ev("c4", Label::Cheat(Kind::Jump)),
        );
        let events = vec![
            ("p1", &h1, Outcome::Accepted),
            ("p2", &h2, Outcome::Accepted),
            ("j1", &c1, Outcome::Accepted),
            ("j1", &c2, Outcome::Blocked),
            ("j2", &c3, Outcome::Error("400 invalid".into())),
            ("j2", &c4, Outcome::Unsent),
        ];
        let flags: HashMap<String, String> = [
            ("h2".to_string(), "population".to_string()),
            ("c1".to_string(), "zscore".to_string()),
            ("someone_else".to_string(), "hard_limit".to_string()),
        ]
        .into();
        let rows = score(&events, &flags);
        assert_eq!(rows.len(), 2);
        let honest = &rows[0];
        assert_eq!(honest.label, "honest");
        assert_eq!((honest.sent, honest.flagged, honest.caught), (2, 1, 1));
        assert_eq!((honest.players, honest.players_caught), (2, 1));
        let jump = &rows[1];
        assert_eq!(jump.label, "jump cheat");
        assert_eq!(
            (
                jump.sent,
                jump.flagged,
                jump.blocked,
                jump.errors,
                jump.unsent
            ),
            (3, 1, 1, 1, 1)
        );
        assert_eq!((jump.caught, jump.players_caught), (2, 1));
        assert!((jump.rate() - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(jump.rules.get("zscore"), Some(&1));
    }

    #[test]
    fn answers_classify() {
        let body = |code: &str| format!(r#"{{"error":{{"code":"{code}","message":"m"}}}}"#);
        assert_eq!(Outcome::classify(202, b"{}"), Outcome::Accepted);
        assert_eq!(
            Outcome::classify(403, body("player_blocked").as_bytes()),
            Outcome::Blocked
        );
        assert_eq!(
            Outcome::classify(429, body("player_flooding").as_bytes()),
            Outcome::Flooding
        );
        assert_eq!(
            Outcome::classify(429, body("rate_limited").as_bytes()),
            Outcome::Error("429 rate_limited".into())
        );
    }
}
