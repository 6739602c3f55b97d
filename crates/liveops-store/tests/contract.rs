//! The store contract: what every system-of-record implementation must do. Written once as
//! functions over the traits and run against each implementation by `contract!`: SQLite (a
//! fresh directory per test) and PostgreSQL (a fresh database per test, see
//! `liveops_store::testing`; skipped with a notice when PostgreSQL is unreachable, failed under
//! `CI=true`). The `postgres_only` tests cover what only `PgStore` offers (the JetStream
//! deployment's `record_sequenced`, reconnects, errors).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use liveops_domain::signing::Receipt;
use liveops_domain::window::{Period, Window};
use liveops_domain::{Event, EventId, PlayerId};
use liveops_store::testing::{temp_postgres, TcpProxy, TempPostgres};
use liveops_store::{
    AdminStore, Appended, Archive, ArchivedEntry, ArchivedPeriod, AuditEntry, Block, BoardSource,
    ClaimOutcome, EventLog, FairnessStore, FlagFilter, FlagRecord, FlagStatus, LoggedEvent,
    NewEvent, PgStore, ProgressStore, ReleasedEvent, Resolution, ResolveOutcome, SqliteStore,
    StoreError,
};
use serde_json::json;

/// Everything a system of record implements.
trait Store: EventLog + ProgressStore + BoardSource + AdminStore + FairnessStore + Clone {}
impl<S: EventLog + ProgressStore + BoardSource + AdminStore + FairnessStore + Clone> Store for S {}

fn noon() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
}

fn new_event(value: serde_json::Value) -> NewEvent {
    NewEvent {
        event: Event::from_value(value).unwrap(),
        received_at: noon(),
    }
}

fn ev(id: &str, player: &str, xp: i64) -> NewEvent {
    new_event(
        json!({"eventId": id, "type": "progression", "playerId": player, "ts": 1,
        "payload": {"deltaXp": xp, "activity": "a"}}),
    )
}

fn pid(p: &str) -> PlayerId {
    PlayerId::parse(p).unwrap()
}

fn eid(e: &str) -> EventId {
    EventId::parse(e).unwrap()
}

fn seqs(r: &[Appended]) -> Vec<u64> {
    r.iter()
        .filter_map(|a| match a {
            Appended::New { seq } => Some(*seq),
            Appended::Duplicate => None,
        })
        .collect()
}

fn flag(le: &LoggedEvent, status: FlagStatus) -> FlagRecord {
    FlagRecord {
        seq: le.seq,
        event_id: le.event.event_id.clone(),
        player_id: le.event.player_id.clone(),
        metric: "deltaXp:a".into(),
        value: le.xp as f64,
        rule: "hard_limit".into(),
        reason: "more XP than one event may grant".into(),
        status,
        flagged_at: noon(),
        resolved_at: None,
        resolved_by: None,
    }
}

/// The fairness role quarantines `held` and moves its cursor to `head`.
async fn quarantine<S: Store>(s: &S, held: &LoggedEvent, head: u64) {
    s.record_flags("fairness", vec![flag(held, FlagStatus::Quarantined)], head)
        .await
        .unwrap();
}

async fn xp_of<S: Store>(s: &S, player: &str) -> Option<i64> {
    s.progress(&pid(player))
        .await
        .unwrap()
        .map(|p| p.progress.xp)
}

async fn apply_all<S: Store>(s: &S) -> u64 {
    let batch = Arc::new(s.read_after(0, 10_000).await.unwrap());
    s.apply_events("progression", batch).await.unwrap()
}

// ---------------------------------------------------------------------------------------------
// The contract.

async fn append_assigns_increasing_seqs_and_dedups_forever<S: Store>(s: &S) {
    let r = s
        .append(vec![
            ev("a", "p_1", 1),
            ev("b", "p_1", 2),
            ev("a", "p_1", 9),
        ])
        .await
        .unwrap();
    let seqs = seqs(&r);
    assert_eq!(seqs.len(), 2);
    assert!(seqs[0] < seqs[1]);
    assert_eq!(r[2], Appended::Duplicate);
    assert_eq!(
        s.append(vec![ev("b", "p_1", 2)]).await.unwrap(),
        vec![Appended::Duplicate]
    );
    assert_eq!(*s.committed().borrow(), seqs[1]);
    let read = s.read_after(0, 10).await.unwrap();
    assert_eq!(
        read.iter()
            .map(|e| e.event.event_id.as_str())
            .collect::<Vec<_>>(),
        vec!["a", "b"]
    );
    assert_eq!(read[0].xp, 1, "the first occurrence is the one kept");
    assert_eq!(read[1].xp, 2);
    assert_eq!(read[1].received_at, noon());
    assert_eq!(s.read_after(seqs[0], 10).await.unwrap().len(), 1);
    assert_eq!(s.append(vec![]).await.unwrap(), vec![]);
}

/// A large batch (written in several statements by some stores) keeps the batch's order, and a
/// repeat is a duplicate wherever its first copy is: earlier in the same statement, in an
/// earlier statement of the batch, or in an earlier append.
async fn a_large_batch_keeps_its_order_and_finds_repeats_anywhere<S: Store>(s: &S) {
    s.append(vec![ev("old", "p_1", 1)]).await.unwrap();
    let mut batch: Vec<NewEvent> = (0..150)
        .map(|i| ev(&format!("e{i}"), &format!("p_{}", i % 7), i + 1))
        .collect();
    // Positions of repeats: right after the first copy, across a statement boundary of 64 rows,
    // at the tail, and of an event from the earlier append.
    let repeats = [(3, "e2"), (90, "e10"), (149, "e120"), (40, "old")];
    for (at, id) in repeats {
        batch[at] = ev(id, "p_9", 1000);
    }
    let ids: Vec<String> = batch.iter().map(|e| e.event.event_id.to_string()).collect();
    let r = s.append(batch).await.unwrap();
    assert_eq!(r.len(), 150);
    let mut last = 0;
    for (i, a) in r.iter().enumerate() {
        match a {
            Appended::New { seq } => {
                assert!(*seq > last, "seqs follow the batch's order (index {i})");
                last = *seq;
            }
            Appended::Duplicate => assert!(
                repeats.iter().any(|(at, _)| *at == i),
                "index {i} is not a repeat"
            ),
        }
    }
    assert_eq!(r.iter().filter(|a| **a == Appended::Duplicate).count(), 4);
    let read = s.read_after(0, 1000).await.unwrap();
    assert_eq!(read.len(), 147);
    let expected: Vec<String> = std::iter::once("old".to_string())
        .chain(
            (0..150)
                .filter(|i| !repeats.iter().any(|(at, _)| at == i))
                .map(|i| format!("e{i}")),
        )
        .collect();
    assert_eq!(
        read.iter()
            .map(|e| e.event.event_id.as_str())
            .collect::<Vec<_>>(),
        expected
    );
    assert!(
        read.iter().all(|e| e.xp != 1000),
        "the first copy of a repeated id is the one kept"
    );
    // Each accepted event's answer names the seq its own row is stored under.
    for (i, a) in r.iter().enumerate() {
        if let Appended::New { seq } = a {
            let stored = read.iter().find(|e| e.seq == *seq).expect("stored");
            assert_eq!(stored.event.event_id.as_str(), ids[i], "index {i}");
        }
    }
}

