//! `GET /leaderboard/stream` (`docs/api.md`): Server-Sent Events over real HTTP.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::*;

/// A client reading `leaderboard` events from an open stream.
struct SseClient {
    resp: reqwest::Response,
    buf: String,
    /// Heartbeat comments and other non-event frames seen so far.
    comments: usize,
}

impl SseClient {
    async fn open(app: &TestApp, query: &str) -> SseClient {
        let resp = reqwest::Client::new()
            .get(app.client.url(&format!("/leaderboard/stream{query}")))
            .send()
            .await
            .expect("stream request");
        assert_eq!(resp.status(), 200, "stream refused");
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert!(ct.starts_with("text/event-stream"), "content type {ct}");
        SseClient {
            resp,
            buf: String::new(),
            comments: 0,
        }
    }

    /// The next `leaderboard` event's JSON, or `None` if none arrives within `wait`.
    async fn next_within(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let frame: String = self.buf.drain(..end + 2).collect();
                let mut event = None;
                let mut data = String::new();
                for line in frame.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = Some(v.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if event.as_deref() == Some("leaderboard") {
                    return Some(serde_json::from_str(&data).expect("event data is JSON"));
                }
                self.comments += 1;
                continue;
            }
            let chunk = tokio::time::timeout_at(deadline, self.resp.chunk()).await;
            match chunk {
                Err(_) => return None,
                Ok(Ok(Some(bytes))) => self.buf.push_str(&String::from_utf8_lossy(&bytes)),
                Ok(Ok(None)) => return None,
                Ok(Err(e)) => panic!("stream broke: {e}"),
            }
        }
    }

    async fn next(&mut self) -> Value {
        self.next_within(Duration::from_secs(10))
            .await
            .expect("a leaderboard event within 10 s")
    }

    /// Events until one satisfies `done`; panics after 10 s.
    async fn until(&mut self, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_within(left).await {
                Some(v) if done(&v) => return v,
                Some(_) => continue,
                None => panic!("no matching leaderboard event within 10 s"),
            }
        }
    }
}

fn score_of(board: &Value, player: &str) -> Option<i64> {
    board["entries"]
        .as_array()?
        .iter()
        .find(|e| e["playerId"] == player)
        .and_then(|e| e["score"].as_i64())
}

#[api_test]
async fn the_stream_sends_the_board_at_connect_and_again_after_an_event() {
    let app = spawn_app().await;
    app.post(&progression("st-0", "player_early", 40)).await;
    app.eventually("/leaderboard?window=daily", |r| r.body["total"] == 1)
        .await;
    let mut sse = SseClient::open(&app, "?window=daily").await;
    let first = sse.next().await;
    // The same document as GET /leaderboard.
    let get = app.get("/leaderboard?window=daily").await.body;
    for key in [
        "window",
        "season",
        "period",
        "nextReset",
        "total",
        "entries",
    ] {
        assert_eq!(first[key], get[key], "{key} differs from GET /leaderboard");
    }
    assert_eq!(score_of(&first, "player_early"), Some(40));

    let r = app.post(&progression("st-1", "player_live", 120)).await;
    assert_eq!(r.status, 202);
    let update = sse.until(|b| score_of(b, "player_live").is_some()).await;
    assert_eq!(score_of(&update, "player_live"), Some(120));
    assert_eq!(update["total"], 2);
    assert_eq!(update["entries"][0]["playerId"], "player_live");
}

#[api_test]
async fn the_default_window_is_weekly_and_limit_cuts_the_entries() {
    let app = spawn_app().await;
    for (i, xp) in [10, 20, 30].iter().enumerate() {
        app.post(&progression(
            &format!("lim-{i}"),
            &format!("player_{i}"),
            *xp,
        ))
        .await;
    }
    app.eventually("/leaderboard", |r| r.body["total"] == 3)
        .await;
    let mut sse = SseClient::open(&app, "?limit=2").await;
    let first = sse.next().await;
    assert_eq!(first["window"], "weekly");
    assert_eq!(first["total"], 3);
    assert_eq!(first["entries"].as_array().map(Vec::len), Some(2));
    assert_eq!(first["entries"][0]["playerId"], "player_2");
}

