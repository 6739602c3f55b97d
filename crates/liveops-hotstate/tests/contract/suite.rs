//! The contract checks, written once against the traits.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use liveops_domain::window::Window;
use liveops_domain::{EventId, ManualClock, PlayerId};
use liveops_hotstate::{ApplyOutcome, BoardEvent, Entry, Leaderboards, Lookup, Quota, Recorded};

use crate::Backend;

fn p(s: &str) -> PlayerId {
    PlayerId::parse(s).expect("test ids are valid")
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("test timestamps are valid rfc 3339")
        .with_timezone(&Utc)
}

fn ev(seq: u64, player: &str, xp: i64, at: &str) -> BoardEvent {
    BoardEvent {
        seq,
        player: p(player),
        xp,
        received_at: utc(at),
    }
}

fn rows(entries: &[Entry]) -> Vec<(u64, &str, i64)> {
    entries
        .iter()
        .map(|e| (e.rank, e.player_id.as_str(), e.score))
        .collect()
}

const NOW: &str = "2026-11-22T10:00:00Z";

/// Boards built empty (cursor 0), ready to apply.
async fn built(b: &Backend, windows: &[Window]) -> Arc<dyn Leaderboards> {
    let boards = b.boards(windows);
    boards.replace(Vec::new(), 0, 0).await.expect("replace");
    boards
}

async fn counted(boards: &dyn Leaderboards, events: &[BoardEvent], upto: u64) -> (u64, u64) {
    match boards.apply(events, upto).await.expect("apply") {
        ApplyOutcome::Applied {
            counted, skipped, ..
        } => (counted, skipped),
        ApplyOutcome::NotBuilt => panic!("boards were built"),
    }
}

pub async fn boards_order_ties_by_player_and_rank_from_one(b: &Backend) {
    let boards = built(b, &Window::ALL).await;
    let events = [
        ev(1, "carol", 50, NOW),
        ev(2, "bob", 70, NOW),
        ev(3, "alice", 50, NOW),
        ev(4, "erin", 0, NOW),
        ev(5, "dave", 20, "2026-11-22T10:00:07Z"),
    ];
    assert_eq!(counted(&*boards, &events, 5).await, (5, 0));
    let now = utc(NOW);
    for w in Window::ALL {
        let page = boards.page(w, now, 0, 10).await.expect("page");
        assert_eq!(
            rows(&page.entries),
            [
                (1, "bob", 70),
                (2, "alice", 50),
                (3, "carol", 50),
                (4, "dave", 20),
                (5, "erin", 0)
            ],
            "{w}"
        );
        assert_eq!(page.total, 5);
        assert_eq!(page.period, boards.period(w, now));
        assert_eq!(page.updated_at, Some(utc("2026-11-22T10:00:07Z")));
        assert_eq!(boards.total(w, now).await.expect("total"), 5);
    }
    let carol = boards
        .rank_of(Window::Weekly, now, &p("carol"))
        .await
        .expect("rank_of");
    assert_eq!(carol.map(|e| (e.rank, e.score)), Some((3, 50)));
    assert_eq!(
        boards
            .rank_of(Window::Weekly, now, &p("zed"))
            .await
            .expect("rank_of"),
        None
    );
    let friends = boards
        .entries_for(
            Window::Daily,
            now,
            &[p("erin"), p("nobody"), p("alice"), p("erin")],
        )
        .await
        .expect("entries_for");
    assert_eq!(rows(&friends), [(2, "alice", 50), (5, "erin", 0)]);
    // More XP later reorders: carol passes bob.
    counted(&*boards, &[ev(6, "carol", 21, NOW)], 6).await;
    let top = boards.page(Window::Daily, now, 0, 2).await.expect("page");
    assert_eq!(rows(&top.entries), [(1, "carol", 71), (2, "bob", 70)]);
    // A different day is a different daily board but the same week.
    let monday = utc("2026-11-23T10:00:00Z");
    assert_eq!(boards.total(Window::Daily, monday).await.expect("total"), 0);
    let sunday = boards.period(Window::Daily, now);
    assert_eq!(
        boards
            .page(Window::Daily, monday, 0, 10)
            .await
            .expect("page")
            .period
            .id,
        "2026-11-23"
    );
    assert_eq!(sunday.id, "2026-11-22");
}