async fn concurrent_appends_get_distinct_seqs_in_log_order<S: Store>(s: &S) {
    let mut tasks = Vec::new();
    for i in 0..64 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let events = (0..3)
                .map(|j| ev(&format!("c{i}_{j}"), &format!("p_c{}", i % 5), 1))
                .collect();
            s.append(events).await.unwrap()
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        let r = t.await.unwrap();
        let mine = seqs(&r);
        assert_eq!(mine.len(), 3);
        assert!(
            mine.windows(2).all(|w| w[0] < w[1]),
            "a batch keeps its order"
        );
        all.extend(mine);
    }
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 64 * 3);
    assert_eq!(*s.committed().borrow(), *all.last().unwrap());
    let read: Vec<u64> = s
        .read_after(0, 1000)
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(read, all);
}

async fn committed_batches_arrive_on_the_tail<S: Store>(s: &S) {
    let mut tail = s.tail().expect("the store offers a tail");
    let before = *s.committed().borrow();
    let r = s
        .append(vec![ev("t1", "p_t", 5), ev("t2", "p_t", 6)])
        .await
        .unwrap();
    let batch = tail.recv().await.unwrap();
    assert_eq!(batch.prev_head, before);
    assert_eq!(batch.head, *seqs(&r).last().unwrap());
    assert_eq!(
        batch.events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        seqs(&r)
    );
    let from_log = s.read_after(before, 10).await.unwrap();
    for (mem, log) in batch.events.iter().zip(&from_log) {
        assert_eq!(mem.event, log.event);
        assert_eq!(mem.received_at, log.received_at);
        assert_eq!(mem.xp, log.xp);
    }
}

async fn applying_a_batch_twice_applies_it_once<S: Store>(s: &S) {
    s.append(vec![ev("x1", "p_2", 600), ev("x2", "p_2", 600)])
        .await
        .unwrap();
    let batch = Arc::new(s.read_after(0, 100).await.unwrap());
    let c1 = s.apply_events("progression", batch.clone()).await.unwrap();
    let c2 = s.apply_events("progression", batch).await.unwrap();
    assert_eq!(c1, c2);
    assert_eq!(s.cursor("progression").await.unwrap(), c1);
    assert_eq!(s.cursor("someone_else").await.unwrap(), 0);
    let p = s.progress(&pid("p_2")).await.unwrap().unwrap();
    assert_eq!(p.progress.xp, 1200);
    assert_eq!(p.progress.level, 2);
    assert_eq!(p.updated_at, noon());
    let rewards = s.rewards(&pid("p_2")).await.unwrap();
    assert_eq!(rewards.len(), 1);
    assert_eq!(
        rewards[0].event_id.as_str(),
        "x2",
        "the event that crossed the level"
    );
    assert_eq!(rewards[0].reward_id, "lvl2_gold_100");
    assert_eq!(rewards[0].receipt_id, None);
    assert!(s.progress(&pid("nobody")).await.unwrap().is_none());
}

async fn concurrent_applies_count_each_event_once<S: Store>(s: &S, other: &S) {
    let events: Vec<NewEvent> = (0..200)
        .map(|i| ev(&format!("k{i}"), &format!("p_k{}", i % 7), 10))
        .collect();
    s.append(events).await.unwrap();
    let all = s.read_after(0, 1000).await.unwrap();
    // Overlapping batches from two appliers (two processes for PostgreSQL), racing.
    let mut tasks = Vec::new();
    for pass in 0..6 {
        for (k, store) in [s.clone(), other.clone()].into_iter().enumerate() {
            let from = (pass * 30 + k * 15).min(all.len());
            let batch = Arc::new(all[from..(from + 60).min(all.len())].to_vec());
            tasks.push(tokio::spawn(async move {
                store.apply_events("progression", batch).await.unwrap()
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Whatever the racing batches skipped (they jump past gaps) is not the point; every
    // applied event counts once, and the final catch-up applies the rest exactly once.
    let cursor = s.cursor("progression").await.unwrap();
    let rest: Vec<LoggedEvent> = all.iter().filter(|e| e.seq > cursor).cloned().collect();
    other
        .apply_events("progression", Arc::new(rest))
        .await
        .unwrap();
    let applied: Vec<&LoggedEvent> = all.iter().collect();
    let mut total = 0;
    for p in 0..7 {
        total += xp_of(s, &format!("p_k{p}")).await.unwrap_or(0);
    }
    assert!(
        total <= applied.len() as i64 * 10,
        "no event counted twice: {total}"
    );
    // Now the strict check, with batches that cover everything from the start: the racing
    // appliers must together apply every event exactly once.
    let s2 = (s.clone(), other.clone());
    let events: Vec<NewEvent> = (0..100).map(|i| ev(&format!("m{i}"), "p_m", 1)).collect();
    s2.0.append(events).await.unwrap();
    let head = *s2.0.committed().borrow();
    let all = Arc::new(s2.0.read_after(0, 10_000).await.unwrap());
    let (a, b) = (s2.0.clone(), s2.1.clone());
    let (a_all, b_all) = (all.clone(), all.clone());
    let ta = tokio::spawn(async move { a.apply_events("strict", a_all).await.unwrap() });
    let tb = tokio::spawn(async move { b.apply_events("strict", b_all).await.unwrap() });
    assert_eq!(ta.await.unwrap(), head);
    assert_eq!(tb.await.unwrap(), head);
    assert_eq!(s.cursor("strict").await.unwrap(), head);
    // "strict" applied the 200 k-events a second time under another consumer name: that is a
    // different consumer, so p_m is the clean witness.
    assert_eq!(xp_of(s, "p_m").await, Some(100));
}

async fn a_reward_is_claimed_once<S: Store>(s: &S) {
    s.append(vec![ev("c1", "p_3", 1000)]).await.unwrap();
    apply_all(s).await;
    let player = pid("p_3");
    let make = |id: &'static str| -> liveops_store::ReceiptMaker {
        Box::new(move |item: &str| Receipt::issue(b"k", id.into(), "p_3".into(), item.into(), 5))
    };
    let first = s.claim(&player, "lvl2_gold_100", make("r1")).await.unwrap();
    let ClaimOutcome::Claimed(r1) = first else {
        panic!("{first:?}")
    };
    assert_eq!(r1.item, "gold_100");
    let again = s.claim(&player, "lvl2_gold_100", make("r2")).await.unwrap();
    assert_eq!(again, ClaimOutcome::AlreadyClaimed(r1.clone()));
    assert_eq!(
        s.claim(&player, "lvl9_gold_100", make("r3")).await.unwrap(),
        ClaimOutcome::NotEarned
    );
    assert_eq!(
        s.claim(&pid("p_other"), "lvl2_gold_100", make("r4"))
            .await
            .unwrap(),
        ClaimOutcome::NotEarned,
        "another player's reward"
    );
    assert_eq!(s.receipt("r1").await.unwrap(), Some(r1));
    assert_eq!(s.receipt("r2").await.unwrap(), None);
    let rewards = s.rewards(&player).await.unwrap();
    assert_eq!(rewards[0].receipt_id.as_deref(), Some("r1"));
}

async fn concurrent_claims_issue_one_receipt<S: Store>(s: &S) {
    s.append(vec![ev("cc1", "p_cc", 1000)]).await.unwrap();
    apply_all(s).await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let make: liveops_store::ReceiptMaker = Box::new(move |item: &str| {
                Receipt::issue(b"k", format!("rc{i}"), "p_cc".into(), item.into(), 5)
            });
            s.claim(&pid("p_cc"), "lvl2_gold_100", make).await.unwrap()
        }));
    }
    let mut claimed = Vec::new();
    let mut again = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            ClaimOutcome::Claimed(r) => claimed.push(r),
            ClaimOutcome::AlreadyClaimed(r) => again.push(r),
            ClaimOutcome::NotEarned => panic!("earned"),
        }
    }
    assert_eq!(claimed.len(), 1);
    assert!(again.iter().all(|r| *r == claimed[0]));
}

