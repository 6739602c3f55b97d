//! Robustness of the HTTP surface (`docs/api.md`): "No input makes the server answer 5xx or
//! crash", and "All errors are JSON: `{"error": {"code", ...}}`".
//!
//! The test runs the real binary and throws several hundred bad requests at it, generated from a
//! fixed seed so a failure reproduces: random bytes, truncated events, JSON of the wrong shape
//! (huge and negative-zero numbers, strings where numbers go, unicode, long strings, deep
//! nesting, NUL bytes), mutated events and batches, bad headers, wrong content types, oversized
//! bodies, and GETs with garbage in the path and the query. Signed bodies reach validation;
//! unsigned ones stop at the signature check. Every answer must be below 500, and every 4xx must
//! be a JSON error with `error.code`. Afterwards the server must still be healthy and still
//! accept and apply a valid event.

mod common;

use std::time::{Duration, Instant};

use common::{Server, SECRET};
use liveops_client::{unix_now, Client, ClientConfig, Method};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SEED: u64 = 0x6a7b_a6e0;
const PLAYER: &str = "garbage_survivor";
const POST_PATHS: [&str; 4] = [
    "/events",
    "/events/batch",
    "/rewards/claim",
    "/receipts/verify",
];

/// One request to throw at the server.
struct Probe {
    /// What it is, for the failure report.
    label: String,
    method: Method,
    path: String,
    body: Option<Vec<u8>>,
    headers: Vec<(String, String)>,
    /// Over a body limit. A server may answer 413 before the body has arrived and close the
    /// connection; a client that is still writing (reqwest does not wait for `100 Continue`)
    /// then sees a reset instead of the answer. Such a probe is resent with
    /// `Expect: 100-continue`, the HTTP way to send a body that may be refused, and that
    /// answer is judged.
    oversized: bool,
}

impl Probe {
    /// A POST with `Content-Type: application/json`, signed or not.
    fn post(label: impl Into<String>, path: &str, body: Vec<u8>, signed: bool) -> Probe {
        let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
        if signed {
            headers.extend(liveops_client::signature_headers(
                SECRET.as_bytes(),
                &body,
                None,
                None,
            ));
        }
        Probe {
            label: format!(
                "{} ({})",
                label.into(),
                if signed { "signed" } else { "unsigned" }
            ),
            method: Method::POST,
            path: path.to_string(),
            body: Some(body),
            headers,
            oversized: false,
        }
    }

    fn oversized(mut self) -> Probe {
        self.oversized = true;
        self
    }

    fn get(label: impl Into<String>, path: impl Into<String>) -> Probe {
        Probe {
            label: label.into(),
            method: Method::GET,
            path: path.into(),
            body: None,
            headers: Vec::new(),
            oversized: false,
        }
    }

    /// How to reproduce it by hand.
    fn describe(&self) -> String {
        let mut s = format!(
            "[{}] {} {}",
            self.label,
            self.method,
            excerpt(self.path.as_bytes(), 300)
        );
        for (k, v) in &self.headers {
            s.push_str(&format!("\n    {k}: {}", excerpt(v.as_bytes(), 100)));
        }
        if let Some(b) = &self.body {
            s.push_str(&format!(
                "\n    body ({} bytes): {}",
                b.len(),
                excerpt(b, 300)
            ));
        }
        s
    }
}

/// The start of `bytes`, escaped, for messages.
fn excerpt(bytes: &[u8], max: usize) -> String {
    let shown = &bytes[..bytes.len().min(max)];
    let text = format!("{:?}", String::from_utf8_lossy(shown));
    if bytes.len() > max {
        format!("{text}... (+{} bytes)", bytes.len() - max)
    } else {
        text
    }
}

fn valid_event(id: &str, player: &str, xp: u64) -> Value {
    json!({
        "eventId": id,
        "type": "progression",
        "playerId": player,
        "ts": unix_now(),
        "payload": {"deltaXp": xp, "activity": "quest_completion"},
    })
}

/// Valid events of every type, as text, to truncate and mutate.
fn valid_bodies() -> Vec<String> {
    vec![
        valid_event("garbage-valid-1", "player_12345", 150).to_string(),
        json!({"type": "boss_kill", "playerId": "player_12345", "ts": 1638360000,
               "payload": {"bossId": "dragon", "tier": 3, "points": 500}})
        .to_string(),
        json!({"type": "drop_claimed", "playerId": "player_12345", "ts": 1638360000,
               "payload": {"dropId": "sword", "weight": 0.25, "source": "chest"}})
        .to_string(),
        json!({"events": [valid_event("garbage-valid-2", "player_12345", 10),
                          valid_event("garbage-valid-3", "player_54321", 20)]})
        .to_string(),
        json!({"playerId": "player_12345", "rewardId": "lvl2_gold_100"}).to_string(),
        json!({"receiptId": "0190-abc", "playerId": "player_12345", "item": "gold_100",
               "sig": "00ff", "timestamp": 1638360000})
        .to_string(),
    ]
}