pub async fn boards_page_through_and_clamp_around(b: &Backend) {
    let boards = built(b, &[Window::Weekly]).await;
    let events: Vec<BoardEvent> = (0..25)
        .map(|i| ev(i + 1, &format!("player_{i:02}"), 100 - i as i64, NOW))
        .collect();
    counted(&*boards, &events, 25).await;
    let now = utc(NOW);
    let w = Window::Weekly;
    let page = boards.page(w, now, 10, 10).await.expect("page");
    assert_eq!(page.entries.len(), 10);
    assert_eq!(
        (page.entries[0].rank, page.entries[0].player_id.as_str()),
        (11, "player_10")
    );
    assert_eq!(page.total, 25);
    assert_eq!(
        boards
            .page(w, now, 20, 10)
            .await
            .expect("page")
            .entries
            .len(),
        5
    );
    assert!(boards
        .page(w, now, 25, 10)
        .await
        .expect("page")
        .entries
        .is_empty());
    assert!(boards
        .page(w, now, 0, 0)
        .await
        .expect("page")
        .entries
        .is_empty());
    assert_eq!(
        boards
            .page(w, now, 24, usize::MAX)
            .await
            .expect("page")
            .entries
            .len(),
        1
    );
    let first = boards
        .around(w, now, &p("player_00"), 2)
        .await
        .expect("around")
        .expect("on the board");
    assert_eq!(
        rows(&first),
        [
            (1, "player_00", 100),
            (2, "player_01", 99),
            (3, "player_02", 98)
        ]
    );
    let last = boards
        .around(w, now, &p("player_24"), 2)
        .await
        .expect("around")
        .expect("on the board");
    assert_eq!(
        last.iter().map(|e| e.rank).collect::<Vec<_>>(),
        [23, 24, 25]
    );
    let all = boards
        .around(w, now, &p("player_05"), usize::MAX)
        .await
        .expect("around")
        .expect("on the board");
    assert_eq!(all.len(), 25);
    assert_eq!(
        boards
            .around(w, now, &p("nobody"), 2)
            .await
            .expect("around"),
        None
    );
}

pub async fn boards_are_not_built_until_replaced(b: &Backend) {
    let boards = b.boards(&Window::ALL);
    assert_eq!(boards.cursor().await.expect("cursor"), None);
    let out = boards
        .apply(&[ev(1, "alice", 5, NOW)], 1)
        .await
        .expect("apply");
    assert_eq!(out, ApplyOutcome::NotBuilt);
    assert_eq!(
        boards.total(Window::Weekly, utc(NOW)).await.expect("total"),
        0,
        "nothing applied without a cursor"
    );
    assert_eq!(
        boards
            .apply_released(1, &ev(1, "alice", 5, NOW), &[])
            .await
            .expect("apply_released"),
        ApplyOutcome::NotBuilt
    );
    assert_eq!(boards.released_cursor().await.expect("cursor"), None);
    boards.replace(Vec::new(), 7, 3).await.expect("replace");
    assert_eq!(boards.cursor().await.expect("cursor"), Some(7));
    assert_eq!(boards.released_cursor().await.expect("cursor"), Some(3));
}

