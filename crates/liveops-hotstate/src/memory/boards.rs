//! The live leaderboards of every enabled window, in process memory (`docs/api.md`).
//!
//! Derived state: everything here can be rebuilt from the system of record ([`MemoryLeaderboards::load`])
//! and may be lost with the process. Per window it holds the board of the current period and the
//! boards of periods that have ended but not yet been handed to [`MemoryLeaderboards::roll_over`]
//! for archiving (an event received just before midnight may still be on its way).
//!
//! Concurrency: one `RwLock` per window, so readers of a window never block each other and a
//! writer of the daily board does not stall readers of the weekly one. No reader holds two locks
//! at once, so there is no lock order to get wrong; the price is that an event shows up on the
//! windows one after the other rather than atomically, which no reader can rely on anyway.
//! Writers through the [`Leaderboards`](crate::Leaderboards) port also hold the cursor mutex
//! (always taken first, see [`super::leaderboards`]), which makes a batch and its cursor move one
//! step for other writers.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use liveops_domain::window::{Calendar, Period, Window};
use liveops_domain::PlayerId;
use parking_lot::{Mutex, RwLock};

use super::board_index::BoardIndex;
use super::leaderboards::Cursors;
use crate::leaderboards::{BoardPage, Entry, FinishedPeriod};

/// Live boards for the enabled windows. Share it as `Arc<MemoryLeaderboards>`.
#[derive(Debug)]
pub struct MemoryLeaderboards {
    calendar: Calendar,
    /// Indexed like [`Window::ALL`]; `None` for a window not in `LB_WINDOWS`.
    slots: [Option<Slot>; 3],
    /// The last log seq and the last release number the boards include (the
    /// [`Leaderboards`](crate::Leaderboards) cursors); `None` until the first
    /// [`replace`](crate::Leaderboards::replace). Held for a whole batch so the batch and the
    /// cursor move together.
    pub(super) cursor: Mutex<Option<Cursors>>,
    /// Erased players and the log seq their erasure covers (see
    /// [`remove_player`](crate::Leaderboards::remove_player)); dropped once the log cursor
    /// passes it. Locked after `cursor`.
    pub(super) erased: Mutex<HashMap<PlayerId, u64>>,
}

#[derive(Debug)]
struct Slot {
    window: Window,
    boards: RwLock<WindowBoards>,
    /// Bumped on every change to this window's boards, so a poller (the SSE stream) can skip
    /// unchanged boards without reading them. Outside the lock so polling never waits.
    version: AtomicU64,
}

#[derive(Debug, Default)]
struct WindowBoards {
    /// Live boards by period start. A window's periods never overlap, so the board holding an
    /// instant is the last one starting at or before it, if it has not ended.
    boards: BTreeMap<DateTime<Utc>, Board>,
    /// Periods ending at or before this instant were handed out by `roll_over`. Events for them
    /// are refused: recreating the board would make the next rollover archive a second copy of
    /// the period holding only the late events, replacing the real final standings.
    closed_until: Option<DateTime<Utc>>,
}

#[derive(Debug)]
struct Board {
    period: Period,
    index: BoardIndex,
    updated_at: Option<DateTime<Utc>>,
}

impl Board {
    fn new(period: Period) -> Self {
        Self {
            period,
            index: BoardIndex::new(),
            updated_at: None,
        }
    }
}

impl WindowBoards {
    fn board_at(&self, at: DateTime<Utc>) -> Option<&Board> {
        let (_, board) = self.boards.range(..=at).next_back()?;
        board.period.contains(at).then_some(board)
    }

    fn board_at_mut(&mut self, at: DateTime<Utc>) -> Option<&mut Board> {
        let (_, board) = self.boards.range_mut(..=at).next_back()?;
        board.period.contains(at).then_some(board)
    }

    fn is_closed(&self, period: &Period) -> bool {
        self.closed_until.is_some_and(|closed| period.end <= closed)
    }
}

fn slot_index(window: Window) -> usize {
    match window {
        Window::Daily => 0,
        Window::Weekly => 1,
        Window::Seasonal => 2,
    }
}

impl MemoryLeaderboards {
    /// Boards for `windows` (duplicates are ignored), cut into periods by `calendar`.
    pub fn new(calendar: Calendar, windows: Vec<Window>) -> Self {
        let mut slots: [Option<Slot>; 3] = [None, None, None];
        for window in windows {
            slots[slot_index(window)] = Some(Slot {
                window,
                boards: RwLock::new(WindowBoards::default()),
                version: AtomicU64::new(0),
            });
        }
        Self {
            calendar,
            slots,
            cursor: Mutex::new(None),
            erased: Mutex::new(HashMap::new()),
        }
    }