async fn progress_adds_up_across_batches_and_rewards_the_event_that_reached_each_level<S: Store>(
    s: &S,
) {
    let boss = |id: &str, boss: &str, points: i64, at: DateTime<Utc>| NewEvent {
        received_at: at,
        ..new_event(
            json!({"eventId": id, "type": "boss_kill", "playerId": "p_c", "ts": 1,
            "payload": {"bossId": boss, "tier": 2, "points": points}}),
        )
    };
    let later = noon() + chrono::Duration::minutes(5);
    s.append(vec![
        boss("c1", "dragon", 300, noon()),
        ev("c2", "p_c", 800),
        ev("c3", "p_other", 5),
    ])
    .await
    .unwrap();
    apply_all(s).await;
    let p = s.progress(&pid("p_c")).await.unwrap().unwrap();
    assert_eq!((p.progress.xp, p.progress.level), (1100, 2));
    // A second batch on the existing row: kills of a known and a new boss, several levels.
    s.append(vec![
        boss("c4", "dragon", 100, later),
        boss("c5", "golem", 0, noon()),
        ev("c6", "p_c", 3900),
    ])
    .await
    .unwrap();
    apply_all(s).await;
    let p = s.progress(&pid("p_c")).await.unwrap().unwrap();
    assert_eq!((p.progress.xp, p.progress.level), (5100, 6));
    assert_eq!(
        p.progress.boss_kills,
        [("dragon".to_string(), 2), ("golem".to_string(), 1)].into()
    );
    assert_eq!(p.updated_at, later, "the latest receive time");
    let mut rewards: Vec<(String, String)> = s
        .rewards(&pid("p_c"))
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.reward_id, r.event_id.into()))
        .collect();
    rewards.sort();
    let want: Vec<(String, String)> = [
        ("lvl2_gold_100", "c2"),
        ("lvl3_gold_100", "c6"),
        ("lvl4_gold_100", "c6"),
        ("lvl5_chest_rare", "c6"),
        ("lvl5_gold_100", "c6"),
        ("lvl6_gold_100", "c6"),
    ]
    .iter()
    .map(|(r, e)| (r.to_string(), e.to_string()))
    .collect();
    assert_eq!(rewards, want);
    assert_eq!(xp_of(s, "p_other").await, Some(5));
}

async fn progress_counts_boss_kills_and_keeps_drops_in_order<S: Store>(s: &S) {
    s.append(vec![
        new_event(
            json!({"eventId": "bk1", "type": "boss_kill", "playerId": "p_b", "ts": 1,
            "payload": {"bossId": "dragon", "tier": 3, "points": 50}}),
        ),
        new_event(
            json!({"eventId": "bk2", "type": "boss_kill", "playerId": "p_b", "ts": 1,
            "payload": {"bossId": "dragon", "tier": 3, "points": 50}}),
        ),
        new_event(
            json!({"eventId": "d1", "type": "drop_claimed", "playerId": "p_b", "ts": 1,
            "payload": {"dropId": "sword", "weight": 0.5, "source": "chest"}}),
        ),
        // A NUL in a free-text field must not poison the log or progression.
        new_event(
            json!({"eventId": "d2", "type": "drop_claimed", "playerId": "p_b", "ts": 1,
            "payload": {"dropId": "sh\u{0}ield", "weight": 0.25, "source": "boss"}}),
        ),
        new_event(
            json!({"eventId": "bk3", "type": "boss_kill", "playerId": "p_b", "ts": 1,
            "payload": {"bossId": "li\u{0}ch", "tier": 3, "points": 0}}),
        ),
    ])
    .await
    .unwrap();
    let read = s.read_after(0, 10).await.unwrap();
    assert_eq!(
        read[3].event.payload.to_map()["dropId"],
        json!("sh\u{0}ield")
    );
    apply_all(s).await;
    let p = s.progress(&pid("p_b")).await.unwrap().unwrap().progress;
    assert_eq!(p.xp, 50 + 50 + 50 + 25);
    assert_eq!(p.boss_kills.get("dragon"), Some(&2));
    assert_eq!(
        p.boss_kills.values().sum::<u64>(),
        3,
        "the NUL boss counted too"
    );
    // And again onto the existing row (PostgreSQL merges the kills in SQL).
    s.append(vec![new_event(
        json!({"eventId": "bk4", "type": "boss_kill", "playerId": "p_b", "ts": 1,
        "payload": {"bossId": "li\u{0}ch", "tier": 3, "points": 0}}),
    )])
    .await
    .unwrap();
    apply_all(s).await;
    let p = s.progress(&pid("p_b")).await.unwrap().unwrap().progress;
    assert_eq!(p.boss_kills.values().sum::<u64>(), 4);
    assert_eq!(p.boss_kills.len(), 2);
    assert_eq!(
        p.drops
            .iter()
            .map(|d| d.event_id.as_str())
            .collect::<Vec<_>>(),
        vec!["d1", "d2"]
    );
    assert_eq!(p.drops[0].drop_id, "sword");
    assert_eq!(p.drops[0].weight, 0.5);
}

