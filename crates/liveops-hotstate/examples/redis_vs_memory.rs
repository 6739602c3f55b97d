//! Leaderboard apply and top-100 read at 100k players: memory vs Redis, same run.
//!
//! `cargo run --release -p liveops-hotstate --example redis_vs_memory [players]`
//! (Redis from `LIVEOPS_TEST_REDIS`, default 127.0.0.1:6379; a fresh namespace, deleted after).
//! Apply: every player gets one event, then as many again on random players, in batches of
//! 1000 (what the leaderboard worker sends), each event on the daily, weekly and seasonal boards.
//! Read: 1000 top-100 pages one after the other.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use liveops_domain::window::{Calendar, Window};
use liveops_domain::PlayerId;
use liveops_hotstate::testing::{redis_url, unique_namespace};
use liveops_hotstate::{BoardEvent, Leaderboards, MemoryLeaderboards, RedisHotState};
use rand::{Rng, SeedableRng};

const BATCH: usize = 1000;
const READS: usize = 1000;

async fn measure(
    name: &str,
    boards: Arc<dyn Leaderboards>,
    events: &[BoardEvent],
    now: DateTime<Utc>,
) {
    boards.replace(Vec::new(), 0, 0).await.expect("replace");
    let started = Instant::now();
    for chunk in events.chunks(BATCH) {
        let upto = chunk.last().map_or(0, |e| e.seq);
        boards.apply(chunk, upto).await.expect("apply");
    }
    let apply = started.elapsed();
    let mut lat: Vec<Duration> = Vec::with_capacity(READS);
    for _ in 0..READS {
        let t = Instant::now();
        let page = boards
            .page(Window::Weekly, now, 0, 100)
            .await
            .expect("page");
        assert_eq!(page.entries.len(), 100);
        lat.push(t.elapsed());
    }
    lat.sort();
    println!(
        "{name:>6}: apply {} events x {} windows in {:.2?} = {:.0} events/s | top-100 read p50 {:.0?} p99 {:.0?} ({} players)",
        events.len(),
        boards.windows().len(),
        apply,
        events.len() as f64 / apply.as_secs_f64(),
        lat[READS / 2],
        lat[READS * 99 / 100],
        boards.total(Window::Weekly, now).await.expect("total"),
    );
}

#[tokio::main]
async fn main() {
    let players: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let now: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-11-22T12:00:00Z")
        .expect("a valid timestamp")
        .with_timezone(&Utc);
    let ids: Vec<PlayerId> = (0..players)
        .map(|i| PlayerId::parse(format!("player_{i}")).expect("valid id"))
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let events: Vec<BoardEvent> = (0..players * 2)
        .map(|i| BoardEvent {
            seq: i as u64 + 1,
            player: ids[if i < players {
                i
            } else {
                rng.gen_range(0..players)
            }]
            .clone(),
            xp: rng.gen_range(1..500),
            received_at: now,
        })
        .collect();
    let memory = Arc::new(MemoryLeaderboards::new(
        Calendar::default(),
        Window::ALL.to_vec(),
    ));
    measure("memory", memory, &events, now).await;
    let redis = match RedisHotState::connect(&redis_url(), &unique_namespace()).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Redis unreachable ({e}); only memory measured");
            return;
        }
    };
    let boards = Arc::new(redis.leaderboards(Calendar::default(), Window::ALL.to_vec()));
    measure("redis", boards, &events, now).await;
    match redis.delete_namespace().await {
        Ok(n) => eprintln!("deleted {n} keys of namespace {}", redis.namespace()),
        Err(e) => eprintln!("could not delete namespace {}: {e}", redis.namespace()),
    }
}
