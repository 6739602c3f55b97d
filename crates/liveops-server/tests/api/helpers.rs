//! `spawn_app()`: a real server on a random port with a fresh data dir (on the engines when the
//! test runs under `engines::engines`), and per-endpoint helpers.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use liveops_client::{ApiResponse, Client, ClientConfig};
use liveops_domain::{Clock, ManualClock, SystemClock};
use liveops_server::{Application, Config};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

pub const SECRET: &str = "test-secret-0123456789-0123456789-abcdef";

pub struct TestApp {
    pub client: Client,
    pub clock: Option<ManualClock>,
    pub data_dir: Arc<tempfile::TempDir>,
    shutdown: CancellationToken,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub struct Options {
    pub clock: Option<ManualClock>,
    pub data_dir: Option<Arc<tempfile::TempDir>>,
    pub configure: Box<dyn FnOnce(&mut Config)>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            clock: None,
            data_dir: None,
            configure: Box::new(|_| {}),
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_with(Options::default()).await
}

pub async fn spawn_with_config(f: impl FnOnce(&mut Config) + 'static) -> TestApp {
    spawn_with(Options {
        configure: Box::new(f),
        ..Options::default()
    })
    .await
}

/// A server whose clock starts at `start` and moves only when the test says so.
pub async fn spawn_at(start: DateTime<Utc>) -> TestApp {
    spawn_with(Options {
        clock: Some(ManualClock::new(start)),
        ..Options::default()
    })
    .await
}

pub fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0)
        .single()
        .expect("valid test date")
}

pub async fn spawn_with(opts: Options) -> TestApp {
    let data_dir = opts
        .data_dir
        .unwrap_or_else(|| Arc::new(tempfile::tempdir().expect("temp dir")));
    let mut cfg = Config::for_tests(data_dir.path().to_path_buf(), SECRET);
    // On PostgreSQL + Redis + NATS when the test runs under `engines::engines`.
    crate::engines::configure(data_dir.path(), &mut cfg).await;
    // Tests send far more than a player's 50 requests a minute; the limit has its own test.
    cfg.rate_limit_max = 0;
    cfg.flood_max_per_sec = 0;
    (opts.configure)(&mut cfg);
    let clock: Arc<dyn Clock> = match &opts.clock {
        Some(c) => Arc::new(c.clone()),
        None => Arc::new(SystemClock),
    };
    let app = Application::build(cfg, clock)
        .await
        .expect("application builds");
    let port = app.port();
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    let client = Client::new(ClientConfig::new(
        format!("http://127.0.0.1:{port}"),
        SECRET,
    ))
    .expect("client");
    TestApp {
        client,
        clock: opts.clock,
        data_dir,
        shutdown,
        handle: Some(handle),
    }
}

impl TestApp {
    /// Stops the server and waits for it to drain (the data dir stays for a restart).
    pub async fn stop(mut self) -> Arc<tempfile::TempDir> {
        self.shutdown.cancel();
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
        self.data_dir.clone()
    }

    pub fn clock(&self) -> &ManualClock {
        self.clock.as_ref().expect("spawned with a manual clock")
    }

    pub async fn post(&self, event: &Value) -> ApiResponse {
        self.client.post_event_json(event).await.expect("request")
    }

    pub async fn post_with(&self, event: &Value, headers: &[(&str, &str)]) -> ApiResponse {
        let body = serde_json::to_vec(event).unwrap();
        self.client
            .post_signed("/events", body, headers)
            .await
            .expect("request")
    }

    pub async fn get(&self, path: &str) -> ApiResponse {
        self.client.get(path).await.expect("request")
    }

    /// Polls `path` until `done` holds (the pipeline is asynchronous), for at most 10 s.
    pub async fn eventually(&self, path: &str, done: impl Fn(&ApiResponse) -> bool) -> ApiResponse {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let r = self.get(path).await;
            if done(&r) {
                return r;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "timed out waiting on {path}; last answer {} {}",
                    r.status, r.body
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The barrier that shows nothing more is applied for `player`, whose XP is `xp` now: sends
    /// one more progression event (+1 XP, a server-assigned id) and waits until the player's XP
    /// moves. A player's events apply in log order, so by then every event accepted before it
    /// has been applied or dropped, and the XP must be exactly `xp + 1`. A `429` (a test with a
    /// per-player flood limit) is retried.
    pub async fn assert_settled_at(&self, player: &str, xp: i64) {
        let mut barrier = progression("", player, 1);
        if let Some(e) = barrier.as_object_mut() {
            e.remove("eventId");
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let r = self.post(&barrier).await;
            if r.status == 202 {
                break;
            }
            assert!(
                r.status == 429 && tokio::time::Instant::now() < deadline,
                "the barrier event is refused: {} {}",
                r.status,
                r.text
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let progress = self
            .eventually(&format!("/players/{player}/progress"), |r| {
                r.status == 200 && r.body["xp"] != xp
            })
            .await;
        assert_eq!(
            progress.body["xp"],
            xp + 1,
            "{player}: nothing but the barrier event is applied after XP {xp}"
        );
    }

    /// Waits until the player's progress shows `xp`.
    pub async fn wait_for_xp(&self, player: &str, xp: i64) -> Value {
        self.eventually(&format!("/players/{player}/progress"), |r| {
            r.status == 200 && r.body["xp"] == xp
        })
        .await
        .body
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub fn progression(id: &str, player: &str, xp: i64) -> Value {
    json!({"eventId": id, "type": "progression", "playerId": player, "ts": 1_700_000_000,
           "payload": {"deltaXp": xp, "activity": "quest_completion"}})
}

pub fn boss_kill(id: &str, player: &str, boss: &str, points: i64) -> Value {
    json!({"eventId": id, "type": "boss_kill", "playerId": player, "ts": 1_700_000_000,
           "payload": {"bossId": boss, "tier": 3, "points": points}})
}

pub fn drop_claimed(id: &str, player: &str, weight: f64) -> Value {
    json!({"eventId": id, "type": "drop_claimed", "playerId": player, "ts": 1_700_000_000,
           "payload": {"dropId": "sword_of_tests", "weight": weight, "source": "chest"}})
}

/// The `(playerId, score)` pairs of a `GET /leaderboard` answer, in rank order.
pub fn board_entries(body: &Value) -> Vec<(String, i64)> {
    body["entries"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["playerId"].as_str().unwrap_or("").to_string(),
                        e["score"].as_i64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}
