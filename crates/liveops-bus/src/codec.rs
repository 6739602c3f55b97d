//! The wire format of one event in the stream: a versioned JSON record, a
//! [`LoggedEvent`] minus its `seq` (the stream sequence is the seq, assigned by JetStream).
//!
//! ```json
//! {"v": 1, "eventId": "e1", "type": "progression", "playerId": "player_1", "ts": 1638360000,
//!  "payload": {"deltaXp": 150, "activity": "quest"}, "receivedAtMs": 1764000000123, "xp": 150}
//! ```
//!
//! `v` comes first and is checked before anything else, so a process of an older build meets
//! a newer record with a clear error instead of a half-parsed event. A change that old readers
//! can ignore (a new optional field) keeps `v`; anything else bumps it, and consumers are
//! upgraded before gateways. `receivedAtMs` is in milliseconds, the precision the SQLite log
//! keeps, so an event reads back identically from either log. `xp` is computed once at append
//! with the progression rules, so a rule change never rewrites history.

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use liveops_domain::{Event, EventId, EventType, Payload, PlayerId};
use liveops_store::{LoggedEvent, NewEvent};
use serde::{Deserialize, Serialize};
#[cfg(test)]
use serde_json::Value;

use crate::BusError;

/// The record version this build writes and the only one it reads.
pub const WIRE_VERSION: u32 = 1;

/// A record as read; `v` is checked before, through [`VersionOnly`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireEventV1 {
    event_id: String,
    #[serde(rename = "type")]
    event_type: String,
    player_id: String,
    ts: i64,
    payload: Payload,
    received_at_ms: i64,
    xp: i64,
}

/// [`WireEventV1`] as written: borrowed from the event, so an append copies nothing before
/// serializing (the payload clone alone was about 1% of the gateway's CPU per event).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireEventV1Ref<'a> {
    v: u32,
    event_id: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    player_id: &'a str,
    ts: i64,
    payload: &'a Payload,
    received_at_ms: i64,
    xp: i64,
}

#[derive(Deserialize)]
struct VersionOnly {
    v: u32,
}

/// The record for `event`, and the XP it grants.
pub fn encode(event: &NewEvent) -> Result<(Bytes, i64), BusError> {
    let e = &event.event;
    let xp = liveops_domain::progression::xp_for(&e.kind);
    let wire = WireEventV1Ref {
        v: WIRE_VERSION,
        event_id: e.event_id.as_str(),
        event_type: e.kind.event_type().as_str(),
        player_id: e.player_id.as_str(),
        ts: e.ts,
        payload: &e.payload,
        received_at_ms: event.received_at.timestamp_millis(),
        xp,
    };
    let bytes = serde_json::to_vec(&wire).map_err(|e| BusError::Encode(e.to_string()))?;
    Ok((Bytes::from(bytes), xp))
}

/// The event stored at stream sequence `seq`.
pub fn decode(seq: u64, bytes: &[u8]) -> Result<LoggedEvent, BusError> {
    let bad = |reason: String| BusError::Decode { seq, reason };
    let version: VersionOnly =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("no record version: {e}")))?;
    if version.v != WIRE_VERSION {
        return Err(bad(format!(
            "record version {} is not supported by this build (reads {WIRE_VERSION})",
            version.v
        )));
    }
    let w: WireEventV1 = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    let event_id = EventId::parse(w.event_id).map_err(|m| bad(format!("eventId: {m}")))?;
    let player_id = PlayerId::parse(w.player_id).map_err(|m| bad(format!("playerId: {m}")))?;
    let event_type = EventType::parse(&w.event_type)
        .ok_or_else(|| bad(format!("unknown type {:?}", w.event_type)))?;
    let event = Event::from_stored(event_id, player_id, w.ts, event_type, w.payload)
        .map_err(|e| bad(e.to_string()))?;
    Ok(LoggedEvent {
        seq,
        event,
        received_at: ms_to_time(w.received_at_ms),
        xp: w.xp,
    })
}

/// What an appended event reads back as, without a round trip (for the in-process tail).
pub(crate) fn logged(seq: u64, event: NewEvent, xp: i64) -> LoggedEvent {
    LoggedEvent {
        seq,
        received_at: ms_to_time(event.received_at.timestamp_millis()),
        event: event.event,
        xp,
    }
}

fn ms_to_time(ms: i64) -> DateTime<Utc> {
    // Out of chrono's range only for a corrupt record; the epoch is a visible, harmless answer.
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_event() -> NewEvent {
        let event = Event::from_slice(
            br#"{"eventId":"ev-1","type":"drop_claimed","playerId":"player_1","ts":5,
                "payload":{"dropId":"d","weight":0.25,"source":"boss","extra":[1,2]}}"#,
        )
        .expect("valid event");
        NewEvent {
            event,
            received_at: Utc.timestamp_millis_opt(1_764_000_000_123).unwrap(),
        }
    }

    #[test]
    fn a_record_reads_back_as_the_event_it_was_written_from() {
        let ne = new_event();
        let (bytes, xp) = encode(&ne).expect("encode");
        assert_eq!(xp, 25);
        let logged = decode(7, &bytes).expect("decode");
        assert_eq!(logged.seq, 7);
        assert_eq!(logged.event, ne.event);
        assert_eq!(logged.received_at, ne.received_at);
        assert_eq!(logged.xp, 25);
    }

    #[test]
    fn an_unknown_version_is_refused_with_its_number() {
        let (bytes, _) = encode(&new_event()).expect("encode");
        let mut v: Value = serde_json::from_slice(&bytes).expect("json");
        v["v"] = 2.into();
        let err = decode(3, &serde_json::to_vec(&v).expect("json")).unwrap_err();
        assert!(err.to_string().contains("record version 2"), "{err}");
    }

    #[test]
    fn garbage_is_a_decode_error_not_a_panic() {
        for bytes in [&b""[..], b"{}", b"[1]", b"{\"v\":1}", b"\xff\xfe"] {
            assert!(matches!(
                decode(1, bytes),
                Err(BusError::Decode { seq: 1, .. })
            ));
        }
    }
}
