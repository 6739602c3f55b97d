//! `--scenario fairness`: how well the fairness guard (`docs/fairness.md`) tells cheaters from
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
//!
//! - [`scenario`]: the players and their events;
//! - [`send`]: playing them against the server and reading the flags back;
//! - [`score`]: the table rows and the report.

mod scenario;
mod score;
mod send;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use liveops_client::Signer;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::http::Conn;
use crate::options::Plan;
use crate::payload::SignedPost;
use scenario::{Kind, Scenario, HONEST_WARMUP};
use score::{human, row_json, score, Outcome};
use send::{collect_flags, run_phase, Sender, SEND_DEADLINE};

/// The flags of `--scenario fairness`.
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
