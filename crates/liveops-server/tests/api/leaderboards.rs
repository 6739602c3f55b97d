//! `docs/api.md`: ordering, ties, paging, friends, around-me, periods and rollover.

use serde_json::Value;

use crate::helpers::*;

fn ids(body: &Value) -> Vec<(String, i64)> {
    body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["playerId"].as_str().unwrap().to_string(),
                e["score"].as_i64().unwrap(),
            )
        })
        .collect()
}

async fn seed(app: &TestApp, scores: &[(&str, i64)]) {
    for (i, (p, s)) in scores.iter().enumerate() {
        assert_eq!(
            app.post(&progression(&format!("seed-{i}"), p, *s))
                .await
                .status,
            202
        );
    }
    let n = scores.len();
    app.eventually("/leaderboard?window=daily", |r| r.body["total"] == n)
        .await;
}

#[api_test]
async fn ranks_by_score_then_player_id_ascending() {
    let app = spawn_app().await;
    seed(
        &app,
        &[("carol", 50), ("alice", 100), ("bob", 100), ("dave", 10)],
    )
    .await;
    for window in ["daily", "weekly", "seasonal"] {
        let r = app.get(&format!("/leaderboard?window={window}")).await;
        assert_eq!(r.status, 200);
        assert_eq!(
            ids(&r.body),
            vec![
                ("alice".into(), 100),
                ("bob".into(), 100),
                ("carol".into(), 50),
                ("dave".into(), 10)
            ],
            "{window}"
        );
        let ranks: Vec<_> = r.body["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["rank"].as_u64().unwrap())
            .collect();
        assert_eq!(ranks, vec![1, 2, 3, 4]);
        assert_eq!(r.body["window"], window);
        assert!(r.body["nextReset"].is_string() && r.body["updatedAt"].is_string());
    }
}

#[api_test]
async fn score_is_the_xp_gained_in_the_period() {
    let app = spawn_app().await;
    app.post(&progression("s-1", "player_sc", 100)).await;
    app.post(&boss_kill("s-2", "player_sc", "orc", 40)).await;
    app.post(&drop_claimed("s-3", "player_sc", 0.5)).await;
    let r = app
        .eventually("/leaderboard/players/player_sc?window=seasonal", |r| {
            r.status == 200 && r.body["score"] == 190
        })
        .await;
    assert_eq!(r.body["rank"], 1);
}

#[api_test]
async fn paging_with_limit_and_offset_reports_the_total() {
    let app = spawn_app().await;
    let scores: Vec<(String, i64)> = (0..12).map(|i| (format!("pg_{i:02}"), 100 - i)).collect();
    let refs: Vec<(&str, i64)> = scores.iter().map(|(p, s)| (p.as_str(), *s)).collect();
    seed(&app, &refs).await;
    let r = app.get("/leaderboard?window=daily&limit=5&offset=5").await;
    assert_eq!(r.body["total"], 12);
    let page = ids(&r.body);
    assert_eq!(page.len(), 5);
    assert_eq!(page[0].0, "pg_05");
    assert_eq!(r.body["entries"][0]["rank"], 6);
    let r = app.get("/leaderboard?window=daily&limit=5&offset=10").await;
    assert_eq!(ids(&r.body).len(), 2);
    let r = app.get("/leaderboard?window=daily&limit=0").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["field"], "limit");
    let r = app.get("/leaderboard?window=daily&limit=101").await;
    assert_eq!(r.status, 400, "limit is capped at LB_TOPN");
    let r = app.get("/leaderboard?window=hourly").await;
    assert_eq!(r.body["error"]["field"], "window");
}

#[api_test]
async fn players_filter_returns_just_those_players_with_their_ranks() {
    let app = spawn_app().await;
    seed(&app, &[("fra", 30), ("frb", 20), ("frc", 10)]).await;
    let r = app
        .get("/leaderboard?window=weekly&players=frc,fra,nobody")
        .await;
    assert_eq!(r.status, 200);
    let e = r.body["entries"].as_array().unwrap();
    assert_eq!(e.len(), 2);
    assert_eq!(
        (e[0]["playerId"].as_str(), e[0]["rank"].as_u64()),
        (Some("fra"), Some(1))
    );
    assert_eq!(
        (e[1]["playerId"].as_str(), e[1]["rank"].as_u64()),
        (Some("frc"), Some(3))
    );
}

#[api_test]
async fn around_me_returns_neighbours_and_404_without_a_score() {
    let app = spawn_app().await;
    let scores: Vec<(String, i64)> = (0..10)
        .map(|i| (format!("ar_{i}"), 1000 - i * 10))
        .collect();
    let refs: Vec<(&str, i64)> = scores.iter().map(|(p, s)| (p.as_str(), *s)).collect();
    seed(&app, &refs).await;
    let r = app
        .get("/leaderboard/players/ar_5?window=daily&around=2")
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["rank"], 6);
    assert_eq!(r.body["score"], 950);
    let around: Vec<String> = ids(&r.body).into_iter().map(|(p, _)| p).collect();
    assert_eq!(around, vec!["ar_3", "ar_4", "ar_5", "ar_6", "ar_7"]);
    let top = app
        .get("/leaderboard/players/ar_0?window=daily&around=2")
        .await;
    assert_eq!(ids(&top.body).len(), 3, "clamped at the top");
    let r = app
        .get("/leaderboard/players/not_ranked?window=daily")
        .await;
    assert_eq!(r.status, 404);
}

