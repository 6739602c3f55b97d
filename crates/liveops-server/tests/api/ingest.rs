//! `docs/api.md`: one test per row of the outcome table, and the batch endpoint.

use std::time::Duration;

use liveops_domain::signing::sign_request;
use serde_json::{json, Value};

use crate::helpers::*;

#[api_test]
async fn accepted_event_is_202_with_its_event_id() {
    let app = spawn_app().await;
    let r = app.post(&progression("ev-1", "player_one", 150)).await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body, json!({"eventId": "ev-1", "status": "accepted"}));
}

#[api_test]
async fn server_assigns_a_uuid_v7_when_the_event_id_is_missing() {
    let app = spawn_app().await;
    let mut e = progression("x", "player_one", 10);
    e.as_object_mut().unwrap().remove("eventId");
    let r = app.post(&e).await;
    assert_eq!(r.status, 202);
    let id = r.body["eventId"].as_str().unwrap();
    let uuid = uuid::Uuid::parse_str(id).expect("a uuid");
    assert_eq!(uuid.get_version_num(), 7);
}

#[api_test]
async fn repeated_event_id_is_208_and_applied_once() {
    let app = spawn_app().await;
    let e = progression("dup-1", "player_dup", 100);
    assert_eq!(app.post(&e).await.status, 202);
    let again = app.post(&e).await;
    assert_eq!(again.status, 208);
    assert_eq!(again.body["eventId"], "dup-1");
    // Same id with another body is still the same event: a duplicate forever.
    assert_eq!(
        app.post(&progression("dup-1", "player_dup", 999))
            .await
            .status,
        208
    );
    assert_eq!(
        app.post(&progression("dup-2", "player_dup", 1))
            .await
            .status,
        202
    );
    app.wait_for_xp("player_dup", 101).await;
}

#[api_test]
async fn same_idempotency_key_and_body_replays_the_original_event_id() {
    let app = spawn_app().await;
    let mut e = progression("x", "player_idem", 40);
    e.as_object_mut().unwrap().remove("eventId");
    let first = app.post_with(&e, &[("Idempotency-Key", "key-1")]).await;
    assert_eq!(first.status, 202);
    let second = app.post_with(&e, &[("Idempotency-Key", "key-1")]).await;
    assert_eq!(second.status, 208);
    assert_eq!(second.body["eventId"], first.body["eventId"]);
    app.wait_for_xp("player_idem", 40).await;
    app.assert_settled_at("player_idem", 40).await;
}

#[api_test]
async fn same_idempotency_key_with_another_body_is_409() {
    let app = spawn_app().await;
    assert_eq!(
        app.post_with(
            &progression("a-1", "player_idem", 1),
            &[("Idempotency-Key", "k")]
        )
        .await
        .status,
        202
    );
    let r = app
        .post_with(
            &progression("a-2", "player_idem", 2),
            &[("Idempotency-Key", "k")],
        )
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(r.error_code(), Some("idempotency_key_reuse"));
}