async fn board_sums_cover_the_range_and_head<S: Store>(s: &S) {
    s.append(vec![
        ev("s1", "p_4", 10),
        ev("s2", "p_4", 5),
        ev("s3", "p_5", 7),
    ])
    .await
    .unwrap();
    let head = *s.committed().borrow();
    let day = Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).unwrap();
    let rows = s
        .xp_by_player(day, day + chrono::Duration::days(1), head)
        .await
        .unwrap();
    let p4 = rows.iter().find(|(p, _)| p.as_str() == "p_4").unwrap();
    assert_eq!(p4.1, 15);
    let none = s
        .xp_by_player(
            day + chrono::Duration::days(1),
            day + chrono::Duration::days(2),
            head,
        )
        .await
        .unwrap();
    assert!(none.is_empty());
    let below = s
        .xp_by_player(day, day + chrono::Duration::days(1), head - 1)
        .await
        .unwrap();
    assert!(
        below.iter().all(|(p, _)| p.as_str() != "p_5"),
        "seq bound respected"
    );
}

async fn board_sums_honour_a_period_reset<S: Store>(s: &S) {
    let r = s
        .append(vec![ev("pr1", "p_r", 10), ev("pr2", "p_q", 20)])
        .await
        .unwrap();
    let cut = seqs(&r)[1];
    s.append(vec![ev("pr3", "p_r", 4)]).await.unwrap();
    let head = *s.committed().borrow();
    let day = Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).unwrap();
    let period = Period {
        window: Window::Daily,
        id: "2026-11-22".into(),
        start: day,
        end: day + chrono::Duration::days(1),
    };
    let sum = |rows: Vec<(PlayerId, i64)>, p: &str| {
        rows.into_iter()
            .find(|(q, _)| q.as_str() == p)
            .map(|(_, xp)| xp)
    };
    assert_eq!(
        sum(s.period_xp(&period, head, u64::MAX).await.unwrap(), "p_r"),
        Some(14)
    );
    assert_eq!(s.reset_after(&period).await.unwrap(), None, "never reset");
    s.reset_period(&period, cut, noon()).await.unwrap();
    assert_eq!(s.reset_after(&period).await.unwrap(), Some(cut));
    let after = s.period_xp(&period, head, u64::MAX).await.unwrap();
    assert_eq!(sum(after.clone(), "p_r"), Some(4));
    assert_eq!(sum(after, "p_q"), None, "reset away");
    let weekly = Period {
        window: Window::Weekly,
        id: "2026-W47".into(),
        ..period.clone()
    };
    assert_eq!(
        sum(s.period_xp(&weekly, head, u64::MAX).await.unwrap(), "p_r"),
        Some(14),
        "another window's period is untouched"
    );
    assert_eq!(
        sum(
            s.xp_by_player(period.start, period.end, head)
                .await
                .unwrap(),
            "p_r"
        ),
        Some(14),
        "plain sums ignore resets"
    );
    // A later reset replaces the earlier one.
    s.reset_period(&period, head, noon()).await.unwrap();
    assert_eq!(s.reset_after(&period).await.unwrap(), Some(head));
    assert_eq!(
        s.reset_after(&weekly).await.unwrap(),
        None,
        "another window's period"
    );
    assert!(s
        .period_xp(&period, head, u64::MAX)
        .await
        .unwrap()
        .is_empty());
}