/// Hand-written JSON texts of the wrong shape or with hostile values.
fn hostile_json() -> Vec<String> {
    let deep_arrays = "[".repeat(10_000);
    let deep_closed = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_objects = format!("{}1{}", "{\"a\":".repeat(5_000), "}".repeat(5_000));
    let long = "x".repeat(60_000);
    let progression = |delta: &str| {
        format!(
            r#"{{"type":"progression","playerId":"player_12345","ts":1638360000,"payload":{{"deltaXp":{delta},"activity":"quest"}}}}"#
        )
    };
    let receipt = |ts: &str| {
        format!(
            r#"{{"receiptId":"r1","playerId":"player_12345","item":"gold_100","sig":"00","timestamp":{ts}}}"#
        )
    };
    let mut v: Vec<String> = [
        "",
        " ",
        "null",
        "true",
        "0",
        "-0",
        "1e400",
        "-1e400",
        "\"str\"",
        "[]",
        "[1,2,3]",
        "{}",
        "[{}]",
        "{\"events\":null}",
        "{\"events\":{}}",
        "{\"events\":\"x\"}",
        "{\"events\":[]}",
        "{\"events\":[null,1,\"a\",[],{}]}",
        "{\"events\":[[[[[[[[]]]]]]]]}",
        "{\"a\":1,\"a\":2}",
        "{\"type\":\"progression\",\"type\":\"boss_kill\"}",
        "{\"player_id\":\"abc\"}",
        "\u{feff}{}",
        "{\"x\":\"\\ud800\"}",
        "{\"x\":\"\\u0000\"}",
        "{\"x\":\"a\u{0}b\"}",
        "{\"x\":1}\u{0}",
        "{\"x\":1} trailing",
        "{\"x\":1}{\"x\":2}",
        "{'x':1}",
        "{x:1}",
        "[1,]",
        "{\"x\":01}",
        "{\"x\":NaN}",
        "{\"x\":Infinity}",
        "{\"x\":.5}",
        "{\"x\":+1}",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for delta in [
        "1e400",
        "-1e400",
        "-0",
        "0",
        "-1",
        "1.5",
        "1e3",
        "\"150\"",
        "null",
        "[]",
        "{}",
        "true",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "18446744073709551615",
        "18446744073709551616",
        "123456789012345678901234567890",
        "1e-400",
        "4.9e-324",
    ] {
        v.push(progression(delta));
    }
    for ts in [
        "-9223372036854775808",
        "9223372036854775807",
        "-1",
        "0",
        "1e400",
        "\"now\"",
        "null",
        "18446744073709551615",
        "-0",
        "1.5",
    ] {
        v.push(receipt(ts));
        v.push(format!(
            r#"{{"type":"progression","playerId":"player_12345","ts":{ts},"payload":{{"deltaXp":5,"activity":"q"}}}}"#
        ));
    }
    for payload in [
        r#"{"bossId":"b","tier":0,"points":1}"#,
        r#"{"bossId":"b","tier":11,"points":1}"#,
        r#"{"bossId":"b","tier":-9223372036854775808,"points":-1}"#,
        r#"{"bossId":"b","tier":3,"points":1e400}"#,
        r#"{"bossId":"","tier":3,"points":18446744073709551616}"#,
        r#"{"bossId":1,"tier":"3","points":"1"}"#,
    ] {
        v.push(format!(
            r#"{{"type":"boss_kill","playerId":"player_12345","ts":1,"payload":{payload}}}"#
        ));
    }
    for payload in [
        r#"{"dropId":"d","weight":0,"source":"s"}"#,
        r#"{"dropId":"d","weight":-0,"source":"s"}"#,
        r#"{"dropId":"d","weight":1e400,"source":"s"}"#,
        r#"{"dropId":"d","weight":1e-400,"source":"s"}"#,
        r#"{"dropId":"d","weight":1.0000000000000002,"source":"s"}"#,
        r#"{"dropId":"d","weight":4.9e-324,"source":"s"}"#,
        r#"{"dropId":"d","weight":"0.5","source":"s"}"#,
    ] {
        v.push(format!(
            r#"{{"type":"drop_claimed","playerId":"player_12345","ts":1,"payload":{payload}}}"#
        ));
    }
    for player in [
        "\"\"",
        "\"ab\"",
        "\"a b c\"",
        "\"игрок_😀\"",
        "\"\\u0000\\u0000\\u0000\"",
        "\"../../etc\"",
        "\"%00%ff\"",
        "1",
        "null",
        "[\"player_1\"]",
    ] {
        v.push(format!(
            r#"{{"type":"progression","playerId":{player},"ts":1,"payload":{{"deltaXp":1,"activity":"q"}}}}"#
        ));
        v.push(format!(
            r#"{{"playerId":{player},"rewardId":"lvl2_gold_100"}}"#
        ));
    }
    v.push(format!(
        r#"{{"type":"progression","playerId":"{}","ts":1,"payload":{{"deltaXp":1,"activity":"q"}}}}"#,
        "p".repeat(20_000)
    ));
    v.push(format!(
        r#"{{"eventId":"{}","type":"progression","playerId":"player_12345","ts":1,"payload":{{"deltaXp":1,"activity":"q"}}}}"#,
        "e".repeat(20_000)
    ));
    v.push(format!(
        r#"{{"type":"progression","playerId":"player_12345","ts":1,"payload":{{"deltaXp":1,"activity":"{long}"}}}}"#
    ));
    v.push(format!(
        r#"{{"playerId":"player_12345","rewardId":"{long}"}}"#
    ));
    v.push(format!(
        r#"{{"receiptId":"{long}","playerId":"p","item":"i","sig":"{long}","timestamp":1}}"#
    ));
    v.push(format!(r#"{{"type":"{long}"}}"#));
    v.push(format!(r#"{{"events":[{}]}}"#, vec!["{}"; 501].join(",")));
    v.push(format!(
        r#"{{"events":[{}]}}"#,
        vec![r#"{"type":"progression","playerId":"ab","ts":1,"payload":{"deltaXp":-1,"activity":"q"}}"#; 500].join(",")
    ));
    v.push(format!(r#"{{"events":{deep_closed}}}"#));
    v.push(format!(r#"{{"events":[{deep_objects}]}}"#));
    v.push(format!(
        r#"{{"type":"progression","playerId":"player_12345","ts":1,"payload":{deep_objects}}}"#
    ));
    v.extend([deep_arrays, deep_closed, deep_objects]);
    v
}

/// A random JSON value as text, including things `serde_json::Value` cannot hold (1e400, -0).
fn random_json(rng: &mut StdRng, depth: u32) -> String {
    const KEYS: [&str; 20] = [
        "eventId",
        "type",
        "playerId",
        "ts",
        "payload",
        "deltaXp",
        "activity",
        "bossId",
        "tier",
        "points",
        "dropId",
        "weight",
        "source",
        "events",
        "rewardId",
        "receiptId",
        "item",
        "sig",
        "timestamp",
        "\u{0}",
    ];
    let pick = if depth == 0 {
        rng.gen_range(0..7)
    } else {
        rng.gen_range(0..9)
    };
    match pick {
        0 => ["null", "true", "false"].choose(rng).unwrap().to_string(),
        1 => rng.gen::<i64>().to_string(),
        2 => [
            "1e400",
            "-0",
            "-0.0",
            "18446744073709551616",
            "1.7976931348623157e308",
            "5e-324",
            "0.1",
            "-1",
            "99999999999999999999999999999999",
        ]
        .choose(rng)
        .unwrap()
        .to_string(),
        3 => rng.gen::<f64>().to_string(),
        4 => serde_json::to_string(&random_string(rng)).unwrap(),
        5 => serde_json::to_string(
            &["progression", "boss_kill", "drop_claimed", "player_12345"]
                .choose(rng)
                .unwrap(),
        )
        .unwrap(),
        6 => format!(
            "\"{}\"",
            ["\\ud800", "\\u0000", "\\udfff\\ud800", "\\\\", "\\/"]
                .choose(rng)
                .unwrap()
        ),
        7 => {
            let n = rng.gen_range(0..5);
            let items: Vec<String> = (0..n).map(|_| random_json(rng, depth - 1)).collect();
            format!("[{}]", items.join(","))
        }
        _ => {
            let n = rng.gen_range(0..6);
            let fields: Vec<String> = (0..n)
                .map(|_| {
                    let key = KEYS.choose(rng).unwrap();
                    format!(
                        "{}:{}",
                        serde_json::to_string(key).unwrap(),
                        random_json(rng, depth - 1)
                    )
                })
                .collect();
            format!("{{{}}}", fields.join(","))
        }
    }
}

fn random_string(rng: &mut StdRng) -> String {
    let len = match rng.gen_range(0..10) {
        0 => rng.gen_range(1000..20_000),
        _ => rng.gen_range(0..40),
    };
    (0..len)
        .map(|_| match rng.gen_range(0..4) {
            0 => rng.gen_range(0u32..0x80),
            1 => rng.gen_range(0x80u32..0x800),
            2 => rng.gen_range(0x1F600u32..0x1F650),
            _ => rng.gen_range(b'a' as u32..=b'z' as u32),
        })
        .filter_map(char::from_u32)
        .collect()
}

/// Replaces, removes or adds one top-level or payload field of a valid event.
fn mutate_event(rng: &mut StdRng) -> String {
    let mut fields: Vec<(String, String)> = vec![
        (
            "eventId".into(),
            format!("\"garbage-mut-{}\"", rng.gen::<u32>()),
        ),
        ("type".into(), "\"progression\"".into()),
        ("playerId".into(), "\"player_mutant\"".into()),
        ("ts".into(), "1638360000".into()),
        (
            "payload".into(),
            r#"{"deltaXp":5,"activity":"quest"}"#.into(),
        ),
    ];
    for _ in 0..rng.gen_range(1..=2) {
        let i = rng.gen_range(0..fields.len());
        match rng.gen_range(0..4) {
            0 => {
                fields.remove(i);
            }
            1 => fields.push((random_string(rng), random_json(rng, 2))),
            2 => {
                let payload = format!(
                    r#"{{"deltaXp":{},"activity":{}}}"#,
                    random_json(rng, 1),
                    random_json(rng, 1)
                );
                let last = fields.len() - 1;
                fields[4.min(last)].1 = payload;
            }
            _ => fields[i].1 = random_json(rng, 3),
        }
        if fields.is_empty() {
            break;
        }
    }
    let inner: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{v}", serde_json::to_string(k).unwrap()))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// Path segments and query values: percent-encoded random bytes and known-bad strings.
fn random_url_part(rng: &mut StdRng) -> String {
    match rng.gen_range(0..4) {
        0 => (0..rng.gen_range(0..30))
            .map(|_| format!("%{:02X}", rng.gen::<u8>()))
            .collect(),
        1 => [
            "%00",
            "%ff",
            "%zz",
            "%",
            "..%2F..%2Fetc",
            "-1",
            "abc",
            "1e400",
            "18446744073709551615",
            "18446744073709551616",
            "%F0%9F%98%80",
            "+",
            "%20",
            "a%00b",
            "999999999999999999999",
        ]
        .choose(rng)
        .unwrap()
        .to_string(),
        2 => "a".repeat(rng.gen_range(1..5000)),
        _ => (0..rng.gen_range(1..20))
            .map(|_| *b"abcXYZ019_-.~!$&'()*+,;=:@".choose(rng).unwrap() as char)
            .collect(),
    }
}

fn probes() -> Vec<Probe> {
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut out = Vec::new();

    // Random bytes.
    for i in 0..80 {
        let len = if i % 10 == 0 {
            rng.gen_range(2000..60_000)
        } else {
            rng.gen_range(0..512)
        };
        let body: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        let path = POST_PATHS[i % POST_PATHS.len()];
        out.push(Probe::post(
            format!("random bytes #{i}"),
            path,
            body,
            i % 3 != 0,
        ));
    }

    // Valid bodies truncated at random positions.
    let valid = valid_bodies();
    for i in 0..80 {
        let text = valid.choose(&mut rng).unwrap();
        let cut = rng.gen_range(0..text.len());
        let path = POST_PATHS[i % POST_PATHS.len()];
        out.push(Probe::post(
            format!("valid body truncated at {cut} #{i}"),
            path,
            text.as_bytes()[..cut].to_vec(),
            i % 4 != 0,
        ));
    }

    // Hostile JSON to every POST route; signed, and a sample unsigned.
    for (i, text) in hostile_json().into_iter().enumerate() {
        for (j, path) in POST_PATHS.iter().enumerate() {
            let signed = (i + j) % 5 != 0;
            out.push(Probe::post(
                format!("hostile json #{i}"),
                path,
                text.clone().into_bytes(),
                signed,
            ));
        }
    }

    // Random JSON and mutated events, alone and in batches.
    for i in 0..80 {
        let text = random_json(&mut rng, 4);
        let path = POST_PATHS[i % POST_PATHS.len()];
        out.push(Probe::post(
            format!("random json #{i}"),
            path,
            text.into_bytes(),
            i % 4 != 0,
        ));
    }
    for i in 0..60 {
        let text = mutate_event(&mut rng);
        out.push(Probe::post(
            format!("mutated event #{i}"),
            "/events",
            text.into_bytes(),
            true,
        ));
    }
    for i in 0..20 {
        let events: Vec<String> = (0..rng.gen_range(1..30))
            .map(|_| match rng.gen_range(0..3) {
                0 => mutate_event(&mut rng),
                1 => random_json(&mut rng, 2),
                _ => valid_event(
                    &format!("garbage-batch-{i}-{}", rng.gen::<u32>()),
                    "player_batch",
                    1,
                )
                .to_string(),
            })
            .collect();
        let body = format!(r#"{{"events":[{}]}}"#, events.join(","));
        out.push(Probe::post(
            format!("mutated batch #{i}"),
            "/events/batch",
            body.into_bytes(),
            true,
        ));
    }

    // Bad headers on an otherwise valid event.
    let body = valid_event("garbage-headers", "player_headers", 1)
        .to_string()
        .into_bytes();
    for path in ["/events", "/events/batch", "/rewards/claim"] {
        let sig_values = [
            "".to_string(),
            "zz".to_string(),
            "sha256=".to_string(),
            "sha256=zz".to_string(),
            "sha512=00".to_string(),
            "0".repeat(63),
            "0".repeat(64),
            "a".repeat(8000),
            "sha256=sha256=00".to_string(),
        ];
        for sig in sig_values {
            out.push(Probe {
                oversized: false,
                label: format!("bad X-Signature {:?}", excerpt(sig.as_bytes(), 20)),
                method: Method::POST,
                path: path.to_string(),
                body: Some(body.clone()),
                headers: vec![
                    ("Content-Type".into(), "application/json".into()),
                    ("X-Signature".into(), sig),
                ],
            });
        }
        for ts in [
            "abc",
            "-1",
            "0",
            "",
            "99999999999999999999",
            "1e400",
            "-9223372036854775808",
            "9223372036854775807",
            " 1 ",
        ] {
            let sig = liveops_domain::signing::sign_request(SECRET.as_bytes(), &body, Some(ts));
            out.push(Probe {
                oversized: false,
                label: format!("X-Timestamp {ts:?} with a matching MAC"),
                method: Method::POST,
                path: path.to_string(),
                body: Some(body.clone()),
                headers: vec![
                    ("Content-Type".into(), "application/json".into()),
                    ("X-Signature".into(), sig),
                    ("X-Timestamp".into(), ts.to_string()),
                ],
            });
        }
        for (name, value) in [
            ("X-Key-Id", "../../etc/passwd".to_string()),
            ("X-Key-Id", "k".repeat(5000)),
            ("Idempotency-Key", "i".repeat(300)),
            ("Idempotency-Key", "".to_string()),
            ("Idempotency-Key", " ".to_string()),
            ("X-Forwarded-For", "not-an-ip, ::::, 999.1.1.1".to_string()),
            ("X-Session", "garbage".to_string()),
        ] {
            let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
            headers.extend(liveops_client::signature_headers(
                SECRET.as_bytes(),
                &body,
                None,
                None,
            ));
            headers.push((name.to_string(), value.clone()));
            out.push(Probe {
                oversized: false,
                label: format!("header {name}: {}", excerpt(value.as_bytes(), 20)),
                method: Method::POST,
                path: path.to_string(),
                body: Some(body.clone()),
                headers,
            });
        }
    }

    // Wrong content types, signed.
    for path in POST_PATHS {
        for ct in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            Some("application/jsonp"),
            Some("application/json; charset=utf-16"),
            Some("application/*"),
            Some("*/*"),
            Some(";;;"),
        ] {
            let mut headers: Vec<(String, String)> =
                liveops_client::signature_headers(SECRET.as_bytes(), &body, None, None);
            if let Some(ct) = ct {
                headers.push(("Content-Type".into(), ct.into()));
            }
            out.push(Probe {
                oversized: false,
                label: format!("Content-Type {ct:?}"),
                method: Method::POST,
                path: path.to_string(),
                body: Some(body.clone()),
                headers,
            });
        }
    }

    // Oversized bodies: just over each limit, and far over, signed and not.
    let padded = |size: usize| -> Vec<u8> {
        let head = r#"{"type":"progression","playerId":"player_big","ts":1,"payload":{"deltaXp":1,"activity":""#;
        let tail = r#""}}"#;
        let mut b = head.as_bytes().to_vec();
        b.resize(size - tail.len(), b'x');
        b.extend_from_slice(tail.as_bytes());
        b
    };
    let big_batch = |size: usize| -> Vec<u8> {
        let one = valid_event("garbage-big-0", "player_big", 1).to_string();
        let mut b = b"{\"events\":[".to_vec();
        while b.len() + one.len() + 3 < size {
            b.extend_from_slice(one.as_bytes());
            b.push(b',');
        }
        b.extend_from_slice(one.as_bytes());
        b.extend_from_slice(b"]}");
        b.resize(size, b' ');
        b
    };
    for signed in [true, false] {
        for path in POST_PATHS {
            out.push(
                Probe::post("body of 64 KiB + 1", path, padded(64 * 1024 + 1), signed).oversized(),
            );
            out.push(
                Probe::post("body of 1 MiB + 1", path, padded(1024 * 1024 + 1), signed).oversized(),
            );
            out.push(
                Probe::post("body of 3 MiB", path, padded(3 * 1024 * 1024), signed).oversized(),
            );
        }
        out.push(
            Probe::post(
                "batch of 1 MiB + 1",
                "/events/batch",
                big_batch(1024 * 1024 + 1),
                signed,
            )
            .oversized(),
        );
    }

    // GETs with garbage in the path and the query. The board is not empty (see the test), so
    // paging arithmetic runs on real entries.
    for path in [
        "/players/%00%ff/progress",
        "/players/%ff/rewards",
        "/players/%00/progress",
        "/players/..%2F..%2Fetc%2Fpasswd/progress",
        "/players/%F0%9F%98%80%F0%9F%98%80%F0%9F%98%80/progress",
        "/players/ab/progress",
        "/players/a%20b%20c/progress",
        "/players/%zz/progress",
        "/players/%/progress",
        "/players//progress",
        "/leaderboard?window=...&limit=-1&offset=abc",
        "/leaderboard?window=%00&limit=1e400",
        "/leaderboard?window=%zz",
        "/leaderboard?window=daily&window=weekly",
        "/leaderboard?window=hourly",
        "/leaderboard?limit=0",
        "/leaderboard?limit=99999999999999999999999999",
        "/leaderboard?window=seasonal&offset=-1",
        "/leaderboard?window=seasonal&offset=18446744073709551615",
        "/leaderboard?window=seasonal&offset=18446744073709551614&limit=100",
        "/leaderboard?window=seasonal&offset=18446744073709551616",
        "/leaderboard?window=seasonal&offset=9223372036854775807&limit=1",
        "/leaderboard?players=,,,%00",
        "/leaderboard?players=%ff",
        "/leaderboard?players=",
        "/leaderboard?%%%%=&&&==",
        "/leaderboard?&&&",
        "/leaderboard?window=seasonal&players=garbage_survivor,garbage_survivor",
        "/leaderboard/players/%ff?window=x&around=-5",
        "/leaderboard/players/%00?window=seasonal",
        "/leaderboard/players/garbage_survivor?window=seasonal&around=1000000",
        "/leaderboard/players/garbage_survivor?window=seasonal&around=18446744073709551615",
        "/leaderboard/players/garbage_survivor?window=seasonal&around=-1",
        "/leaderboard/players/garbage_survivor?window=%F0%9F%98%80",
        "/leaderboard/history?period=../../etc",
        "/leaderboard/history?window=daily&period=..%2F..%2Fetc%2Fpasswd",
        "/leaderboard/history?window=daily&period=2026-13-45",
        "/leaderboard/history?window=daily&period=0000-00-00",
        "/leaderboard/history?window=daily&period=-2026-01-01",
        "/leaderboard/history?window=daily&period=999999999-12-31",
        "/leaderboard/history?window=weekly&period=2026-W00",
        "/leaderboard/history?window=weekly&period=9999999-W99",
        "/leaderboard/history?window=weekly&period=2026-W99999999999999999999",
        "/leaderboard/history?window=seasonal&period=2026-Q9",
        "/leaderboard/history?window=seasonal&period=2026-Q0",
        "/leaderboard/history?window=seasonal&period=-9223372036854775808-Q1",
        "/leaderboard/history?window=daily&period=2020-01-01&limit=-1&offset=abc",
        "/leaderboard/history?window=daily&period=2020-01-01&offset=18446744073709551615",
        "/leaderboard/history?window=daily&period=%00",
        "/leaderboard/history",
        "/leaderboard/history?window=monthly&period=2020-01",
    ] {
        out.push(Probe::get("garbage GET", path));
    }
    let long_player = "p".repeat(10_000);
    out.push(Probe::get(
        "long player id",
        format!("/players/{long_player}/progress"),
    ));
    out.push(Probe::get(
        "long player id",
        format!("/leaderboard/players/{long_player}"),
    ));
    let many: Vec<String> = (0..500).map(|i| format!("player_{i}")).collect();
    out.push(Probe::get(
        "500 friends",
        format!("/leaderboard?players={}", many.join(",")),
    ));
    for i in 0..60 {
        let path = match i % 4 {
            0 => format!("/players/{}/progress", random_url_part(&mut rng)),
            1 => format!(
                "/leaderboard?window={}&limit={}&offset={}",
                random_url_part(&mut rng),
                random_url_part(&mut rng),
                random_url_part(&mut rng)
            ),
            2 => format!(
                "/leaderboard/players/{}?window={}&around={}",
                random_url_part(&mut rng),
                random_url_part(&mut rng),
                random_url_part(&mut rng)
            ),
            _ => format!(
                "/leaderboard/history?window={}&period={}&limit={}",
                random_url_part(&mut rng),
                random_url_part(&mut rng),
                random_url_part(&mut rng)
            ),
        };
        out.push(Probe::get(format!("random GET #{i}"), path));
    }

    // Wrong methods on known routes.
    for (method, path) in [
        (Method::GET, "/events"),
        (Method::PUT, "/events/batch"),
        (Method::DELETE, "/leaderboard"),
        (Method::POST, "/players/player_12345/progress"),
        (Method::PATCH, "/rewards/claim"),
    ] {
        out.push(Probe {
            oversized: false,
            label: "wrong method".into(),
            method,
            path: path.into(),
            body: Some(b"{}".to_vec()),
            headers: vec![("Content-Type".into(), "application/json".into())],
        });
    }
    out
}

/// `None` when the answer keeps the contract: below 500, and a 4xx is a JSON error with
/// `error.code`.
fn judge(status: u16, text: &str) -> Option<String> {
    if status >= 500 {
        return Some(format!(
            "answered {status}: {}",
            excerpt(text.as_bytes(), 200)
        ));
    }
    if (400..500).contains(&status) {
        let code = serde_json::from_str::<Value>(text).ok().and_then(|v| {
            v.pointer("/error/code")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
        if code.is_none() {
            return Some(format!(
                "answered {status} without a JSON error.code: {}",
                excerpt(text.as_bytes(), 200)
            ));
        }
    }
    None
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    s
}

/// Sends `probe` over a raw HTTP/1.1 connection with `Expect: 100-continue`: the body goes only
/// after `100 Continue`, so a server that refuses on the headers alone is heard. Returns the
/// final status and body.
async fn send_expecting_continue(port: u16, probe: &Probe) -> Result<(u16, String), String> {
    let body = probe.body.clone().unwrap_or_default();
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n",
        probe.method,
        probe.path,
        body.len()
    );
    for (k, v) in &probe.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|e| format!("writing the head: {e}"))?;
    let mut buf = Vec::new();
    let (status, rest) = read_head(&mut stream, &mut buf).await?;
    let (status, rest) = if status == 100 {
        // Write errors are the server's answer arriving early; read it below.
        let _ = stream.write_all(&body).await;
        let mut buf = rest;
        read_head(&mut stream, &mut buf).await?
    } else {
        (status, rest)
    };
    let mut body_bytes = rest;
    let mut tail = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut tail))
        .await
        .map_err(|_| "the answer did not end within 10 s".to_string())?
        .map_err(|e| format!("reading the body: {e}"))?;
    body_bytes.extend_from_slice(&tail);
    Ok((status, String::from_utf8_lossy(&body_bytes).into_owned()))
}

/// Reads one response head; returns its status and the bytes after it (`buf` holds bytes
/// already read). A chunked body is not decoded: errors carry a Content-Length.
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(u16, Vec<u8>), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let status = head
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse::<u16>().ok())
                .ok_or_else(|| format!("not an HTTP response head: {head:?}"))?;
            return Ok((status, buf[end + 4..].to_vec()));
        }
        let mut chunk = [0u8; 8192];
        let left = deadline.saturating_duration_since(Instant::now());
        let n = tokio::time::timeout(left, stream.read(&mut chunk))
            .await
            .map_err(|_| "no answer within 10 s".to_string())?
            .map_err(|e| format!("reading the head: {e}"))?;
        if n == 0 {
            return Err(format!(
                "the connection closed before a full response head ({} bytes)",
                buf.len()
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Sends a signed valid event and waits until the player's XP reaches `want`.
async fn send_and_see(client: &Client, id: &str, xp: u64, want: u64) {
    let r = client
        .post_event_json(&valid_event(id, PLAYER, xp))
        .await
        .unwrap();
    assert_eq!(r.status, 202, "a valid event was refused: {}", r.text);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = client
            .get(&format!("/players/{PLAYER}/progress"))
            .await
            .unwrap();
        if r.status == 200 && r.body["xp"].as_u64() == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{PLAYER}'s xp did not reach {want} within 10 s: {} {}",
            r.status,
            r.text
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_input_never_gets_5xx_and_server_stays_healthy() {
    let started = Instant::now();
    let data = tempfile::TempDir::new().unwrap();
    let logs = tempfile::TempDir::new().unwrap();
    let mut server = Server::start(data.path(), logs.path(), &[]).await;
    let client = server.client.clone();

    send_and_see(&client, "garbage-before", 7, 7).await;

    let probes = probes();
    let mut failures: Vec<String> = Vec::new();
    let mut statuses = std::collections::BTreeMap::<u16, u32>::new();
    let mut resets = Vec::new();
    for (n, probe) in probes.iter().enumerate() {
        // An oversized body gets a connection of its own: the server closes it after an early
        // 413, and a pooled connection closed under the client's feet would fail the next
        // request for reasons of the pool, not of the server.
        let sender = if probe.oversized {
            Client::new(ClientConfig::new(
                client.url(""),
                SECRET.as_bytes().to_vec(),
            ))
            .unwrap()
        } else {
            client.clone()
        };
        let answer = sender
            .send(
                probe.method.clone(),
                &probe.path,
                probe.body.clone(),
                &probe.headers,
            )
            .await;
        let (status, text) = match answer {
            Ok(r) => (r.status, r.text),
            Err(e) if probe.oversized && server.exited().is_none() => {
                match send_expecting_continue(server.port, probe).await {
                    Ok((status, text)) => {
                        resets.push(format!(
                            "#{n} [{}] {}: reqwest saw {}; with Expect: 100-continue: {status}",
                            probe.label,
                            probe.path,
                            error_chain(&e)
                        ));
                        (status, text)
                    }
                    Err(raw) => {
                        failures.push(format!(
                            "#{n} transport error ({}), and with Expect: 100-continue: {raw}\n  {}",
                            error_chain(&e),
                            probe.describe()
                        ));
                        continue;
                    }
                }
            }
            // A pooled keep-alive connection that the server closed after its previous answer
            // (HTTP allows it; hyper does so when that request's body was left unread, e.g. an
            // early 415) can be picked by the client just as the close arrives: the request
            // never reached the server. Send it once more on a connection of its own; the
            // answer to that is judged like any other.
            Err(e)
                if server.exited().is_none()
                    && error_chain(&e).contains("connection closed before message completed") =>
            {
                let fresh = Client::new(ClientConfig::new(
                    client.url(""),
                    SECRET.as_bytes().to_vec(),
                ))
                .unwrap();
                match fresh
                    .send(
                        probe.method.clone(),
                        &probe.path,
                        probe.body.clone(),
                        &probe.headers,
                    )
                    .await
                {
                    Ok(r) => {
                        resets.push(format!(
                            "#{n} [{}] {}: a pooled connection closed under the client; resent on a new one: {}",
                            probe.label, probe.path, r.status
                        ));
                        (r.status, r.text)
                    }
                    Err(again) => {
                        failures.push(format!(
                            "#{n} transport error ({}), and again on a new connection ({}):\n  {}",
                            error_chain(&e),
                            error_chain(&again),
                            probe.describe()
                        ));
                        continue;
                    }
                }
            }
            Err(e) => {
                failures.push(format!(
                    "#{n} transport error ({}):\n  {}",
                    error_chain(&e),
                    probe.describe()
                ));
                if let Some(status) = server.exited() {
                    panic!(
                        "the server died ({status}) on request #{n}:\n  {}\n{} earlier failures:\n{}\nlog:\n{}",
                        probe.describe(),
                        failures.len() - 1,
                        failures.join("\n"),
                        server.log_tail()
                    );
                }
                continue;
            }
        };
        *statuses.entry(status).or_default() += 1;
        if let Some(why) = judge(status, &text) {
            failures.push(format!("#{n} {why}\n  {}", probe.describe()));
        }
    }
    if !resets.is_empty() {
        eprintln!(
            "{} requests were reset (oversized bodies while still being sent, or a pooled connection closing) and answered on a new connection:\n{}",
            resets.len(),
            resets.join("\n")
        );
    }
    eprintln!(
        "{} probes in {:?}; statuses: {statuses:?}",
        probes.len(),
        started.elapsed()
    );

    let health = client
        .get("/healthz")
        .await
        .expect("/healthz after the garbage");
    assert_eq!(
        health.status, 200,
        "/healthz after the garbage: {}",
        health.text
    );
    send_and_see(&client, "garbage-after", 35, 42).await;

    assert!(
        failures.is_empty(),
        "{} of {} garbage requests broke the contract (no 5xx; every 4xx a JSON error with \
         error.code):\n{}",
        failures.len(),
        probes.len(),
        failures.join("\n")
    );
    eprintln!("done in {:?}", started.elapsed());
}