    pub fn calendar(&self) -> &Calendar {
        &self.calendar
    }

    /// The enabled windows, in [`Window::ALL`] order.
    pub fn windows(&self) -> Vec<Window> {
        self.slots.iter().flatten().map(|s| s.window).collect()
    }

    pub fn is_enabled(&self, window: Window) -> bool {
        self.slot(window).is_some()
    }

    fn slot(&self, window: Window) -> Option<&Slot> {
        self.slots[slot_index(window)].as_ref()
    }

    /// Adds `xp` to the player's score on the board of the period containing `received_at`, in
    /// every enabled window, creating boards as needed.
    ///
    /// Returns the periods that were already rolled over (at most one per window): the event
    /// was not counted there, since their standings have been archived. The caller should count
    /// these; if it happens, `roll_over` is being called with too little grace for the bus lag.
    pub fn apply(&self, player: &PlayerId, xp: i64, received_at: DateTime<Utc>) -> Vec<Period> {
        self.apply_except(player, xp, received_at, &[])
    }

    /// [`apply`](Self::apply), leaving the windows in `except` alone.
    pub fn apply_except(
        &self,
        player: &PlayerId,
        xp: i64,
        received_at: DateTime<Utc>,
        except: &[Window],
    ) -> Vec<Period> {
        let mut late = Vec::new();
        let slots = self.slots.iter().flatten();
        for slot in slots.filter(|s| !except.contains(&s.window)) {
            let mut guard = slot.boards.write();
            let state = &mut *guard;
            let board = match state.board_at_mut(received_at) {
                Some(board) => board,
                None => {
                    let period = self.calendar.period_at(slot.window, received_at);
                    if state.is_closed(&period) {
                        late.push(period);
                        continue;
                    }
                    state
                        .boards
                        .entry(period.start)
                        .or_insert_with(|| Board::new(period))
                }
            };
            board.index.add(player, xp);
            board.updated_at = board.updated_at.max(Some(received_at));
            drop(guard);
            slot.version.fetch_add(1, Ordering::Release);
        }
        late
    }

    /// Removes and returns every board whose period ended at or before `now`, with its final
    /// standings, and makes sure the board of the period current at `now` exists. Events
    /// received before `now` for the returned periods are refused afterwards (see
    /// [`apply`](Self::apply)), so pass `now` minus the longest expected delivery delay.
    pub fn roll_over(&self, now: DateTime<Utc>) -> Vec<FinishedPeriod> {
        let mut finished = Vec::new();
        for slot in self.slots.iter().flatten() {
            let ended: Vec<Board> = {
                let mut state = slot.boards.write();
                // Periods of a window do not overlap, so sorting by start sorts by end too:
                // everything before the first board still running has ended.
                let first_live = state
                    .boards
                    .iter()
                    .find(|(_, b)| b.period.end > now)
                    .map(|(start, _)| *start);
                let live = match first_live {
                    Some(start) => state.boards.split_off(&start),
                    None => BTreeMap::new(),
                };
                let ended = std::mem::replace(&mut state.boards, live);
                state.closed_until = state.closed_until.max(Some(now));
                if state.board_at(now).is_none() {
                    let period = self.calendar.period_at(slot.window, now);
                    state.boards.insert(period.start, Board::new(period));
                }
                ended.into_values().collect()
            };
            if !ended.is_empty() {
                slot.version.fetch_add(1, Ordering::Release);
            }
            // Listing a million entries takes a while: do it after releasing the lock.
            finished.extend(ended.into_iter().map(|b| FinishedPeriod {
                entries: b.index.entries(),
                period: b.period,
            }));
        }
        finished
    }

    /// Replaces the board of `period` with one holding `rows` (start-up rebuild from the system
    /// of record). Ignored if the period's window is not enabled.
    pub fn load(&self, period: Period, rows: impl IntoIterator<Item = (PlayerId, i64)>) {
        let Some(slot) = self.slot(period.window) else {
            return;
        };
        // Built before taking the window's lock, so its readers never wait on a whole build.
        let index = BoardIndex::from_rows(rows);
        let board = Board {
            index,
            period,
            updated_at: None,
        };
        let mut state = slot.boards.write();
        // A board of another period overlapping this one can only come from a different
        // calendar; drop it so lookups stay unambiguous.
        state.boards.retain(|_, b| {
            b.period.end <= board.period.start || board.period.end <= b.period.start
        });
        state.boards.insert(board.period.start, board);
        drop(state);
        slot.version.fetch_add(1, Ordering::Release);
    }

