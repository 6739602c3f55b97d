//! `docs/api.md` operations endpoints.

use crate::helpers::*;

#[api_test]
async fn health_and_readiness_answer() {
    let app = spawn_app().await;
    let r = app.get("/healthz").await;
    assert_eq!((r.status, &r.body["status"]), (200, &"ok".into()));
    let r = app.get("/readyz").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["status"], "ready");
    assert_eq!(r.body["checks"]["store"], "ok");
}

#[api_test]
async fn a_fresh_server_lists_every_metric_with_help_and_its_known_series() {
    use liveops_server::config::Role;
    use liveops_server::ops::catalog::{known_series, METRICS};

    let app = spawn_app().await;
    let text = app.get("/metrics").await.text;
    for m in METRICS {
        assert!(
            text.contains(&format!("# HELP {} {}", m.name, m.help)),
            "/metrics has no help for {}:\n{text}",
            m.name
        );
        // Other tests of this binary share the process's recorder, so the values may have
        // moved; the series are there all the same (the unit tests of `ops::catalog` check
        // that they start at zero).
        for labels in known_series(m.name, Role::All) {
            let name = match m.kind {
                liveops_server::ops::catalog::Kind::Histogram => format!("{}_count", m.name),
                _ => m.name.to_string(),
            };
            let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
            let series = if labels.is_empty() {
                format!("{name} ")
            } else {
                format!("{name}{{{}}} ", labels.join(","))
            };
            assert!(
                text.lines().any(|l| l.starts_with(&series)),
                "/metrics lacks the series {series}:\n{text}"
            );
        }
    }
    // The process, read at the scrape.
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("/metrics lacks {name}:\n{text}"))
    };
    assert!(value("process_resident_memory_bytes") > 0.0);
    assert!(value("memory_usage_bytes") > 0.0);
    assert!(value("process_cpu_seconds_total") >= 0.0);
    assert!(value("process_open_fds") > 0.0);
    assert!((0.0..=100.0 * 512.0).contains(&value("cpu_usage_percent")));
    assert!(text.contains("# HELP process_cpu_seconds_total "));
}

#[api_test]
async fn metrics_expose_the_spec_names() {
    let app = spawn_app().await;
    app.post(&progression("m-1", "player_m", 5)).await;
    app.wait_for_xp("player_m", 5).await;
    app.eventually("/leaderboard?window=daily", |r| r.body["total"] == 1)
        .await;
    let text = app.get("/metrics").await.text;
    for name in [
        "http_requests_total",
        "http_requests_duration_seconds",
        "events_processed_total",
        "leaderboard_updates_total",
        "pipeline_lag_events",
        "database_connections_active",
        "redis_operations_total",
    ] {
        assert!(text.contains(name), "/metrics lacks {name}");
    }
}

#[api_test]
async fn openapi_document_lists_the_endpoints() {
    let app = spawn_app().await;
    let doc = app.get("/openapi.json").await.body;
    for path in [
        "/events",
        "/events/batch",
        "/sessions",
        "/players/{playerId}/progress",
        "/rewards/claim",
        "/leaderboard",
        "/fairness/flags",
        "/admin/flags/{eventId}/release",
        "/admin/players/{playerId}/erase",
        "/healthz",
    ] {
        assert!(doc["paths"][path].is_object(), "openapi lacks {path}");
    }
}

#[api_test]
async fn unknown_routes_are_404() {
    let app = spawn_app().await;
    assert_eq!(app.get("/nope").await.status, 404);
}

#[api_test]
async fn every_answer_carries_a_trace_id_taken_from_traceparent_when_sent() {
    let app = spawn_app().await;
    let r = app.get("/healthz").await;
    let generated = r.header("x-trace-id").expect("X-Trace-Id").to_string();
    assert_eq!(generated.len(), 32);
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let r = app
        .client
        .get_with("/healthz", &[("traceparent", tp)])
        .await
        .unwrap();
    assert_eq!(
        r.header("x-trace-id"),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
}

#[api_test]
async fn http_metrics_label_route_templates_and_fold_invented_methods() {
    let app = spawn_app().await;
    assert_eq!(app.get("/players/nobody_here/progress").await.status, 404);
    let brew = reqwest::Method::from_bytes(b"BREW").expect("a method token");
    let r = reqwest::Client::new()
        .request(brew, app.client.url("/healthz"))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 405);
    let text = app.get("/metrics").await.text;
    let series = |needle: &str| {
        text.lines()
            .any(|l| l.starts_with("http_requests_total{") && l.contains(needle))
    };
    assert!(
        text.lines().any(|l| l.starts_with(
            r#"http_requests_total{method="GET",path="/players/{player_id}/progress",status="404",service="all"}"#
        )),
        "the route template, not the player, labels a request, and the role is its service:\n{text}"
    );
    assert!(
        series(r#"method="other""#),
        "an invented method is counted as other:\n{text}"
    );
    assert!(
        !text.contains("BREW"),
        "an invented method must not become a label"
    );
}
