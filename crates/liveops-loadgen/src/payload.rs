//! Event bodies and signed HTTP/1.1 requests, written straight into reused buffers: no JSON
//! serializer, no per-request allocation. Each worker owns one [`RequestWriter`].
//!
//! Event ids are `lg.<run>.<seq>`: `<run>` is random per run, `<seq>` the event's number in the
//! run, so every id is unique across runs and a repeated run is never answered 208.
//! Players go round robin (`seq % players`), the spacing that keeps each player furthest from
//! the server's per-player flood limit.

use std::io::Write;

use liveops_client::Signer;
use liveops_domain::EventType;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::options::{Mix, Plan};

const ACTIVITIES: [&str; 3] = ["quest_completion", "monster_hunt", "exploration"];
const DROP_SOURCES: [&str; 3] = ["chest", "boss", "event"];

/// Writes event JSON: progression with deltaXp 1..=200, boss kills of tier 1..=5 with points
/// steady per tier, drops with weights 0.01..=1.00. Values stay narrow per metric so the fairness
/// z-scores never flag a load-test player.
pub struct EventWriter {
    run_id: String,
    players: u32,
    mix: Mix,
    mix_total: u32,
    rng: SmallRng,
}

impl EventWriter {
    pub fn new(run_id: &str, players: u32, mix: Mix, seed: u64) -> Self {
        EventWriter {
            run_id: run_id.to_string(),
            players,
            mix_total: mix.total(),
            mix,
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    pub fn player_index(&self, seq: u64) -> u64 {
        seq % u64::from(self.players)
    }

    /// Appends event number `seq` to `out`.
    pub fn write_event(&mut self, seq: u64, ts: i64, out: &mut Vec<u8>) {
        let ty = self.mix.pick(self.rng.gen_range(0..self.mix_total));
        let player = self.player_index(seq);
        // Writing into a Vec<u8> cannot fail.
        let _ = write!(
            out,
            r#"{{"eventId":"lg.{}.{seq}","type":"{}","playerId":"lg_{player:06}","ts":{ts},"payload":"#,
            self.run_id,
            ty.as_str(),
        );
        let _ = match ty {
            EventType::Progression => write!(
                out,
                r#"{{"deltaXp":{},"activity":"{}"}}}}"#,
                self.rng.gen_range(1..=200u32),
                ACTIVITIES[self.rng.gen_range(0..ACTIVITIES.len())],
            ),
            EventType::BossKill => {
                let tier = self.rng.gen_range(1..=5u32);
                write!(
                    out,
                    r#"{{"bossId":"boss_{tier}","tier":{tier},"points":{}}}}}"#,
                    tier * 100 + self.rng.gen_range(0..50u32),
                )
            }
            EventType::DropClaimed => {
                let hundredths = self.rng.gen_range(1..=100u32);
                let _ = write!(
                    out,
                    r#"{{"dropId":"drop_{}","weight":"#,
                    self.rng.gen_range(0..100u32)
                );
                let _ = if hundredths == 100 {
                    out.write_all(b"1.0")
                } else {
                    write!(out, "0.{hundredths:02}")
                };
                write!(
                    out,
                    r#","source":"{}"}}}}"#,
                    DROP_SOURCES[self.rng.gen_range(0..DROP_SOURCES.len())]
                )
            }
        };
    }

    /// Writes the body of a request carrying events `first_seq .. first_seq + n`: one event, or
    /// `{"events": [...]}` for the batch endpoint.
    pub fn write_body(&mut self, batch: bool, first_seq: u64, n: u32, ts: i64, out: &mut Vec<u8>) {
        out.clear();
        if !batch {
            self.write_event(first_seq, ts, out);
            return;
        }
        out.extend_from_slice(br#"{"events":["#);
        for i in 0..u64::from(n) {
            if i > 0 {
                out.push(b',');
            }
            self.write_event(first_seq + i, ts, out);
        }
        out.extend_from_slice(b"]}");
    }
}

/// The constant part of a signed `POST` (request line, Host, Content-Type, key id), formatted
/// once, and how to finish it for one body: signature, optional timestamp, length, body.
pub struct SignedPost {
    head: Vec<u8>,
    signer: Signer,
    timestamp: bool,
}

impl SignedPost {
    pub fn new(
        path: &str,
        host: &str,
        signer: Signer,
        key_id: Option<&str>,
        timestamp: bool,
    ) -> Self {
        let mut head = Vec::with_capacity(256);
        let _ = write!(
            head,
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nUser-Agent: liveops-loadgen\r\n",
        );
        if let Some(id) = key_id {
            let _ = write!(head, "X-Key-Id: {id}\r\n");
        }
        SignedPost {
            head,
            signer,
            timestamp,
        }
    }

    /// Writes into `out` the complete request carrying `body`; `now` is the `X-Timestamp` the
    /// signature is bound to when timestamps are on.
    pub fn write(&self, body: &[u8], now: i64, out: &mut Vec<u8>) {
        let mut ts_buf = [0u8; 20];
        let ts = if self.timestamp {
            let mut cursor = &mut ts_buf[..];
            let _ = write!(cursor, "{now}");
            let len = 20 - cursor.len();
            Some(&ts_buf[..len])
        } else {
            None
        };
        let mut sig = [0u8; 64];
        self.signer.sign_into(body, ts, &mut sig);

        out.clear();
        out.extend_from_slice(&self.head);
        out.extend_from_slice(b"X-Signature: sha256=");
        out.extend_from_slice(&sig);
        out.extend_from_slice(b"\r\n");
        if let Some(ts) = ts {
            out.extend_from_slice(b"X-Timestamp: ");
            out.extend_from_slice(ts);
            out.extend_from_slice(b"\r\n");
        }
        let _ = write!(out, "Content-Length: {}\r\n\r\n", body.len());
        out.extend_from_slice(body);
    }
}

/// Builds the load's signed requests (to the plan's path) from its [`EventWriter`].
pub struct RequestWriter {
    post: SignedPost,
    pub events: EventWriter,
    body: Vec<u8>,
}

impl RequestWriter {
    pub fn new(plan: &Plan, signer: Signer, key_id: Option<&str>, events: EventWriter) -> Self {
        RequestWriter {
            post: SignedPost::new(&plan.path, &plan.host, signer, key_id, plan.timestamp),
            events,
            body: Vec::with_capacity(4096),
        }
    }

    /// Writes into `out` the request carrying `n` events from `first_seq` on.
    pub fn write_request(&mut self, batch: bool, first_seq: u64, n: u32, out: &mut Vec<u8>) {
        let now = liveops_client::unix_now();
        self.events
            .write_body(batch, first_seq, n, now, &mut self.body);
        self.post.write(&self.body, now, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::{Bound, Pace};
    use liveops_domain::event::Event;
    use serde_json::Value;
    use std::time::Duration;

    fn mix() -> Mix {
        Mix::parse("progression=1,boss_kill=1,drop_claimed=1").unwrap()
    }

    #[test]
    fn events_are_valid_json_with_unique_ids_and_round_robin_players() {
        let mut w = EventWriter::new("abc", 3, mix(), 7);
        let mut seen = std::collections::HashSet::new();
        for seq in 0..300 {
            let mut out = Vec::new();
            w.write_event(seq, 1_700_000_000, &mut out);
            let v: Value = serde_json::from_slice(&out).unwrap_or_else(|e| {
                panic!("{e}: {}", String::from_utf8_lossy(&out));
            });
            assert_eq!(v["playerId"], format!("lg_{:06}", seq % 3));
            assert!(seen.insert(v["eventId"].as_str().unwrap().to_string()));
            Event::from_slice(&out).unwrap_or_else(|e| panic!("{e:?}: {v}"));
        }
    }

    #[test]
    fn batch_bodies_hold_n_events() {
        let mut w = EventWriter::new("r", 10, mix(), 1);
        let mut out = Vec::new();
        w.write_body(true, 40, 5, 1, &mut out);
        let v: Value = serde_json::from_slice(&out).unwrap();
        let events = v["events"].as_array().unwrap();
        assert_eq!(events.len(), 5);
        assert_eq!(events[4]["eventId"], "lg.r.44");
    }

    #[test]
    fn requests_are_signed_over_the_exact_body() {
        let plan = Plan {
            url: "http://127.0.0.1:8080".into(),
            addr: "127.0.0.1:8080".parse().unwrap(),
            host: "127.0.0.1:8080".into(),
            prefix: String::new(),
            path: "/events".into(),
            pace: Pace::FlatOut,
            rate: None,
            concurrency: 1,
            threads: 1,
            bound: Bound::Duration(Duration::from_secs(1)),
            players: 5,
            batch_size: 1,
            batch: false,
            mix: mix(),
            timestamp: true,
            timeout: Duration::from_secs(1),
            json: false,
            probe: None,
        };
        let secret = b"0123456789abcdef0123456789abcdef";
        let mut rw = RequestWriter::new(
            &plan,
            Signer::new(secret),
            Some("k1"),
            EventWriter::new("r", 5, mix(), 1),
        );
        let mut out = Vec::new();
        rw.write_request(false, 0, 1, &mut out);
        let text = String::from_utf8(out).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("POST /events HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"));
        let header = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                .unwrap()
                .to_string()
        };
        assert_eq!(header("Content-Length"), body.len().to_string());
        assert_eq!(header("X-Key-Id"), "k1");
        let ts = header("X-Timestamp");
        assert!(liveops_domain::signing::verify_request(
            secret,
            body.as_bytes(),
            Some(&ts),
            &header("X-Signature")
        ));
    }
}
