//! `docs/api.md` guest sessions: a derived per-session key, an expiry, events only for the
//! session's own player, rate-limited issue, off when disabled.

use liveops_domain::signing::sign_request;
use serde_json::{json, Value};

use crate::helpers::*;

async fn open_session(app: &TestApp, body: Value) -> liveops_client::ApiResponse {
    app.client
        .post_raw(
            "/sessions",
            serde_json::to_vec(&body).unwrap(),
            &[("Content-Type", "application/json")],
        )
        .await
        .unwrap()
}

async fn post_as(
    app: &TestApp,
    session: &Value,
    path: &str,
    body: &Value,
) -> liveops_client::ApiResponse {
    let bytes = serde_json::to_vec(body).unwrap();
    let sig = sign_request(session["key"].as_str().unwrap().as_bytes(), &bytes, None);
    app.client
        .post_raw(
            path,
            bytes,
            &[
                ("Content-Type", "application/json"),
                ("X-Signature", &sig),
                ("X-Session", session["token"].as_str().unwrap()),
            ],
        )
        .await
        .unwrap()
}

#[api_test]
async fn a_guest_session_signs_events_for_its_own_player_only() {
    let app = spawn_app().await;
    let s = open_session(&app, json!({})).await;
    assert_eq!(s.status, 200, "{}", s.body);
    let player = s.body["playerId"].as_str().unwrap().to_string();
    assert!(player.starts_with("guest_"));
    assert!(s.body["expiresAt"].is_string());
    let r = post_as(
        &app,
        &s.body,
        "/events",
        &progression("gs-1", &player, 1200),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let other = post_as(
        &app,
        &s.body,
        "/events",
        &progression("gs-2", "someone_else", 5),
    )
    .await;
    assert_eq!(other.status, 403);
    assert_eq!(other.error_code(), Some("session_player_mismatch"));
    app.wait_for_xp(&player, 1200).await;
    // Claims go through the same session: own rewards only.
    let claim = post_as(
        &app,
        &s.body,
        "/rewards/claim",
        &json!({"playerId": player, "rewardId": "lvl2_gold_100"}),
    )
    .await;
    assert_eq!(claim.status, 200, "{}", claim.body);
    let theirs = post_as(
        &app,
        &s.body,
        "/rewards/claim",
        &json!({"playerId": "someone_else", "rewardId": "lvl2_gold_100"}),
    )
    .await;
    assert_eq!(theirs.status, 403);
}

#[api_test]
async fn a_chosen_player_id_is_kept_and_a_forged_token_is_refused() {
    let app = spawn_app().await;
    let s = open_session(&app, json!({"playerId": "browser_player"})).await;
    assert_eq!(s.body["playerId"], "browser_player");
    let mut forged = s.body.clone();
    forged["token"] =
        json!(s.body["token"]
            .as_str()
            .unwrap()
            .replacen("browser_player", "victim_player", 1));
    let r = post_as(
        &app,
        &forged,
        "/events",
        &progression("fg-1", "victim_player", 5),
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error_code(), Some("invalid_session"));
    // The session key is not the server secret, and the server secret does not open a session.
    let r = app
        .client
        .post_signed(
            "/events",
            serde_json::to_vec(&progression("fg-2", "browser_player", 5)).unwrap(),
            &[("X-Session", s.body["token"].as_str().unwrap())],
        )
        .await
        .unwrap();
    assert_eq!(r.error_code(), Some("invalid_signature"));
    let bad = open_session(&app, json!({"playerId": "no"})).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["error"]["field"], "playerId");
}

#[api_test]
async fn sessions_expire_after_an_hour() {
    let app = spawn_at(at(2026, 11, 22, 10)).await;
    let s = open_session(&app, json!({})).await.body;
    let player = s["playerId"].as_str().unwrap().to_string();
    app.clock().advance(chrono::Duration::minutes(61));
    let r = post_as(&app, &s, "/events", &progression("ex-1", &player, 5)).await;
    assert_eq!(r.status, 401);
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("expired"));
}

#[api_test]
async fn session_issue_is_rate_limited_per_client_and_can_be_switched_off() {
    let app = spawn_with_config(|c| c.session_issue_per_minute = 2).await;
    assert_eq!(open_session(&app, json!({})).await.status, 200);
    assert_eq!(open_session(&app, json!({})).await.status, 200);
    let r = open_session(&app, json!({})).await;
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_some());
    let off = spawn_with_config(|c| c.guest_sessions = false).await;
    assert_eq!(open_session(&off, json!({})).await.status, 404);
}
