//! The JetStream event log and role consumers against a real NATS (the machine's, or a private
//! `nats-server` for the outage test). Each test has its own namespace, deleted afterwards.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use liveops_bus::testing::{NatsServer, TestBus};
use liveops_bus::{BusError, NatsEventLog, NatsOptions, RoleConsumer, RoleFeed, RoleOptions};
use liveops_domain::Event;
use liveops_store::testing::skip_or_fail;
use liveops_store::{Appended, EventLog, LoggedEvent, NewEvent, StoreError};

fn event(id: &str, player: &str, delta_xp: i64) -> NewEvent {
    let event = Event::from_value(serde_json::json!({
        "eventId": id, "type": "progression", "playerId": player, "ts": 1_700_000_000,
        "payload": {"deltaXp": delta_xp, "activity": "quest", "note": id},
    }))
    .expect("valid test event");
    NewEvent {
        event,
        received_at: Utc
            .timestamp_millis_opt(1_764_000_000_000 + delta_xp)
            .unwrap(),
    }
}

fn seq_of(a: &Appended) -> u64 {
    match a {
        Appended::New { seq } => *seq,
        Appended::Duplicate => panic!("expected a new event, got a duplicate"),
    }
}

/// Appends `n` events `<prefix>-1..=n` for `player` in one call; their stream sequences.
async fn append_numbered(log: &dyn EventLog, prefix: &str, player: &str, n: i64) -> Vec<u64> {
    log.append(
        (1..=n)
            .map(|i| event(&format!("{prefix}-{i}"), player, i))
            .collect(),
    )
    .await
    .expect("append")
    .iter()
    .map(seq_of)
    .collect()
}

/// Every event after `after`, paging like a consumer does.
async fn read_all(log: &dyn EventLog, mut after: u64, page: usize) -> Vec<LoggedEvent> {
    let mut out = Vec::new();
    loop {
        let batch = log.read_after(after, page).await.expect("read_after");
        let Some(last) = batch.last() else {
            return out;
        };
        after = last.seq;
        out.extend(batch);
    }
}

fn same_event(a: &LoggedEvent, b: &NewEvent) {
    assert_eq!(a.event, b.event);
    assert_eq!(a.received_at, b.received_at);
    assert_eq!(
        a.xp,
        liveops_domain::progression::xp_for(&b.event.kind),
        "xp of {}",
        b.event.event_id
    );
}

#[tokio::test]
async fn a_repeated_event_id_is_a_duplicate_and_the_log_reads_back_in_order() {
    let Some(bus) = TestBus::new("dedup_and_order") else {
        return;
    };
    let log = bus.log(NatsOptions::default()).await.expect("connect");
    let mut tail = log.tail().expect("the nats log has a tail");
    let (a, b, c, d) = (
        event("ev-a", "player_1", 10),
        event("ev-b", "player_2", 20),
        event("ev-c", "player_1", 30),
        event("ev-d", "player_3", 40),
    );

    let first = log
        .append(vec![a.clone(), b.clone(), c.clone()])
        .await
        .expect("append");
    let seqs: Vec<u64> = first.iter().map(seq_of).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");

    // A repeat from an earlier batch, a new one, and a repeat inside the same batch.
    let second = log
        .append(vec![b.clone(), d.clone(), d.clone()])
        .await
        .expect("append");
    assert_eq!(second[0], Appended::Duplicate);
    let seq_d = seq_of(&second[1]);
    assert!(seq_d > seqs[2]);
    assert_eq!(second[2], Appended::Duplicate);

    // Another process (a second gateway) is deduplicated by the same stream.
    let other = bus.log(NatsOptions::default()).await.expect("connect");
    assert_eq!(
        other.append(vec![c.clone()]).await.expect("append"),
        vec![Appended::Duplicate]
    );

    let all = read_all(&log, 0, 100).await;
    assert_eq!(
        all.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![seqs[0], seqs[1], seqs[2], seq_d]
    );
    for (got, want) in all.iter().zip([&a, &b, &c, &d]) {
        same_event(got, want);
    }

    // Reading on from a position, in pages: the second page continues the first.
    let page = log.read_after(seqs[0], 2).await.expect("read");
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), seqs[1..3]);
    let rest = log.read_after(seqs[2], 10).await.expect("read");
    assert_eq!(rest.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![seq_d]);
    assert!(log.read_after(seq_d, 10).await.expect("read").is_empty());
    assert!(log.read_after(0, 0).await.expect("read").is_empty());

    // Own appends raise the head at once and reach the in-process tail as exact runs.
    assert_eq!(*log.committed().borrow(), seq_d);
    let batch = tail.recv().await.expect("tail");
    assert_eq!((batch.prev_head, batch.head), (seqs[0] - 1, seqs[2]));
    assert_eq!(batch.events.len(), 3);
    same_event(&batch.events[1], &b);
    let batch = tail.recv().await.expect("tail");
    assert_eq!((batch.prev_head, batch.head), (seq_d - 1, seq_d));
    log.ping().await.expect("ping");
}