#[api_test]
async fn bad_stream_parameters_are_400_json_errors() {
    let app = spawn_app().await;
    for (query, field) in [
        ("?window=hourly", "window"),
        ("?limit=0", "limit"),
        ("?limit=abc", "limit"),
        ("?window=daily&offset=5", "offset"),
        ("?players=a_b_c", "players"),
    ] {
        let r = app.get(&format!("/leaderboard/stream{query}")).await;
        assert_eq!(r.status, 400, "{query}: {}", r.body);
        assert_eq!(r.error_code(), Some("invalid_request"), "{query}");
        assert_eq!(r.body["error"]["field"], field, "{query}");
    }
}

#[api_test]
async fn a_burst_of_changes_reaches_a_client_as_a_few_coalesced_updates() {
    let app = spawn_app().await;
    let mut sse = SseClient::open(&app, "?window=daily").await;
    assert_eq!(sse.next().await["total"], 0);
    let started = Instant::now();
    // Forty separate commits, each bumping the board's version.
    for i in 0..40 {
        let r = app
            .post(&progression(
                &format!("burst-{i}"),
                &format!("burst_{i}"),
                5,
            ))
            .await;
        assert_eq!(r.status, 202);
    }
    let mut updates = 0;
    let last = loop {
        let v = sse.next().await;
        updates += 1;
        if v["total"] == 40 {
            break v;
        }
    };
    let elapsed = started.elapsed();
    assert_eq!(last["entries"].as_array().map(Vec::len), Some(40));
    // At most one update per 250 ms tick, plus the one in flight at the start.
    let allowed = (elapsed.as_millis() / 250) as usize + 2;
    assert!(
        updates <= allowed,
        "{updates} updates in {elapsed:?}: not coalesced (at most {allowed})"
    );
    // Nothing more arrives while the board does not change.
    assert!(sse.next_within(Duration::from_millis(700)).await.is_none());
}

#[api_test]
async fn a_client_leaving_does_not_disturb_the_others_on_its_feed() {
    let app = spawn_app().await;
    let mut a = SseClient::open(&app, "?window=seasonal").await;
    let mut b = SseClient::open(&app, "?window=seasonal").await;
    a.next().await;
    b.next().await;
    drop(a);
    app.post(&progression("share-1", "player_share", 7)).await;
    let v = b.until(|v| score_of(v, "player_share").is_some()).await;
    assert_eq!(score_of(&v, "player_share"), Some(7));
}

#[api_test]
async fn an_open_stream_does_not_hold_up_shutdown() {
    let app = spawn_app().await;
    let mut sse = SseClient::open(&app, "?window=weekly").await;
    sse.next().await;
    let stopped = tokio::time::timeout(Duration::from_secs(5), app.stop()).await;
    assert!(
        stopped.is_ok(),
        "the server did not stop with a stream open"
    );
    // The stream ended with the server. A change published just before the stop (the boards'
    // start-up rebuild moves their version) may still arrive first; the end must follow it.
    let deadline = Instant::now() + Duration::from_secs(2);
    while sse
        .next_within(deadline.saturating_duration_since(Instant::now()))
        .await
        .is_some()
    {}
    assert!(
        Instant::now() < deadline,
        "the stream was still open 2 s after the server stopped"
    );
}

#[api_test]
async fn the_stream_is_in_the_openapi_document() {
    let app = spawn_app().await;
    let doc = app.get("/openapi.json").await.body;
    assert!(
        doc["paths"]["/leaderboard/stream"]["get"].is_object(),
        "{}",
        json!(doc["paths"]
            .as_object()
            .map(|m| m.keys().collect::<Vec<_>>()))
    );
}
