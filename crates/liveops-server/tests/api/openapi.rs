//! `/openapi.json` is the real contract: every route the server answers is in the document, and
//! real answers of every operation (its successes and the common errors: 400, 401, 403, 404,
//! 409, 413, 415, 429 where a request can provoke them) match the status and the schema the
//! document declares for them. The schemas are checked with `jsonschema`, the document's
//! `components` embedded so that `#/components/schemas/...` references resolve.
//!
//! The routes come from the server's source (every `.route("...", ...)` of the crate), so a
//! route added without an OpenAPI path fails here; pages and assets are not part of the JSON
//! API and are listed in [`NOT_IN_THE_DOCUMENT`].

use std::collections::BTreeSet;
use std::time::Duration;

use liveops_client::ApiResponse;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

const TOKEN: &str = "openapi-admin-token-0123456789";

/// Routes served outside the JSON API: the web pages, their assets and the document itself.
const NOT_IN_THE_DOCUMENT: [&str; 5] = ["/", "/play", "/docs", "/assets/{}", "/openapi.json"];

/// The document of a running app, and what the test saw of it.
struct Contract {
    doc: Value,
    /// (method, path template, status) of every answer checked.
    seen: BTreeSet<(String, String, u16)>,
    failures: Vec<String>,
}

impl Contract {
    async fn load(app: &TestApp) -> Contract {
        let r = app.get("/openapi.json").await;
        assert_eq!(r.status, 200);
        Contract {
            doc: r.body,
            seen: BTreeSet::new(),
            failures: Vec::new(),
        }
    }

    /// The operations of the document: (METHOD, path template).
    fn operations(&self) -> BTreeSet<(String, String)> {
        let mut ops = BTreeSet::new();
        if let Some(paths) = self.doc["paths"].as_object() {
            for (path, item) in paths {
                for method in ["get", "post", "put", "delete", "patch"] {
                    if item.get(method).is_some() {
                        ops.insert((method.to_uppercase(), path.clone()));
                    }
                }
            }
        }
        ops
    }

    /// Checks one real answer of `method template` against the document; a mismatch is kept
    /// and reported at the end with all the others.
    fn check(&mut self, method: &Method, template: &str, r: &ApiResponse, expected: u16) {
        let what = format!("{method} {template} -> {}", r.status);
        self.seen
            .insert((method.to_string(), template.to_string(), r.status));
        if r.status != expected {
            self.failures.push(format!(
                "{what}: expected {expected} from this request; body {}",
                r.text.chars().take(300).collect::<String>()
            ));
            return;
        }
        let content_type = r
            .header("content-type")
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        let body = if content_type == "application/json" {
            match serde_json::from_str::<Value>(&r.text) {
                Ok(v) => Some(v),
                Err(e) => {
                    self.failures
                        .push(format!("{what}: the body is not JSON ({e}): {}", r.text));
                    return;
                }
            }
        } else {
            None
        };
        if let Err(e) = self.conforms(method, template, r.status, &content_type, body.as_ref()) {
            self.failures.push(format!("{what}: {e}"));
        }
    }

    /// Whether an answer with this status, content type and (JSON) body is what the document
    /// says the operation answers.
    fn conforms(
        &self,
        method: &Method,
        template: &str,
        status: u16,
        content_type: &str,
        body: Option<&Value>,
    ) -> Result<(), String> {
        let op = &self.doc["paths"][template][method.as_str().to_lowercase()];
        if !op.is_object() {
            return Err("the operation is not in the document".into());
        }
        let responses = &op["responses"];
        let class = format!("{}XX", status / 100);
        let declared = [status.to_string(), class, "default".to_string()]
            .into_iter()
            .map(|k| &responses[k.as_str()])
            .find(|v| v.is_object())
            .ok_or_else(|| "the status is not documented".to_string())?;
        let declared = self.resolve(declared);
        let empty = body.is_none() && content_type.is_empty();
        if empty {
            return Ok(());
        }
        let media = &declared["content"][content_type];
        if !media.is_object() {
            let documented: Vec<&String> = declared["content"]
                .as_object()
                .map(|c| c.keys().collect())
                .unwrap_or_default();
            return Err(format!(
                "the document declares no {content_type} body for it (declared: {documented:?})"
            ));
        }
        let Some(body) = body else {
            return Ok(()); // Not JSON: the media type is what can be checked.
        };
        let schema = &media["schema"];
        if !schema.is_object() {
            return Err("the document declares no schema for its JSON body".into());
        }
        self.validate(schema, body)
    }

