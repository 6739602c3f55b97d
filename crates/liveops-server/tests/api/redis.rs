//! The API on Redis hot state (`REDIS_URL` set): each test gets its own namespace on the test
//! Redis (`LIVEOPS_TEST_REDIS`), deleted afterwards; skipped with a notice on the terminal when
//! Redis is unreachable (failed under `CI=true`). These tests configure Redis themselves, so
//! they opt out of the engine run that every other API test gets.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use liveops_hotstate::testing::{redis_or_skip, redis_url, WipeOnDrop};
use liveops_server::config::Secret;

use crate::helpers::*;

/// A server on the test Redis in a fresh namespace, with the guard that deletes it.
async fn spawn_on_redis(
    configure: impl FnOnce(&mut liveops_server::Config) + 'static,
) -> Option<(TestApp, WipeOnDrop)> {
    let redis = redis_or_skip().await?;
    let wipe = WipeOnDrop::new(&redis);
    let ns = redis.namespace().to_string();
    let app = spawn_with_config(move |c| {
        c.redis_url = Some(Secret::new(redis_url()));
        c.namespace = ns;
        configure(c);
    })
    .await;
    Some((app, wipe))
}

#[api_test(not_on_engines = "on Redis already, with its own REDIS_URL and namespace")]
async fn ingest_leaderboard_and_idempotency_work_on_redis() {
    let Some((app, _wipe)) = spawn_on_redis(|_| {}).await else {
        return;
    };
    let e = progression("r-1", "player_a", 40);
    let first = app.post_with(&e, &[("Idempotency-Key", "key-1")]).await;
    assert_eq!(first.status, 202, "{}", first.text);
    let replay = app.post_with(&e, &[("Idempotency-Key", "key-1")]).await;
    assert_eq!(replay.status, 208);
    assert_eq!(replay.body["eventId"], "r-1");
    let other = progression("r-2", "player_a", 41);
    let conflict = app.post_with(&other, &[("Idempotency-Key", "key-1")]).await;
    assert_eq!(conflict.status, 409);
    assert_eq!(conflict.error_code(), Some("idempotency_key_reuse"));
    for (id, player, xp) in [("r-3", "player_b", 70), ("r-4", "player_c", 40)] {
        assert_eq!(app.post(&progression(id, player, xp)).await.status, 202);
    }
    let board = app
        .eventually("/leaderboard?window=weekly", |r| r.body["total"] == 3)
        .await;
    assert_eq!(
        board_entries(&board.body),
        [
            ("player_b".to_string(), 70),
            ("player_a".to_string(), 40),
            ("player_c".to_string(), 40)
        ]
    );
    let me = app
        .get("/leaderboard/players/player_c?window=daily&around=1")
        .await;
    assert_eq!((me.status, me.body["rank"].clone()), (200, 3.into()));
    let ready = app.get("/readyz").await;
    assert_eq!(ready.body["checks"]["redis"], "ok", "{}", ready.text);
}

#[api_test(not_on_engines = "on Redis already, with its own REDIS_URL and namespace")]
async fn rate_limits_are_shared_by_gateways_on_one_redis() {
    let Some((a, _wipe)) = spawn_on_redis(|c| c.rate_limit_max = 3).await else {
        return;
    };
    // A second gateway (its own store) on the same namespace: same bucket per client IP.
    let ns = _wipe.namespace.clone();
    let b = spawn_with_config(move |c| {
        c.redis_url = Some(Secret::new(redis_url()));
        c.namespace = ns;
        c.rate_limit_max = 3;
    })
    .await;
    assert_eq!(a.post(&progression("l-1", "player_l", 1)).await.status, 202);
    assert_eq!(b.post(&progression("l-2", "player_l", 1)).await.status, 202);
    assert_eq!(a.post(&progression("l-3", "player_l", 1)).await.status, 202);
    let r = b.post(&progression("l-4", "player_l", 1)).await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert_eq!(r.error_code(), Some("rate_limited"));
    let wait: u64 = r
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=20).contains(&wait), "{wait}");
}

#[api_test(not_on_engines = "on Redis already, with its own REDIS_URL and namespace")]
async fn boards_come_back_exact_after_the_redis_keys_are_wiped() {
    let Some((app, wipe)) = spawn_on_redis(|_| {}).await else {
        return;
    };
    let mut expected: std::collections::BTreeMap<String, i64> = Default::default();
    for i in 0..30 {
        let player = format!("player_{}", i % 7);
        let xp = 10 + i;
        assert_eq!(
            app.post(&progression(&format!("w-{i}"), &player, xp))
                .await
                .status,
            202
        );
        *expected.entry(player).or_default() += xp;
    }
    let sum: i64 = expected.values().sum();
    let total_score = |r: &liveops_client::ApiResponse| -> i64 {
        board_entries(&r.body).iter().map(|(_, s)| s).sum()
    };
    app.eventually("/leaderboard?window=weekly", |r| total_score(r) == sum)
        .await;
    // Sabotage: delete every key of this run's namespace (not FLUSHDB of the shared db).
    let deleted = wipe.wipe().expect("wipe");
    assert!(deleted > 0, "the boards were in Redis");
    let mut want: Vec<(String, i64)> = expected.clone().into_iter().collect();
    want.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let back = app
        .eventually("/leaderboard?window=weekly", |r| {
            board_entries(&r.body) == want
        })
        .await;
    assert_eq!(back.body["total"], 7);
    // Wiped again, then events arrive: the worker rebuilds before applying them.
    wipe.wipe().expect("wipe");
    for i in 30..40 {
        let player = format!("player_{}", i % 7);
        assert_eq!(
            app.post(&progression(&format!("w-{i}"), &player, i))
                .await
                .status,
            202
        );
        *expected.entry(player).or_default() += i;
    }
    let mut want: Vec<(String, i64)> = expected.into_iter().collect();
    want.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    app.eventually("/leaderboard?window=seasonal", |r| {
        board_entries(&r.body) == want
    })
    .await;
}

