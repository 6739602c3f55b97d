//! One ranking: the scores of one window's period, ordered for rank queries (`docs/api.md`).
//!
//! Two structures are kept in step:
//! - `order`, an order-statistic B-tree (`indexset::BTreeSet`) of `(Reverse(score), player)`, so
//!   the natural order *is* the leaderboard order (score descending, ties by playerId ascending)
//!   and a rank is a position: finding it and reading the entry at a position are O(log n);
//! - `scores`, player -> current score, to find a player's key in the tree without a scan.
//!
//! Player names are `CompactString`s: an id of up to 24 bytes (the common case; the API allows
//! 50) lives inside the key itself. Every score change compares its key with others of the same
//! score (ties are common: small XP totals cluster) and probes the map, and under load those
//! comparisons are most of the boards' time; a name behind a pointer would make each of them a
//! cache miss. Inline names need no allocation of their own; the price is a key 8 bytes larger
//! than one holding a shared `Arc<str>`, 12-16% more memory at a million players (measured with
//! `examples/board_rss.rs`). An id over 24 bytes is allocated per board and copied per score
//! change, as the rare case.

use std::cmp::Reverse;
use std::collections::HashMap;

use compact_str::CompactString;

use liveops_domain::PlayerId;

use crate::leaderboards::Entry;

/// Ordering key: derives the documented order because `Reverse` flips the score and `str` compares
/// bytewise, which for the ASCII-only `PlayerId` alphabet is plain ascending order.
type Key = (Reverse<i64>, CompactString);

/// Keys per B-tree node. indexset's default (1024) makes every score update move about 16 KB
/// per node touched (a remove and an insert in a sorted `Vec`), three windows per event; 128
/// keeps updates cheap while rank and paging stay logarithmic (measured with `benches/boards.rs`).
const NODE_SIZE: usize = 128;

/// The ranking of one period. Not synchronised: [`super::MemoryLeaderboards`] puts it behind a lock.
#[derive(Debug, Clone)]
pub struct BoardIndex {
    order: indexset::BTreeSet<Key>,
    /// SipHash (the std default) on purpose: player ids come from clients, so a cheaper hash
    /// would let them aim collisions at one bucket.
    scores: HashMap<CompactString, i64>,
}

impl Default for BoardIndex {
    fn default() -> Self {
        Self::new()
    }
}

impl BoardIndex {
    pub fn new() -> Self {
        Self {
            order: indexset::BTreeSet::with_maximum_node_size(NODE_SIZE),
            scores: HashMap::new(),
        }
    }

    /// A board whose B-tree nodes hold at most `capacity` keys (not `NODE_SIZE`). Small nodes
    /// let tests exercise node splits with a handful of players. Clamped to at least 4:
    /// indexset 0.16 splits a full node at half its `Vec` capacity, which for 1- or 2-key nodes
    /// can exceed the length (a `Vec` grows to 4 slots at once) and panics.
    pub fn with_node_capacity(capacity: usize) -> Self {
        Self {
            order: indexset::BTreeSet::with_maximum_node_size(capacity.max(4)),
            scores: HashMap::new(),
        }
    }

    /// A board holding `rows`, for the start-up rebuild. A player listed twice gets the
    /// (saturating) sum, as if each row had been an `add`.
    pub fn from_rows(rows: impl IntoIterator<Item = (PlayerId, i64)>) -> Self {
        let mut scores: HashMap<CompactString, i64> = HashMap::new();
        for (player, score) in rows {
            match scores.get_mut(player.as_str()) {
                Some(s) => *s = s.saturating_add(score),
                None => {
                    scores.insert(CompactString::from(player.as_str()), score);
                }
            }
        }
        let mut keys: Vec<Key> = scores
            .iter()
            .map(|(name, &score)| (Reverse(score), name.clone()))
            .collect();
        keys.sort_unstable();
        // Appending sorted keys only ever touches the B-tree's last node. It leaves the nodes
        // half full (indexset splits a full node in two and never refills the left half): about
        // 40 bytes a player more than a board built by events (`examples/board_rss.rs`, `load`
        // against `apply`) until later updates fill them. Filling them up front (every other key
        // first, then the rest in between) makes the rebuild about twice as slow, and a fast
        // restart matters more.
        let mut order = indexset::BTreeSet::with_maximum_node_size(NODE_SIZE);
        for key in keys {
            order.insert(key);
        }
        Self { order, scores }
    }

