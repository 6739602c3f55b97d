//! `docs/api.md`: XP arithmetic, levels, the reward ledger, claims and receipts.

use serde_json::json;

use crate::helpers::*;

#[api_test]
async fn xp_and_levels_follow_the_rules_for_every_event_type() {
    let app = spawn_app().await;
    assert_eq!(
        app.post(&progression("p-1", "player_xp", 150)).await.status,
        202
    );
    assert_eq!(
        app.post(&boss_kill("p-2", "player_xp", "dragon", 900))
            .await
            .status,
        202
    );
    assert_eq!(
        app.post(&boss_kill("p-3", "player_xp", "dragon", 0))
            .await
            .status,
        202
    );
    assert_eq!(
        app.post(&drop_claimed("p-4", "player_xp", 0.255))
            .await
            .status,
        202
    );
    // 150 + 900 + 0 + round(25.5) = 1076
    let p = app.wait_for_xp("player_xp", 1076).await;
    assert_eq!(p["level"], 2);
    assert_eq!(p["xpIntoLevel"], 76);
    assert_eq!(p["xpForNextLevel"], 1000);
    assert_eq!(p["bossKills"], json!({"dragon": 2}));
    assert_eq!(p["drops"][0]["dropId"], "sword_of_tests");
    assert_eq!(p["playerId"], "player_xp");
    assert!(p["season"].as_str().unwrap().contains("-Q"));
    assert!(p["updatedAt"].is_string());
    let mut fields: Vec<&str> = p.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "bossKills",
            "drops",
            "level",
            "playerId",
            "season",
            "updatedAt",
            "xp",
            "xpForNextLevel",
            "xpIntoLevel"
        ]
    );
}

#[api_test]
async fn unknown_player_is_404_and_a_malformed_id_is_400() {
    let app = spawn_app().await;
    let r = app.get("/players/nobody_here/progress").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code(), Some("not_found"));
    let r = app.get("/players/a!/progress").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["field"], "playerId");
    assert_eq!(app.get("/players/nobody_here/rewards").await.status, 404);
}

#[api_test]
async fn each_level_grants_gold_and_every_fifth_a_rare_chest() {
    let app = spawn_app().await;
    app.post(&progression("r-1", "player_rw", 5200)).await;
    app.wait_for_xp("player_rw", 5200).await;
    let r = app.get("/players/player_rw/rewards").await;
    assert_eq!(r.status, 200);
    let mut items: Vec<(i64, String)> = r.body["pending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["level"].as_i64().unwrap(),
                x["item"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    items.sort();
    let expected: Vec<(i64, String)> = vec![
        (2, "gold_100".into()),
        (3, "gold_100".into()),
        (4, "gold_100".into()),
        (5, "chest_rare".into()),
        (5, "gold_100".into()),
        (6, "gold_100".into()),
    ];
    assert_eq!(items, expected);
    assert_eq!(r.body["claimed"], json!([]));
    // A pending reward says so with a null receiptId, not by leaving it out.
    let pending = r.body["pending"][0].as_object().unwrap();
    let mut fields: Vec<&str> = pending.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "eventId",
            "grantedAt",
            "item",
            "level",
            "receiptId",
            "rewardId"
        ]
    );
    assert!(pending["receiptId"].is_null());
}

#[api_test]
async fn claiming_an_earned_reward_returns_a_signed_receipt_once() {
    let app = spawn_app().await;
    app.post(&progression("c-1", "player_cl", 1000)).await;
    app.wait_for_xp("player_cl", 1000).await;
    let first = app
        .client
        .claim_reward("player_cl", "lvl2_gold_100")
        .await
        .unwrap();
    assert_eq!(first.status, 200, "{}", first.body);
    for field in ["receiptId", "playerId", "item", "sig", "timestamp"] {
        assert!(
            !first.body[field].is_null(),
            "receipt lacks {field}: {}",
            first.body
        );
    }
    assert_eq!(first.body["item"], "gold_100");
    // The sig is HMAC(receiptId:playerId:item:timestamp) with the server secret.
    let msg = format!(
        "{}:{}:{}:{}",
        first.body["receiptId"].as_str().unwrap(),
        first.body["playerId"].as_str().unwrap(),
        first.body["item"].as_str().unwrap(),
        first.body["timestamp"]
    );
    assert_eq!(
        first.body["sig"].as_str().unwrap(),
        liveops_domain::signing::sign_request(SECRET.as_bytes(), msg.as_bytes(), None)
    );
    let again = app
        .client
        .claim_reward("player_cl", "lvl2_gold_100")
        .await
        .unwrap();
    assert_eq!(again.status, 200);
    assert_eq!(
        again.body, first.body,
        "a repeated claim returns the same receipt"
    );
    let rewards = app.get("/players/player_cl/rewards").await.body;
    assert_eq!(rewards["pending"], json!([]));
    assert_eq!(rewards["claimed"].as_array().unwrap().len(), 1);
    assert_eq!(rewards["claimed"][0]["receiptId"], first.body["receiptId"]);
}