/// A quarantined event released while Redis is unreachable: the release is committed (200),
/// progression has it at once, and the boards, which kept their data, take it as soon as Redis
/// answers again: the worker catches up by release number, without a rebuild and only once.
#[api_test(not_on_engines = "on Redis already, with its own REDIS_URL and namespace")]
async fn a_release_while_redis_is_unreachable_reaches_the_boards_when_it_is_back() {
    // The test Redis's `host:port`, behind a proxy the test cuts and restores.
    let url = redis_url();
    let authority = url.split("://").nth(1).unwrap_or(&url);
    let authority = authority.split('/').next().unwrap_or(authority);
    let target = authority
        .rsplit('@')
        .next()
        .unwrap_or(authority)
        .to_string();
    let mut proxy = liveops_store::testing::TcpProxy::start(target).await;
    let via_proxy = format!("redis://127.0.0.1:{}", proxy.port());
    let Some((app, _wipe)) = spawn_on_redis(move |c| {
        crate::fairness::with_admin(c);
        c.redis_url = Some(Secret::new(via_proxy));
    })
    .await
    else {
        return;
    };
    let player = "player_rel";
    for (id, xp) in [("rel-1", 20_000), ("rel-2", 100)] {
        assert_eq!(app.post(&progression(id, player, xp)).await.status, 202);
    }
    let seasonal = format!("/leaderboard/players/{player}?window=seasonal");
    app.eventually(&seasonal, |r| r.body["score"] == 100).await;

    proxy.cut().await;
    let r = crate::fairness::admin_post(&app, "/admin/flags/rel-1/release").await;
    assert_eq!(r.status, 200, "the release is committed: {}", r.body);
    app.wait_for_xp(player, 20_100).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    proxy.restore().await;
    // The boards kept their cursor, so nothing rebuilds them: only the catch-up can count it.
    app.eventually(&seasonal, |r| r.body["score"] == 20_100)
        .await;
    // Counted once: a later event reaches the boards after any catch-up round that could count
    // the release again, and the score is the release's plus that event's, not more.
    assert_eq!(app.post(&progression("rel-3", player, 1)).await.status, 202);
    let r = app
        .eventually(&seasonal, |r| r.body["score"] != 20_100)
        .await;
    assert_eq!(r.body["score"], 20_101, "the release is counted once");
}

/// A private redis-server on a spare port, killed (by its pid) when dropped.
struct OwnRedis {
    child: Child,
}

impl OwnRedis {
    fn start(port: u16) -> Option<OwnRedis> {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let me = OwnRedis { child };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(me);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[api_test(not_on_engines = "on Redis already, with its own REDIS_URL and namespace")]
async fn a_dead_redis_answers_503_with_retry_after_and_recovers() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a spare port");
    let Some(redis) = OwnRedis::start(port) else {
        liveops_store::testing::skip_or_fail(
            "cannot start a private redis-server",
            "apt-get install -y redis-server",
        );
        return;
    };
    let app = spawn_with_config(move |c| {
        c.redis_url = Some(Secret::new(format!("redis://127.0.0.1:{port}")));
        c.namespace = "dead_redis_test".into();
    })
    .await;
    assert_eq!(
        app.post(&progression("d-1", "player_d", 5)).await.status,
        202
    );
    drop(redis);
    let started = std::time::Instant::now();
    let r = app.post(&progression("d-2", "player_d", 5)).await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert!(r.headers.get("retry-after").is_some());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "failed fast: {:?}",
        started.elapsed()
    );
    assert_eq!(app.get("/readyz").await.status, 503);
    // Nothing was appended: the same event is accepted, not a duplicate, once Redis is back.
    let _back = OwnRedis::start(port).expect("restarts on its port");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = app.post(&progression("d-2", "player_d", 5)).await;
        if r.status == 202 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no recovery: {} {}",
            r.status,
            r.text
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The fresh Redis was empty: the worker rebuilds the boards from the store, exactly.
    app.eventually("/leaderboard?window=weekly", |r| {
        board_entries(&r.body) == [("player_d".to_string(), 10)]
    })
    .await;
}