pub async fn apply_twice_counts_each_event_once(b: &Backend) {
    let boards = built(b, &Window::ALL).await;
    let batch = [
        ev(1, "alice", 10, NOW),
        ev(2, "bob", 20, NOW),
        ev(3, "alice", 5, NOW),
    ];
    assert_eq!(counted(&*boards, &batch, 3).await, (3, 0));
    assert_eq!(counted(&*boards, &batch, 3).await, (0, 3));
    // An overlapping batch counts only what is new.
    let more = [
        ev(3, "alice", 5, NOW),
        ev(4, "carol", 1, NOW),
        ev(5, "bob", 1, NOW),
    ];
    assert_eq!(counted(&*boards, &more, 5).await, (2, 1));
    assert_eq!(boards.cursor().await.expect("cursor"), Some(5));
    // Events the caller filtered out (an erased player's) still move the cursor.
    assert_eq!(counted(&*boards, &[], 9).await, (0, 0));
    assert_eq!(boards.cursor().await.expect("cursor"), Some(9));
    assert_eq!(counted(&*boards, &[ev(8, "zed", 99, NOW)], 9).await, (0, 1));
    // The cursor never moves back.
    counted(&*boards, &[], 4).await;
    assert_eq!(boards.cursor().await.expect("cursor"), Some(9));
    let page = boards
        .page(Window::Seasonal, utc(NOW), 0, 10)
        .await
        .expect("page");
    assert_eq!(
        rows(&page.entries),
        [(1, "bob", 21), (2, "alice", 15), (3, "carol", 1)]
    );
}

pub async fn concurrent_applies_count_each_event_once(b: &Backend) {
    let boards = built(b, &[Window::Daily, Window::Weekly]).await;
    let batch: Arc<Vec<BoardEvent>> = Arc::new(
        (1..=200)
            .map(|i| ev(i, &format!("player_{}", i % 17), 3, NOW))
            .collect(),
    );
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let boards = boards.clone();
            let batch = batch.clone();
            tokio::spawn(async move { counted(&*boards, &batch, 200).await })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("task").0;
    }
    assert_eq!(total, 200, "every event counted by exactly one apply");
    let page = boards
        .page(Window::Weekly, utc(NOW), 0, 100)
        .await
        .expect("page");
    assert_eq!(page.entries.iter().map(|e| e.score).sum::<i64>(), 600);
}

pub async fn replace_installs_exact_boards_and_the_cursor(b: &Backend) {
    let boards = built(b, &Window::ALL).await;
    counted(
        &*boards,
        &[
            ev(1, "alice", 10, NOW),
            ev(2, "old_day", 3, "2026-11-21T10:00:00Z"),
        ],
        2,
    )
    .await;
    let v = boards.version(Window::Daily).await.expect("version");
    let now = utc(NOW);
    let day = boards.period(Window::Daily, now);
    let week = boards.period(Window::Weekly, now);
    boards
        .replace(
            vec![
                (
                    day.clone(),
                    vec![(p("bob"), 7), (p("alice"), 9), (p("bob"), 1)],
                ),
                (week, vec![(p("carol"), 4)]),
            ],
            42,
            6,
        )
        .await
        .expect("replace");
    assert_eq!(boards.cursor().await.expect("cursor"), Some(42));
    assert_eq!(boards.released_cursor().await.expect("cursor"), Some(6));
    assert_ne!(boards.version(Window::Daily).await.expect("version"), v);
    let page = boards.page(Window::Daily, now, 0, 10).await.expect("page");
    assert_eq!(rows(&page.entries), [(1, "alice", 9), (2, "bob", 8)]);
    assert_eq!(page.updated_at, None, "a rebuilt board has no last event");
    assert_eq!(
        rows(
            &boards
                .page(Window::Weekly, now, 0, 10)
                .await
                .expect("page")
                .entries
        ),
        [(1, "carol", 4)]
    );
    assert_eq!(
        boards.total(Window::Seasonal, now).await.expect("total"),
        0,
        "boards not in the rebuild are gone"
    );
    assert_eq!(
        boards
            .total(Window::Daily, utc("2026-11-21T10:00:00Z"))
            .await
            .expect("total"),
        0
    );
    assert_eq!(
        counted(&*boards, &[ev(42, "bob", 100, NOW)], 42).await,
        (0, 1)
    );
    assert_eq!(
        counted(&*boards, &[ev(43, "bob", 2, NOW)], 43).await,
        (1, 0)
    );
    assert_eq!(
        boards
            .rank_of(Window::Daily, now, &p("bob"))
            .await
            .expect("rank_of")
            .map(|e| (e.rank, e.score)),
        Some((1, 10))
    );
}