#[api_test]
async fn a_reward_not_earned_cannot_be_claimed() {
    let app = spawn_app().await;
    app.post(&progression("n-1", "player_nc", 1000)).await;
    app.wait_for_xp("player_nc", 1000).await;
    let r = app
        .client
        .claim_reward("player_nc", "lvl3_gold_100")
        .await
        .unwrap();
    assert_eq!(r.status, 404);
    let r = app
        .client
        .claim_reward("someone_else", "lvl2_gold_100")
        .await
        .unwrap();
    assert_eq!(r.status, 404);
}

#[api_test]
async fn claims_must_be_signed() {
    let app = spawn_app().await;
    let body =
        serde_json::to_vec(&json!({"playerId": "player_cl", "rewardId": "lvl2_gold_100"})).unwrap();
    let r = app
        .client
        .post_raw(
            "/rewards/claim",
            body,
            &[("Content-Type", "application/json")],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(r.error_code(), Some("missing_signature"));
    // The same checks as events, in the same order: the content type before the signature,
    // the size before the signature.
    let r = app
        .client
        .post_raw(
            "/rewards/claim",
            b"{}".to_vec(),
            &[("Content-Type", "text/plain")],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 415);
    assert_eq!(r.error_code(), Some("unsupported_media_type"));
    let big = vec![b' '; 64 * 1024 + 1];
    let r = app
        .client
        .post_raw(
            "/rewards/claim",
            big,
            &[("Content-Type", "application/json")],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 413);
    assert_eq!(r.error_code(), Some("payload_too_large"));
}

#[api_test]
async fn receipts_verify_until_tampered_or_24_hours_old() {
    let app = spawn_at(at(2026, 11, 22, 10)).await;
    app.post(&progression("v-1", "player_rc", 1000)).await;
    app.wait_for_xp("player_rc", 1000).await;
    let receipt = app
        .client
        .claim_reward("player_rc", "lvl2_gold_100")
        .await
        .unwrap()
        .body;
    let r = app.client.verify_receipt(&receipt).await.unwrap();
    assert_eq!(r.body, json!({"valid": true, "expired": false}));
    let mut forged = receipt.clone();
    forged["item"] = json!("chest_rare");
    assert_eq!(
        app.client.verify_receipt(&forged).await.unwrap().body["valid"],
        false
    );
    app.clock().advance(chrono::Duration::hours(25));
    let r = app.client.verify_receipt(&receipt).await.unwrap();
    assert_eq!(r.body, json!({"valid": true, "expired": true}));
    let r = app
        .client
        .verify_receipt(&json!({"nope": 1}))
        .await
        .unwrap();
    assert_eq!(r.status, 400);
}

#[api_test]
async fn progress_survives_a_restart_and_is_not_applied_twice() {
    let app = spawn_app().await;
    for i in 0..20 {
        app.post(&progression(&format!("rs-{i}"), "player_rs", 100))
            .await;
    }
    app.wait_for_xp("player_rs", 2000).await;
    let dir = app.stop().await;
    let app = spawn_with(Options {
        data_dir: Some(dir),
        ..Options::default()
    })
    .await;
    // Replays after the restart are still duplicates; the consumer resumes at its cursor.
    assert_eq!(
        app.post(&progression("rs-0", "player_rs", 100))
            .await
            .status,
        208
    );
    app.post(&progression("rs-new", "player_rs", 1)).await;
    app.wait_for_xp("player_rs", 2001).await;
    let board = app
        .eventually("/leaderboard/players/player_rs?window=seasonal", |r| {
            r.status == 200 && r.body["score"] == 2001
        })
        .await;
    assert_eq!(board.body["rank"], 1);
}