#[tokio::test]
async fn two_gateways_appending_concurrently_share_one_total_order() {
    let Some(bus) = TestBus::new("two_gateways") else {
        return;
    };
    let gateways = [
        bus.log(NatsOptions::default()).await.expect("connect"),
        bus.log(NatsOptions::default()).await.expect("connect"),
    ];
    let mut tails = [
        gateways[0].tail().expect("tail"),
        gateways[1].tail().expect("tail"),
    ];
    let mut tasks = Vec::new();
    for t in 0..8usize {
        let log = gateways[t % 2].clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..25 {
                // Singles and small batches, interleaved across both gateways.
                let events: Vec<NewEvent> = (0..(1 + i % 3))
                    .map(|k| {
                        event(
                            &format!("g{t}-{i}-{k}"),
                            &format!("player_{t}"),
                            1 + k as i64,
                        )
                    })
                    .collect();
                let ids: Vec<String> = events
                    .iter()
                    .map(|e| e.event.event_id.as_str().to_owned())
                    .collect();
                let res = log.append(events).await.expect("append");
                acked.extend(ids.into_iter().zip(res.iter().map(seq_of)));
            }
            acked
        }));
    }
    let mut acked: HashMap<String, u64> = HashMap::new();
    for t in tasks {
        acked.extend(t.await.expect("task"));
    }
    let total = acked.len();
    // i % 3 over 0..25: nine singles, eight pairs, eight triples per task.
    assert_eq!(total, 8 * (9 + 8 * 2 + 8 * 3));

    let seen_by_first = read_all(&gateways[0], 0, 64).await;
    let seen_by_second = read_all(&gateways[1], 0, 100).await;
    let order = |v: &[LoggedEvent]| -> Vec<(u64, String)> {
        v.iter()
            .map(|e| (e.seq, e.event.event_id.as_str().to_owned()))
            .collect()
    };
    assert_eq!(order(&seen_by_first), order(&seen_by_second));
    assert_eq!(seen_by_first.len(), total);
    assert!(seen_by_first.windows(2).all(|w| w[0].seq < w[1].seq));
    for e in &seen_by_first {
        assert_eq!(
            acked[e.event.event_id.as_str()],
            e.seq,
            "acked seq is the read seq"
        );
    }
    // Each gateway's tail holds exactly its own events, in runs that say precisely which seqs
    // they cover, so an in-process consumer can never skip the other gateway's events.
    let mut from_tails = 0;
    for tail in &mut tails {
        while let Ok(batch) = tail.try_recv() {
            let seqs: Vec<u64> = batch.events.iter().map(|e| e.seq).collect();
            assert_eq!(
                seqs,
                ((batch.prev_head + 1)..=batch.head).collect::<Vec<_>>()
            );
            for e in batch.events.iter() {
                assert_eq!(acked[e.event.event_id.as_str()], e.seq);
            }
            from_tails += seqs.len();
        }
    }
    assert_eq!(from_tails, total);
}