async fn flags_are_recorded_once_with_the_cursor<S: Store>(s: &S) {
    s.append(vec![
        ev("f1", "p_f", 10),
        ev("f2", "p_f", 99_999),
        ev("f3", "p_g", 88_888),
        ev("f4", "p_g", 10),
    ])
    .await
    .unwrap();
    let log = s.read_after(0, 10).await.unwrap();
    let head = log[3].seq;
    let flags = vec![
        flag(&log[1], FlagStatus::Quarantined),
        flag(&log[2], FlagStatus::Flagged),
    ];
    s.record_flags("fairness", flags.clone(), head)
        .await
        .unwrap();
    assert_eq!(s.cursor("fairness").await.unwrap(), head);
    // A repeated batch (a retry after a crash) records nothing twice.
    s.record_flags("fairness", flags.clone(), head)
        .await
        .unwrap();
    let (all, total) = s
        .flags(FlagFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(total, 2);
    assert_eq!(all[0], flags[1], "newest first, as recorded");
    assert_eq!(all[1], flags[0]);
    let (mine, total) = s
        .flags(FlagFilter {
            player: Some(pid("p_f")),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((mine.len(), total), (1, 1));
    let (held, total) = s
        .flags(FlagFilter {
            status: Some(FlagStatus::Quarantined),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((held[0].event_id.as_str(), total), ("f2", 1));
    let (page, total) = s
        .flags(FlagFilter {
            limit: 1,
            offset: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((page[0].event_id.as_str(), total), ("f2", 2));
    let statuses = s.flag_statuses(head).await.unwrap();
    assert_eq!(statuses.len(), 2);
    assert_eq!(statuses[&log[1].seq], FlagStatus::Quarantined);
    assert_eq!(s.flag_statuses(log[1].seq).await.unwrap().len(), 1);
    // The decided view: quarantined held out, flagged applied, bounded by `upto`.
    let decided: Vec<String> = s
        .read_decided_after(0, 100, head)
        .await
        .unwrap()
        .iter()
        .map(|e| e.event.event_id.to_string())
        .collect();
    assert_eq!(decided, vec!["f1", "f3", "f4"]);
    assert_eq!(
        s.read_decided_after(log[0].seq, 1, log[2].seq)
            .await
            .unwrap()
            .len(),
        1
    );
    // Board sums follow the same decision.
    let day = Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).unwrap();
    let sums = s
        .xp_by_player(day, day + chrono::Duration::days(1), head)
        .await
        .unwrap();
    let of = |p: &str| sums.iter().find(|(q, _)| q.as_str() == p).map(|x| x.1);
    assert_eq!(of("p_f"), Some(10));
    assert_eq!(of("p_g"), Some(88_898));
}

async fn a_consumer_cursor_never_moves_back<S: Store>(s: &S) {
    s.record_flags("fairness", vec![], 10).await.unwrap();
    s.record_flags("fairness", vec![], 4).await.unwrap();
    assert_eq!(s.cursor("fairness").await.unwrap(), 10);
}

async fn a_release_applies_once_and_a_reject_never<S: Store>(s: &S) {
    s.append(vec![
        ev("q1", "p_h", 500),
        ev("q2", "p_h", 700),
        ev("q3", "p_h", 900),
    ])
    .await
    .unwrap();
    let log = s.read_after(0, 10).await.unwrap();
    let head = log[2].seq;
    s.record_flags(
        "fairness",
        vec![
            flag(&log[1], FlagStatus::Quarantined),
            flag(&log[2], FlagStatus::Quarantined),
        ],
        head,
    )
    .await
    .unwrap();
    let decided = Arc::new(s.read_decided_after(0, 100, head).await.unwrap());
    s.apply_events("progression", decided).await.unwrap();
    assert_eq!(xp_of(s, "p_h").await, Some(500));

    let at = noon() + chrono::Duration::minutes(5);
    let out = s
        .resolve(&eid("q2"), Resolution::Release, "ops", at)
        .await
        .unwrap();
    let ResolveOutcome::Resolved { flag, event } = out else {
        panic!("{out:?}")
    };
    assert_eq!(flag.status, FlagStatus::Released);
    assert_eq!(flag.resolved_at, Some(at));
    assert_eq!(flag.resolved_by.as_deref(), Some("ops"));
    assert_eq!(event.unwrap().event.event_id.as_str(), "q2");
    assert_eq!(xp_of(s, "p_h").await, Some(1200), "applied by the release");
    let rewards = s.rewards(&pid("p_h")).await.unwrap();
    assert_eq!(rewards.len(), 1, "the release crossed a level");
    assert_eq!(rewards[0].event_id.as_str(), "q2");

    let again = s
        .resolve(&eid("q2"), Resolution::Release, "ops", at)
        .await
        .unwrap();
    assert!(matches!(again, ResolveOutcome::NotQuarantined(f) if f.status == FlagStatus::Released));
    assert_eq!(xp_of(s, "p_h").await, Some(1200), "released once");

    let out = s
        .resolve(&eid("q3"), Resolution::Reject, "ops", at)
        .await
        .unwrap();
    assert!(
        matches!(out, ResolveOutcome::Resolved { flag, event: None } if flag.status == FlagStatus::Rejected)
    );
    assert_eq!(xp_of(s, "p_h").await, Some(1200), "never applied");
    assert!(matches!(
        s.resolve(&eid("nope"), Resolution::Release, "ops", at)
            .await
            .unwrap(),
        ResolveOutcome::NotFound
    ));
    assert!(
        matches!(
            s.resolve(&eid("q1"), Resolution::Release, "ops", at)
                .await
                .unwrap(),
            ResolveOutcome::NotFound
        ),
        "an unflagged event has nothing to resolve"
    );

    // Released events stay out of the decided view (the release applied them) but count on
    // the boards; rejected ones count nowhere.
    let decided: Vec<String> = s
        .read_decided_after(0, 100, head)
        .await
        .unwrap()
        .iter()
        .map(|e| e.event.event_id.to_string())
        .collect();
    assert_eq!(decided, vec!["q1"]);
    let day = Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).unwrap();
    let sums = s
        .xp_by_player(day, day + chrono::Duration::days(1), head)
        .await
        .unwrap();
    assert_eq!(sums, vec![(pid("p_h"), 1200)]);
    let statuses = s.flag_statuses(head).await.unwrap();
    assert_eq!(statuses[&log[1].seq], FlagStatus::Released);
    assert_eq!(statuses[&log[2].seq], FlagStatus::Rejected);
}

/// A release and the progression consumer's next batch for the same player may reach the
/// store at the same moment (on SQLite, one group commit): each must build on the other's
/// effect, not on the progress both started from.
async fn a_release_and_an_apply_in_flight_together_both_count<S: Store>(s: &S) {
    for attempt in 0..20 {
        let player = format!("p_race{attempt}");
        let id = |n: u32| format!("race{attempt}_{n}");
        s.append(vec![ev(&id(1), &player, 100)]).await.unwrap();
        let first = s.read_after(0, 10_000).await.unwrap();
        s.apply_events("progression", Arc::new(first))
            .await
            .unwrap();
        let applied = s.cursor("progression").await.unwrap();

        s.append(vec![ev(&id(2), &player, 200), ev(&id(3), &player, 400)])
            .await
            .unwrap();
        let log = s.read_after(applied, 10).await.unwrap();
        quarantine(s, &log[0], log[1].seq).await;
        let decided = Arc::new(s.read_decided_after(applied, 10, log[1].seq).await.unwrap());
        assert_eq!(decided.len(), 1, "the quarantined event is held back");
        let held = eid(&id(2));
        let (applied, released) = tokio::join!(
            s.apply_events("progression", decided),
            s.resolve(&held, Resolution::Release, "ops", noon())
        );
        applied.unwrap();
        assert!(matches!(released.unwrap(), ResolveOutcome::Resolved { .. }));
        assert_eq!(xp_of(s, &player).await, Some(700), "attempt {attempt}");
    }
}

/// Releases are numbered in commit order, never reusing a number (not even an erased player's),
/// and the board sums take the release bound apart from the log bound: an event counts through
/// the log or through its release, so a rebuild plus the releases after its bound is exact.
async fn releases_are_numbered_and_bound_the_board_sums<S: Store>(s: &S) {
    assert_eq!(s.release_head().await.unwrap(), 0);
    assert!(s.released_after(0, 10).await.unwrap().is_empty());
    s.append(vec![
        ev("n1", "p_n", 100),
        ev("n2", "p_n", 200),
        ev("n3", "p_n", 400),
        ev("n4", "p_gone", 800),
        ev("n5", "p_n", 1600),
    ])
    .await
    .unwrap();
    let log = s.read_after(0, 10).await.unwrap();
    let head = log[4].seq;
    s.record_flags(
        "fairness",
        log[1..]
            .iter()
            .map(|e| flag(e, FlagStatus::Quarantined))
            .collect(),
        head,
    )
    .await
    .unwrap();
    for id in ["n3", "n4", "n2"] {
        let out = s
            .resolve(&eid(id), Resolution::Release, "ops", noon())
            .await;
        assert!(
            matches!(out.unwrap(), ResolveOutcome::Resolved { .. }),
            "{id}"
        );
    }
    s.resolve(&eid("n5"), Resolution::Reject, "ops", noon())
        .await
        .unwrap();
    assert_eq!(
        s.release_head().await.unwrap(),
        3,
        "a reject takes no number"
    );
    let numbered = |r: Vec<ReleasedEvent>| -> Vec<(u64, String)> {
        r.into_iter()
            .map(|r| (r.release, r.event.event.event_id.to_string()))
            .collect()
    };
    let all = numbered(s.released_after(0, 10).await.unwrap());
    let want = |v: &[(u64, &str)]| -> Vec<(u64, String)> {
        v.iter().map(|(n, id)| (*n, id.to_string())).collect()
    };
    assert_eq!(all, want(&[(1, "n3"), (2, "n4"), (3, "n2")]));
    assert_eq!(
        numbered(s.released_after(1, 1).await.unwrap()),
        want(&[(2, "n4")]),
        "after a number, at most `limit`"
    );
    let released = s.released_after(0, 10).await.unwrap();
    assert_eq!(released[0].event.xp, 400);
    assert_eq!(released[0].event.seq, log[2].seq);

    let day = Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).unwrap();
    let period = Period {
        window: Window::Daily,
        id: "2026-11-22".into(),
        start: day,
        end: day + chrono::Duration::days(1),
    };
    let xp = |rows: Vec<(PlayerId, i64)>, p: &str| {
        rows.into_iter()
            .find(|(q, _)| q.as_str() == p)
            .map_or(0, |(_, xp)| xp)
    };
    // The log bound alone counts n1; each release up to the release bound adds its event,
    // whatever its seq (n3 is above the log bound 1 here); the rejected n5 never counts.
    let first = log[0].seq;
    assert_eq!(
        xp(s.period_xp(&period, first, 0).await.unwrap(), "p_n"),
        100
    );
    assert_eq!(
        xp(s.period_xp(&period, first, 1).await.unwrap(), "p_n"),
        500
    );
    assert_eq!(xp(s.period_xp(&period, head, 3).await.unwrap(), "p_n"), 700);
    assert_eq!(
        xp(s.period_xp(&period, head, 3).await.unwrap(), "p_gone"),
        800
    );
    assert_eq!(
        xp(s.period_xp(&period, head, 1).await.unwrap(), "p_gone"),
        0
    );

    // Erasing a player removes their release, and its number is not handed out again.
    s.erase_player(&pid("p_gone")).await.unwrap();
    assert_eq!(
        numbered(s.released_after(0, 10).await.unwrap()),
        want(&[(1, "n3"), (3, "n2")])
    );
    s.append(vec![ev("n6", "p_n", 3200)]).await.unwrap();
    let n6 = s.read_after(head, 10).await.unwrap();
    quarantine(s, &n6[0], n6[0].seq).await;
    s.resolve(&eid("n6"), Resolution::Release, "ops", noon())
        .await
        .unwrap();
    assert_eq!(
        numbered(s.released_after(3, 10).await.unwrap()),
        want(&[(4, "n6")])
    );
    assert_eq!(s.release_head().await.unwrap(), 4);
}

async fn concurrent_releases_apply_once<S: Store>(s: &S) {
    s.append(vec![ev("cr1", "p_cr", 300)]).await.unwrap();
    let log = s.read_after(0, 10).await.unwrap();
    quarantine(s, &log[0], log[0].seq).await;
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.resolve(&eid("cr1"), Resolution::Release, "ops", noon())
                .await
                .unwrap()
        }));
    }
    let mut resolved = 0;
    for t in tasks {
        if matches!(t.await.unwrap(), ResolveOutcome::Resolved { .. }) {
            resolved += 1;
        }
    }
    assert_eq!(resolved, 1);
    assert_eq!(xp_of(s, "p_cr").await, Some(300));
}