    /// The period of `window` current at `now` (whether or not the window is enabled).
    pub fn period(&self, window: Window, now: DateTime<Utc>) -> Period {
        self.calendar.period_at(window, now)
    }

    /// Runs `f` on the board current at `now`, under the window's read lock; `None` if the
    /// window is disabled or has no board for that period yet (no events, so empty).
    fn read<T>(
        &self,
        window: Window,
        now: DateTime<Utc>,
        f: impl FnOnce(&Board) -> T,
    ) -> Option<T> {
        let state = self.slot(window)?.boards.read();
        state.board_at(now).map(f)
    }

    /// Up to `limit` entries from 0-based position `offset` of the current board.
    pub fn top(
        &self,
        window: Window,
        now: DateTime<Utc>,
        offset: usize,
        limit: usize,
    ) -> Vec<Entry> {
        self.read(window, now, |b| b.index.top(offset, limit))
            .unwrap_or_default()
    }

    /// [`top`](Self::top) with the period, total and last update, all from one read.
    pub fn page(
        &self,
        window: Window,
        now: DateTime<Utc>,
        offset: usize,
        limit: usize,
    ) -> BoardPage {
        self.read(window, now, |b| BoardPage {
            period: b.period.clone(),
            total: b.index.len() as u64,
            updated_at: b.updated_at,
            entries: b.index.top(offset, limit),
        })
        .unwrap_or_else(|| BoardPage {
            period: self.period(window, now),
            total: 0,
            updated_at: None,
            entries: Vec::new(),
        })
    }

    /// The player's rank and score on the current board; `None` if they have no score there.
    pub fn rank_of(&self, window: Window, now: DateTime<Utc>, player: &PlayerId) -> Option<Entry> {
        self.read(window, now, |b| b.index.entry(player)).flatten()
    }

    /// The player's entry with `k` entries above and below; `None` if they have no score.
    pub fn around(
        &self,
        window: Window,
        now: DateTime<Utc>,
        player: &PlayerId,
        k: usize,
    ) -> Option<Vec<Entry>> {
        self.read(window, now, |b| b.index.around(player, k))
            .flatten()
    }

    /// The listed players that have a score on the current board, by rank (friends board).
    pub fn entries_for(
        &self,
        window: Window,
        now: DateTime<Utc>,
        players: &[PlayerId],
    ) -> Vec<Entry> {
        self.read(window, now, |b| b.index.entries_for(players))
            .unwrap_or_default()
    }

    /// Number of players on the current board.
    pub fn total(&self, window: Window, now: DateTime<Utc>) -> u64 {
        self.read(window, now, |b| b.index.len() as u64)
            .unwrap_or(0)
    }

    /// Changes to `window` so far; unchanged means the boards are as last read.
    pub fn version(&self, window: Window) -> u64 {
        self.slot(window)
            .map_or(0, |s| s.version.load(Ordering::Acquire))
    }

    /// Erases the player from every board of every window (GDPR); true if any board had them.
    pub fn remove_player(&self, player: &PlayerId) -> bool {
        let mut found = false;
        for slot in self.slots.iter().flatten() {
            let mut state = slot.boards.write();
            let mut here = false;
            for board in state.boards.values_mut() {
                here |= board.index.remove(player).is_some();
            }
            drop(state);
            if here {
                slot.version.fetch_add(1, Ordering::Release);
                found = true;
            }
        }
        found
    }

    /// Empties the board of the period current at `now` (an operator reset); the period keeps
    /// running and the board fills again with the next events.
    pub fn reset(&self, window: Window, now: DateTime<Utc>) {
        let Some(slot) = self.slot(window) else {
            return;
        };
        let mut state = slot.boards.write();
        if let Some(board) = state.board_at_mut(now) {
            board.index.clear();
            board.updated_at = None;
        }
        drop(state);
        slot.version.fetch_add(1, Ordering::Release);
    }

