//! Resident memory of a million players on the three windows.
//!
//! `cargo run --release -p liveops-hotstate --example board_rss -- apply|load [players]`:
//! `apply` feeds one event per player through `MemoryLeaderboards::apply`; `load` rebuilds each
//! window with `MemoryLeaderboards::load`, whose B-tree nodes start half full (see
//! `BoardIndex::from_rows`).

use std::time::Instant;

use chrono::{DateTime, Utc};
use liveops_domain::window::{Calendar, Window};
use liveops_domain::PlayerId;
use liveops_hotstate::MemoryLeaderboards;

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "apply".into());
    let players: usize = args
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let now: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-11-22T12:00:00Z")
        .expect("a valid timestamp")
        .with_timezone(&Utc);

    let before = rss_mib();
    let boards = MemoryLeaderboards::new(Calendar::default(), Window::ALL.to_vec());
    let started = Instant::now();
    let id = |i: usize| PlayerId::parse(format!("player_{i:07}")).expect("generated ids are valid");
    // Deterministic, well spread scores without a random number generator.
    let score = |i: usize| ((i as i64).wrapping_mul(2_654_435_761) % 2_000_000).abs();
    match mode.as_str() {
        "apply" => {
            for i in 0..players {
                boards.apply(&id(i), score(i), now);
            }
        }
        "load" => {
            for window in Window::ALL {
                boards.load(
                    boards.period(window, now),
                    (0..players).map(|i| (id(i), score(i))),
                );
            }
        }
        other => panic!("unknown mode {other:?}, expected apply or load"),
    }
    let elapsed = started.elapsed();
    let after = rss_mib();
    println!(
        "{mode}: {players} players x {} windows in {elapsed:?}; VmRSS {before:.1} MiB -> {after:.1} MiB (+{:.1} MiB, {:.0} bytes per player per window)",
        Window::ALL.len(),
        after - before,
        (after - before) * 1024.0 * 1024.0 / (players * Window::ALL.len()) as f64,
    );
    assert_eq!(boards.total(Window::Daily, now), players as u64);
}
