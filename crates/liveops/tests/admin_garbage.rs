//! Garbage against the newer surfaces (guest sessions, admin, fairness), with and without the
//! admin token: no answer is 5xx, every error is the documented JSON, the server stays healthy.

mod common;

use common::Server;
use liveops_client::Method;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const TOKEN: &str = "admin-token-for-garbage-0123456789";

#[tokio::test]
async fn garbage_on_sessions_admin_and_fairness_routes_never_gets_5xx() {
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), logs.path(), &[("ADMIN_TOKEN", TOKEN)]).await;
    let mut rng = StdRng::seed_from_u64(7);
    let paths = [
        "/sessions",
        "/admin/players/{}/block",
        "/admin/players/{}/erase",
        "/admin/flags/{}/release",
        "/admin/flags/{}/reject",
        "/admin/leaderboards/{}/reset",
        "/admin/audit?limit={}",
        "/admin/failed-events?limit={}",
        "/admin/blocks",
        "/fairness/players/{}",
        "/fairness/flags?status={}&playerId={}&limit={}&offset={}",
    ];
    let junk = [
        "",
        "a",
        "%00",
        "%ff%fe",
        "..%2F..",
        "-1",
        "99999999999999999999",
        "daily",
        "player_1",
        "null",
        "%7B%7D",
    ];
    let long = "x".repeat(300);
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"{".to_vec(),
        b"[]".to_vec(),
        b"null".to_vec(),
        br#"{"playerId": 5}"#.to_vec(),
        br#"{"durationSec": -5}"#.to_vec(),
        br#"{"durationSec": 1e400}"#.to_vec(),
        format!(r#"{{"reason": "{}"}}"#, "x".repeat(5000)).into_bytes(),
        (0..50).map(|_| rng.gen::<u8>()).collect(),
        br#"{"playerId":"ok_player"}"#.to_vec(),
        br#"{"durationSec": 10, "extra": 1}"#.to_vec(),
    ];
    let auth = format!("Bearer {TOKEN}");
    let mut failures = Vec::new();
    for i in 0..400 {
        let template = paths[rng.gen_range(0..paths.len())];
        let mut path = String::new();
        for (n, part) in template.split("{}").enumerate() {
            if n > 0 {
                path.push_str(if rng.gen_bool(0.1) {
                    long.as_str()
                } else {
                    junk[rng.gen_range(0..junk.len())]
                });
            }
            path.push_str(part);
        }
        let method = [Method::GET, Method::POST, Method::DELETE][rng.gen_range(0..3)].clone();
        let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
        if rng.gen_bool(0.7) {
            headers.push(("Authorization".to_string(), auth.clone()));
        }
        let body = (method != Method::GET).then(|| bodies[rng.gen_range(0..bodies.len())].clone());
        let r = match server
            .client
            .send(method.clone(), &path, body, &headers)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("#{i} {method} {path}: transport error {e}"));
                continue;
            }
        };
        if r.status >= 500 {
            failures.push(format!("#{i} {method} {path}: {} {}", r.status, r.text));
        } else if r.status >= 400 && r.error_code().is_none() {
            failures.push(format!(
                "#{i} {method} {path}: {} without a JSON error: {}",
                r.status, r.text
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} bad answers:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(server.client.get("/healthz").await.unwrap().status, 200);
}
