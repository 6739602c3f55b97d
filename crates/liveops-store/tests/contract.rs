//! The store contract: what every system-of-record implementation must do. Written once as
//! functions over the traits and run against each implementation (SQLite now; PostgreSQL
//! joins with the scale-out backends).

use chrono::{TimeZone, Utc};
use liveops_domain::signing::Receipt;
use liveops_domain::{Event, PlayerId};
use liveops_store::{
    Appended, BoardSource, ClaimOutcome, EventLog, NewEvent, ProgressStore, SqliteStore,
};
use serde_json::json;

fn ev(id: &str, player: &str, xp: i64) -> NewEvent {
    let e = Event::from_value(
        json!({"eventId": id, "type": "progression", "playerId": player, "ts": 1,
        "payload": {"deltaXp": xp, "activity": "a"}}),
    )
    .unwrap();
    NewEvent {
        event: e,
        received_at: Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap(),
    }
}

async fn append_assigns_increasing_seqs_and_dedups_forever<S: EventLog>(s: &S) {
    let r = s
        .append(vec![
            ev("a", "p_1", 1),
            ev("b", "p_1", 2),
            ev("a", "p_1", 9),
        ])
        .await
        .unwrap();
    let seqs: Vec<u64> = r
        .iter()
        .filter_map(|a| match a {
            Appended::New { seq } => Some(*seq),
            _ => None,
        })
        .collect();
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
    assert_eq!(read[1].xp, 2);
    assert_eq!(s.read_after(seqs[0], 10).await.unwrap().len(), 1);
}

async fn applying_a_batch_twice_applies_it_once<S: EventLog + ProgressStore>(s: &S) {
    s.append(vec![ev("x1", "p_2", 600), ev("x2", "p_2", 600)])
        .await
        .unwrap();
    let batch = std::sync::Arc::new(s.read_after(0, 100).await.unwrap());
    let c1 = s.apply_events("progression", batch.clone()).await.unwrap();
    let c2 = s.apply_events("progression", batch).await.unwrap();
    assert_eq!(c1, c2);
    assert_eq!(s.cursor("progression").await.unwrap(), c1);
    let p = s
        .progress(&PlayerId::parse("p_2").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.progress.xp, 1200);
    assert_eq!(p.progress.level, 2);
    let rewards = s.rewards(&PlayerId::parse("p_2").unwrap()).await.unwrap();
    assert_eq!(rewards.len(), 1);
    assert_eq!(
        rewards[0].event_id, "x2",
        "the event that crossed the level"
    );
}

async fn a_reward_is_claimed_once<S: EventLog + ProgressStore>(s: &S) {
    s.append(vec![ev("c1", "p_3", 1000)]).await.unwrap();
    let batch = std::sync::Arc::new(s.read_after(0, 100).await.unwrap());
    s.apply_events("progression", batch).await.unwrap();
    let player = PlayerId::parse("p_3").unwrap();
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
    assert_eq!(s.receipt("r1").await.unwrap(), Some(r1));
}

async fn board_sums_cover_the_range_and_head<S: EventLog + BoardSource>(s: &S) {
    s.append(vec![
        ev("s1", "p_4", 10),
        ev("s2", "p_4", 5),
        ev("s3", "p_5", 7),
    ])
    .await
    .unwrap();
    let head = *s.committed().borrow();
    let day = Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).unwrap();
    let mut rows = s
        .xp_by_player(day, day + chrono::Duration::days(1), head)
        .await
        .unwrap();
    rows.sort();
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

#[tokio::test]
async fn sqlite_store_meets_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(dir.path()).unwrap();
    append_assigns_increasing_seqs_and_dedups_forever(&s).await;
    applying_a_batch_twice_applies_it_once(&s).await;
    a_reward_is_claimed_once(&s).await;
    board_sums_cover_the_range_and_head(&s).await;
}

#[tokio::test]
async fn sqlite_store_keeps_everything_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let head = {
        let s = SqliteStore::open(dir.path()).unwrap();
        s.append(vec![ev("r1", "p_6", 3)]).await.unwrap();
        let batch = std::sync::Arc::new(s.read_after(0, 10).await.unwrap());
        s.apply_events("progression", batch).await.unwrap();
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