    /// A `$ref` to `#/components/responses/...` followed to its target.
    fn resolve<'a>(&'a self, v: &'a Value) -> &'a Value {
        match v["$ref"].as_str() {
            Some(r) => r
                .strip_prefix("#/")
                .map(|p| p.split('/').fold(&self.doc, |at, key| &at[key]))
                .unwrap_or(v),
            None => v,
        }
    }

    /// Validates `body` against `schema`, with the document's components beside it so that
    /// `#/components/schemas/...` resolves.
    fn validate(&self, schema: &Value, body: &Value) -> Result<(), String> {
        let mut root = schema.clone();
        if let Some(o) = root.as_object_mut() {
            o.insert("components".into(), self.doc["components"].clone());
        }
        let validator =
            jsonschema::draft202012::new(&root).map_err(|e| format!("unusable schema: {e}"))?;
        let errors: Vec<String> = validator
            .iter_errors(body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "the body does not match its schema: {}; body {}",
                errors.join("; "),
                body.to_string().chars().take(400).collect::<String>()
            ))
        }
    }

    /// Fails with every mismatch seen, every operation of the document the test did not
    /// exercise, and every operation without a checked success.
    fn finish(mut self) {
        let operations = self.operations();
        for (method, path) in &operations {
            let answers: Vec<u16> = self
                .seen
                .iter()
                .filter(|(m, p, _)| m == method && p == path)
                .map(|(_, _, s)| *s)
                .collect();
            if answers.is_empty() {
                self.failures
                    .push(format!("{method} {path}: not exercised by this test"));
            } else if !answers.iter().any(|s| (200..300).contains(s)) {
                self.failures
                    .push(format!("{method} {path}: no success checked ({answers:?})"));
            }
        }
        for (method, path, _) in &self.seen {
            if !operations.contains(&(method.clone(), path.clone())) {
                self.failures.push(format!(
                    "{method} {path}: answered by the server, missing from the document"
                ));
            }
        }
        self.failures.sort();
        self.failures.dedup();
        assert!(
            self.failures.is_empty(),
            "{} answers do not match /openapi.json:\n- {}",
            self.failures.len(),
            self.failures.join("\n- ")
        );
    }
}

/// One app and its contract, with the requests of the test.
struct Probe<'a> {
    app: &'a TestApp,
    contract: &'a mut Contract,
}

impl Probe<'_> {
    async fn send(
        &mut self,
        method: Method,
        template: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
        expected: u16,
    ) -> ApiResponse {
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let r = self
            .app
            .client
            .send(method.clone(), url, body, &headers)
            .await
            .expect("request");
        self.contract.check(&method, template, &r, expected);
        r
    }

    async fn get(&mut self, template: &str, url: &str, expected: u16) -> ApiResponse {
        self.send(Method::GET, template, url, &[], None, expected)
            .await
    }

    async fn admin(
        &mut self,
        method: Method,
        template: &str,
        url: &str,
        body: Option<Value>,
        expected: u16,
    ) -> ApiResponse {
        let auth = format!("Bearer {TOKEN}");
        let body = body.map(|b| serde_json::to_vec(&b).unwrap());
        let mut headers = vec![("Authorization", auth.as_str()), ("X-Operator", "openapi")];
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        self.send(method, template, url, &headers, body, expected)
            .await
    }

    /// A `POST` signed with the test secret, as a game server sends it.
    async fn signed(
        &mut self,
        template: &str,
        url: &str,
        body: &[u8],
        extra: &[(&str, &str)],
        expected: u16,
    ) -> ApiResponse {
        let signature = self.app.client.sign(body);
        let mut headers: Vec<(&str, &str)> = vec![("Content-Type", "application/json")];
        headers.extend(signature.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        headers.extend_from_slice(extra);
        self.send(
            Method::POST,
            template,
            url,
            &headers,
            Some(body.to_vec()),
            expected,
        )
        .await
    }

    /// The first event of an SSE stream, checked like any answer: status, media type, and the
    /// event's JSON `data` against the schema declared for `text/event-stream`, if any.
    async fn stream(&mut self, template: &str, url: &str) {
        let resp = reqwest::Client::new()
            .get(self.app.client.url(url))
            .send()
            .await
            .expect("stream request");
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        self.contract
            .seen
            .insert(("GET".into(), template.into(), status));
        let what = format!("GET {template} -> {status}");
        if status != 200 || !content_type.starts_with("text/event-stream") {
            self.contract.failures.push(format!(
                "{what}: expected a 200 event stream, got {content_type}"
            ));
            return;
        }
        let mut resp = resp;
        let mut text = String::new();
        let read = tokio::time::timeout(Duration::from_secs(5), async {
            while !text.contains("\n\n") {
                match resp.chunk().await {
                    Ok(Some(chunk)) => text.push_str(&String::from_utf8_lossy(&chunk)),
                    _ => break,
                }
            }
        })
        .await;
        if read.is_err() {
            self.contract
                .failures
                .push(format!("{what}: no event within 5 s"));
            return;
        }
        let data: String = text
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(str::trim_start)
            .collect();
        let body: Value = serde_json::from_str(&data).unwrap_or(Value::String(data));
        let declared = &self.contract.doc["paths"][template]["get"]["responses"]["200"];
        let media = &declared["content"]["text/event-stream"];
        if !media.is_object() {
            self.contract.failures.push(format!(
                "{what}: the document declares no text/event-stream body for it"
            ));
        } else if media["schema"].is_object() {
            let schema = media["schema"].clone();
            if let Err(e) = self.contract.validate(&schema, &body) {
                self.contract
                    .failures
                    .push(format!("{what} (first event's data): {e}"));
            }
        }
    }
}