#[api_test]
async fn idempotency_key_is_forgotten_after_idemp_ttl() {
    let app = spawn_with_config(|c| c.idemp_ttl = Duration::from_millis(300)).await;
    assert_eq!(
        app.post_with(
            &progression("t-1", "player_ttl", 1),
            &[("Idempotency-Key", "k")]
        )
        .await
        .status,
        202
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let r = app
        .post_with(
            &progression("t-2", "player_ttl", 2),
            &[("Idempotency-Key", "k")],
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
}

#[api_test]
async fn overlong_idempotency_key_is_400() {
    let app = spawn_app().await;
    let key = "k".repeat(256);
    let r = app
        .post_with(
            &progression("l-1", "player_key", 1),
            &[("Idempotency-Key", &key)],
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["field"], "Idempotency-Key");
}

fn body_of(e: &Value) -> Vec<u8> {
    serde_json::to_vec(e).unwrap()
}

#[api_test]
async fn missing_signature_is_401() {
    let app = spawn_app().await;
    let r = app
        .client
        .post_raw(
            "/events",
            body_of(&progression("s-1", "player_sig", 1)),
            &[("Content-Type", "application/json")],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(r.error_code(), Some("missing_signature"));
}

#[api_test]
async fn wrong_signature_is_401_and_nothing_is_applied() {
    let app = spawn_app().await;
    let body = body_of(&progression("s-2", "player_sig", 1));
    let sig = sign_request(b"another-secret-another-secret-another", &body, None);
    let r = app
        .client
        .post_raw(
            "/events",
            body,
            &[("Content-Type", "application/json"), ("X-Signature", &sig)],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(r.error_code(), Some("invalid_signature"));
    assert_eq!(app.get("/players/player_sig/progress").await.status, 404);
    app.assert_settled_at("player_sig", 0).await;
}

#[api_test]
async fn both_signature_header_forms_are_accepted() {
    let app = spawn_app().await;
    for (i, prefix) in ["", "sha256="].iter().enumerate() {
        let body = body_of(&progression(&format!("f-{i}"), "player_sig", 1));
        let sig = format!("{prefix}{}", sign_request(SECRET.as_bytes(), &body, None));
        let r = app
            .client
            .post_raw(
                "/events",
                body,
                &[("Content-Type", "application/json"), ("X-Signature", &sig)],
            )
            .await
            .unwrap();
        assert_eq!(r.status, 202, "{prefix}: {}", r.body);
    }
}

async fn post_with_timestamp(app: &TestApp, id: &str, ts: i64) -> liveops_client::ApiResponse {
    let body = body_of(&progression(id, "player_ts", 1));
    let ts = ts.to_string();
    let sig = sign_request(SECRET.as_bytes(), &body, Some(&ts));
    app.client
        .post_raw(
            "/events",
            body,
            &[
                ("Content-Type", "application/json"),
                ("X-Signature", &sig),
                ("X-Timestamp", &ts),
            ],
        )
        .await
        .unwrap()
}

#[api_test]
async fn timestamps_outside_the_tolerance_are_401_stale_timestamp() {
    let app = spawn_app().await;
    let now = chrono::Utc::now().timestamp();
    assert_eq!(post_with_timestamp(&app, "ts-ok", now).await.status, 202);
    let old = post_with_timestamp(&app, "ts-old", now - 301).await;
    assert_eq!(old.status, 401);
    assert_eq!(old.error_code(), Some("stale_timestamp"));
    // From the time of sending, with a margin: a future stamp drifts into the tolerance as the
    // test runs (the requests before this one can take seconds on a loaded machine).
    let later = chrono::Utc::now().timestamp() + 305;
    let future = post_with_timestamp(&app, "ts-future", later).await;
    assert_eq!(future.error_code(), Some("stale_timestamp"));
    // A MAC over the body alone does not cover a timestamp header.
    let body = body_of(&progression("ts-unbound", "player_ts", 1));
    let sig = sign_request(SECRET.as_bytes(), &body, None);
    let r = app
        .client
        .post_raw(
            "/events",
            body,
            &[
                ("Content-Type", "application/json"),
                ("X-Signature", &sig),
                ("X-Timestamp", &now.to_string()),
            ],
        )
        .await
        .unwrap();
    assert_eq!(r.error_code(), Some("invalid_signature"));
}

#[api_test]
async fn require_timestamp_refuses_unstamped_requests() {
    let app = spawn_with_config(|c| c.require_timestamp = true).await;
    let r = app.post(&progression("rt-1", "player_ts", 1)).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error_code(), Some("stale_timestamp"));
    let now = chrono::Utc::now().timestamp();
    assert_eq!(post_with_timestamp(&app, "rt-2", now).await.status, 202);
}

#[api_test]
async fn rotated_keys_are_picked_with_x_key_id() {
    let rotated = "rotated-key-rotated-key-rotated-key-1";
    let app = spawn_with_config(move |c| {
        c.hmac_keys = vec![(
            "k2".into(),
            liveops_server::config::Secret::new(rotated.as_bytes()),
        )]
    })
    .await;
    let body = body_of(&progression("kid-1", "player_kid", 1));
    let sig = sign_request(rotated.as_bytes(), &body, None);
    let headers = [
        ("Content-Type", "application/json"),
        ("X-Signature", sig.as_str()),
        ("X-Key-Id", "k2"),
    ];
    assert_eq!(
        app.client
            .post_raw("/events", body.clone(), &headers)
            .await
            .unwrap()
            .status,
        202
    );
    let unknown = [
        ("Content-Type", "application/json"),
        ("X-Signature", sig.as_str()),
        ("X-Key-Id", "k9"),
    ];
    let r = app
        .client
        .post_raw("/events", body, &unknown)
        .await
        .unwrap();
    assert_eq!(r.error_code(), Some("invalid_signature"));
}

#[api_test]
async fn body_that_is_not_json_is_400_invalid_json() {
    let app = spawn_app().await;
    let r = app
        .client
        .post_event(b"{\"type\": \"progression\",")
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), Some("invalid_json"));
}

#[api_test]
async fn schema_violations_are_400_invalid_event_naming_the_field() {
    let app = spawn_app().await;
    let mut e = progression("v-1", "player_v", 0);
    let r = app.post(&e).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), Some("invalid_event"));
    assert_eq!(r.body["error"]["field"], "payload.deltaXp");
    e["payload"]["deltaXp"] = json!(5);
    e["playerId"] = json!("no");
    assert_eq!(app.post(&e).await.body["error"]["field"], "playerId");
    let bad_tier = json!({"type": "boss_kill", "playerId": "player_v", "ts": 1,
        "payload": {"bossId": "b", "tier": 11, "points": 5}});
    assert_eq!(
        app.post(&bad_tier).await.body["error"]["field"],
        "payload.tier"
    );
    let bad_weight = json!({"type": "drop_claimed", "playerId": "player_v", "ts": 1,
        "payload": {"dropId": "d", "weight": 0, "source": "s"}});
    assert_eq!(
        app.post(&bad_weight).await.body["error"]["field"],
        "payload.weight"
    );
}