async fn erasing_a_player_removes_everything_and_skips_in_flight_events<S: Store>(s: &S) {
    s.append(vec![
        ev("e1", "p_e", 1000),
        ev("e2", "p_e", 10),
        ev("e3", "p_keep", 10),
    ])
    .await
    .unwrap();
    let log = s.read_after(0, 10).await.unwrap();
    // Progression has applied e1 only; e2 and e3 are "in flight" in a consumer's memory.
    s.apply_events("progression", Arc::new(log[..1].to_vec()))
        .await
        .unwrap();
    let make: liveops_store::ReceiptMaker =
        Box::new(|item: &str| Receipt::issue(b"k", "re1".into(), "p_e".into(), item.into(), 5));
    assert!(matches!(
        s.claim(&pid("p_e"), "lvl2_gold_100", make).await.unwrap(),
        ClaimOutcome::Claimed(_)
    ));
    s.record_flags(
        "fairness",
        vec![flag(&log[1], FlagStatus::Flagged)],
        log[2].seq,
    )
    .await
    .unwrap();
    s.set_block(Block {
        player_id: pid("p_e"),
        until: None,
        reason: "cheating".into(),
        created_at: noon(),
    })
    .await
    .unwrap();

    let upto = s.erase_player(&pid("p_e")).await.unwrap();
    assert!(upto >= log[2].seq, "covers every seq handed out: {upto}");
    s.apply_events("progression", Arc::new(log[1..].to_vec()))
        .await
        .unwrap();
    assert_eq!(
        xp_of(s, "p_e").await,
        None,
        "the in-flight event is skipped"
    );
    assert_eq!(xp_of(s, "p_keep").await, Some(10), "others still apply");
    assert!(s.rewards(&pid("p_e")).await.unwrap().is_empty());
    assert_eq!(s.receipt("re1").await.unwrap(), None);
    assert!(s.blocks().await.unwrap().is_empty());
    let (flags, total) = s
        .flags(FlagFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(flags.is_empty() && total == 0);
    let left: Vec<String> = s
        .read_after(0, 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.event.player_id.to_string())
        .collect();
    assert_eq!(left, vec!["p_keep"]);
    // The player may come back: events appended after the erase count again.
    s.append(vec![ev("e4", "p_e", 7)]).await.unwrap();
    let fresh = s.read_after(upto, 10).await.unwrap();
    s.apply_events("progression", Arc::new(fresh))
        .await
        .unwrap();
    assert_eq!(xp_of(s, "p_e").await, Some(7));
    // The erased eventIds were removed, so they are not duplicates any more.
    assert_eq!(
        seqs(&s.append(vec![ev("e1", "p_e", 1)]).await.unwrap()).len(),
        1
    );
}

async fn blocks_and_the_audit_log_round_trip<S: Store>(s: &S) {
    let until = noon() + chrono::Duration::seconds(60);
    s.set_block(Block {
        player_id: pid("p_z"),
        until: Some(until),
        reason: "three flags".into(),
        created_at: noon(),
    })
    .await
    .unwrap();
    s.set_block(Block {
        player_id: pid("p_a"),
        until: None,
        reason: "operator".into(),
        created_at: noon(),
    })
    .await
    .unwrap();
    // Blocking again replaces the block.
    s.set_block(Block {
        player_id: pid("p_z"),
        until: None,
        reason: "for good".into(),
        created_at: noon(),
    })
    .await
    .unwrap();
    let blocks = s.blocks().await.unwrap();
    assert_eq!(
        blocks
            .iter()
            .map(|b| (b.player_id.as_str(), b.until, b.reason.as_str()))
            .collect::<Vec<_>>(),
        vec![("p_a", None, "operator"), ("p_z", None, "for good")]
    );
    s.clear_block(&pid("p_a")).await.unwrap();
    s.clear_block(&pid("p_never")).await.unwrap();
    assert_eq!(s.blocks().await.unwrap().len(), 1);

    for i in 0..3 {
        s.append_audit(AuditEntry {
            at: noon() + chrono::Duration::seconds(i),
            actor: "admin".into(),
            action: format!("action_{i}"),
            target: "p_z".into(),
            detail: json!({"i": i}),
        })
        .await
        .unwrap();
    }
    let audit = s.audit(2).await.unwrap();
    assert_eq!(audit.len(), 2);
    assert_eq!(audit[0].action, "action_2", "newest first");
    assert_eq!(audit[0].detail, json!({"i": 2}));
    assert_eq!(audit[1].at, noon() + chrono::Duration::seconds(1));
}

fn standings(window: &str, period: &str, players: &[(&str, i64)]) -> ArchivedPeriod {
    ArchivedPeriod {
        window: window.into(),
        period: period.into(),
        start: noon(),
        end: noon() + chrono::Duration::days(1),
        archived_at: noon() + chrono::Duration::days(1),
        total: players.len() as u64,
        entries: players
            .iter()
            .enumerate()
            .map(|(i, (p, score))| ArchivedEntry {
                rank: i as u64 + 1,
                player_id: pid(p),
                score: *score,
            })
            .collect(),
    }
}

async fn the_archive_keeps_final_standings_and_forgets_an_erased_player(a: &dyn Archive) {
    assert_eq!(a.get_period("daily", "2026-11-22").await.unwrap(), None);
    let first = standings("daily", "2026-11-22", &[("p_1", 30), ("p_2", 20)]);
    a.put_period(&first).await.unwrap();
    assert_eq!(
        a.get_period("daily", "2026-11-22").await.unwrap(),
        Some(first)
    );
    let replaced = standings(
        "daily",
        "2026-11-22",
        &[("p_1", 30), ("p_2", 20), ("p_3", 10)],
    );
    a.put_period(&replaced).await.unwrap();
    assert_eq!(
        a.get_period("daily", "2026-11-22").await.unwrap(),
        Some(replaced)
    );
    a.put_snapshot(&standings("weekly", "2026-W47", &[("p_2", 5)]))
        .await
        .unwrap();
    assert_eq!(
        a.get_period("weekly", "2026-W47").await.unwrap(),
        None,
        "a snapshot is not the final standings"
    );
    assert_eq!(
        a.erase_player(&pid("p_2")).await.unwrap(),
        2,
        "final and snapshot"
    );
    let after = a.get_period("daily", "2026-11-22").await.unwrap().unwrap();
    assert_eq!(after.total, 2);
    assert_eq!(
        after
            .entries
            .iter()
            .map(|e| (e.rank, e.player_id.as_str()))
            .collect::<Vec<_>>(),
        vec![(1, "p_1"), (2, "p_3")]
    );
    assert_eq!(a.erase_player(&pid("p_2")).await.unwrap(), 0);
    assert_eq!(a.get_period("../etc", "passwd").await.unwrap(), None);
}

// ---------------------------------------------------------------------------------------------
// Running the contract against every implementation.

/// A fresh PostgreSQL store on its own database, or `None` (skipped) without PostgreSQL.
async fn pg() -> Option<(PgStore, TempPostgres)> {
    let db = temp_postgres().await?;
    let store = PgStore::connect(db.url(), 4).await.unwrap();
    Some((store, db))
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let s = liveops_store::SqliteStore::open(dir.path()).unwrap();
                    super::$name(&s).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some((s, _db)) = super::pg().await else { return };
                    super::$name(&s).await;
                }
            )*
        }
    };
}

