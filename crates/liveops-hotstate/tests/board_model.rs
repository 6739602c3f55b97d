//! Model-based test of `BoardIndex`: random operations against a plain map sorted on every query.
//! Small B-tree nodes make a few dozen players span many nodes, so node splits, node removal
//! and reads across node edges are all exercised.

use std::cmp::Reverse;
use std::collections::HashMap;

use liveops_domain::PlayerId;
use liveops_hotstate::{BoardIndex, Entry};
use proptest::prelude::*;

const PLAYERS: usize = 40;

#[derive(Debug, Clone)]
enum Op {
    Add(usize, i64),
    Remove(usize),
    Top(usize, usize),
    Rank(usize),
    Around(usize, usize),
    EntriesFor(Vec<usize>),
    Clear,
}

fn player(i: usize) -> PlayerId {
    PlayerId::parse(format!("p{i:02}")).expect("generated ids are valid")
}

fn delta() -> impl Strategy<Value = i64> {
    prop_oneof![
        // Few distinct values, so ties (broken by player id) are common.
        8 => -3i64..10,
        1 => any::<i64>(),
        1 => Just(i64::MAX),
        1 => Just(i64::MIN),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let p = 0..PLAYERS + 3; // a few ids that are never added
    prop_oneof![
        100 => (p.clone(), delta()).prop_map(|(i, d)| Op::Add(i, d)),
        20 => p.clone().prop_map(Op::Remove),
        20 => (0usize..50, 0usize..50).prop_map(|(o, l)| Op::Top(o, l)),
        20 => p.clone().prop_map(Op::Rank),
        20 => (p.clone(), 0usize..8).prop_map(|(i, k)| Op::Around(i, k)),
        10 => proptest::collection::vec(p, 0..6).prop_map(Op::EntriesFor),
        // Rare: clearing often would keep the board too small to be interesting.
        1 => Just(Op::Clear),
    ]
}

/// The obviously correct board: a map, sorted on every read.
#[derive(Default)]
struct Model(HashMap<PlayerId, i64>);

impl Model {
    fn sorted(&self) -> Vec<Entry> {
        let mut rows: Vec<(&PlayerId, i64)> = self.0.iter().map(|(p, s)| (p, *s)).collect();
        rows.sort_by_key(|(p, s)| (Reverse(*s), (*p).clone()));
        rows.into_iter()
            .enumerate()
            .map(|(i, (p, s))| Entry {
                rank: i as u64 + 1,
                player_id: p.clone(),
                score: s,
            })
            .collect()
    }

    fn position(&self, p: &PlayerId) -> Option<usize> {
        self.sorted().iter().position(|e| &e.player_id == p)
    }
}

fn run(capacity: usize, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut board = BoardIndex::with_node_capacity(capacity);
    let mut model = Model::default();
    for op in ops {
        match op {
            Op::Add(i, d) => {
                let p = player(i);
                let new = model.0.get(&p).copied().unwrap_or(0).saturating_add(d);
                model.0.insert(p.clone(), new);
                prop_assert_eq!(board.add(&p, d), new);
            }
            Op::Remove(i) => {
                let p = player(i);
                prop_assert_eq!(board.remove(&p), model.0.remove(&p));
            }
            Op::Top(offset, limit) => {
                let want: Vec<Entry> = model
                    .sorted()
                    .into_iter()
                    .skip(offset)
                    .take(limit)
                    .collect();
                prop_assert_eq!(board.top(offset, limit), want);
            }
            Op::Rank(i) => {
                let p = player(i);
                prop_assert_eq!(board.rank(&p), model.position(&p).map(|r| r as u64 + 1));
                prop_assert_eq!(board.score(&p), model.0.get(&p).copied());
            }
            Op::Around(i, k) => {
                let p = player(i);
                let sorted = model.sorted();
                let want = model.position(&p).map(|pos| {
                    let first = pos.saturating_sub(k);
                    let last = (pos + k).min(sorted.len() - 1);
                    sorted[first..=last].to_vec()
                });
                prop_assert_eq!(board.around(&p, k), want);
            }
            Op::EntriesFor(is) => {
                let players: Vec<PlayerId> = is.into_iter().map(player).collect();
                let want: Vec<Entry> = model
                    .sorted()
                    .into_iter()
                    .filter(|e| players.contains(&e.player_id))
                    .collect();
                prop_assert_eq!(board.entries_for(&players), want);
            }
            Op::Clear => {
                board.clear();
                model.0.clear();
            }
        }
        prop_assert_eq!(board.len(), model.0.len());
    }
    prop_assert_eq!(board.entries(), model.sorted());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn board_index_matches_a_sorted_vec_model(
        capacity in prop_oneof![Just(4usize), Just(5), Just(8), Just(1024)],
        ops in proptest::collection::vec(op(), 1..300),
    ) {
        run(capacity, ops)?;
    }

    #[test]
    fn from_rows_matches_the_model(
        rows in proptest::collection::vec((0..PLAYERS, delta()), 0..200),
    ) {
        let rows: Vec<(PlayerId, i64)> = rows.into_iter().map(|(i, s)| (player(i), s)).collect();
        let mut model = Model::default();
        for (p, s) in &rows {
            let e = model.0.entry(p.clone()).or_insert(0);
            *e = e.saturating_add(*s);
        }
        let board = BoardIndex::from_rows(rows);
        prop_assert_eq!(board.entries(), model.sorted());
        for e in model.sorted() {
            prop_assert_eq!(board.rank(&e.player_id), Some(e.rank));
        }
    }
}