#[api_test]
async fn period_ids_follow_the_calendar() {
    let app = spawn_at(at(2026, 11, 22, 10)).await;
    let daily = app.get("/leaderboard?window=daily").await.body;
    assert_eq!(daily["period"], "2026-11-22");
    assert_eq!(daily["nextReset"], "2026-11-23T00:00:00Z");
    assert_eq!(
        app.get("/leaderboard?window=weekly").await.body["period"],
        "2026-W47"
    );
    assert_eq!(
        app.get("/leaderboard?window=seasonal").await.body["period"],
        "2026-Q4"
    );
    assert_eq!(daily["season"], "2026-Q4");
}

#[api_test]
async fn daily_board_rolls_over_at_midnight_and_the_old_one_is_archived() {
    let app = spawn_at(at(2026, 11, 22, 23)).await;
    seed(&app, &[("night_owl", 70), ("early_bird", 30)]).await;
    // Midnight passes: the new day starts empty, the week and season keep their scores.
    app.clock().advance(chrono::Duration::hours(2));
    let r = app
        .eventually("/leaderboard?window=daily", |r| {
            r.body["period"] == "2026-11-23"
        })
        .await;
    assert_eq!(r.body["total"], 0);
    let s = app.get("/leaderboard?window=seasonal").await.body;
    assert_eq!(s["total"], 2, "{s}");
    app.post(&progression("new-day", "early_bird", 5)).await;
    app.eventually("/leaderboard?window=daily", |r| r.body["total"] == 1)
        .await;
    let history = app
        .eventually("/leaderboard/history?window=daily&period=2026-11-22", |r| {
            r.status == 200
        })
        .await;
    assert_eq!(history.body["total"], 2, "{}", history.body);
    assert_eq!(
        ids(&history.body),
        vec![("night_owl".into(), 70), ("early_bird".into(), 30)]
    );
    let r = app
        .get("/leaderboard/history?window=daily&period=2026-11-23")
        .await;
    assert_eq!(r.status, 404, "the current period is not history yet");
    let r = app
        .get("/leaderboard/history?window=daily&period=yesterday")
        .await;
    assert_eq!(r.status, 400);
}

#[api_test]
async fn boards_are_rebuilt_exactly_after_a_restart() {
    let app = spawn_app().await;
    seed(&app, &[("rb_a", 10), ("rb_b", 20), ("rb_c", 20)]).await;
    let before = app.get("/leaderboard?window=weekly").await.body;
    let dir = app.stop().await;
    let app = spawn_with(Options {
        data_dir: Some(dir),
        ..Options::default()
    })
    .await;
    let after = app
        .eventually("/leaderboard?window=weekly", |r| r.body["total"] == 3)
        .await
        .body;
    assert_eq!(ids(&before), ids(&after));
}

#[api_test(
    not_on_engines = "reads the snapshot files under DATA_DIR/archive; on PostgreSQL snapshots go \
                      to leaderboard_snapshots, which no endpoint reads (the store's contract \
                      suite covers them there)"
)]
async fn running_boards_are_snapshotted_on_snapshot_cron() {
    let app = spawn_with(Options {
        clock: Some(liveops_domain::ManualClock::new(at(2026, 11, 22, 10))),
        configure: Box::new(|c| c.snapshot_cron = Some("30 * * * * *".parse().unwrap())),
        ..Options::default()
    })
    .await;
    seed(&app, &[("snap_a", 40), ("snap_b", 60)]).await;
    app.clock().advance(chrono::Duration::seconds(45));
    let dir = app
        .data_dir
        .path()
        .join("archive/snapshots/daily/2026-11-22");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let file = loop {
        // Only a finished snapshot: the archive writes `<millis>.json.tmp` and renames it.
        if let Some(f) = std::fs::read_dir(&dir).ok().and_then(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|x| x == "json"))
        }) {
            break f;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no snapshot in {}",
            dir.display()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let snap: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    assert_eq!(snap["total"], 2);
    assert_eq!(
        ids(&snap),
        vec![("snap_b".into(), 60), ("snap_a".into(), 40)]
    );
}

#[api_test]
async fn the_openapi_document_describes_the_leaderboard_answer_as_sent() {
    let app = spawn_app().await;
    let doc = app.get("/openapi.json").await.body;
    let responses = &doc["paths"]["/leaderboard"]["get"]["responses"];
    assert_eq!(
        responses["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/BoardPage",
        "{responses}"
    );
    assert_eq!(
        responses["400"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ErrorEnvelope",
        "{responses}"
    );
    let schema = &doc["components"]["schemas"]["BoardPage"];
    let mut documented: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
    documented.sort();
    let answer = app.get("/leaderboard").await.body;
    let mut sent: Vec<&String> = answer.as_object().unwrap().keys().collect();
    sent.sort();
    assert_eq!(documented, sent, "{schema}");
}