contract!(
    append_assigns_increasing_seqs_and_dedups_forever,
    a_large_batch_keeps_its_order_and_finds_repeats_anywhere,
    concurrent_appends_get_distinct_seqs_in_log_order,
    committed_batches_arrive_on_the_tail,
    applying_a_batch_twice_applies_it_once,
    a_reward_is_claimed_once,
    concurrent_claims_issue_one_receipt,
    progress_counts_boss_kills_and_keeps_drops_in_order,
    progress_adds_up_across_batches_and_rewards_the_event_that_reached_each_level,
    board_sums_cover_the_range_and_head,
    board_sums_honour_a_period_reset,
    flags_are_recorded_once_with_the_cursor,
    a_consumer_cursor_never_moves_back,
    a_release_applies_once_and_a_reject_never,
    concurrent_releases_apply_once,
    releases_are_numbered_and_bound_the_board_sums,
    a_release_and_an_apply_in_flight_together_both_count,
    erasing_a_player_removes_everything_and_skips_in_flight_events,
    blocks_and_the_audit_log_round_trip,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_concurrent_applies_count_each_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(dir.path()).unwrap();
    concurrent_applies_count_each_event_once(&s, &s.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_applies_from_two_processes_count_each_event_once() {
    let Some((s, db)) = pg().await else { return };
    // A second pool and writer on the same database: what a second process would have.
    let other = PgStore::connect(db.url(), 4).await.unwrap();
    concurrent_applies_count_each_event_once(&s, &other).await;
}

#[tokio::test]
async fn file_archive_meets_the_archive_contract() {
    let dir = tempfile::tempdir().unwrap();
    let a = liveops_store::FileArchive::new(dir.path().to_path_buf());
    the_archive_keeps_final_standings_and_forgets_an_erased_player(&a).await;
}

#[tokio::test]
async fn postgres_archive_meets_the_archive_contract() {
    let Some((s, _db)) = pg().await else { return };
    the_archive_keeps_final_standings_and_forgets_an_erased_player(&s).await;
}

#[tokio::test]
async fn sqlite_store_keeps_everything_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let head = {
        let s = SqliteStore::open(dir.path()).unwrap();
        s.append(vec![ev("r1", "p_6", 3)]).await.unwrap();
        apply_all(&s).await;
        *s.committed().borrow()
    };
    let s = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(*s.committed().borrow(), head);
    assert_eq!(s.cursor("progression").await.unwrap(), head);
    assert_eq!(
        s.append(vec![ev("r1", "p_6", 3)]).await.unwrap(),
        vec![Appended::Duplicate]
    );
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL only.

#[tokio::test]
async fn postgres_store_keeps_everything_across_a_reconnect_and_migrates_idempotently() {
    let Some((s, db)) = pg().await else { return };
    s.append(vec![ev("r1", "p_6", 3)]).await.unwrap();
    apply_all(&s).await;
    let head = *s.committed().borrow();
    drop(s);
    let s = PgStore::connect(db.url(), 2).await.unwrap();
    s.migrate().await.unwrap();
    assert_eq!(*s.committed().borrow(), head);
    assert_eq!(s.cursor("progression").await.unwrap(), head);
    assert_eq!(
        s.append(vec![ev("r1", "p_6", 3)]).await.unwrap(),
        vec![Appended::Duplicate]
    );
    let next = seqs(&s.append(vec![ev("r2", "p_6", 3)]).await.unwrap());
    assert!(next[0] > head, "sequence numbers are never reused");
    assert!(s.open_connections().unwrap() >= 1);
    s.ping().await.unwrap();
}

fn logged(seq: u64, id: &str, player: &str, xp: i64) -> LoggedEvent {
    let ne = ev(id, player, xp);
    LoggedEvent {
        seq,
        event: ne.event,
        received_at: ne.received_at,
        xp,
    }
}

#[tokio::test]
async fn postgres_records_stream_sequenced_events_once_with_their_flags() {
    let Some((s, _db)) = pg().await else { return };
    let first = vec![logged(10, "j1", "p_j", 5), logged(11, "j2", "p_j", 50_000)];
    let inserted = s
        .record_sequenced(
            "fairness",
            &first,
            vec![flag(&first[1], FlagStatus::Quarantined)],
            11,
        )
        .await
        .unwrap();
    assert_eq!(inserted, vec![10, 11]);
    assert_eq!(*s.committed().borrow(), 11);
    assert_eq!(s.cursor("fairness").await.unwrap(), 11);

    // A redelivery of j2 (same seq) and of j1 under a new stream seq, plus a new event: only
    // the new one is recorded, and the flag of the repeated event is not recorded again.
    let second = vec![
        logged(11, "j2", "p_j", 50_000),
        logged(12, "j3", "p_j", 7),
        logged(13, "j1", "p_j", 5),
    ];
    let mut changed_flag = flag(&second[0], FlagStatus::Flagged);
    changed_flag.reason = "a second opinion".into();
    let inserted = s
        .record_sequenced(
            "fairness",
            &second,
            vec![changed_flag, flag(&second[2], FlagStatus::Flagged)],
            13,
        )
        .await
        .unwrap();
    assert_eq!(inserted, vec![12]);
    assert_eq!(*s.committed().borrow(), 12);
    let (flags, total) = s
        .flags(FlagFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(total, 1);
    assert_eq!(flags[0].status, FlagStatus::Quarantined);
    assert_eq!(
        s.read_after(0, 10)
            .await
            .unwrap()
            .iter()
            .map(|e| (e.seq, e.event.event_id.to_string()))
            .collect::<Vec<_>>(),
        vec![(10, "j1".into()), (11, "j2".into()), (12, "j3".into())]
    );
    let decided: Vec<u64> = s
        .read_decided_after(0, 10, *s.committed().borrow())
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(decided, vec![10, 12]);

    // The cursor only moves forward, and an empty batch still moves it.
    s.record_sequenced("fairness", &[], vec![], 9)
        .await
        .unwrap();
    assert_eq!(s.cursor("fairness").await.unwrap(), 13);
    s.record_sequenced("fairness", &[], vec![], 20)
        .await
        .unwrap();
    assert_eq!(s.cursor("fairness").await.unwrap(), 20);

    let mut lookup = s.id_lookup();
    let known = lookup.known(&["j1", "j3", "nope"]).await.unwrap();
    assert_eq!(known.len(), 2);
    assert!(known.contains("j1") && known.contains("j3"));
    assert!(lookup.known(&[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn postgres_cursor_watch_sees_another_process_move_the_cursor() {
    let Some((s, db)) = pg().await else { return };
    let other = PgStore::connect(db.url(), 2).await.unwrap();
    let mut watch = s.cursor_watch("fairness", Duration::from_millis(20));
    other.record_flags("fairness", vec![], 42).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), async {
        while *watch.borrow_and_update() != 42 {
            watch.changed().await.unwrap();
        }
    })
    .await
    .expect("the watch saw the other handle's cursor");
}

#[tokio::test]
async fn postgres_unreachable_is_unavailable_and_quick() {
    let started = std::time::Instant::now();
    // Nothing listens on port 1.
    let err = PgStore::connect("postgres://postgres@127.0.0.1:1/postgres", 2)
        .await
        .err()
        .expect("connecting to a closed port fails");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(4));
    let bad = PgStore::connect("::not a url::", 2).await.err();
    assert!(matches!(bad, Some(StoreError::Database(_))), "{bad:?}");
}

/// `url` with its host and port replaced by 127.0.0.1:`port`.
fn via_port(url: &str, port: u16) -> String {
    let start = url.find("://").unwrap() + 3;
    let end = start + url[start..].find('/').unwrap();
    let creds = url[start..end].rsplit_once('@').map_or("", |(c, _)| c);
    let at = if creds.is_empty() { "" } else { "@" };
    format!(
        "{}{creds}{at}127.0.0.1:{port}{}",
        &url[..start],
        &url[end..]
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_reports_unavailable_while_the_engine_is_gone_and_recovers() {
    let Some(db) = temp_postgres().await else {
        return;
    };
    let options: sqlx::postgres::PgConnectOptions = db.url().parse().unwrap();
    let target = format!("{}:{}", options.get_host(), options.get_port());
    let mut proxy = TcpProxy::start(target).await;
    let s = PgStore::connect(&via_port(db.url(), proxy.port()), 2)
        .await
        .unwrap();
    s.append(vec![ev("u1", "p_u", 1)]).await.unwrap();
    let mut lookup = s.id_lookup();
    assert_eq!(lookup.known(&["u1", "u9"]).await.unwrap().len(), 1);

    proxy.cut().await;
    let started = std::time::Instant::now();
    let mut unavailable = 0;
    for i in 0..3 {
        match s.append(vec![ev(&format!("u_down{i}"), "p_u", 1)]).await {
            Err(StoreError::Unavailable(_)) => unavailable += 1,
            Err(e) => panic!("attempt {i}: not reported as unavailable: {e:?}"),
            Ok(r) => panic!("appended while the engine is gone: {r:?}"),
        }
    }
    assert_eq!(unavailable, 3);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "failing fast, not hanging: {:?}",
        started.elapsed()
    );
    assert!(matches!(s.ping().await, Err(StoreError::Unavailable(_))));
    assert!(matches!(
        s.cursor("progression").await,
        Err(StoreError::Unavailable(_))
    ));
    // The dedup lookup's own connection died with the cut: unavailable, not hung.
    assert!(matches!(
        lookup.known(&["u1"]).await,
        Err(StoreError::Unavailable(_))
    ));

    proxy.restore().await;
    // ... and it takes a fresh connection once the engine is back.
    assert_eq!(lookup.known(&["u1", "u9"]).await.unwrap().len(), 1);
    let mut tail = s.tail().unwrap();
    // Back without a restart of the store.
    let r = s.append(vec![ev("u2", "p_u", 1)]).await.unwrap();
    assert_eq!(seqs(&r).len(), 1);
    assert_eq!(*s.committed().borrow(), seqs(&r)[0]);
    // A failed commit may have committed after all, so the first batch after it is announced
    // by the head alone: in-process consumers then read the log instead of trusting the tail.
    assert!(
        tail.try_recv().is_err(),
        "no tail batch right after a failure"
    );
    let r = s.append(vec![ev("u3", "p_u", 1)]).await.unwrap();
    assert_eq!(
        tail.recv().await.unwrap().head,
        seqs(&r)[0],
        "then the tail resumes"
    );
    let ids: Vec<String> = s
        .read_after(0, 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.event.event_id.to_string())
        .collect();
    assert_eq!(ids, vec!["u1", "u2", "u3"], "nothing refused was stored");
}