    /// Adds `delta` (saturating) and returns the new score. An add of 0 still puts the player on
    /// the board: they sent an event in this period.
    pub fn add(&mut self, player: &PlayerId, delta: i64) -> i64 {
        let Some(score) = self.scores.get_mut(player.as_str()) else {
            self.order
                .insert((Reverse(delta), CompactString::from(player.as_str())));
            self.scores
                .insert(CompactString::from(player.as_str()), delta);
            return delta;
        };
        let old = *score;
        let new = old.saturating_add(delta);
        if new != old {
            *score = new;
            let mut key = (Reverse(old), CompactString::from(player.as_str()));
            self.order.remove(&key);
            key.0 = Reverse(new);
            self.order.insert(key);
        }
        new
    }

    pub fn score(&self, player: &PlayerId) -> Option<i64> {
        self.scores.get(player.as_str()).copied()
    }

    /// 1-based rank, `None` if the player has no score in this period.
    pub fn rank(&self, player: &PlayerId) -> Option<u64> {
        self.position(player).map(|(pos, _)| pos as u64 + 1)
    }

    /// The player's rank and score as an entry.
    pub fn entry(&self, player: &PlayerId) -> Option<Entry> {
        self.position(player).map(|(pos, score)| Entry {
            rank: pos as u64 + 1,
            player_id: player.clone(),
            score,
        })
    }

    /// 0-based position and score.
    fn position(&self, player: &PlayerId) -> Option<(usize, i64)> {
        let (name, &score) = self.scores.get_key_value(player.as_str())?;
        // The key is in the tree, so `rank` (the count of smaller keys) is its position.
        let pos = self.order.rank(&(Reverse(score), name.clone()));
        Some((pos, score))
    }

    /// Up to `limit` entries starting at 0-based position `offset`: O(log n + limit).
    pub fn top(&self, offset: usize, limit: usize) -> Vec<Entry> {
        let len = self.len();
        if limit == 0 || offset >= len {
            return Vec::new();
        }
        let last = offset.saturating_add(limit).min(len) - 1;
        self.slice(offset, last)
    }

    /// The player's entry with up to `k` entries above and `k` below (fewer at the edges), or
    /// `None` if the player has no score.
    pub fn around(&self, player: &PlayerId, k: usize) -> Option<Vec<Entry>> {
        let (pos, _) = self.position(player)?;
        let first = pos.saturating_sub(k);
        let last = pos.saturating_add(k).min(self.len() - 1);
        Some(self.slice(first, last))
    }

    /// Entries at positions `first..=last`, both in range.
    fn slice(&self, first: usize, last: usize) -> Vec<Entry> {
        debug_assert!(first <= last && last < self.len());
        self.order
            .range_idx(first..=last)
            .zip(first..)
            .map(|(key, pos)| to_entry(key, pos))
            .collect()
    }

    /// The listed players that have a score, by rank, each once (a friends board).
    pub fn entries_for(&self, players: &[PlayerId]) -> Vec<Entry> {
        let mut out: Vec<Entry> = players.iter().filter_map(|p| self.entry(p)).collect();
        out.sort_unstable_by_key(|e| e.rank);
        out.dedup_by_key(|e| e.rank);
        out
    }

