//! Appends per second into the JetStream log, against the machine's NATS (or
//! `LIVEOPS_TEST_NATS`), in a namespace of its own that is deleted afterwards.
//!
//! `cargo run -p liveops-bus --example bus_append_throughput [seconds per run, default 5]
//! [single-event appenders, default 64]`
//!
//! Runs: concurrent single-event appenders (64 by default); batches of 100 from 1 and from 8 concurrent
//! appenders; then reads the whole log back with `read_after` in pages of 2000, and once more
//! through a role consumer (fetch 2000, ack them, repeat).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use liveops_bus::testing::TestBus;
use liveops_bus::{NatsOptions, RoleConsumer, RoleOptions};
use liveops_domain::Event;
use liveops_store::{EventLog, NewEvent};

fn event(id: String, player: usize) -> NewEvent {
    let event = Event::from_value(serde_json::json!({
        "eventId": id, "type": "progression", "playerId": format!("player_{player}"),
        "ts": 1_700_000_000, "payload": {"deltaXp": 150, "activity": "quest_completion"},
    }))
    .expect("valid event");
    NewEvent {
        event,
        received_at: Utc::now(),
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn run(
    tag: &str,
    name: &str,
    log: Arc<dyn EventLog>,
    tasks: usize,
    batch: usize,
    secs: u64,
) -> (u64, f64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let t0 = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let log = log.clone();
        let tag = tag.to_owned();
        handles.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut n = 0u64;
            let mut i = 0usize;
            while Instant::now() < deadline {
                let events: Vec<NewEvent> = (0..batch)
                    .map(|k| event(format!("{tag}-{t}-{i}-{k}"), (t * 31 + k) % 1000))
                    .collect();
                i += 1;
                let s = Instant::now();
                let res = log.append(events).await.expect("append");
                lat.push(s.elapsed());
                n += res.len() as u64;
            }
            (n, lat)
        }));
    }
    let mut total = 0;
    let mut lat = Vec::new();
    for h in handles {
        let (n, l) = h.await.expect("task");
        total += n;
        lat.extend(l);
    }
    let elapsed = t0.elapsed().as_secs_f64();
    lat.sort();
    let rate = total as f64 / elapsed;
    println!(
        "{name:<28} {total:>8} events in {elapsed:.2}s = {rate:>9.0} events/s; append latency p50 {:?} p99 {:?} max {:?}",
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        lat.last().copied().unwrap_or_default()
    );
    (total, rate)
}

#[tokio::main]
async fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let singles: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    let Some(bus) = TestBus::new("append_throughput") else {
        return;
    };
    let nats = bus
        .log(NatsOptions::default())
        .await
        .expect("connect to nats");
    let log: Arc<dyn EventLog> = Arc::new(nats.clone());
    println!("nats {} namespace {}", bus.url(), bus.namespace());
    let mut total = 0;
    total += run(
        "s",
        &format!("{singles} x single-event appends"),
        log.clone(),
        singles,
        1,
        secs,
    )
    .await
    .0;
    total += run("b1", "1 x batches of 100", log.clone(), 1, 100, secs)
        .await
        .0;
    total += run("b8", "8 x batches of 100", log.clone(), 8, 100, secs)
        .await
        .0;

    let t0 = Instant::now();
    let (mut after, mut read) = (0u64, 0u64);
    loop {
        let page = log.read_after(after, 2000).await.expect("read_after");
        let Some(last) = page.last() else { break };
        after = last.seq;
        read += page.len() as u64;
    }
    let elapsed = t0.elapsed().as_secs_f64();
    println!(
        "{:<28} {read:>8} events in {elapsed:.2}s = {:>9.0} events/s (pages of 2000)",
        "read_after",
        read as f64 / elapsed
    );
    assert_eq!(read, total, "everything appended reads back");

    let consumer = RoleConsumer::open(&nats, "bench", 0, RoleOptions::default())
        .await
        .expect("role consumer");
    let t0 = Instant::now();
    let mut acked = 0u64;
    while acked < total {
        let batch = consumer
            .fetch(2000, Duration::from_secs(1))
            .await
            .expect("fetch");
        if batch.is_empty() {
            break;
        }
        consumer.ack(&batch).await.expect("ack");
        acked += batch.len() as u64;
    }
    let elapsed = t0.elapsed().as_secs_f64();
    println!(
        "{:<28} {acked:>8} events in {elapsed:.2}s = {:>9.0} events/s (fetch 2000, ack each)",
        "role consumer",
        acked as f64 / elapsed
    );
    assert_eq!(acked, total, "the role consumer delivers everything");
    consumer.delete().await.expect("delete consumer");
}