pub async fn rollover_hands_each_ended_period_out_once(b: &Backend) {
    let boards = built(b, &Window::ALL).await;
    counted(
        &*boards,
        &[
            ev(1, "alice", 10, "2026-11-21T12:00:00Z"),
            ev(2, "bob", 20, "2026-11-21T13:00:00Z"),
            ev(3, "alice", 15, "2026-11-21T23:59:59Z"),
        ],
        3,
    )
    .await;
    assert!(boards
        .roll_over(utc("2026-11-21T23:59:59Z"))
        .await
        .expect("roll_over")
        .is_empty());
    let midnight = utc("2026-11-22T00:00:00Z");
    // Two processes race to roll over: the period goes to exactly one.
    let (a, c) = tokio::join!(boards.roll_over(midnight), boards.roll_over(midnight));
    let mut finished = a.expect("roll_over");
    finished.extend(c.expect("roll_over"));
    assert_eq!(
        finished.len(),
        1,
        "only the daily period ended, handed out once"
    );
    let day = &finished[0];
    assert_eq!(
        (day.period.window, day.period.id.as_str()),
        (Window::Daily, "2026-11-21")
    );
    assert_eq!(rows(&day.entries), [(1, "alice", 25), (2, "bob", 20)]);
    assert!(boards
        .roll_over(midnight)
        .await
        .expect("roll_over")
        .is_empty());
    assert_eq!(
        boards.total(Window::Daily, midnight).await.expect("total"),
        0
    );
    assert_eq!(
        boards.total(Window::Weekly, midnight).await.expect("total"),
        2
    );
    // A week later the weekly board ends too (the daily of the 22nd was never written).
    counted(&*boards, &[ev(4, "carol", 1, "2026-11-22T08:00:00Z")], 4).await;
    let mut ended: Vec<(Window, String)> = boards
        .roll_over(utc("2026-11-30T00:00:00Z"))
        .await
        .expect("roll_over")
        .into_iter()
        .map(|f| (f.period.window, f.period.id))
        .collect();
    ended.sort();
    assert_eq!(
        ended,
        [
            (Window::Daily, "2026-11-22".to_string()),
            (Window::Weekly, "2026-W47".to_string())
        ]
    );
}

pub async fn late_events_for_a_rolled_over_period_are_refused(b: &Backend) {
    let boards = built(b, &Window::ALL).await;
    counted(&*boards, &[ev(1, "alice", 10, "2026-11-21T12:00:00Z")], 1).await;
    boards
        .roll_over(utc("2026-11-22T00:00:05Z"))
        .await
        .expect("roll_over");
    let out = boards
        .apply(&[ev(2, "bob", 99, "2026-11-21T23:59:59Z")], 2)
        .await
        .expect("apply");
    let ApplyOutcome::Applied {
        counted: n, late, ..
    } = out
    else {
        panic!("built")
    };
    assert_eq!(n, 1);
    assert_eq!(
        late.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        ["2026-11-21"]
    );
    // The other windows still count it, and no zombie daily board reappears.
    assert_eq!(
        boards
            .total(Window::Weekly, utc("2026-11-22T00:00:05Z"))
            .await
            .expect("total"),
        2
    );
    assert!(boards
        .roll_over(utc("2026-11-22T00:00:10Z"))
        .await
        .expect("roll_over")
        .is_empty());
}

