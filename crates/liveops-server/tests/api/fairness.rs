//! `docs/fairness.md`: detection before progression and leaderboards, quarantine and review,
//! flag-only mode, auto-block after three flags, the read API.

use serde_json::{json, Value};

use crate::helpers::*;

const TOKEN: &str = "admin-token-0123456789";

pub(crate) fn with_admin(c: &mut liveops_server::Config) {
    c.admin_token = Some(liveops_server::config::Secret::new(TOKEN));
}

pub(crate) async fn admin_post(app: &TestApp, path: &str) -> liveops_client::ApiResponse {
    let auth = format!("Bearer {TOKEN}");
    app.client
        .post_raw(
            path,
            Vec::new(),
            &[("Authorization", &auth), ("X-Operator", "reviewer")],
        )
        .await
        .unwrap()
}

async fn flags_of(app: &TestApp, player: &str, n: u64) -> Value {
    app.eventually(&format!("/fairness/flags?playerId={player}"), |r| {
        r.body["total"] == n
    })
    .await
    .body
}

#[api_test]
async fn an_event_over_the_hard_cap_is_quarantined_then_released_exactly_once() {
    let app = spawn_with_config(with_admin).await;
    assert_eq!(
        app.post(&progression("hc-1", "player_hc", 20_000))
            .await
            .status,
        202
    );
    assert_eq!(
        app.post(&progression("hc-2", "player_hc", 100))
            .await
            .status,
        202
    );
    let flags = flags_of(&app, "player_hc", 1).await;
    let flag = &flags["flags"][0];
    assert_eq!(flag["eventId"], "hc-1");
    assert_eq!(flag["status"], "quarantined");
    assert!(
        flag["reason"].as_str().unwrap().contains("MAX_DELTA_XP"),
        "{flag}"
    );
    // Held out of progression and the boards. Progression and the leaderboards are separate
    // consumers (separate processes on the engines), so each is waited for on its own; hc-1
    // precedes hc-2 in the log, so a board at 100 has skipped it.
    app.wait_for_xp("player_hc", 100).await;
    app.eventually("/leaderboard/players/player_hc?window=seasonal", |r| {
        r.body["score"] == 100
    })
    .await;
    let r = admin_post(&app, "/admin/flags/hc-1/release").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["flag"]["status"], "released");
    app.wait_for_xp("player_hc", 20_100).await;
    app.eventually("/leaderboard/players/player_hc?window=seasonal", |r| {
        r.body["score"] == 20_100
    })
    .await;
    let again = admin_post(&app, "/admin/flags/hc-1/release").await;
    assert_eq!(again.status, 409);
    app.assert_settled_at("player_hc", 20_100).await;
    let board = app
        .eventually("/leaderboard/players/player_hc?window=seasonal", |r| {
            r.body["score"] != 20_100
        })
        .await;
    assert_eq!(board.body["score"], 20_101, "the release is counted once");
    // A restart rebuilds the boards with the released event counted once.
    let dir = app.stop().await;
    let app = spawn_with(Options {
        data_dir: Some(dir),
        ..Options::default()
    })
    .await;
    let board = app
        .eventually("/leaderboard/players/player_hc?window=seasonal", |r| {
            r.status == 200
        })
        .await;
    assert_eq!(board.body["score"], 20_101);
    assert_eq!(
        app.get("/players/player_hc/progress").await.body["xp"],
        20_101
    );
}

#[api_test]
async fn a_release_after_a_reset_leaves_the_reset_board_as_a_rebuild_does() {
    let app = spawn_with_config(with_admin).await;
    for (id, xp) in [("rr-1", 20_000), ("rr-2", 100)] {
        assert_eq!(
            app.post(&progression(id, "player_rr", xp)).await.status,
            202
        );
    }
    flags_of(&app, "player_rr", 1).await;
    // rr-2 on the daily board: the reset below comes after both events.
    app.eventually("/leaderboard/players/player_rr?window=daily", |r| {
        r.body["score"] == 100
    })
    .await;
    let r = admin_post(&app, "/admin/leaderboards/daily/reset").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let on_daily = "/leaderboard/players/player_rr?window=daily";
    assert_eq!(app.get(on_daily).await.status, 404);
    // Released after the reset, the event counts where the board was not reset and, like
    // every event from before the reset, not on the reset daily board.
    let r = admin_post(&app, "/admin/flags/rr-1/release").await;
    assert_eq!(r.status, 200, "{}", r.body);
    app.eventually("/leaderboard/players/player_rr?window=seasonal", |r| {
        r.body["score"] == 20_100
    })
    .await;
    let daily = app.get(on_daily).await;
    assert_eq!(daily.status, 404, "{}", daily.body);
    // A rebuild from the store agrees with the live boards.
    let dir = app.stop().await;
    let app = spawn_with(Options {
        data_dir: Some(dir),
        ..Options::default()
    })
    .await;
    let seasonal = app
        .eventually("/leaderboard/players/player_rr?window=seasonal", |r| {
            r.status == 200
        })
        .await;
    assert_eq!(seasonal.body["score"], 20_100);
    let daily = app.get(on_daily).await;
    assert_eq!(daily.status, 404, "{}", daily.body);
}

