//! Playing the scenario against the server: each player's events on a connection of its own,
//! paced like a human (or not, for the flooders), within one deadline; then the flags the
//! fairness guard raised, read back once their count has settled.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::scenario::{Body, Script};
use super::score::Outcome;
use crate::http::Conn;
use crate::options::Plan;
use crate::payload::SignedPost;

/// One event every 200 ms at most: 5 events/s, half the default flood limit.
const PACE: Duration = Duration::from_millis(200);
/// Players sending at once (each holds one connection).
const MAX_PARALLEL: usize = 512;
/// The sending phases end by then whatever is left (a measurement is always bounded).
pub(super) const SEND_DEADLINE: Duration = Duration::from_secs(120);
/// How long to wait for the flag count to settle.
const SETTLE_MAX: Duration = Duration::from_secs(30);
const SETTLE_STABLE: Duration = Duration::from_secs(1);

/// What one player's events got.
pub(super) type Sent = Vec<(usize, Outcome)>;

pub(super) struct Sender {
    pub(super) addr: std::net::SocketAddr,
    pub(super) post: SignedPost,
    pub(super) timeout: Duration,
    pub(super) deadline: Instant,
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

pub(super) fn write_event(out: &mut Vec<u8>, id: &str, player: &str, ts: i64, body: Body) {
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

pub(super) async fn run_phase(
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
pub(super) async fn collect_flags(
    plan: &Plan,
) -> anyhow::Result<(HashMap<String, String>, u64, Duration)> {
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