pub async fn reset_and_remove_player(b: &Backend) {
    let boards = built(b, &Window::ALL).await;
    let now = utc(NOW);
    counted(
        &*boards,
        &[
            ev(1, "alice", 10, "2026-11-21T10:00:00Z"),
            ev(2, "alice", 10, NOW),
            ev(3, "bob", 5, NOW),
        ],
        3,
    )
    .await;
    let before = boards.version(Window::Daily).await.expect("version");
    boards.reset(Window::Daily, now).await.expect("reset");
    assert!(boards.version(Window::Daily).await.expect("version") != before);
    assert_eq!(boards.total(Window::Daily, now).await.expect("total"), 0);
    assert_eq!(boards.total(Window::Weekly, now).await.expect("total"), 2);
    assert_eq!(
        boards
            .total(Window::Daily, utc("2026-11-21T10:00:00Z"))
            .await
            .expect("total"),
        1,
        "only the current period is reset"
    );
    counted(&*boards, &[ev(4, "carol", 3, NOW)], 4).await;
    assert_eq!(boards.total(Window::Daily, now).await.expect("total"), 1);

    assert!(boards.remove_player(&p("alice"), 4).await.expect("remove"));
    assert!(!boards.remove_player(&p("alice"), 4).await.expect("remove"));
    for w in Window::ALL {
        let page = boards.page(w, now, 0, 10).await.expect("page");
        assert!(
            page.entries.iter().all(|e| e.player_id.as_str() != "alice"),
            "{w}"
        );
    }
    let finished = boards
        .roll_over(utc("2026-11-22T00:00:00Z"))
        .await
        .expect("roll_over");
    assert!(
        finished[0].entries.is_empty(),
        "the ended day forgot her too"
    );
}

pub async fn an_erasure_keeps_events_read_before_it_off_the_boards(b: &Backend) {
    let boards = built(b, &Window::ALL).await;
    let now = utc(NOW);
    counted(
        &*boards,
        &[ev(1, "alice", 10, NOW), ev(2, "bob", 5, NOW)],
        2,
    )
    .await;
    // The erasure covers the log up to seq 4; alice's events 3 and 4 were read before it by an
    // apply still in flight (in another process, say), which lands afterwards.
    assert!(boards.remove_player(&p("alice"), 4).await.expect("remove"));
    let in_flight = [
        ev(3, "alice", 7, NOW),
        ev(4, "alice", 1, NOW),
        ev(5, "bob", 1, NOW),
    ];
    assert_eq!(counted(&*boards, &in_flight, 5).await, (1, 2));
    for w in Window::ALL {
        assert_eq!(
            boards.rank_of(w, now, &p("alice")).await.expect("rank"),
            None,
            "{w}"
        );
        let bob = boards.rank_of(w, now, &p("bob")).await.expect("rank");
        assert_eq!(bob.map(|e| e.score), Some(6), "{w}");
    }
    // Events after the erasure count again (the id was reused), and the erasure is forgotten
    // once the cursor passed it: a later erasure starts from scratch.
    assert_eq!(
        counted(&*boards, &[ev(6, "alice", 2, NOW)], 6).await,
        (1, 0)
    );
    let alice = boards
        .rank_of(Window::Daily, now, &p("alice"))
        .await
        .expect("rank");
    assert_eq!(alice.map(|e| e.score), Some(2));
    assert!(boards.remove_player(&p("alice"), 6).await.expect("remove"));
    assert_eq!(
        counted(&*boards, &[ev(7, "alice", 3, NOW)], 7).await,
        (1, 0)
    );
}

pub async fn disabled_windows_are_ignored(b: &Backend) {
    let boards = built(b, &[Window::Weekly]).await;
    let now = utc(NOW);
    counted(&*boards, &[ev(1, "alice", 30, NOW)], 1).await;
    assert_eq!(boards.windows(), [Window::Weekly]);
    assert!(!boards.is_enabled(Window::Daily));
    assert_eq!(boards.total(Window::Weekly, now).await.expect("total"), 1);
    assert_eq!(boards.total(Window::Daily, now).await.expect("total"), 0);
    let page = boards.page(Window::Daily, now, 0, 10).await.expect("page");
    assert!(page.entries.is_empty());
    assert_eq!(page.period.id, "2026-11-22");
}