#[api_test]
async fn a_rejected_event_is_never_applied() {
    let app = spawn_with_config(with_admin).await;
    app.post(&boss_kill("rj-1", "player_rj", "dragon", 500_000))
        .await;
    app.post(&progression("rj-2", "player_rj", 10)).await;
    flags_of(&app, "player_rj", 1).await;
    let r = admin_post(&app, "/admin/flags/rj-1/reject").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["flag"]["status"], "rejected");
    assert_eq!(
        admin_post(&app, "/admin/flags/rj-1/release").await.status,
        409
    );
    app.wait_for_xp("player_rj", 10).await;
    app.assert_settled_at("player_rj", 10).await;
    assert_eq!(
        app.get("/players/player_rj/progress").await.body["bossKills"],
        json!({})
    );
    let audit = app
        .client
        .get_with(
            "/admin/audit",
            &[("Authorization", &format!("Bearer {TOKEN}"))],
        )
        .await
        .unwrap()
        .body;
    assert_eq!(audit["entries"][0]["action"], "reject");
    assert_eq!(audit["entries"][0]["actor"], "reviewer");
    assert_eq!(
        admin_post(&app, "/admin/flags/nope-1/release").await.status,
        404
    );
}

#[api_test]
async fn flag_mode_applies_the_event_and_only_records_the_flag() {
    let app =
        spawn_with_config(|c| c.anomaly_action = liveops_server::config::AnomalyAction::Flag).await;
    app.post(&progression("fm-1", "player_fm", 20_000)).await;
    app.wait_for_xp("player_fm", 20_000).await;
    let flags = flags_of(&app, "player_fm", 1).await;
    assert_eq!(flags["flags"][0]["status"], "flagged");
}

#[api_test]
async fn a_jump_far_above_the_players_own_baseline_is_flagged_with_its_reason() {
    let app = spawn_app().await;
    for i in 0..12 {
        let xp = 90 + (i * 7) % 25;
        app.post(&progression(&format!("zb-{i}"), "player_z", xp))
            .await;
    }
    app.post(&progression("zb-jump", "player_z", 9_000)).await;
    let flags = flags_of(&app, "player_z", 1).await;
    let flag = &flags["flags"][0];
    assert_eq!(flag["eventId"], "zb-jump");
    assert_eq!(flag["metric"], "deltaXp:quest_completion");
    let reason = flag["reason"].as_str().unwrap();
    assert!(
        reason.contains("sigma above this player's mean"),
        "{reason}"
    );
    let player = app.get("/fairness/players/player_z").await.body;
    assert_eq!(player["status"], "ok");
    assert_eq!(
        player["baselines"]["deltaXp:quest_completion"]["n"], 12,
        "the flagged event did not move the baseline"
    );
    assert_eq!(player["flagCount"], 1);
}

#[api_test]
async fn three_flags_within_ten_minutes_block_the_player_for_block_sec() {
    let app = spawn_with(Options {
        clock: Some(liveops_domain::ManualClock::new(at(2026, 11, 22, 10))),
        ..Options::default()
    })
    .await;
    for i in 0..3 {
        assert_eq!(
            app.post(&progression(&format!("bk-{i}"), "player_bk", 50_000))
                .await
                .status,
            202
        );
    }
    app.eventually("/fairness/players/player_bk", |r| {
        r.body["status"] == "blocked"
    })
    .await;
    let r = app.post(&progression("bk-3", "player_bk", 1)).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.error_code(), Some("player_blocked"));
    app.clock().advance(chrono::Duration::seconds(61));
    assert_eq!(
        app.post(&progression("bk-4", "player_bk", 1)).await.status,
        202
    );
    let quarantined = app
        .get("/fairness/flags?playerId=player_bk&status=quarantined")
        .await
        .body;
    assert_eq!(quarantined["total"], 3);
    let bad = app.get("/fairness/flags?status=maybe").await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["error"]["field"], "status");
}

#[api_test]
async fn a_fresh_players_absurd_first_event_is_judged_against_the_population() {
    let app = spawn_app().await;
    let mut events = Vec::new();
    for p in 0..25 {
        for i in 0..10 {
            let xp = 80 + ((p * 13 + i * 7) % 45);
            events.push(progression(
                &format!("pop-{p}-{i}"),
                &format!("pop_player_{p}"),
                xp,
            ));
        }
    }
    for chunk in events.chunks(250) {
        let r = app.client.post_batch(chunk).await.unwrap();
        assert_eq!(r.status, 200);
    }
    app.eventually("/leaderboard?window=daily", |r| r.body["total"] == 25)
        .await;
    app.post(&progression("fresh-1", "fresh_cheater", 5_000))
        .await;
    let flags = flags_of(&app, "fresh_cheater", 1).await;
    assert_eq!(flags["flags"][0]["rule"], "population_z", "{flags}");
    assert!(
        flags["flags"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("typical"),
        "{flags}"
    );
    // An honest newcomer near the typical value passes.
    app.post(&progression("fresh-2", "fresh_honest", 140)).await;
    app.wait_for_xp("fresh_honest", 140).await;
    assert_eq!(
        app.get("/fairness/flags?playerId=fresh_honest").await.body["total"],
        0
    );
}

#[api_test]
async fn flag_paging_and_player_ids_are_checked_and_the_page_is_echoed() {
    let app = spawn_app().await;
    for (path, field) in [
        ("/fairness/flags?limit=501", "limit"),
        ("/fairness/flags?offset=-1", "offset"),
        ("/fairness/flags?playerId=a%20b", "playerId"),
        ("/fairness/players/a%20b", "playerId"),
    ] {
        let r = app.get(path).await;
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        assert_eq!(r.error_code(), Some("invalid_request"), "{path}");
        assert_eq!(r.body["error"]["field"], field, "{path}");
    }
    let page = app.get("/fairness/flags").await.body;
    assert_eq!(
        page,
        json!({"total": 0, "limit": 50, "offset": 0, "flags": []})
    );
    let page = app.get("/fairness/flags?limit=7&offset=3").await.body;
    assert_eq!(
        (page["limit"].clone(), page["offset"].clone()),
        (json!(7), json!(3))
    );
}
