//! `docs/api.md` admin API: the token, blocks (and the gateway's 403 for blocked players), the
//! failed-events store, live rebuild, erasure and board reset. Quarantine review (release and
//! reject) is tested with the fairness guard, in `fairness.rs`.

use serde_json::json;

use crate::helpers::*;

const TOKEN: &str = "admin-token-0123456789";

async fn admin_app() -> TestApp {
    spawn_with_config(|c| c.admin_token = Some(liveops_server::config::Secret::new(TOKEN))).await
}

async fn admin_post(
    app: &TestApp,
    path: &str,
    body: serde_json::Value,
) -> liveops_client::ApiResponse {
    let auth = format!("Bearer {TOKEN}");
    app.client
        .post_raw(
            path,
            serde_json::to_vec(&body).unwrap(),
            &[
                ("Content-Type", "application/json"),
                ("Authorization", &auth),
                ("X-Operator", "alice"),
            ],
        )
        .await
        .unwrap()
}

async fn admin_get(app: &TestApp, path: &str) -> liveops_client::ApiResponse {
    let auth = format!("Bearer {TOKEN}");
    app.client
        .get_with(path, &[("Authorization", &auth)])
        .await
        .unwrap()
}

#[api_test]
async fn admin_routes_are_401_without_the_right_token_or_when_disabled() {
    let disabled = spawn_app().await;
    let r = disabled.get("/admin/audit").await;
    assert_eq!(r.status, 401);
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("ADMIN_TOKEN"));
    let app = admin_app().await;
    assert_eq!(app.get("/admin/audit").await.status, 401);
    let wrong = app
        .client
        .get_with("/admin/audit", &[("Authorization", "Bearer nope")])
        .await
        .unwrap();
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.error_code(), Some("unauthorized"));
    assert_eq!(admin_get(&app, "/admin/audit").await.status, 200);
}