pub async fn released_events_count_once_by_release_number(b: &Backend) {
    let boards = built(b, &Window::ALL).await;
    counted(&*boards, &[ev(5, "alice", 10, NOW)], 5).await;
    let applied = |n: u64| ApplyOutcome::Applied {
        counted: n,
        skipped: 1 - n,
        late: Vec::new(),
    };
    // Below the log cursor (released long after it passed): counted all the same.
    let bob = ev(2, "bob", 40, NOW);
    let out = boards.apply_released(1, &bob, &[]).await.expect("apply");
    assert_eq!(out, applied(1));
    assert_eq!(boards.cursor().await.expect("cursor"), Some(5));
    assert_eq!(boards.released_cursor().await.expect("cursor"), Some(1));
    // Asked again (a second process catching up, a retry): skipped.
    let out = boards.apply_released(1, &bob, &[]).await.expect("apply");
    assert_eq!(out, applied(0));
    // Above the log cursor: counted, and the log consumer never sees it.
    let carol = ev(9, "carol", 7, NOW);
    let out = boards.apply_released(2, &carol, &[]).await.expect("apply");
    assert_eq!(out, applied(1));
    let page = boards
        .page(Window::Weekly, utc(NOW), 0, 10)
        .await
        .expect("page");
    assert_eq!(
        rows(&page.entries),
        [(1, "bob", 40), (2, "alice", 10), (3, "carol", 7)]
    );
    // A rebuild sets the release cursor: releases up to it are in the rebuilt sums.
    boards.replace(Vec::new(), 5, 7).await.expect("replace");
    let out = boards.apply_released(7, &carol, &[]).await.expect("apply");
    assert_eq!(out, applied(0));
    let out = boards.apply_released(8, &carol, &[]).await.expect("apply");
    assert_eq!(out, applied(1));
    assert_eq!(boards.released_cursor().await.expect("cursor"), Some(8));
    // A window whose board was reset after the event (`except`) is left alone; the release
    // cursor moves all the same.
    let dave = ev(3, "dave", 11, NOW);
    let out = boards
        .apply_released(9, &dave, &[Window::Daily])
        .await
        .expect("apply");
    assert_eq!(out, applied(1));
    assert_eq!(boards.released_cursor().await.expect("cursor"), Some(9));
    let now = utc(NOW);
    let score = |w: Window| {
        let boards = boards.clone();
        async move {
            let page = boards.page(w, now, 0, 10).await.expect("page");
            rows(&page.entries)
                .into_iter()
                .find(|(_, p, _)| *p == "dave")
                .map(|(_, _, s)| s)
        }
    };
    assert_eq!(score(Window::Daily).await, None, "the reset window");
    assert_eq!(score(Window::Weekly).await, Some(11));
    assert_eq!(score(Window::Seasonal).await, Some(11));
}

fn id(s: &str) -> Option<EventId> {
    Some(EventId::parse(s).expect("valid"))
}