#[api_test]
async fn near_miss_field_names_get_a_did_you_mean() {
    let app = spawn_app().await;
    let e = json!({"type": "progression", "player_id": "player_v", "ts": 1,
        "payload": {"deltaXp": 1, "activity": "a"}});
    let r = app.post(&e).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["field"], "playerId");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("did you mean \"playerId\""),
        "{}",
        r.body
    );
}

#[api_test]
async fn wrong_content_type_is_415() {
    let app = spawn_app().await;
    let body = body_of(&progression("ct-1", "player_ct", 1));
    let sig = sign_request(SECRET.as_bytes(), &body, None);
    let r = app
        .client
        .post_raw(
            "/events",
            body,
            &[("Content-Type", "text/plain"), ("X-Signature", &sig)],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 415);
    assert_eq!(r.error_code(), Some("unsupported_media_type"));
}

#[api_test]
async fn bodies_over_the_limits_are_413() {
    let app = spawn_app().await;
    let mut e = progression("big-1", "player_big", 1);
    e["payload"]["note"] = json!("x".repeat(65 * 1024));
    let r = app.post(&e).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.error_code(), Some("payload_too_large"));
    let big = vec![b' '; 1024 * 1024 + 10];
    let r = app.client.post_batch_body(&big).await.unwrap();
    assert_eq!(r.status, 413);
}

#[api_test]
async fn client_over_rate_limit_max_gets_429_with_retry_after() {
    let app = spawn_with_config(|c| c.rate_limit_max = 3).await;
    for i in 0..3 {
        assert_eq!(
            app.post(&progression(&format!("rl-{i}"), "player_rl", 1))
                .await
                .status,
            202
        );
    }
    let r = app.post(&progression("rl-3", "player_rl", 1)).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.error_code(), Some("rate_limited"));
    let retry: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
}