/// The routes of the router, from the crate's source: `.route("<path>", <methods>)` with the
/// path's parameters written `{}` (the document names them in camelCase, the router in
/// snake_case).
fn routes_in_source() -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    let mut dirs = vec![std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src"
    ))];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("source dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("source");
            // A file's unit tests build routers of their own.
            let text = text.split("#[cfg(test)]").next().unwrap_or_default();
            for (at, _) in text.match_indices(".route(") {
                let rest = &text[at + ".route(".len()..];
                let Some(quoted) = rest.trim_start().strip_prefix('"') else {
                    continue;
                };
                let Some(end) = quoted.find('"') else {
                    continue;
                };
                let route = template_shape(&quoted[..end]);
                // The method router: up to the parenthesis that closes `.route(`.
                let mut depth = 1;
                let args: String = quoted[end + 1..]
                    .chars()
                    .take_while(|c| {
                        match c {
                            '(' => depth += 1,
                            ')' => depth -= 1,
                            _ => {}
                        }
                        depth > 0
                    })
                    .collect();
                for method in ["get", "post", "put", "delete", "patch"] {
                    let called = args.match_indices(&format!("{method}(")).any(|(i, _)| {
                        i == 0
                            || !args.as_bytes()[i - 1].is_ascii_alphanumeric()
                                && args.as_bytes()[i - 1] != b'_'
                    });
                    if called {
                        routes.insert((method.to_uppercase(), route.clone()));
                    }
                }
            }
        }
    }
    routes
}

/// `/players/{player_id}/progress` and `/players/{playerId}/progress` alike as
/// `/players/{}/progress`.
fn template_shape(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            _ if in_param => {}
            _ => out.push(c),
        }
    }
    out
}

#[api_test(not_on_engines = "the document and the router are the same whatever the backends")]
async fn every_route_of_the_router_is_in_the_document() {
    let app = spawn_app().await;
    let contract = Contract::load(&app).await;
    let documented: BTreeSet<(String, String)> = contract
        .operations()
        .into_iter()
        .map(|(m, p)| (m, template_shape(&p)))
        .collect();
    let routes = routes_in_source();
    assert!(
        routes.contains(&("POST".into(), "/events".into()))
            && routes.contains(&("DELETE".into(), "/admin/players/{}/block".into())),
        "the scan of the source finds the routes: {routes:?}"
    );
    let missing: Vec<String> = routes
        .iter()
        .filter(|(_, p)| !NOT_IN_THE_DOCUMENT.contains(&p.as_str()))
        .filter(|r| !documented.contains(r))
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    assert!(
        missing.is_empty(),
        "routes missing from /openapi.json: {missing:?}"
    );
    let stale: Vec<String> = documented
        .iter()
        .filter(|r| !routes.contains(r))
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    assert!(
        stale.is_empty(),
        "documented operations no route serves: {stale:?}"
    );
}