pub async fn idempotency_replay_conflict_release_and_ttl(b: &Backend) {
    let keys = b.idempotency(Duration::from_millis(300));
    let rec = Recorded(vec![id("e1"), None, id("e3")]);
    let check = |key: &'static str, body: &'static [u8], r: Recorded| {
        let keys = keys.clone();
        async move { keys.check_and_reserve(key, body, r).await.expect("check") }
    };
    assert_eq!(check("k", b"a", rec.clone()).await, Lookup::Fresh);
    assert_eq!(
        check("k", b"a", Recorded(vec![])).await,
        Lookup::Replay(rec.clone())
    );
    assert_eq!(check("k", b"b", Recorded(vec![])).await, Lookup::Conflict);
    assert_eq!(check("other", b"a", Recorded(vec![])).await, Lookup::Fresh);
    keys.release("k").await.expect("release");
    assert_eq!(
        check("k", b"b", Recorded(vec![id("e9")])).await,
        Lookup::Fresh
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    keys.purge_expired().await.expect("purge");
    assert_eq!(
        check("k", b"c", Recorded(vec![])).await,
        Lookup::Fresh,
        "expired after IDEMP_TTL"
    );
}

pub async fn rate_limit_burst_then_wait_then_refill(b: &Backend) {
    let limits = b.limits("test", Quota::per_second(3));
    for _ in 0..3 {
        assert_eq!(limits.check("a").await.expect("check"), None);
    }
    let wait = limits
        .check("a")
        .await
        .expect("check")
        .expect("the fourth is refused");
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_millis(334),
        "{wait:?}"
    );
    assert_eq!(
        limits.check("b").await.expect("check"),
        None,
        "keys have their own buckets"
    );
    tokio::time::sleep(wait + Duration::from_millis(20)).await;
    assert_eq!(limits.check("a").await.expect("check"), None, "refilled");
    assert!(limits.check("a").await.expect("check").is_some());
    limits.clean().await.expect("clean");

    let slow = b.limits("slow", Quota::per_minute(2));
    assert_eq!(slow.check("ip").await.expect("check"), None);
    assert_eq!(slow.check("ip").await.expect("check"), None);
    let wait = slow.check("ip").await.expect("check").expect("refused");
    assert!(
        wait > Duration::from_secs(28) && wait <= Duration::from_secs(30),
        "{wait:?}"
    );
    let off = b.limits("off", Quota::per_minute(0));
    for _ in 0..10 {
        assert_eq!(off.check("x").await.expect("check"), None);
    }
}

pub async fn blocks_expire_prune_and_load(b: &Backend) {
    let clock = ManualClock::new(utc(NOW));
    let blocks = b.blocks(Arc::new(clock.clone()));
    let until = utc(NOW) + chrono::Duration::seconds(60);
    blocks.set(&p("alice"), None).await.expect("set");
    blocks.set(&p("bob"), Some(until)).await.expect("set");
    assert_eq!(
        blocks.blocked(&p("alice")).await.expect("blocked"),
        Some(None)
    );
    assert_eq!(
        blocks.blocked(&p("bob")).await.expect("blocked"),
        Some(Some(until))
    );
    assert_eq!(blocks.blocked(&p("carol")).await.expect("blocked"), None);
    clock.advance(chrono::Duration::seconds(61));
    assert_eq!(
        blocks.blocked(&p("bob")).await.expect("blocked"),
        None,
        "expired"
    );
    blocks.prune().await.expect("prune");
    // Pruned: setting the clock back does not bring the block back.
    clock.set(utc(NOW));
    assert_eq!(blocks.blocked(&p("bob")).await.expect("blocked"), None);
    blocks.clear(&p("alice")).await.expect("clear");
    assert_eq!(blocks.blocked(&p("alice")).await.expect("blocked"), None);
    blocks.set(&p("alice"), None).await.expect("set");
    blocks
        .load(vec![(p("carol"), Some(until)), (p("dave"), None)])
        .await
        .expect("load");
    assert_eq!(
        blocks.blocked(&p("alice")).await.expect("blocked"),
        None,
        "replaced"
    );
    assert_eq!(
        blocks.blocked(&p("carol")).await.expect("blocked"),
        Some(Some(until))
    );
    assert_eq!(
        blocks.blocked(&p("dave")).await.expect("blocked"),
        Some(None)
    );
}