    /// Every entry in rank order: the final standings of a period.
    pub fn entries(&self) -> Vec<Entry> {
        self.order
            .iter()
            .zip(0..)
            .map(|(key, pos)| to_entry(key, pos))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.scores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    /// Forgets the player (GDPR erase); returns the score they had.
    pub fn remove(&mut self, player: &PlayerId) -> Option<i64> {
        let (name, score) = self.scores.remove_entry(player.as_str())?;
        self.order.remove(&(Reverse(score), name));
        Some(score)
    }

    pub fn clear(&mut self) {
        self.order.clear();
        self.scores.clear();
    }
}

fn to_entry((Reverse(score), name): &Key, pos: usize) -> Entry {
    Entry {
        rank: pos as u64 + 1,
        // Every name in a board was copied from a `PlayerId`, so it parses again.
        player_id: PlayerId::parse(name.as_str()).expect("board names come from valid player ids"),
        score: *score,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PlayerId {
        PlayerId::parse(s).expect("test ids are valid")
    }

    fn ids(entries: &[Entry]) -> Vec<&str> {
        entries.iter().map(|e| e.player_id.as_str()).collect()
    }

    #[test]
    fn orders_by_score_descending_then_player_id_ascending() {
        let mut b = BoardIndex::new();
        b.add(&p("carol"), 50);
        b.add(&p("bob"), 70);
        b.add(&p("alice"), 50);
        b.add(&p("dave"), -5);
        b.add(&p("erin"), 0);
        let top = b.top(0, 10);
        assert_eq!(ids(&top), ["bob", "alice", "carol", "erin", "dave"]);
        assert_eq!(
            top.iter().map(|e| e.rank).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        assert_eq!(b.rank(&p("carol")), Some(3));
        assert_eq!(b.rank(&p("zed")), None);
        assert_eq!(b.score(&p("dave")), Some(-5));
    }

    #[test]
    fn add_accumulates_saturates_and_reorders() {
        let mut b = BoardIndex::new();
        assert_eq!(b.add(&p("alice"), 10), 10);
        assert_eq!(b.add(&p("bob"), 20), 20);
        assert_eq!(b.add(&p("alice"), 15), 25);
        assert_eq!(b.rank(&p("alice")), Some(1));
        assert_eq!(b.add(&p("bob"), i64::MAX), i64::MAX);
        assert_eq!(b.add(&p("bob"), 1), i64::MAX);
        assert_eq!(b.rank(&p("bob")), Some(1));
        assert_eq!(b.len(), 2);
    }

    #[test]
    fn zero_add_puts_the_player_on_the_board() {
        let mut b = BoardIndex::new();
        assert_eq!(b.add(&p("alice"), 0), 0);
        assert_eq!(b.len(), 1);
        assert_eq!(
            b.entry(&p("alice")).map(|e| (e.rank, e.score)),
            Some((1, 0))
        );
    }

    #[test]
    fn top_pages_through_the_board() {
        let mut b = BoardIndex::new();
        for i in 0..25 {
            b.add(&p(&format!("player_{i:02}")), 100 - i);
        }
        let page = b.top(10, 10);
        assert_eq!(page.len(), 10);
        assert_eq!(
            (page[0].rank, page[0].player_id.as_str()),
            (11, "player_10")
        );
        assert_eq!(b.top(20, 10).len(), 5);
        assert!(b.top(25, 10).is_empty());
        assert!(b.top(0, 0).is_empty());
        assert_eq!(b.top(24, usize::MAX).len(), 1);
    }

    #[test]
    fn around_is_clamped_at_the_edges() {
        let mut b = BoardIndex::new();
        for i in 0..10 {
            b.add(&p(&format!("player_{i}")), 100 - i);
        }
        let first = b.around(&p("player_0"), 2).expect("on the board");
        assert_eq!(ids(&first), ["player_0", "player_1", "player_2"]);
        let last = b.around(&p("player_9"), 2).expect("on the board");
        assert_eq!(ids(&last), ["player_7", "player_8", "player_9"]);
        let mid = b.around(&p("player_5"), 1).expect("on the board");
        assert_eq!(mid.iter().map(|e| e.rank).collect::<Vec<_>>(), [5, 6, 7]);
        assert_eq!(b.around(&p("player_5"), 0).map(|v| v.len()), Some(1));
        assert_eq!(
            b.around(&p("player_5"), usize::MAX).map(|v| v.len()),
            Some(10)
        );
        assert_eq!(b.around(&p("nobody"), 2), None);
    }

    #[test]
    fn remove_forgets_the_player_and_closes_the_gap() {
        let mut b = BoardIndex::new();
        b.add(&p("alice"), 30);
        b.add(&p("bob"), 20);
        b.add(&p("carol"), 10);
        assert_eq!(b.remove(&p("bob")), Some(20));
        assert_eq!(b.remove(&p("bob")), None);
        assert_eq!(b.rank(&p("carol")), Some(2));
        assert_eq!(ids(&b.entries()), ["alice", "carol"]);
        b.clear();
        assert!(b.is_empty());
        assert!(b.top(0, 10).is_empty());
    }

    #[test]
    fn entries_for_lists_known_players_by_rank_once() {
        let mut b = BoardIndex::new();
        b.add(&p("alice"), 30);
        b.add(&p("bob"), 20);
        b.add(&p("carol"), 10);
        let friends = b.entries_for(&[p("carol"), p("nobody"), p("alice"), p("carol")]);
        assert_eq!(ids(&friends), ["alice", "carol"]);
        assert_eq!(friends[1].rank, 3);
    }

    #[test]
    fn from_rows_matches_adds() {
        let rows = vec![
            (p("bob"), 5),
            (p("alice"), 7),
            (p("bob"), 3),
            (p("carol"), 8),
        ];
        let loaded = BoardIndex::from_rows(rows.clone());
        let mut added = BoardIndex::new();
        for (player, score) in &rows {
            added.add(player, *score);
        }
        assert_eq!(loaded.entries(), added.entries());
        assert_eq!(ids(&loaded.entries()), ["bob", "carol", "alice"]);
    }
}