#[api_test(
    not_on_engines = "answer shapes do not depend on the backends; the engines run every other API test"
)]
async fn real_answers_of_every_endpoint_match_the_document() {
    let app = spawn_with_config(|c| {
        c.admin_token = Some(liveops_server::config::Secret::new(TOKEN));
    })
    .await;
    let mut contract = Contract::load(&app).await;
    exercise_the_api(&app, &mut contract).await;

    // Refusals a default test app does not reach: the per-IP limits, and switched-off features.
    let limited = spawn_with_config(|c| {
        c.rate_limit_max = 1;
        c.session_issue_per_minute = 1;
    })
    .await;
    let mut p = Probe {
        app: &limited,
        contract: &mut contract,
    };
    let e = serde_json::to_vec(&progression("rl-1", "player_rl", 5)).unwrap();
    p.signed("/events", "/events", &e, &[], 202).await;
    let e = serde_json::to_vec(&progression("rl-2", "player_rl", 5)).unwrap();
    p.signed("/events", "/events", &e, &[], 429).await;
    let batch =
        serde_json::to_vec(&json!({"events": [progression("rl-3", "player_rl", 5)]})).unwrap();
    p.signed("/events/batch", "/events/batch", &batch, &[], 429)
        .await;
    let claim =
        serde_json::to_vec(&json!({"playerId": "player_rl", "rewardId": "lvl2_gold_100"})).unwrap();
    p.signed("/rewards/claim", "/rewards/claim", &claim, &[], 429)
        .await;
    let json_ct = [("Content-Type", "application/json")];
    p.send(
        Method::POST,
        "/sessions",
        "/sessions",
        &json_ct,
        Some(b"{}".to_vec()),
        200,
    )
    .await;
    p.send(
        Method::POST,
        "/sessions",
        "/sessions",
        &json_ct,
        Some(b"{}".to_vec()),
        429,
    )
    .await;

    let off = spawn_with_config(|c| {
        c.metrics_enabled = false;
        c.guest_sessions = false;
    })
    .await;
    let mut p = Probe {
        app: &off,
        contract: &mut contract,
    };
    p.get("/metrics", "/metrics", 404).await;
    p.send(
        Method::POST,
        "/sessions",
        "/sessions",
        &json_ct,
        Some(b"{}".to_vec()),
        404,
    )
    .await;
    p.get("/admin/blocks", "/admin/blocks", 401).await;

    contract.finish();
}