pub async fn player_gate_answers_the_block_and_the_flood_limit_together(b: &Backend) {
    let clock = ManualClock::new(utc(NOW));
    let clock_dyn: Arc<dyn liveops_domain::Clock> = Arc::new(clock.clone());
    let blocks = b.blocks(clock_dyn.clone());
    let quota = Quota::per_second(2);
    let flood = b.limits("flood", quota);
    let gate = b.gate(blocks.clone(), flood.clone(), quota, clock_dyn.clone());
    let until = utc(NOW) + chrono::Duration::seconds(60);
    blocks.set(&p("alice"), Some(until)).await.expect("set");
    blocks.set(&p("mallory"), None).await.expect("set");

    let open = gate.admit(&p("bob")).await.expect("admit");
    assert_eq!((open.blocked, open.flood_wait), (None, None));
    assert_eq!(gate.admit(&p("bob")).await.expect("admit").flood_wait, None);
    let third = gate.admit(&p("bob")).await.expect("admit");
    assert_eq!(third.blocked, None);
    let wait = third.flood_wait.expect("a burst of 2, so the third waits");
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_millis(500),
        "{wait:?}"
    );
    assert!(
        flood.check("bob").await.expect("check").is_some(),
        "the gate drew on the flood limit's own bucket"
    );

    assert_eq!(
        gate.admit(&p("alice")).await.expect("admit").blocked,
        Some(Some(until))
    );
    assert_eq!(
        gate.admit(&p("mallory")).await.expect("admit").blocked,
        Some(None),
        "blocked until an operator unblocks"
    );
    clock.advance(chrono::Duration::seconds(61));
    assert_eq!(
        gate.admit(&p("alice")).await.expect("admit").blocked,
        None,
        "the block ended"
    );
    blocks.clear(&p("mallory")).await.expect("clear");
    assert_eq!(
        gate.admit(&p("mallory")).await.expect("admit").blocked,
        None,
        "an unblock holds at once"
    );

    // No flood limit: only the block is read.
    let unlimited = b.gate(
        blocks.clone(),
        b.limits("flood", None),
        None,
        clock_dyn.clone(),
    );
    for _ in 0..5 {
        assert_eq!(
            unlimited.admit(&p("carol")).await.expect("admit"),
            liveops_hotstate::Admission {
                blocked: None,
                flood_wait: None
            }
        );
    }
}

/// Requests that arrive together each get their own player's answer, and a player's repeats
/// draw on the flood bucket one after the other.
/// (Player names no other test uses: the cluster suite runs every test in one namespace.)
pub async fn player_gate_answers_concurrent_requests_each_for_their_player(b: &Backend) {
    let clock = ManualClock::new(utc(NOW));
    let clock_dyn: Arc<dyn liveops_domain::Clock> = Arc::new(clock.clone());
    let blocks = b.blocks(clock_dyn.clone());
    let quota = Quota::per_second(3);
    let gate = b.gate(
        blocks.clone(),
        b.limits("flood", quota),
        quota,
        clock_dyn.clone(),
    );
    blocks.set(&p("alice"), None).await.expect("set");
    let players: Vec<PlayerId> = (0..40)
        .map(|i| match i % 4 {
            0 => p("burst_bob"),
            1 => p("alice"),
            _ => p(&format!("player_{i}")),
        })
        .collect();
    let answers = futures::future::join_all(players.iter().map(|player| gate.admit(player))).await;
    let mut bob_allowed = 0;
    for (player, answer) in players.iter().zip(answers) {
        let answer = answer.expect("admit");
        match player.as_str() {
            "burst_bob" => {
                assert_eq!(answer.blocked, None);
                bob_allowed += usize::from(answer.flood_wait.is_none());
            }
            "alice" => assert_eq!(answer.blocked, Some(None), "alice is blocked"),
            _ => assert_eq!(
                (answer.blocked, answer.flood_wait),
                (None, None),
                "{player} asked once"
            ),
        }
    }
    assert_eq!(
        bob_allowed, 3,
        "a burst of 3 out of burst_bob's 10 requests"
    );
}
