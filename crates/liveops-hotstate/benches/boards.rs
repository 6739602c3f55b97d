//! `BoardIndex` with a million players: the per-event update and the reads behind
//! `GET /leaderboard` and `GET /leaderboard/players/{id}` (`docs/api.md`).
//!
//! `cargo bench -p liveops-hotstate --bench boards -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::time::Instant;

use chrono::{DateTime, Utc};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use liveops_domain::window::{Calendar, Window};
use liveops_domain::PlayerId;
use liveops_hotstate::{BoardIndex, MemoryLeaderboards};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const PLAYERS: usize = 1_000_000;

fn player(i: usize) -> PlayerId {
    PlayerId::parse(format!("player_{i:07}")).expect("generated ids are valid")
}

/// Scores spread like XP over a season: many distinct values, some ties.
fn rows(rng: &mut StdRng) -> Vec<(PlayerId, i64)> {
    (0..PLAYERS)
        .map(|i| (player(i), rng.gen_range(0..2_000_000)))
        .collect()
}

fn boards(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(7);
    let rows = rows(&mut rng);
    let ids: Vec<PlayerId> = rows.iter().map(|(p, _)| p.clone()).collect();

    let started = Instant::now();
    let mut board = BoardIndex::from_rows(rows.clone());
    eprintln!("from_rows({PLAYERS}): {:?}", started.elapsed());

    let mut group = c.benchmark_group("board_1m");
    group.bench_function("add_existing", |b| {
        b.iter_batched(
            || (&ids[rng.gen_range(0..PLAYERS)], rng.gen_range(1..500)),
            |(p, delta)| black_box(board.add(p, delta)),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("rank", |b| {
        b.iter_batched(
            || &ids[rng.gen_range(0..PLAYERS)],
            |p| black_box(board.rank(p)),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("top_0_100", |b| b.iter(|| black_box(board.top(0, 100))));
    group.bench_function("top_500000_100", |b| {
        b.iter(|| black_box(board.top(500_000, 100)))
    });
    group.bench_function("around_5", |b| {
        b.iter_batched(
            || &ids[rng.gen_range(0..PLAYERS)],
            |p| black_box(board.around(p, 5)),
            BatchSize::SmallInput,
        )
    });
    group.finish();

    // The consumer's path: one event updates the daily, weekly and seasonal boards.
    let boards = MemoryLeaderboards::new(Calendar::default(), Window::ALL.to_vec());
    let now: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-11-22T12:00:00Z")
        .expect("a valid timestamp")
        .with_timezone(&Utc);
    for window in Window::ALL {
        boards.load(boards.period(window, now), rows.clone());
    }
    let mut group = c.benchmark_group("memory_leaderboards_1m_x3");
    group.bench_function("apply_existing", |b| {
        b.iter_batched(
            || (&ids[rng.gen_range(0..PLAYERS)], rng.gen_range(1..500)),
            |(p, xp)| black_box(boards.apply(p, xp, now)),
            BatchSize::SmallInput,
        )
    });
    group.finish();

    // The load generator's shape: 20k players whose scores grow from zero in small steps, so
    // many players share a score and key comparisons fall through to the names.
    let boards = MemoryLeaderboards::new(Calendar::default(), Window::ALL.to_vec());
    let few: Vec<PlayerId> = (0..20_000).map(player).collect();
    for p in &few {
        boards.apply(p, rng.gen_range(1..500), now);
    }
    let mut group = c.benchmark_group("memory_leaderboards_20k_x3");
    group.bench_function("apply_existing", |b| {
        b.iter_batched(
            || (&few[rng.gen_range(0..few.len())], rng.gen_range(1..500)),
            |(p, xp)| black_box(boards.apply(p, xp, now)),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, boards);
criterion_main!(benches);
