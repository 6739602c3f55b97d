//! Append throughput of the event log, SQLite vs PostgreSQL in the same run: N concurrent
//! appenders each appending batches of B events in a loop for a few seconds; prints events/s
//! and the append latency (p50 / p99 / max). PostgreSQL uses a throwaway database
//! (`liveops_store::testing::temp_postgres`; `LIVEOPS_TEST_PG` overrides the server).
//!
//! `cargo run -p liveops-store --example store_append_throughput [seconds]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use liveops_domain::Event;
use liveops_store::{EventLog, NewEvent, PgStore, SqliteStore};
use serde_json::json;

fn event(id: String, player: usize) -> NewEvent {
    let event = Event::from_value(json!({
        "eventId": id, "type": "progression", "playerId": format!("player_{player}"),
        "ts": 1_700_000_000, "payload": {"deltaXp": 150, "activity": "quest_completion"}
    }))
    .expect("a valid event");
    NewEvent {
        event,
        received_at: Utc::now(),
    }
}

struct Figures {
    events: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

async fn run(
    log: Arc<dyn EventLog>,
    tag: &str,
    appenders: usize,
    batch: usize,
    secs: u64,
) -> Figures {
    let until = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for a in 0..appenders {
        let log = log.clone();
        let tag = tag.to_string();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = 0usize;
            let mut i = 0usize;
            while Instant::now() < until {
                let events = (0..batch)
                    .map(|k| {
                        i += 1;
                        event(format!("{tag}_{a}_{i}"), (a * 7919 + k) % 1000)
                    })
                    .collect();
                let t = Instant::now();
                let r = log.append(events).await.expect("append");
                latencies.push(t.elapsed());
                n += r.len();
            }
            (n, latencies)
        }));
    }
    let mut events = 0;
    let mut latencies = Vec::new();
    for t in tasks {
        let (n, l) = t.await.expect("appender task");
        events += n;
        latencies.extend(l);
    }
    latencies.sort_unstable();
    Figures {
        events,
        elapsed: started.elapsed(),
        latencies,
    }
}

fn report(store: &str, appenders: usize, batch: usize, f: &Figures) {
    let pct = |p: f64| {
        let i = ((f.latencies.len() as f64 * p).ceil() as usize).saturating_sub(1);
        f.latencies.get(i).copied().unwrap_or_default()
    };
    println!(
        "{store:<10} {appenders:>3} appenders x {batch:>3} events: {:>8.0} events/s   latency p50 {:>7.2?} p99 {:>7.2?} max {:>7.2?}",
        f.events as f64 / f.elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        f.latencies.last().copied().unwrap_or_default(),
    );
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secs: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(5);
    let scenarios = [(64, 1), (8, 100), (64, 100)];

    let dir = tempfile::tempdir()?;
    let sqlite: Arc<dyn EventLog> = Arc::new(SqliteStore::open(dir.path())?);
    for (appenders, batch) in scenarios {
        let f = run(
            sqlite.clone(),
            &format!("s{appenders}x{batch}"),
            appenders,
            batch,
            secs,
        )
        .await;
        report("sqlite", appenders, batch, &f);
    }

    let Some(db) = liveops_store::testing::temp_postgres().await else {
        return Ok(());
    };
    {
        let pg: Arc<dyn EventLog> = Arc::new(PgStore::connect(db.url(), 16).await?);
        for (appenders, batch) in scenarios {
            let f = run(
                pg.clone(),
                &format!("p{appenders}x{batch}"),
                appenders,
                batch,
                secs,
            )
            .await;
            report("postgres", appenders, batch, &f);
        }
    }
    Ok(())
}
