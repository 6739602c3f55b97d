//! The per-request CPU of the gateway's pure part: signature verification and event decoding.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use liveops_domain::signing::{sign_request, verify_request};
use liveops_domain::Event;

const BODY: &[u8] = br#"{"eventId":"bench-0000000001","type":"progression","playerId":"player_12345","ts":1638360000,"payload":{"deltaXp":150,"activity":"quest_completion"}}"#;
const SECRET: &[u8] = b"bench-secret-bench-secret-bench-secret";

fn signature(c: &mut Criterion) {
    let sig = format!("sha256={}", sign_request(SECRET, BODY, None));
    c.bench_function("verify_request (148-byte event)", |b| {
        b.iter(|| verify_request(black_box(SECRET), black_box(BODY), None, black_box(&sig)))
    });
}

fn decoding(c: &mut Criterion) {
    c.bench_function("Event::from_slice (progression)", |b| {
        b.iter(|| Event::from_slice(black_box(BODY)).expect("valid"))
    });
    // The checking path alone (what an event the fast path declines costs, and what every
    // event cost before the fast path).
    c.bench_function("checking path (progression)", |b| {
        b.iter(|| {
            let value: serde_json::Value = serde_json::from_slice(black_box(BODY)).expect("json");
            Event::from_value(value).expect("valid")
        })
    });
}

criterion_group!(benches, signature, decoding);
criterion_main!(benches);