#[tokio::test]
async fn committed_follows_the_other_gateways_appends() {
    let Some(bus) = TestBus::new("committed_other") else {
        return;
    };
    let watcher = bus.log(NatsOptions::default()).await.expect("connect");
    let writer = bus.log(NatsOptions::default()).await.expect("connect");
    let mut committed = watcher.committed();
    let start = *committed.borrow_and_update();

    let res = writer
        .append(vec![
            event("w-1", "player_9", 5),
            event("w-2", "player_9", 6),
        ])
        .await
        .expect("append");
    let last = seq_of(&res[1]);
    let t0 = Instant::now();
    // Copied out at once: a watch `Ref` held across an await blocks the watch's writers.
    let seen = *tokio::time::timeout(Duration::from_secs(2), committed.wait_for(|h| *h >= last))
        .await
        .expect("the watcher sees the other gateway's appends within 2 s")
        .expect("watch open");
    assert_eq!(seen, last);
    assert!(last > start);
    eprintln!("other gateway's append seen after {:?}", t0.elapsed());
    // And can read them without having written them.
    let read = watcher.read_after(start, 10).await.expect("read");
    assert_eq!(read.len(), 2);
}

fn fast_redelivery() -> RoleOptions {
    RoleOptions {
        ack_wait: Duration::from_secs(1),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_role_consumer_gets_unacked_events_again_after_a_drop() {
    let Some(bus) = TestBus::new("role_redelivery") else {
        return;
    };
    let log = bus.log(NatsOptions::default()).await.expect("connect");
    let events: Vec<NewEvent> = (1..=5)
        .map(|i| event(&format!("r-{i}"), "player_5", i))
        .collect();
    let seqs: Vec<u64> = log
        .append(events.clone())
        .await
        .expect("append")
        .iter()
        .map(seq_of)
        .collect();

    let consumer = RoleConsumer::open(&log, "fairness", 0, fast_redelivery())
        .await
        .expect("open");
    assert_eq!(consumer.name(), format!("{}_fairness", bus.namespace()));
    let got = consumer
        .fetch(10, Duration::from_secs(1))
        .await
        .expect("fetch");
    assert_eq!(got.iter().map(|d| d.seq()).collect::<Vec<_>>(), seqs);
    assert!(got.iter().all(|d| !d.is_redelivery()));
    for (d, e) in got.iter().zip(&events) {
        same_event(&d.event, e);
    }
    // Effects of the first three committed; the process dies before acking the rest.
    consumer.ack(&got[..3]).await.expect("ack");
    drop(got);
    drop(consumer);

    // The next owner, at the committed cursor, keeps the durable: the two in-flight events come
    // back, marked as redeliveries, once their ack wait is over.
    let mut next = RoleConsumer::open(&log, "fairness", seqs[2], fast_redelivery())
        .await
        .expect("open");
    let t0 = Instant::now();
    let again = next.fetch(10, Duration::from_secs(3)).await.expect("fetch");
    let again = if again.len() < 2 {
        // The long poll returns on the first message; the second may follow a moment later.
        let mut v = again;
        v.extend(next.fetch(10, Duration::from_secs(2)).await.expect("fetch"));
        v
    } else {
        again
    };
    assert_eq!(
        again.iter().map(|d| d.seq()).collect::<Vec<_>>(),
        seqs[3..],
        "after {:?}",
        t0.elapsed()
    );
    assert!(again
        .iter()
        .all(|d| d.is_redelivery() && d.delivery_count == 2));
    next.ack(&again).await.expect("ack");
    assert!(next
        .fetch(10, Duration::from_millis(300))
        .await
        .expect("fetch")
        .is_empty());
    let state = next.state().await.expect("state");
    assert_eq!(state.ack_floor, seqs[4]);
    assert_eq!(state.num_ack_pending, 0);
}

#[tokio::test]
async fn a_role_consumer_is_repositioned_at_the_committed_cursor() {
    let Some(bus) = TestBus::new("role_reposition") else {
        return;
    };
    let log = bus.log(NatsOptions::default()).await.expect("connect");
    let seqs = append_numbered(&log, "p", "player_6", 6).await;

    let c = RoleConsumer::open(&log, "progression", 0, RoleOptions::default())
        .await
        .expect("open");
    let all = c.fetch(100, Duration::from_secs(1)).await.expect("fetch");
    assert_eq!(all.len(), 6);
    c.ack(&all).await.expect("ack");
    drop(c);

    // The system of record says only two were applied (e.g. restored from a backup): the
    // consumer, acked up to 6, is moved back so nothing is skipped.
    let c = RoleConsumer::open(&log, "progression", seqs[1], RoleOptions::default())
        .await
        .expect("open");
    let got = c.fetch(100, Duration::from_secs(1)).await.expect("fetch");
    assert_eq!(got.iter().map(|d| d.seq()).collect::<Vec<_>>(), seqs[2..]);
    assert!(got.iter().all(|d| !d.is_redelivery()));
    drop(got);
    drop(c);

    // The cursor is ahead of the consumer (effects committed, acks lost with the process):
    // nothing already applied is delivered again.
    let c = RoleConsumer::open(&log, "progression", seqs[5], RoleOptions::default())
        .await
        .expect("open");
    assert!(c
        .fetch(100, Duration::from_millis(200))
        .await
        .expect("fetch")
        .is_empty());

    // A long poll returns as soon as an event arrives, not when the wait ends.
    let poll = tokio::spawn(async move {
        let t0 = Instant::now();
        let got = c.fetch(100, Duration::from_secs(5)).await.expect("fetch");
        (
            got.iter().map(|d| d.seq()).collect::<Vec<_>>(),
            t0.elapsed(),
        )
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let seq7 = seq_of(
        &log.append(vec![event("p-7", "player_6", 7)])
            .await
            .expect("append")[0],
    );
    let (got, waited) = poll.await.expect("task");
    assert_eq!(got, vec![seq7]);
    assert!(waited < Duration::from_secs(2), "waited {waited:?}");

    // A cursor past the stream's end means the stream was replaced: refused, not guessed.
    match RoleConsumer::open(&log, "progression", seq7 + 100, RoleOptions::default()).await {
        Err(BusError::CursorAhead { cursor, last, .. }) => {
            assert_eq!((cursor, last), (seq7 + 100, seq7))
        }
        other => panic!(
            "expected CursorAhead, got {:?}",
            other.map(|c| c.name().to_owned())
        ),
    }
    assert!(matches!(
        RoleConsumer::open(&log, "bad.role", 0, RoleOptions::default()).await,
        Err(BusError::InvalidName { .. })
    ));
}

#[tokio::test]
async fn a_role_feed_behind_its_callers_cursor_reads_on_from_the_cursor() {
    let Some(bus) = TestBus::new("feed_behind") else {
        return;
    };
    let log = bus.log(NatsOptions::default()).await.expect("connect");
    let seqs = append_numbered(&log, "f", "player_7", 400).await;
    let feed = RoleFeed::open(log.clone(), "fairness", 0)
        .await
        .expect("open");
    let mut tail = feed.tail().expect("own appends reach the feed's tail");
    let seqs_of = |b: &[LoggedEvent]| b.iter().map(|e| e.seq).collect::<Vec<_>>();

    let first = feed.read_after(0, 10).await.expect("read");
    assert_eq!(seqs_of(&first), seqs[..10]);
    // The caller applied the next ten from the tail: the short lag is drained, not re-served.
    let next = feed.read_after(seqs[19], 10).await.expect("read");
    assert_eq!(seqs_of(&next), seqs[20..30]);
    // A long lag moves the durable to the cursor.
    let rest = feed.read_after(seqs[349], 100).await.expect("read");
    assert_eq!(seqs_of(&rest), seqs[350..]);

    let last = seq_of(
        &log.append(vec![event("f-401", "player_7", 401)])
            .await
            .expect("append")[0],
    );
    let batch = tail.recv().await.expect("tail");
    assert_eq!((batch.prev_head, batch.head), (seqs[399], last));
    assert_eq!(
        seqs_of(&feed.read_after(seqs[399], 10).await.expect("read")),
        vec![last]
    );
}

#[tokio::test]
async fn connecting_to_nothing_fails_fast_with_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("spare port")
        .port();
    let t0 = Instant::now();
    let err = NatsEventLog::connect(
        &format!("nats://127.0.0.1:{port}"),
        "liveops",
        NatsOptions::default(),
    )
    .await
    .err()
    .expect("nothing listens there");
    assert!(matches!(err, BusError::Connect { .. }), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    let err = NatsEventLog::connect("nats://127.0.0.1:4222", "a.b", NatsOptions::default())
        .await
        .err()
        .expect("dots are refused");
    assert!(err.to_string().contains("cannot hold '.'"), "{err}");
}

#[tokio::test]
async fn appends_fail_fast_while_nats_is_down_and_resume_on_the_same_log() {
    let mut server = match NatsServer::spawn() {
        Ok(s) => s,
        Err(e) => {
            skip_or_fail(
                &format!("cannot start a private nats-server ({e})"),
                "apt-get install -y nats-server, or set NATS_SERVER_BIN",
            );
            return;
        }
    };
    let bus = TestBus::on(server.url(), "outage");
    let log = Arc::new(bus.log(NatsOptions::default()).await.expect("connect"));

    let mut before = Vec::new();
    for b in 0..5 {
        let events: Vec<NewEvent> = (0..4)
            .map(|k| event(&format!("o-{b}-{k}"), "player_7", 1 + k))
            .collect();
        let res = log.append(events.clone()).await.expect("append");
        before.extend(events.into_iter().zip(res.iter().map(seq_of)));
    }
    // Park a reader, which the restart will make the server forget.
    assert_eq!(log.read_after(0, 5).await.expect("read").len(), 5);

    server.stop();
    for attempt in 0..3 {
        let t0 = Instant::now();
        let res = tokio::time::timeout(
            Duration::from_secs(5),
            log.append(vec![event(&format!("down-{attempt}"), "player_7", 1)]),
        )
        .await
        .expect("an append never hangs");
        let took = t0.elapsed();
        assert!(
            matches!(res, Err(StoreError::Unavailable(_))),
            "attempt {attempt}: {res:?}"
        );
        assert!(
            took < Duration::from_secs(3),
            "attempt {attempt} took {took:?}"
        );
    }
    assert!(matches!(log.ping().await, Err(StoreError::Unavailable(_))));
    assert!(log.read_after(0, 5).await.is_err());

    server.start().expect("restart nats-server");
    let t0 = Instant::now();
    let after = event("after-restart", "player_7", 3);
    let seq = loop {
        match log.append(vec![after.clone()]).await {
            Ok(res) => break seq_of(&res[0]),
            Err(e) if t0.elapsed() < Duration::from_secs(15) => {
                assert!(matches!(e, StoreError::Unavailable(_)), "{e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("no recovery within 15 s: {e}"),
        }
    };
    eprintln!("appends resumed {:?} after the restart", t0.elapsed());
    log.ping().await.expect("ping after recovery");

    // Everything acknowledged before the outage is still there, with its seq and content.
    let all = read_all(log.as_ref(), 0, 7).await;
    let by_seq: HashMap<u64, &LoggedEvent> = all.iter().map(|e| (e.seq, e)).collect();
    for (e, s) in &before {
        same_event(by_seq.get(s).expect("acked event kept"), e);
    }
    assert_eq!(all.last().map(|e| e.seq), Some(seq));
    assert!(seq > before.last().map(|(_, s)| *s).unwrap_or(0));
}

#[tokio::test]
async fn the_duplicate_window_comes_from_the_options_and_bounds_deduplication() {
    let Some(bus) = TestBus::new("dup_window") else {
        return;
    };
    let stream_window = |url: String, stream: String| async move {
        let client = async_nats::connect(url).await.expect("connect");
        let js = async_nats::jetstream::new(client);
        let mut s = js.get_stream(stream).await.expect("stream");
        s.info().await.expect("info").config.duplicate_window
    };
    let first = bus.log(NatsOptions::default()).await.expect("connect");
    assert_eq!(
        stream_window(bus.url().into(), first.stream_name().into()).await,
        Duration::from_secs(600)
    );

    // A restart with another IDEMP_TTL brings the existing stream to it.
    let short = NatsOptions {
        duplicate_window: Duration::from_secs(1),
        ..Default::default()
    };
    let log = bus.log(short).await.expect("connect");
    assert_eq!(
        stream_window(bus.url().into(), log.stream_name().into()).await,
        Duration::from_secs(1)
    );

    let e = event("window-1", "player_8", 1);
    let seq = seq_of(&log.append(vec![e.clone()]).await.expect("append")[0]);
    assert_eq!(
        log.append(vec![e.clone()]).await.expect("append"),
        vec![Appended::Duplicate]
    );
    // Past the window the bus stores a repeat again, under a new seq: permanent dedup by
    // eventId is the system of record's job (see the crate documentation).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = seq_of(&log.append(vec![e]).await.expect("append")[0]);
    assert!(again > seq);
}