    /// Drops every board and forgets past rollovers, before a rebuild.
    pub fn clear_all(&self) {
        for slot in self.slots.iter().flatten() {
            *slot.boards.write() = WindowBoards::default();
            slot.version.fetch_add(1, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn p(s: &str) -> PlayerId {
        PlayerId::parse(s).expect("test ids are valid")
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test timestamps are valid rfc 3339")
            .with_timezone(&Utc)
    }

    fn all_windows() -> MemoryLeaderboards {
        MemoryLeaderboards::new(Calendar::default(), Window::ALL.to_vec())
    }

    fn scores(entries: &[Entry]) -> Vec<(&str, i64)> {
        entries
            .iter()
            .map(|e| (e.player_id.as_str(), e.score))
            .collect()
    }

    #[test]
    fn apply_adds_to_every_enabled_window() {
        let boards = all_windows();
        let now = utc("2026-11-22T10:00:00Z");
        assert!(boards.apply(&p("alice"), 30, now).is_empty());
        boards.apply(&p("bob"), 50, now);
        boards.apply(&p("alice"), 30, now);
        for window in Window::ALL {
            let page = boards.page(window, now, 0, 10);
            assert_eq!(
                scores(&page.entries),
                [("alice", 60), ("bob", 50)],
                "{window}"
            );
            assert_eq!(page.total, 2);
            assert_eq!(page.updated_at, Some(now));
            assert_eq!(page.period, boards.period(window, now));
        }
    }

    #[test]
    fn disabled_windows_are_ignored() {
        let boards = MemoryLeaderboards::new(Calendar::default(), vec![Window::Weekly]);
        let now = utc("2026-11-22T10:00:00Z");
        boards.apply(&p("alice"), 30, now);
        assert_eq!(boards.windows(), [Window::Weekly]);
        assert_eq!(boards.total(Window::Weekly, now), 1);
        assert_eq!(boards.total(Window::Daily, now), 0);
        assert!(boards.top(Window::Daily, now, 0, 10).is_empty());
        assert_eq!(
            boards.page(Window::Daily, now, 0, 10).period.id,
            "2026-11-22"
        );
    }

    #[test]
    fn reads_answer_for_the_period_current_at_now() {
        let boards = all_windows();
        boards.apply(&p("alice"), 10, utc("2026-11-21T23:00:00Z"));
        boards.apply(&p("bob"), 20, utc("2026-11-22T01:00:00Z"));
        let sat = utc("2026-11-21T23:30:00Z");
        let sun = utc("2026-11-22T02:00:00Z");
        assert_eq!(
            scores(&boards.top(Window::Daily, sat, 0, 10)),
            [("alice", 10)]
        );
        assert_eq!(
            scores(&boards.top(Window::Daily, sun, 0, 10)),
            [("bob", 20)]
        );
        // Saturday and Sunday are the same ISO week.
        assert_eq!(boards.total(Window::Weekly, sun), 2);
        assert_eq!(
            boards
                .rank_of(Window::Weekly, sun, &p("alice"))
                .map(|e| e.rank),
            Some(2)
        );
        assert_eq!(boards.rank_of(Window::Daily, sun, &p("alice")), None);
        let around = boards
            .around(Window::Weekly, sun, &p("alice"), 5)
            .expect("on the board");
        assert_eq!(scores(&around), [("bob", 20), ("alice", 10)]);
        let friends = boards.entries_for(Window::Weekly, sun, &[p("alice"), p("carol")]);
        assert_eq!(scores(&friends), [("alice", 10)]);
    }

    #[test]
    fn roll_over_returns_final_standings_and_starts_the_next_period_empty() {
        let boards = all_windows();
        boards.apply(&p("alice"), 10, utc("2026-11-21T12:00:00Z"));
        boards.apply(&p("bob"), 20, utc("2026-11-21T13:00:00Z"));
        // Received just before midnight, applied after it: still counts for Saturday.
        boards.apply(&p("alice"), 15, utc("2026-11-21T23:59:59Z"));
        assert!(boards.roll_over(utc("2026-11-21T23:59:59Z")).is_empty());

        let midnight = utc("2026-11-22T00:00:00Z");
        let finished = boards.roll_over(midnight);
        assert_eq!(finished.len(), 1, "only the daily period ended");
        let day = &finished[0];
        assert_eq!(
            (day.period.window, day.period.id.as_str()),
            (Window::Daily, "2026-11-21")
        );
        assert_eq!(scores(&day.entries), [("alice", 25), ("bob", 20)]);
        assert_eq!(
            day.entries.iter().map(|e| e.rank).collect::<Vec<_>>(),
            [1, 2]
        );

        assert_eq!(boards.total(Window::Daily, midnight), 0);
        assert_eq!(
            boards.page(Window::Daily, midnight, 0, 10).period.id,
            "2026-11-22"
        );
        assert_eq!(boards.total(Window::Weekly, midnight), 2);
        assert!(
            boards.roll_over(midnight).is_empty(),
            "a period is handed out once"
        );

        // A week later the weekly board ends too, with both days' scores.
        let finished = boards.roll_over(utc("2026-11-30T00:00:00Z"));
        let ids: Vec<(Window, &str)> = finished
            .iter()
            .map(|f| (f.period.window, f.period.id.as_str()))
            .collect();
        assert_eq!(
            ids,
            [(Window::Daily, "2026-11-22"), (Window::Weekly, "2026-W47")]
        );
    }

    #[test]
    fn events_for_a_rolled_over_period_are_refused_and_reported() {
        let boards = all_windows();
        boards.apply(&p("alice"), 10, utc("2026-11-21T12:00:00Z"));
        boards.roll_over(utc("2026-11-22T00:00:05Z"));
        let late = boards.apply(&p("bob"), 99, utc("2026-11-21T23:59:59Z"));
        assert_eq!(
            late.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
            ["2026-11-21"]
        );
        // The other windows still count it, and no zombie daily board reappears.
        assert_eq!(boards.total(Window::Weekly, utc("2026-11-22T00:00:05Z")), 2);
        assert!(boards.roll_over(utc("2026-11-22T00:00:10Z")).is_empty());
    }

    #[test]
    fn remove_player_erases_them_from_every_board() {
        let boards = all_windows();
        let now = utc("2026-11-22T10:00:00Z");
        boards.apply(&p("alice"), 10, utc("2026-11-21T10:00:00Z"));
        boards.apply(&p("alice"), 10, now);
        boards.apply(&p("bob"), 5, now);
        assert!(boards.remove_player(&p("alice")));
        assert!(!boards.remove_player(&p("alice")));
        for window in Window::ALL {
            assert_eq!(
                scores(&boards.top(window, now, 0, 10)),
                [("bob", 5)],
                "{window}"
            );
        }
        let finished = boards.roll_over(utc("2026-11-22T00:00:00Z"));
        assert!(
            finished[0].entries.is_empty(),
            "the ended day forgot her too"
        );
    }

    #[test]
    fn reset_clears_only_the_current_period_of_one_window() {
        let boards = all_windows();
        let now = utc("2026-11-22T10:00:00Z");
        boards.apply(&p("alice"), 10, utc("2026-11-21T10:00:00Z"));
        boards.apply(&p("alice"), 10, now);
        let before = boards.version(Window::Daily);
        boards.reset(Window::Daily, now);
        assert!(boards.version(Window::Daily) > before);
        assert_eq!(boards.total(Window::Daily, now), 0);
        assert_eq!(boards.total(Window::Weekly, now), 1);
        assert_eq!(boards.total(Window::Daily, utc("2026-11-21T10:00:00Z")), 1);
        boards.apply(&p("bob"), 3, now);
        assert_eq!(boards.total(Window::Daily, now), 1);
    }

    #[test]
    fn clear_all_then_load_rebuilds_the_boards() {
        let boards = all_windows();
        let now = utc("2026-11-22T10:00:00Z");
        boards.apply(&p("alice"), 10, now);
        boards.roll_over(utc("2026-11-23T00:00:00Z"));
        boards.clear_all();
        assert_eq!(boards.total(Window::Seasonal, now), 0);

        // After clear_all, past rollovers are forgotten: a rebuild may load any period.
        let day = boards.period(Window::Daily, now);
        boards.load(day, vec![(p("bob"), 7), (p("alice"), 9), (p("bob"), 1)]);
        assert_eq!(
            scores(&boards.top(Window::Daily, now, 0, 10)),
            [("alice", 9), ("bob", 8)]
        );
        boards.apply(&p("bob"), 2, now);
        assert_eq!(
            boards
                .rank_of(Window::Daily, now, &p("bob"))
                .map(|e| e.score),
            Some(10)
        );
        assert_eq!(
            boards
                .rank_of(Window::Daily, now, &p("bob"))
                .map(|e| e.rank),
            Some(1)
        );
    }

    #[test]
    fn concurrent_readers_and_writers_agree_on_the_totals() {
        let boards = Arc::new(all_windows());
        let now = utc("2026-11-22T10:00:00Z");
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let boards = Arc::clone(&boards);
                std::thread::spawn(move || {
                    for i in 0..500 {
                        boards.apply(&p(&format!("player_{t}_{i}")), 1, now);
                    }
                })
            })
            .collect();
        let reader = {
            let boards = Arc::clone(&boards);
            std::thread::spawn(move || {
                for _ in 0..200 {
                    let page = boards.page(Window::Weekly, now, 0, 10);
                    assert!(page.entries.len() as u64 <= page.total);
                }
            })
        };
        for w in writers {
            w.join().expect("writer thread");
        }
        reader.join().expect("reader thread");
        for window in Window::ALL {
            assert_eq!(boards.total(window, now), 2000);
        }
    }
}