#[api_test]
async fn rate_limit_exempt_clients_skip_the_limit() {
    let app = spawn_with_config(|c| {
        c.rate_limit_max = 1;
        c.rate_limit_exempt = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    for i in 0..5 {
        assert_eq!(
            app.post(&progression(&format!("ex-{i}"), "player_rl", 1))
                .await
                .status,
            202
        );
    }
}

#[api_test]
async fn batch_answers_one_result_per_event_in_order() {
    let app = spawn_app().await;
    let events = vec![
        progression("b-1", "player_batch", 10),
        json!({"type": "progression", "playerId": "player_batch", "ts": 1, "payload": {"deltaXp": -1, "activity": "a"}}),
        progression("b-1", "player_batch", 10),
        boss_kill("b-2", "player_batch", "dragon", 20),
    ];
    let r = app.client.post_batch(&events).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let results = r.body["results"].as_array().unwrap();
    let statuses: Vec<_> = results
        .iter()
        .map(|x| x["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, vec![202, 400, 208, 202]);
    for (i, x) in results.iter().enumerate() {
        assert_eq!(x["index"], i);
    }
    assert_eq!(results[1]["error"]["field"], "payload.deltaXp");
    app.wait_for_xp("player_batch", 30).await;
}

#[api_test]
async fn a_malformed_batch_body_is_400_naming_the_events_field() {
    let app = spawn_app().await;
    let cases: [(&[u8], &str, &str); 6] = [
        (
            br#"{"events": [{"type": "progression"}"#,
            "invalid_json",
            "",
        ),
        (br#"{"events": []} trailing"#, "invalid_json", ""),
        (
            br#"[{"type": "progression"}]"#,
            "invalid_event",
            "must be an object",
        ),
        (
            br#"{"evnts": []}"#,
            "invalid_event",
            "did you mean \"events\"?",
        ),
        (
            br#"{"events": {"type": "progression"}}"#,
            "invalid_event",
            "must be an array",
        ),
        (br#"{"events": []}"#, "invalid_event", "at least one event"),
    ];
    for (body, code, says) in cases {
        let shown = String::from_utf8_lossy(body);
        let r = app.client.post_batch_body(body).await.unwrap();
        assert_eq!(r.status, 400, "{shown}: {}", r.body);
        assert_eq!(r.body["error"]["code"], code, "{shown}: {}", r.body);
        let message = r.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{shown}: {message}");
        if code == "invalid_event" {
            assert_eq!(r.body["error"]["field"], "events", "{shown}");
        }
    }
    // Items are judged one by one, whatever their neighbours hold, and a duplicate says so.
    let body = br#"{"events": [
        {"eventId": "mb-1", "type": "progression", "playerId": "player_mb", "ts": 1,
         "payload": {"deltaXp": 5, "activity": "quest"}},
        7,
        {"eventId": "mb-1", "type": "progression", "playerId": "player_mb", "ts": 1,
         "payload": {"deltaXp": 5, "activity": "quest"}}
    ]}"#;
    let r = app.client.post_batch_body(body).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let results = r.body["results"].as_array().unwrap();
    assert_eq!(
        results[0],
        json!({"index": 0, "status": 202, "eventId": "mb-1"})
    );
    assert_eq!(results[1]["status"], 400);
    assert_eq!(results[1]["error"]["code"], "invalid_event");
    assert_eq!(
        results[2],
        json!({"index": 2, "status": 208, "eventId": "mb-1", "duplicate": true})
    );
    app.wait_for_xp("player_mb", 5).await;
}

#[api_test]
async fn batch_over_500_events_is_400() {
    let app = spawn_app().await;
    let events: Vec<Value> = (0..501)
        .map(|i| progression(&format!("m-{i}"), "player_batch", 1))
        .collect();
    let r = app.client.post_batch(&events).await.unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["field"], "events");
}

#[api_test]
async fn refusals_are_counted_by_reason() {
    let app = spawn_app().await;
    let r = app
        .client
        .post_raw(
            "/events",
            body_of(&progression("c-1", "player_c", 1)),
            &[("Content-Type", "application/json")],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 401);
    let metrics = app.get("/metrics").await.text;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("dropped_events_total{reason=\"missing_signature\"}")),
        "{metrics}"
    );
}

#[api_test]
async fn player_over_flood_max_per_sec_gets_429_player_flooding_and_nothing_is_applied() {
    let app = spawn_with_config(|c| c.flood_max_per_sec = 3).await;
    // Four at once: one after another, a slow append (a JetStream acknowledgement on a loaded
    // machine) can space them out over more than the third of a second that refills one token.
    let events: Vec<Value> = (0..4)
        .map(|i| progression(&format!("fl-{i}"), "player_fl", 10))
        .collect();
    let answers = futures::future::join_all(events.iter().map(|e| app.post(e))).await;
    let mut statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, vec![202, 202, 202, 429]);
    let r = answers
        .iter()
        .find(|r| r.status == 429)
        .expect("one refused");
    assert_eq!(r.error_code(), Some("player_flooding"));
    assert!(r.header("retry-after").is_some());
    // Another player has their own budget.
    assert_eq!(
        app.post(&progression("fl-other", "player_calm", 1))
            .await
            .status,
        202
    );
    // In a batch the surplus is refused in its slot.
    let events: Vec<Value> = (0..4)
        .map(|i| progression(&format!("flb-{i}"), "player_fb", 1))
        .collect();
    let r = app.client.post_batch(&events).await.unwrap();
    let statuses: Vec<_> = r.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, vec![202, 202, 202, 429]);
    assert_eq!(r.body["results"][3]["error"]["code"], "player_flooding");
    app.wait_for_xp("player_fl", 30).await;
    app.assert_settled_at("player_fl", 30).await;
    let metrics = app.get("/metrics").await.text;
    assert!(
        metrics.contains("dropped_events_total{reason=\"player_flooding\"}"),
        "{metrics}"
    );
}
