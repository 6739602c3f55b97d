//! The load generator behind `liveops loadgen`: signed load against a server on this machine
//! (`docs/api.md`). The binary parses [`Args`] (a `clap::Args`, flattened into its subcommand)
//! and calls [`run`], which prints the report and returns an error only when the run could not
//! start (bad flags, no server, no secret).
//!
//! - [`options`]: the flags and the resolved [`options::Plan`] (loopback only, always bounded).
//! - [`payload`]: event bodies and signed requests written into reused buffers.
//! - [`http`]: a minimal keep-alive HTTP/1.1 connection, cheap per request.
//! - [`worker`]: the open-loop scheduler and the per-connection workers.
//! - [`probe`]: `--probe-visibility`, how soon an accepted event shows on the leaderboard.
//! - [`stats`]: what a run measured (counters, latencies, percentiles).
//! - [`report`]: the table, `--json` and hints.
//! - [`fairness`]: `--scenario fairness`, honest players and cheaters against the fairness guard.
//!
//! The generator shares the machine with the server, so every microsecond it spends per request
//! is taken from the server: bodies are written by hand, signed with a pre-keyed MAC, sent with
//! one write on a kept-alive connection, and only error and batch answers are parsed.

use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use liveops_client::Signer;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

mod fairness;
mod http;
mod options;
mod payload;
mod probe;
mod report;
mod stats;
mod worker;

pub use options::Args;
use options::{Bound, Pace, Plan, Scenario};
use payload::{EventWriter, RequestWriter};
use report::Report;
use stats::Stats;
use worker::Shared;

/// Runs the load (or the fairness scenario) that `args` describe and prints its report on
/// standard output: a table, or one JSON object with `--json`.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let plan = Arc::new(Plan::from_args(&args)?);
    let secret = args.key.resolve()?;
    let signer = Signer::new(&secret.secret);
    // Unique per run, so event ids never repeat across runs (a repeat would be answered 208).
    let run_id = format!("{:08x}", rand::random::<u32>());
    if args.scenario == Scenario::Fairness {
        let opts = fairness::Options {
            honest: args.players.unwrap_or(300),
            cheaters: args.cheaters,
            seed: args.seed,
        };
        return fairness::run(&plan, opts, signer, secret.key_id.as_deref(), &run_id).await;
    }

    let shared = Shared::new();
    let interrupted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let shared = shared.clone();
        let interrupted = interrupted.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                interrupted.store(true, Ordering::Relaxed);
                shared.stop.store(true, Ordering::Relaxed);
            }
        });
    }

    // Connections are spread over the generator threads; each gets its own request writer.
    let mut per_thread: Vec<Vec<RequestWriter>> = (0..plan.threads).map(|_| Vec::new()).collect();
    for i in 0..plan.concurrency {
        let events = EventWriter::new(
            &run_id,
            plan.players,
            plan.mix.clone(),
            rand::random::<u64>() ^ u64::from(i),
        );
        per_thread[(i % plan.threads) as usize].push(RequestWriter::new(
            &plan,
            signer.clone(),
            secret.key_id.as_deref(),
            events,
        ));
    }
    let mut threads = Vec::new();
    for (i, writers) in per_thread.into_iter().enumerate() {
        threads.push(worker::spawn_thread(
            i as u32,
            plan.clone(),
            shared.clone(),
            writers,
        )?);
    }

    // Every connection is opened before the clock starts, so connecting is not latency.
    let (mut connected, mut first_error) = (0, None);
    for t in &mut threads {
        if let Ok(ready) = (&mut t.ready).await {
            connected += ready.connected;
            first_error = first_error.or(ready.first_error);
        }
    }
    if connected == 0 {
        // Dropping the start senders ends the threads.
        drop(threads);
        bail!(
            "could not connect to {} ({}): is the server running (liveops serve, with RATE_LIMIT_MAX=0 for load tests)?",
            plan.addr,
            first_error.unwrap_or_else(|| "no connection opened".into())
        );
    }

    // The probes run on this runtime, apart from the generator threads and their connections.
    let prober = match plan.probe {
        Some(interval) => {
            let p = probe::Prober::new(
                &plan,
                interval,
                signer.clone(),
                secret.key_id.as_deref(),
                &run_id,
            );
            p.warm_up()
                .await
                .with_context(|| format!("opening the probe connections to {}", plan.addr))?;
            Some(p)
        }
        None => None,
    };

    let start = Instant::now();
    let mut done = Vec::new();
    for t in threads {
        let _ = t.start.send(start);
        done.push(t.done);
    }
    let probe_stop = CancellationToken::new();
    let probes = prober.map(|p| tokio::spawn(p.run(start, probe_stop.clone())));

    let progress = (!plan.json && std::io::stderr().is_terminal())
        .then(|| spawn_progress(&plan, shared.clone(), start));

    let mut stats = Stats::default();
    for d in done {
        stats.merge(&d.await.context("a generator thread died")?);
    }
    let elapsed = start.elapsed();
    if let Some((bar, task)) = progress {
        task.abort();
        bar.finish_and_clear();
    }
    // Probes stop with the load; those in flight finish (within the probe timeout).
    probe_stop.cancel();
    let probe_stats = match probes {
        Some(task) => Some(task.await.context("the probe task died")?),
        None => None,
    };

    let interrupted = interrupted.load(Ordering::Relaxed);
    let unsent = match (plan.pace, plan.bound) {
        (Pace::Rate { requests_per_sec }, Bound::Duration(d)) if !interrupted => {
            worker::due_within(d, requests_per_sec).saturating_sub(stats.requests)
        }
        _ => 0,
    };
    let report = Report {
        plan: &plan,
        stats: &stats,
        elapsed,
        secret_source: &secret.source,
        interrupted,
        unsent,
        probe: probe_stats.as_ref(),
    };
    if plan.json {
        println!("{}", serde_json::to_string_pretty(&report.json())?);
    } else {
        print!("{}", report.human());
    }
    Ok(())
}

/// A bar on stderr, redrawn ten times a second from the shared counters: events for --count
/// runs, time for --duration runs.
fn spawn_progress(
    plan: &Plan,
    shared: Arc<Shared>,
    start: Instant,
) -> (ProgressBar, tokio::task::JoinHandle<()>) {
    let (len, by_time) = match plan.bound {
        Bound::Requests { events, .. } => (events, false),
        Bound::Duration(d) => (d.as_millis() as u64, true),
    };
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    let template = if by_time {
        "{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}% {msg}"
    } else {
        "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    let task = {
        let bar = bar.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            let (mut last_events, mut last_at) = (0u64, Instant::now());
            loop {
                tick.tick().await;
                let events = shared.done_events.load(Ordering::Relaxed);
                let bad = shared.bad_events.load(Ordering::Relaxed);
                let now = Instant::now();
                let rate = (events - last_events) as f64
                    / now.duration_since(last_at).as_secs_f64().max(1e-3);
                (last_events, last_at) = (events, now);
                bar.set_position(if by_time {
                    ((now - start).as_millis() as u64).min(len)
                } else {
                    events
                });
                bar.set_message(format!(
                    "{} events, {}/s, {} not 2xx",
                    report::fmt_count(events),
                    report::fmt_rate(rate),
                    report::fmt_count(bad)
                ));
            }
        })
    };
    (bar, task)
}