#[api_test]
async fn a_blocked_player_gets_403_until_unblocked_and_nothing_is_applied() {
    let app = admin_app().await;
    assert_eq!(
        app.post(&progression("bl-0", "player_bl", 5)).await.status,
        202
    );
    let r = admin_post(
        &app,
        "/admin/players/player_bl/block",
        json!({"reason": "chargeback"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let refused = app.post(&progression("bl-1", "player_bl", 100)).await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.error_code(), Some("player_blocked"));
    let batch = app
        .client
        .post_batch(&[progression("bl-2", "player_bl", 100)])
        .await
        .unwrap();
    assert_eq!(batch.body["results"][0]["status"], 403);
    let auth = format!("Bearer {TOKEN}");
    let r = app
        .client
        .send(
            liveops_client::Method::DELETE,
            "/admin/players/player_bl/block",
            None,
            &[("Authorization".into(), auth)],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        app.post(&progression("bl-3", "player_bl", 1)).await.status,
        202
    );
    app.wait_for_xp("player_bl", 6).await;
    let audit = admin_get(&app, "/admin/audit").await.body;
    let actions: Vec<_> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["unblock", "block"]);
    assert_eq!(audit["entries"][1]["actor"], "alice");
    assert_eq!(audit["entries"][1]["target"], "player_bl");
}

#[api_test]
async fn a_timed_block_expires_and_blocks_survive_a_restart() {
    let clock_start = at(2026, 11, 22, 10);
    let app = spawn_with(Options {
        clock: Some(liveops_domain::ManualClock::new(clock_start)),
        configure: Box::new(|c| c.admin_token = Some(liveops_server::config::Secret::new(TOKEN))),
        ..Options::default()
    })
    .await;
    admin_post(
        &app,
        "/admin/players/player_tb/block",
        json!({"durationSec": 60}),
    )
    .await;
    admin_post(&app, "/admin/players/player_pb/block", json!({})).await;
    assert_eq!(
        app.post(&progression("tb-1", "player_tb", 1)).await.status,
        403
    );
    app.clock().advance(chrono::Duration::seconds(61));
    assert_eq!(
        app.post(&progression("tb-2", "player_tb", 1)).await.status,
        202
    );
    let blocks = admin_get(&app, "/admin/blocks").await.body;
    assert_eq!(blocks["blocks"].as_array().unwrap().len(), 1, "{blocks}");
    let dir = app.stop().await;
    let app = spawn_with(Options {
        data_dir: Some(dir),
        ..Options::default()
    })
    .await;
    assert_eq!(
        app.post(&progression("pb-1", "player_pb", 1)).await.status,
        403,
        "the block is in the system of record"
    );
    let r = admin_post(&admin_app().await, "/admin/players/x!/block", json!({})).await;
    assert_eq!(r.status, 400);
}

#[api_test]
async fn refused_requests_are_listed_in_the_failed_events_store() {
    let app = admin_app().await;
    let r = app.client.post_event(b"{not json").await.unwrap();
    assert_eq!(r.status, 400);
    let failed = admin_get(&app, "/admin/failed-events?limit=10").await.body;
    let first = &failed["failed"][0];
    assert_eq!(first["code"], "invalid_json");
    assert_eq!(first["status"], 400);
    assert_eq!(first["body"], "{not json");
    // A refused item of a batch is kept as the item itself.
    let bad_item = json!({"type": "progression", "playerId": "player_dlq", "ts": 1, "payload": {"deltaXp": 0, "activity": "a"}});
    app.client
        .post_batch(std::slice::from_ref(&bad_item))
        .await
        .unwrap();
    let failed = admin_get(&app, "/admin/failed-events?limit=1").await.body;
    let kept: serde_json::Value =
        serde_json::from_str(failed["failed"][0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(kept, bad_item);
    assert_eq!(failed["failed"][0]["field"], "payload.deltaXp");
}

#[api_test]
async fn a_live_rebuild_leaves_the_boards_exact() {
    let app = admin_app().await;
    let mut expected = std::collections::BTreeMap::<String, i64>::new();
    for i in 0..30 {
        let player = format!("rb_player_{}", i % 7);
        assert_eq!(
            app.post(&progression(&format!("rb-{i}"), &player, 10 + i))
                .await
                .status,
            202
        );
        *expected.entry(player).or_default() += 10 + i;
    }
    // Every event applied, not just every player seen: the pipeline is asynchronous.
    let scores = |body: &serde_json::Value| -> std::collections::BTreeMap<String, i64> {
        board_entries(body).into_iter().collect()
    };
    app.eventually("/leaderboard?window=seasonal", |r| {
        scores(&r.body) == expected
    })
    .await;
    let r = admin_post(&app, "/admin/leaderboards/rebuild", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["rebuilt"]["seasonal"], 7);
    let rebuilt = app.get("/leaderboard?window=seasonal").await.body;
    assert_eq!(scores(&rebuilt), expected, "exact right after the rebuild");
    app.post(&progression("rb-after", "rb_player_0", 1)).await;
    let want = expected["rb_player_0"] + 1;
    let after = app
        .eventually("/leaderboard/players/rb_player_0?window=seasonal", |r| {
            r.body["score"].as_i64() == Some(want)
        })
        .await;
    assert_eq!(after.status, 200);
}

#[api_test]
async fn erasing_a_player_leaves_no_trace_and_keeps_the_boards_exact() {
    let app = spawn_with(Options {
        clock: Some(liveops_domain::ManualClock::new(at(2026, 11, 22, 23))),
        configure: Box::new(|c| c.admin_token = Some(liveops_server::config::Secret::new(TOKEN))),
        ..Options::default()
    })
    .await;
    app.post(&progression("er-1", "player_gone", 1500)).await;
    app.post(&drop_claimed("er-2", "player_gone", 0.5)).await;
    app.post(&progression("er-3", "player_gone", 50_000)).await; // quarantined flag
    app.post(&progression("er-4", "player_stays", 700)).await;
    app.post(&progression("er-5", "player_too", 900)).await;
    app.wait_for_xp("player_gone", 1550).await;
    app.client
        .claim_reward("player_gone", "lvl2_gold_100")
        .await
        .unwrap();
    app.eventually("/fairness/flags?playerId=player_gone", |r| {
        r.body["total"] == 1
    })
    .await;
    app.client
        .post_event(b"{\"playerId\": \"player_gone\", oops")
        .await
        .unwrap();
    // Midnight passes: yesterday is archived with the player in it.
    app.clock().advance(chrono::Duration::hours(2));
    app.eventually("/leaderboard/history?window=daily&period=2026-11-22", |r| {
        r.status == 200 && r.body["total"] == 3
    })
    .await;
    let r = admin_post(&app, "/admin/players/player_gone/erase", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(app.get("/players/player_gone/progress").await.status, 404);
    assert_eq!(app.get("/players/player_gone/rewards").await.status, 404);
    assert_eq!(
        app.get("/leaderboard/players/player_gone?window=seasonal")
            .await
            .status,
        404
    );
    let board = app.get("/leaderboard?window=seasonal").await.body;
    assert_eq!(board["total"], 2);
    assert_eq!(board["entries"][0]["playerId"], "player_too");
    let history = app
        .get("/leaderboard/history?window=daily&period=2026-11-22")
        .await
        .body;
    assert_eq!(history["total"], 2);
    assert!(!history.to_string().contains("player_gone"), "{history}");
    assert_eq!(
        app.get("/fairness/flags?playerId=player_gone").await.body["total"],
        0
    );
    let fair = app.get("/fairness/players/player_gone").await.body;
    assert_eq!(fair["baselines"], json!({}));
    let failed = admin_get(&app, "/admin/failed-events").await.body;
    assert!(!failed.to_string().contains("player_gone"), "{failed}");
    // Exact after a restart too: the rebuild reads a log without their events.
    let dir = app.stop().await;
    let app = spawn_with(Options {
        data_dir: Some(dir),
        ..Options::default()
    })
    .await;
    let board = app
        .eventually("/leaderboard?window=seasonal", |r| r.body["total"] == 2)
        .await
        .body;
    assert!(!board.to_string().contains("player_gone"), "{board}");
    assert_eq!(app.get("/players/player_gone/progress").await.status, 404);
    // The id is free again and starts from zero.
    app.post(&progression("er-6", "player_gone", 5)).await;
    app.wait_for_xp("player_gone", 5).await;
}

#[api_test]
async fn resetting_a_period_empties_that_board_only_and_survives_a_restart() {
    let app = admin_app().await;
    app.post(&progression("rs-1", "reset_a", 300)).await;
    app.post(&progression("rs-2", "reset_b", 200)).await;
    app.eventually("/leaderboard?window=daily", |r| r.body["total"] == 2)
        .await;
    let r = admin_post(&app, "/admin/leaderboards/daily/reset", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(app.get("/leaderboard?window=daily").await.body["total"], 0);
    assert_eq!(
        app.get("/leaderboard?window=weekly").await.body["total"],
        2,
        "other windows keep their scores"
    );
    app.post(&progression("rs-3", "reset_b", 5)).await;
    let daily = app
        .eventually("/leaderboard?window=daily", |r| r.body["total"] == 1)
        .await
        .body;
    assert_eq!(daily["entries"][0]["score"], 5);
    assert_eq!(
        admin_post(&app, "/admin/leaderboards/hourly/reset", json!({}))
            .await
            .status,
        400
    );
    let dir = app.stop().await;
    let app = spawn_with(Options {
        data_dir: Some(dir),
        ..Options::default()
    })
    .await;
    let weekly = app
        .eventually("/leaderboard?window=weekly", |r| r.body["total"] == 2)
        .await
        .body;
    assert_eq!(weekly["total"], 2);
    let daily = app.get("/leaderboard?window=daily").await.body;
    assert_eq!(daily["total"], 1, "{daily}");
    assert_eq!(daily["entries"][0]["score"], 5);
}

#[api_test]
async fn malformed_ids_and_limits_on_admin_routes_are_400_naming_the_field() {
    let app = admin_app().await;
    for (r, field) in [
        (
            admin_post(&app, "/admin/players/a%20b/block", json!({})).await,
            "playerId",
        ),
        (
            admin_post(&app, "/admin/players/x/erase", json!({})).await,
            "playerId",
        ),
        (
            admin_post(&app, "/admin/flags/bad%20id/release", json!({})).await,
            "eventId",
        ),
        (admin_get(&app, "/admin/audit?limit=1001").await, "limit"),
        (
            admin_get(&app, "/admin/failed-events?limit=0").await,
            "limit",
        ),
    ] {
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(r.error_code(), Some("invalid_request"));
        assert_eq!(r.body["error"]["field"], field, "{}", r.body);
    }
    let r = admin_get(&app, "/admin/audit?limit=abc").await;
    assert_eq!(
        r.body["error"]["message"],
        "limit must be an integer from 1 to 1000, got \"abc\""
    );
    // Nothing was done, so nothing was audited.
    let audit = admin_get(&app, "/admin/audit").await.body;
    assert_eq!(audit["entries"], json!([]), "{audit}");
}

#[api_test]
async fn every_leaderboard_fairness_and_admin_answer_has_a_schema_in_the_openapi_document() {
    let app = spawn_app().await;
    let doc = app.get("/openapi.json").await.body;
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !["/leaderboard", "/fairness/", "/admin/"]
            .iter()
            .any(|p| path.starts_with(p))
        {
            continue;
        }
        for (method, op) in item.as_object().unwrap() {
            for (status, resp) in op["responses"].as_object().unwrap() {
                if path == "/leaderboard/stream" && status == "200" {
                    assert!(resp["content"]["text/event-stream"].is_object(), "{resp}");
                    continue;
                }
                let schema = &resp["content"]["application/json"]["schema"];
                let name = schema["$ref"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{method} {path} {status} names no schema: {resp}"));
                let name = name.trim_start_matches("#/components/schemas/");
                assert!(
                    doc["components"]["schemas"][name].is_object(),
                    "{method} {path} {status}: {name} is not in components"
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 40, "only {checked} answers checked");
}