/// Successes and common errors of every operation, on an app with the admin API on.
async fn exercise_the_api(app: &TestApp, contract: &mut Contract) {
    let mut p = Probe { app, contract };
    let to_vec = |v: &Value| serde_json::to_vec(v).unwrap();

    // Operations.
    p.get("/healthz", "/healthz", 200).await;
    p.get("/readyz", "/readyz", 200).await;
    p.get("/metrics", "/metrics", 200).await;

    // Ingest: accepted, repeated, refused.
    let first = to_vec(&progression("oa-1", "player_oa", 1000));
    p.signed("/events", "/events", &first, &[], 202).await;
    p.signed("/events", "/events", &first, &[], 208).await;
    p.signed("/events", "/events", b"{not json", &[], 400).await;
    let invalid = to_vec(&json!({"eventId": "oa-x", "type": "progression", "ts": 1_700_000_000}));
    p.signed("/events", "/events", &invalid, &[], 400).await;
    p.send(
        Method::POST,
        "/events",
        "/events",
        &[("Content-Type", "application/json")],
        Some(first.clone()),
        401,
    )
    .await;
    let keyed = to_vec(&progression("oa-2", "player_oa", 5));
    let other = to_vec(&progression("oa-3", "player_oa", 6));
    let key = [("Idempotency-Key", "openapi-key-1")];
    p.signed("/events", "/events", &keyed, &key, 202).await;
    p.signed("/events", "/events", &other, &key, 409).await;
    let signature = app.client.sign(&keyed);
    let mut text_plain: Vec<(&str, &str)> = vec![("Content-Type", "text/plain")];
    text_plain.extend(signature.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    p.send(
        Method::POST,
        "/events",
        "/events",
        &text_plain,
        Some(keyed.clone()),
        415,
    )
    .await;
    let over_event_limit = vec![b' '; 65 * 1024];
    p.signed("/events", "/events", &over_event_limit, &[], 413)
        .await;

    // Batches.
    let batch = to_vec(&json!({"events": [
        progression("oa-b1", "player_ob", 5),
        json!({"eventId": "oa-b2", "type": "progression"}),
    ]}));
    p.signed("/events/batch", "/events/batch", &batch, &[], 200)
        .await;
    p.signed("/events/batch", "/events/batch", b"{}", &[], 400)
        .await;
    p.send(
        Method::POST,
        "/events/batch",
        "/events/batch",
        &[("Content-Type", "application/json")],
        Some(batch.clone()),
        401,
    )
    .await;
    let over_batch_limit = vec![b' '; 1024 * 1024 + 10];
    p.signed(
        "/events/batch",
        "/events/batch",
        &over_batch_limit,
        &[],
        413,
    )
    .await;

    // Guest sessions.
    let json_ct = [("Content-Type", "application/json")];
    p.send(
        Method::POST,
        "/sessions",
        "/sessions",
        &json_ct,
        Some(b"{}".to_vec()),
        200,
    )
    .await;
    let bad_player = to_vec(&json!({"playerId": "no spaces allowed"}));
    p.signed("/sessions", "/sessions", &bad_player, &[], 400)
        .await;

    // Progression: wait for the pipeline, then read, claim and verify.
    app.wait_for_xp("player_oa", 1005).await;
    let progress = "/players/{playerId}/progress";
    p.get(progress, "/players/player_oa/progress", 200).await;
    p.get(progress, "/players/nobody_here/progress", 404).await;
    p.get(progress, "/players/x/progress", 400).await;
    let rewards = "/players/{playerId}/rewards";
    p.get(rewards, "/players/player_oa/rewards", 200).await;
    p.get(rewards, "/players/nobody_here/rewards", 404).await;
    p.get(rewards, "/players/x/rewards", 400).await;
    let claim = to_vec(&json!({"playerId": "player_oa", "rewardId": "lvl2_gold_100"}));
    let receipt = p
        .signed("/rewards/claim", "/rewards/claim", &claim, &[], 200)
        .await
        .body;
    let unearned = to_vec(&json!({"playerId": "player_oa", "rewardId": "lvl99_gold_100"}));
    p.signed("/rewards/claim", "/rewards/claim", &unearned, &[], 404)
        .await;
    p.signed("/rewards/claim", "/rewards/claim", b"[]", &[], 400)
        .await;
    p.send(
        Method::POST,
        "/rewards/claim",
        "/rewards/claim",
        &json_ct,
        Some(claim.clone()),
        401,
    )
    .await;
    p.send(
        Method::POST,
        "/receipts/verify",
        "/receipts/verify",
        &json_ct,
        Some(to_vec(&receipt)),
        200,
    )
    .await;
    p.send(
        Method::POST,
        "/receipts/verify",
        "/receipts/verify",
        &json_ct,
        Some(b"{\"receiptId\": 1}".to_vec()),
        400,
    )
    .await;

    // Leaderboards.
    app.eventually("/leaderboard?window=daily", |r| r.body["total"] == 2)
        .await;
    p.get("/leaderboard", "/leaderboard?window=daily", 200)
        .await;
    p.get(
        "/leaderboard",
        "/leaderboard?window=daily&players=player_oa",
        200,
    )
    .await;
    p.get("/leaderboard", "/leaderboard?window=hourly", 400)
        .await;
    let player = "/leaderboard/players/{playerId}";
    p.get(
        player,
        "/leaderboard/players/player_oa?window=daily&around=2",
        200,
    )
    .await;
    p.get(player, "/leaderboard/players/nobody_here?window=daily", 404)
        .await;
    p.get(player, "/leaderboard/players/x", 400).await;
    let history = "/leaderboard/history";
    p.get(
        history,
        "/leaderboard/history?window=daily&period=2020-01-01",
        200,
    )
    .await;
    p.get(
        history,
        "/leaderboard/history?window=daily&period=2099-01-01",
        404,
    )
    .await;
    p.get(history, "/leaderboard/history?window=daily", 400)
        .await;
    p.stream("/leaderboard/stream", "/leaderboard/stream?window=daily")
        .await;
    p.get(
        "/leaderboard/stream",
        "/leaderboard/stream?window=hourly",
        400,
    )
    .await;

    // Fairness: a quarantined event (over MAX_DELTA_XP) and a second one, for the admin's
    // release and reject.
    for id in ["oa-q1", "oa-q2"] {
        let over = to_vec(&progression(id, "player_oq", 1_000_000));
        p.signed("/events", "/events", &over, &[], 202).await;
    }
    app.eventually("/fairness/flags?playerId=player_oq", |r| {
        r.body["total"] == 2
    })
    .await;
    let fplayer = "/fairness/players/{playerId}";
    p.get(fplayer, "/fairness/players/player_oq", 200).await;
    p.get(fplayer, "/fairness/players/x", 400).await;
    p.get("/fairness/flags", "/fairness/flags?status=quarantined", 200)
        .await;
    p.get("/fairness/flags", "/fairness/flags?status=bogus", 400)
        .await;

    // Admin: every operation refuses a request without the token, then answers with it.
    let admin_ops: [(Method, &str, &str); 10] = [
        (
            Method::POST,
            "/admin/players/{playerId}/block",
            "/admin/players/player_ob/block",
        ),
        (
            Method::DELETE,
            "/admin/players/{playerId}/block",
            "/admin/players/player_ob/block",
        ),
        (
            Method::POST,
            "/admin/players/{playerId}/erase",
            "/admin/players/player_ob/erase",
        ),
        (Method::GET, "/admin/blocks", "/admin/blocks"),
        (Method::GET, "/admin/failed-events", "/admin/failed-events"),
        (Method::GET, "/admin/audit", "/admin/audit"),
        (
            Method::POST,
            "/admin/leaderboards/rebuild",
            "/admin/leaderboards/rebuild",
        ),
        (
            Method::POST,
            "/admin/leaderboards/{window}/reset",
            "/admin/leaderboards/daily/reset",
        ),
        (
            Method::POST,
            "/admin/flags/{eventId}/release",
            "/admin/flags/oa-q1/release",
        ),
        (
            Method::POST,
            "/admin/flags/{eventId}/reject",
            "/admin/flags/oa-q1/reject",
        ),
    ];
    for (method, template, url) in admin_ops {
        p.send(method, template, url, &[], None, 401).await;
    }
    let block = "/admin/players/{playerId}/block";
    p.admin(
        Method::POST,
        block,
        "/admin/players/player_ob/block",
        Some(json!({"reason": "openapi", "durationSec": 600})),
        200,
    )
    .await;
    let blocked = to_vec(&progression("oa-blocked", "player_ob", 5));
    p.signed("/events", "/events", &blocked, &[], 403).await;
    p.send(
        Method::POST,
        block,
        "/admin/players/player_ob/block",
        &[
            ("Authorization", &format!("Bearer {TOKEN}")),
            ("Content-Type", "application/json"),
        ],
        Some(b"{not json".to_vec()),
        400,
    )
    .await;
    p.admin(Method::GET, "/admin/blocks", "/admin/blocks", None, 200)
        .await;
    p.admin(
        Method::DELETE,
        block,
        "/admin/players/player_ob/block",
        None,
        200,
    )
    .await;
    let failed = "/admin/failed-events";
    p.admin(
        Method::GET,
        failed,
        "/admin/failed-events?limit=5",
        None,
        200,
    )
    .await;
    p.admin(
        Method::GET,
        failed,
        "/admin/failed-events?limit=abc",
        None,
        400,
    )
    .await;
    p.admin(
        Method::GET,
        "/admin/audit",
        "/admin/audit?limit=5",
        None,
        200,
    )
    .await;
    let rebuild = "/admin/leaderboards/rebuild";
    p.admin(Method::POST, rebuild, rebuild, None, 200).await;
    let reset = "/admin/leaderboards/{window}/reset";
    p.admin(
        Method::POST,
        reset,
        "/admin/leaderboards/daily/reset",
        None,
        200,
    )
    .await;
    p.admin(
        Method::POST,
        reset,
        "/admin/leaderboards/hourly/reset",
        None,
        400,
    )
    .await;
    let release = "/admin/flags/{eventId}/release";
    let reject = "/admin/flags/{eventId}/reject";
    p.admin(Method::POST, reject, "/admin/flags/oa-q1/reject", None, 200)
        .await;
    p.admin(
        Method::POST,
        release,
        "/admin/flags/oa-q1/release",
        None,
        409,
    )
    .await;
    p.admin(
        Method::POST,
        release,
        "/admin/flags/oa-q2/release",
        None,
        200,
    )
    .await;
    p.admin(Method::POST, reject, "/admin/flags/oa-q2/reject", None, 409)
        .await;
    p.admin(
        Method::POST,
        release,
        "/admin/flags/no-such-flag/release",
        None,
        404,
    )
    .await;
    p.admin(
        Method::POST,
        reject,
        "/admin/flags/no-such-flag/reject",
        None,
        404,
    )
    .await;
    let erase = "/admin/players/{playerId}/erase";
    p.admin(
        Method::POST,
        erase,
        "/admin/players/player_ob/erase",
        None,
        200,
    )
    .await;
    p.admin(Method::POST, erase, "/admin/players/x/erase", None, 400)
        .await;
}
