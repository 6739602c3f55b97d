//! The event envelope (`docs/api.md`) and its validation.
//!
//! Two paths decide the same thing. The fast one deserializes a well-formed envelope straight
//! into borrowed typed fields and leaves the payload as the client's JSON text: no tree, no map,
//! one pass (it was a quarter of the gateway's CPU under batch load). Anything it does not accept
//! goes to the checking path, which works on a parsed `serde_json::Value` so that every error can
//! name the exact field (`payload.deltaXp`) and suggest the right name for a near miss
//! (`player_id` -> `playerId`), which serde's derived errors cannot do. The fast path accepts a
//! subset of what the checking path accepts and builds the same event, so which path ran never
//! shows: an event either passes both or is answered by the checking path.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::ids::{EventId, PlayerId};

/// The largest integer accepted in a payload: 2^53 - 1, so browsers and JSON tools that read
/// numbers as doubles see the exact value.
pub const MAX_SAFE_INTEGER: i64 = 9_007_199_254_740_991;
/// Free-text payload fields (activity, bossId, ...) are bounded so the log stays small.
pub const MAX_TEXT_LEN: usize = 128;

const TOP_LEVEL_FIELDS: &[&str] = &["eventId", "type", "playerId", "ts", "payload"];

// The rules both paths check, in one place so that they cannot drift apart (`docs/api.md`).
const BOSS_TIERS: std::ops::RangeInclusive<i64> = 1..=10;

fn text_fits(s: &str) -> bool {
    !s.is_empty() && s.chars().count() <= MAX_TEXT_LEN
}

fn weight_fits(w: f64) -> bool {
    w > 0.0 && w <= 1.0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    Progression,
    BossKill,
    DropClaimed,
}

impl EventType {
    pub const ALL: [EventType; 3] = [Self::Progression, Self::BossKill, Self::DropClaimed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Progression => "progression",
            Self::BossKill => "boss_kill",
            Self::DropClaimed => "drop_claimed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// What happened, with the payload fields the rules read.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    Progression {
        delta_xp: i64,
        activity: String,
    },
    BossKill {
        boss_id: String,
        tier: u8,
        points: i64,
    },
    DropClaimed {
        drop_id: String,
        weight: f64,
        source: String,
    },
}

impl EventKind {
    pub fn event_type(&self) -> EventType {
        match self {
            Self::Progression { .. } => EventType::Progression,
            Self::BossKill { .. } => EventType::BossKill,
            Self::DropClaimed { .. } => EventType::DropClaimed,
        }
    }
}

/// A validated event. `payload` is the client's payload object as sent (extra keys included), so
/// the log keeps everything the client said.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub event_id: EventId,
    pub player_id: PlayerId,
    /// Client time in unix seconds, kept for analysis only; windows use the receive time.
    pub ts: i64,
    pub kind: EventKind,
    pub payload: Payload,
}

/// The payload object as JSON text: the client's own bytes when the fast path read them, the
/// object re-printed when the checking path did. Always a JSON object. Stores and the bus write
/// the text as it is; the rules read [`EventKind`], never this.
#[derive(Debug, Clone)]
pub struct Payload(Box<RawValue>);

impl Payload {
    /// Payload text read back from the log, where it was validated on the way in.
    pub fn from_stored(text: String) -> Result<Self, String> {
        let raw = RawValue::from_string(text).map_err(|e| format!("payload: {e}"))?;
        if !raw.get().starts_with('{') {
            return Err("payload: not a JSON object".into());
        }
        Ok(Self(raw))
    }

    fn from_map(map: &Map<String, Value>) -> Self {
        // A map of JSON values always prints, and always as a JSON object.
        let text = serde_json::to_string(map).expect("a JSON map serializes");
        Self(RawValue::from_string(text).expect("serde_json prints valid JSON"))
    }

    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    fn as_raw(&self) -> &RawValue {
        &self.0
    }

    /// The payload as a map, for the admin API and tests (not the hot path).
    pub fn to_map(&self) -> Map<String, Value> {
        serde_json::from_str(self.0.get()).unwrap_or_default()
    }
}

impl Default for Payload {
    fn default() -> Self {
        Self::from_map(&Map::new())
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Serialize for Payload {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        if !raw.get().starts_with('{') {
            return Err(serde::de::Error::custom("payload must be a JSON object"));
        }
        Ok(Self(raw))
    }
}

/// Why an event was refused: `InvalidJson` for bytes that are not a JSON object, `InvalidEvent`
/// for a schema violation, always with the field and a message a developer can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("{message}")]
    InvalidJson { message: String },
    #[error("{field}: {message}")]
    InvalidEvent { field: String, message: String },
}

impl ValidationError {
    fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidEvent {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn field_name(&self) -> Option<&str> {
        match self {
            Self::InvalidJson { .. } => None,
            Self::InvalidEvent { field, .. } => Some(field),
        }
    }
}

impl Event {
    /// Parses one event from raw bytes.
    pub fn from_slice(body: &[u8]) -> Result<Self, ValidationError> {
        if let Some(event) = fast::event(body) {
            return Ok(event);
        }
        let value: Value =
            serde_json::from_slice(body).map_err(|e| ValidationError::InvalidJson {
                message: format!("body is not valid JSON: {e}"),
            })?;
        Self::from_value(value)
    }

    /// Validates one event envelope. `eventId` is generated when absent.
    pub fn from_value(value: Value) -> Result<Self, ValidationError> {
        let Value::Object(mut obj) = value else {
            return Err(ValidationError::InvalidEvent {
                field: String::new(),
                message: format!("an event must be a JSON object, got {}", kind_of(&value)),
            });
        };
        check_unknown_fields(&obj, TOP_LEVEL_FIELDS, "")?;

        let event_id = match obj.remove("eventId") {
            None | Some(Value::Null) => EventId::generate(),
            Some(Value::String(s)) => {
                EventId::parse(s).map_err(|m| ValidationError::field("eventId", m))?
            }
            Some(other) => {
                return Err(ValidationError::field(
                    "eventId",
                    format!("must be a string, got {}", kind_of(&other)),
                ))
            }
        };
        let type_str = take_string(&mut obj, "type", "", TOP_LEVEL_FIELDS)?;
        let event_type = EventType::parse(&type_str).ok_or_else(|| {
            let names: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
            let hint = suggest(&type_str, &names)
                .map(|s| format!("; did you mean {s:?}?"))
                .unwrap_or_default();
            ValidationError::field(
                "type",
                format!(
                    "unknown type {type_str:?}, expected one of {}{hint}",
                    names.join(", ")
                ),
            )
        })?;
        let player_id = take_string(&mut obj, "playerId", "", TOP_LEVEL_FIELDS)?;
        let player_id =
            PlayerId::parse(player_id).map_err(|m| ValidationError::field("playerId", m))?;
        let ts = match obj.remove("ts") {
            None => return Err(missing(&obj, "ts", "", TOP_LEVEL_FIELDS)),
            Some(v) => integer(&v, "ts")?,
        };
        if ts < 0 {
            return Err(ValidationError::field("ts", "must be unix seconds >= 0"));
        }
        let payload = match obj.remove("payload") {
            None => return Err(missing(&obj, "payload", "", TOP_LEVEL_FIELDS)),
            Some(Value::Object(p)) => p,
            Some(other) => {
                return Err(ValidationError::field(
                    "payload",
                    format!("must be an object, got {}", kind_of(&other)),
                ))
            }
        };
        let kind = parse_payload(event_type, &payload)?;
        Ok(Event {
            event_id,
            player_id,
            ts,
            kind,
            payload: Payload::from_map(&payload),
        })
    }

    /// Rebuilds an event read back from the log, where it was validated on the way in.
    pub fn from_stored(
        event_id: EventId,
        player_id: PlayerId,
        ts: i64,
        event_type: EventType,
        payload: Payload,
    ) -> Result<Self, ValidationError> {
        let kind = match fast::kind(event_type, payload.as_raw()) {
            Some(kind) => kind,
            None => parse_payload(event_type, &payload.to_map())?,
        };
        Ok(Event {
            event_id,
            player_id,
            ts,
            kind,
            payload,
        })
    }

    /// The canonical JSON of the envelope, as stored and returned by the admin API.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "eventId": self.event_id.as_str(),
            "type": self.kind.event_type().as_str(),
            "playerId": self.player_id.as_str(),
            "ts": self.ts,
            "payload": self.payload,
        })
    }
}

/// The fast path: a well-formed event in one typed pass. `None` means "let the checking path
/// decide", never "invalid"; every range and length rule here is the checking path's.
mod fast {
    use super::*;

    /// The envelope as derived `Deserialize` reads it. Derived structs also accept a JSON array
    /// (fields by position), which the API does not, hence the `{` checks before each.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Envelope<'a> {
        #[serde(rename = "eventId", default, borrow)]
        event_id: Option<Cow<'a, str>>,
        #[serde(rename = "type", borrow)]
        event_type: Cow<'a, str>,
        #[serde(rename = "playerId", borrow)]
        player_id: Cow<'a, str>,
        ts: i64,
        #[serde(borrow)]
        payload: &'a RawValue,
    }

    #[derive(Deserialize)]
    struct Progression<'a> {
        #[serde(rename = "deltaXp")]
        delta_xp: i64,
        #[serde(borrow)]
        activity: Cow<'a, str>,
    }

    #[derive(Deserialize)]
    struct BossKill<'a> {
        #[serde(rename = "bossId", borrow)]
        boss_id: Cow<'a, str>,
        tier: i64,
        points: i64,
    }

    #[derive(Deserialize)]
    struct DropClaimed<'a> {
        #[serde(rename = "dropId", borrow)]
        drop_id: Cow<'a, str>,
        weight: f64,
        #[serde(borrow)]
        source: Cow<'a, str>,
    }

    fn is_object(json: &[u8]) -> bool {
        json.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
    }

    pub(super) fn event(body: &[u8]) -> Option<Event> {
        if !is_object(body) {
            return None;
        }
        let env: Envelope<'_> = serde_json::from_slice(body).ok()?;
        let event_type = EventType::parse(&env.event_type)?;
        let event_id = match env.event_id {
            None => EventId::generate(),
            Some(id) => EventId::parse(id.into_owned()).ok()?,
        };
        let player_id = PlayerId::parse(env.player_id.into_owned()).ok()?;
        if !(0..=MAX_SAFE_INTEGER).contains(&env.ts) {
            return None;
        }
        let kind = kind(event_type, env.payload)?;
        Some(Event {
            event_id,
            player_id,
            ts: env.ts,
            kind,
            payload: Payload(env.payload.to_owned()),
        })
    }

    pub(super) fn kind(t: EventType, payload: &RawValue) -> Option<EventKind> {
        let json = payload.get();
        if !is_object(json.as_bytes()) {
            return None;
        }
        let safe = |n: i64, min: i64| (min..=MAX_SAFE_INTEGER).contains(&n).then_some(n);
        Some(match t {
            EventType::Progression => {
                let p: Progression<'_> = serde_json::from_str(json).ok()?;
                EventKind::Progression {
                    delta_xp: safe(p.delta_xp, 1)?,
                    activity: text(p.activity)?,
                }
            }
            EventType::BossKill => {
                let p: BossKill<'_> = serde_json::from_str(json).ok()?;
                EventKind::BossKill {
                    boss_id: text(p.boss_id)?,
                    tier: BOSS_TIERS
                        .contains(&p.tier)
                        .then(|| u8::try_from(p.tier).ok())
                        .flatten()?,
                    points: safe(p.points, 0)?,
                }
            }
            EventType::DropClaimed => {
                let p: DropClaimed<'_> = serde_json::from_str(json).ok()?;
                if !weight_fits(p.weight) {
                    return None;
                }
                EventKind::DropClaimed {
                    drop_id: text(p.drop_id)?,
                    weight: p.weight,
                    source: text(p.source)?,
                }
            }
        })
    }

    fn text(s: Cow<'_, str>) -> Option<String> {
        text_fits(&s).then(|| s.into_owned())
    }
}

fn parse_payload(t: EventType, p: &Map<String, Value>) -> Result<EventKind, ValidationError> {
    const PROGRESSION: &[&str] = &["deltaXp", "activity"];
    const BOSS_KILL: &[&str] = &["bossId", "tier", "points"];
    const DROP_CLAIMED: &[&str] = &["dropId", "weight", "source"];
    let get = |name: &str, known: &[&str]| -> Result<&Value, ValidationError> {
        p.get(name)
            .ok_or_else(|| missing(p, name, "payload.", known))
    };
    Ok(match t {
        EventType::Progression => {
            let delta_xp = integer(get("deltaXp", PROGRESSION)?, "payload.deltaXp")?;
            if delta_xp < 1 {
                return Err(ValidationError::field(
                    "payload.deltaXp",
                    format!("must be an integer >= 1, got {delta_xp}"),
                ));
            }
            let activity = text(get("activity", PROGRESSION)?, "payload.activity")?;
            EventKind::Progression { delta_xp, activity }
        }
        EventType::BossKill => {
            let boss_id = text(get("bossId", BOSS_KILL)?, "payload.bossId")?;
            let tier = integer(get("tier", BOSS_KILL)?, "payload.tier")?;
            if !BOSS_TIERS.contains(&tier) {
                return Err(ValidationError::field(
                    "payload.tier",
                    format!(
                        "must be an integer from {} to {}, got {tier}",
                        BOSS_TIERS.start(),
                        BOSS_TIERS.end()
                    ),
                ));
            }
            let points = integer(get("points", BOSS_KILL)?, "payload.points")?;
            if points < 0 {
                return Err(ValidationError::field(
                    "payload.points",
                    format!("must be an integer >= 0, got {points}"),
                ));
            }
            EventKind::BossKill {
                boss_id,
                tier: tier as u8,
                points,
            }
        }
        EventType::DropClaimed => {
            let drop_id = text(get("dropId", DROP_CLAIMED)?, "payload.dropId")?;
            let weight = match get("weight", DROP_CLAIMED)? {
                Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
                other => {
                    return Err(ValidationError::field(
                        "payload.weight",
                        format!("must be a number in (0, 1], got {}", kind_of(other)),
                    ))
                }
            };
            if !weight_fits(weight) {
                return Err(ValidationError::field(
                    "payload.weight",
                    format!("must be a number in (0, 1], got {weight}"),
                ));
            }
            let source = text(get("source", DROP_CLAIMED)?, "payload.source")?;
            EventKind::DropClaimed {
                drop_id,
                weight,
                source,
            }
        }
    })
}

fn take_string(
    obj: &mut Map<String, Value>,
    name: &str,
    prefix: &str,
    known: &[&str],
) -> Result<String, ValidationError> {
    match obj.remove(name) {
        None => Err(missing(obj, name, prefix, known)),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(ValidationError::field(
            format!("{prefix}{name}"),
            format!("must be a string, got {}", kind_of(&other)),
        )),
    }
}

fn text(v: &Value, field: &str) -> Result<String, ValidationError> {
    match v {
        Value::String(s) if text_fits(s) => Ok(s.clone()),
        Value::String(s) if s.is_empty() => Err(ValidationError::field(field, "must not be empty")),
        Value::String(_) => Err(ValidationError::field(
            field,
            format!("must be at most {MAX_TEXT_LEN} characters"),
        )),
        other => Err(ValidationError::field(
            field,
            format!("must be a string, got {}", kind_of(other)),
        )),
    }
}

fn integer(v: &Value, field: &str) -> Result<i64, ValidationError> {
    let n = match v {
        Value::Number(n) => n,
        other => {
            return Err(ValidationError::field(
                field,
                format!("must be an integer, got {}", kind_of(other)),
            ))
        }
    };
    match n.as_i64() {
        Some(i) if (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(&i) => Ok(i),
        Some(_) => Err(ValidationError::field(
            field,
            format!("must be at most {MAX_SAFE_INTEGER} in magnitude"),
        )),
        None if n.is_u64() => Err(ValidationError::field(
            field,
            format!("must be at most {MAX_SAFE_INTEGER} in magnitude"),
        )),
        None => Err(ValidationError::field(
            field,
            format!("must be an integer, got {n}"),
        )),
    }
}

/// The error for a missing field, pointing at a near-miss key if the client sent one.
fn missing(obj: &Map<String, Value>, name: &str, prefix: &str, known: &[&str]) -> ValidationError {
    let near = obj
        .keys()
        .filter(|k| !known.contains(&k.as_str()))
        .find(|k| suggest(k, &[name]).is_some());
    let message = match near {
        Some(k) => format!("missing field {name:?}; found {k:?}, did you mean {name:?}?"),
        None => format!("missing field {name:?}"),
    };
    ValidationError::field(format!("{prefix}{name}"), message)
}

/// Refuses keys the schema does not know; a near miss is reported against the right name.
fn check_unknown_fields(
    obj: &Map<String, Value>,
    known: &[&str],
    prefix: &str,
) -> Result<(), ValidationError> {
    for key in obj.keys() {
        if known.contains(&key.as_str()) {
            continue;
        }
        return Err(match suggest(key, known) {
            Some(right) if !obj.contains_key(right) => ValidationError::field(
                format!("{prefix}{right}"),
                format!("unknown field {key:?}; did you mean {right:?}?"),
            ),
            _ => ValidationError::field(
                format!("{prefix}{key}"),
                format!(
                    "unknown field {key:?}, expected one of {}",
                    known.join(", ")
                ),
            ),
        });
    }
    Ok(())
}

/// The closest known name to `given`, if it is close enough to be a typo or a case/underscore
/// variant (`player_id`, `PlayerID`, `playerid` -> `playerId`).
pub fn suggest<'a>(given: &str, known: &[&'a str]) -> Option<&'a str> {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| *c != '_' && *c != '-')
            .flat_map(char::to_lowercase)
            .collect()
    };
    let g = norm(given);
    known
        .iter()
        .map(|k| (k, strsim::damerau_levenshtein(&g, &norm(k))))
        .filter(|(k, d)| *d == 0 || (*d <= 2 && k.len() > 3))
        .min_by_key(|(_, d)| *d)
        .map(|(k, _)| *k)
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field_of(v: Value) -> String {
        Event::from_value(v)
            .unwrap_err()
            .field_name()
            .unwrap()
            .to_string()
    }

    #[test]
    fn parses_each_event_type() {
        let e = Event::from_value(
            json!({"eventId": "e1", "type": "progression", "playerId": "p_1",
            "ts": 1, "payload": {"deltaXp": 150, "activity": "quest"}}),
        )
        .unwrap();
        assert_eq!(
            e.kind,
            EventKind::Progression {
                delta_xp: 150,
                activity: "quest".into()
            }
        );
        let e = Event::from_value(json!({"type": "boss_kill", "playerId": "p_1", "ts": 1,
            "payload": {"bossId": "dragon", "tier": 3, "points": 500}}))
        .unwrap();
        assert!(matches!(
            e.kind,
            EventKind::BossKill {
                tier: 3,
                points: 500,
                ..
            }
        ));
        let e = Event::from_value(json!({"type": "drop_claimed", "playerId": "p_1", "ts": 1,
            "payload": {"dropId": "sword", "weight": 0.25, "source": "chest"}}))
        .unwrap();
        assert!(matches!(e.kind, EventKind::DropClaimed { .. }));
    }

    #[test]
    fn near_miss_names_the_right_field() {
        let err = Event::from_value(json!({"type": "progression", "player_id": "p_1", "ts": 1,
            "payload": {"deltaXp": 1, "activity": "a"}}))
        .unwrap_err();
        assert_eq!(err.field_name(), Some("playerId"));
        assert!(
            err.to_string().contains("did you mean \"playerId\""),
            "{err}"
        );
        let err = Event::from_value(json!({"type": "progression", "playerId": "p_1", "ts": 1,
            "payload": {"delta_xp": 1, "activity": "a"}}))
        .unwrap_err();
        assert_eq!(err.field_name(), Some("payload.deltaXp"));
        assert!(err.to_string().contains("did you mean"), "{err}");
        let err = Event::from_value(json!({"type": "boss-kill", "playerId": "p_1", "ts": 1,
            "payload": {}}))
        .unwrap_err();
        assert!(
            err.to_string().contains("did you mean \"boss_kill\""),
            "{err}"
        );
    }

    #[test]
    fn schema_violations_name_the_field() {
        let base = json!({"type": "progression", "playerId": "p_1", "ts": 1,
            "payload": {"deltaXp": 1, "activity": "a"}});
        let with = |path: &[&str], v: Value| {
            let mut b = base.clone();
            let mut cur = &mut b;
            for p in &path[..path.len() - 1] {
                cur = cur.get_mut(*p).unwrap();
            }
            cur[path[path.len() - 1]] = v;
            b
        };
        assert_eq!(
            field_of(with(&["payload", "deltaXp"], json!(0))),
            "payload.deltaXp"
        );
        assert_eq!(
            field_of(with(&["payload", "deltaXp"], json!(1.5))),
            "payload.deltaXp"
        );
        assert_eq!(
            field_of(with(&["payload", "deltaXp"], json!("5"))),
            "payload.deltaXp"
        );
        assert_eq!(field_of(with(&["playerId"], json!("a!"))), "playerId");
        assert_eq!(field_of(with(&["ts"], json!(-1))), "ts");
        assert_eq!(field_of(with(&["eventId"], json!("has space"))), "eventId");
        assert_eq!(field_of(with(&["payload"], json!([]))), "payload");
        assert_eq!(field_of(with(&["color"], json!(1))), "color");
    }

    /// The checking path alone, as `from_slice` ran before the fast path existed.
    fn checked(body: &[u8]) -> Result<Event, ValidationError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| ValidationError::InvalidJson {
                message: e.to_string(),
            })?;
        Event::from_value(value)
    }

    #[test]
    fn the_fast_path_keeps_the_payload_as_sent() {
        let body = br#"{"eventId":"e1","type":"progression","playerId":"p_1","ts":1,"payload":{ "zeta": [1, 2], "deltaXp": 150, "activity": "qu\u0065st" }}"#;
        let e = fast::event(body).expect("a well-formed event takes the fast path");
        assert_eq!(
            e.payload.as_str(),
            r#"{ "zeta": [1, 2], "deltaXp": 150, "activity": "qu\u0065st" }"#
        );
        assert_eq!(
            e.kind,
            EventKind::Progression {
                delta_xp: 150,
                activity: "quest".into()
            }
        );
        let again = Event::from_stored(
            e.event_id.clone(),
            e.player_id.clone(),
            e.ts,
            EventType::Progression,
            Payload::from_stored(e.payload.as_str().to_string()).unwrap(),
        )
        .unwrap();
        assert_eq!(again, e);
    }

    #[test]
    fn what_the_fast_path_declines_the_checking_path_decides() {
        // Fields by position: serde's derived structs take an array, the API does not.
        let array = br#"["e1","progression","p_1",1,{"deltaXp":1,"activity":"a"}]"#;
        assert!(fast::event(array).is_none());
        assert!(Event::from_slice(array).is_err());
        let array_payload = br#"{"type":"progression","playerId":"p_1","ts":1,"payload":[1,"a"]}"#;
        assert_eq!(
            Event::from_slice(array_payload).unwrap_err().field_name(),
            Some("payload")
        );
        // A repeated key: the checking path takes the last one, as it always did.
        let repeated = br#"{"type":"progression","playerId":"p_1","ts":1,"ts":2,
            "payload":{"deltaXp":1,"deltaXp":7,"activity":"a"}}"#;
        assert!(fast::event(repeated).is_none());
        let e = Event::from_slice(repeated).unwrap();
        assert_eq!(e.ts, 2);
        assert!(matches!(e.kind, EventKind::Progression { delta_xp: 7, .. }));
        assert_eq!(e.payload.to_map()["deltaXp"], json!(7));
    }

    /// Over bodies near the schema, `from_slice` answers exactly what the checking path does:
    /// every payload value of each type against a valid envelope, then every envelope variant
    /// (a wrong type, a bad range, a near-miss or unknown name) against a good and a bad payload.
    #[test]
    fn the_fast_path_agrees_with_the_checking_path() {
        let ns = [
            json!(0),
            json!(1),
            json!(10),
            json!(11),
            json!(-3),
            json!(0.5),
            json!(1.0),
            json!(MAX_SAFE_INTEGER),
            json!(MAX_SAFE_INTEGER + 1),
            json!(u64::MAX),
            json!("3"),
        ];
        let texts = [
            json!("quest"),
            json!(""),
            json!("é".repeat(MAX_TEXT_LEN)),
            json!("é".repeat(MAX_TEXT_LEN + 1)),
            json!(null),
        ];
        let payload = |kind: usize, n: &Value, text: &Value, extra: bool| {
            let mut p = match kind {
                0 => json!({"deltaXp": n, "activity": text}),
                1 => json!({"bossId": text, "tier": n, "points": 50}),
                2 => json!({"bossId": text, "tier": 3, "points": n}),
                _ => json!({"dropId": text, "weight": n, "source": "chest"}),
            };
            if extra {
                p["note"] = json!({"nested": [1, 2]});
            }
            p
        };
        let envelope = |kind: usize, payload: Value| {
            let types = ["progression", "boss_kill", "boss_kill", "drop_claimed"];
            json!({"eventId": "ev-1", "type": types[kind], "playerId": "player_1", "ts": 5,
                "payload": payload})
        };
        let mut bodies = Vec::new();
        for kind in 0..4 {
            for n in &ns {
                for text in &texts {
                    for extra in [false, true] {
                        bodies.push(envelope(kind, payload(kind, n, text, extra)));
                    }
                }
            }
        }
        let variants: [(&str, Option<Value>); 14] = [
            ("eventId", None),
            ("eventId", Some(json!(null))),
            ("eventId", Some(json!("bad id"))),
            ("eventId", Some(json!(7))),
            ("playerId", Some(json!("p"))),
            ("playerId", Some(json!("player_é"))),
            ("playerId", Some(json!(12))),
            ("ts", None),
            ("ts", Some(json!(-1))),
            ("ts", Some(json!(1.5))),
            ("ts", Some(json!(MAX_SAFE_INTEGER + 1))),
            ("ts", Some(json!("5"))),
            ("type", Some(json!("boss-kill"))),
            ("payload", Some(json!("{}"))),
        ];
        for kind in 0..4 {
            for good in [true, false] {
                let (n, text) = if good {
                    (&ns[1], &texts[0])
                } else {
                    (&ns[0], &texts[1])
                };
                let base = envelope(kind, payload(kind, n, text, false));
                for (field, value) in &variants {
                    let mut body = base.clone();
                    match value {
                        None => drop(body.as_object_mut().unwrap().remove(*field)),
                        Some(v) => body[*field] = v.clone(),
                    }
                    bodies.push(body);
                }
                for (from, to) in [("playerId", "player_id"), ("ts", "color")] {
                    let mut body = base.clone();
                    let obj = body.as_object_mut().unwrap();
                    let v = obj.remove(from).unwrap();
                    obj.insert(to.into(), v);
                    bodies.push(body);
                }
            }
        }
        let mut accepted = 0;
        for body in &bodies {
            let bytes = serde_json::to_vec(body).unwrap();
            match (Event::from_slice(&bytes), checked(&bytes)) {
                (Ok(mut got), Ok(want)) => {
                    accepted += 1;
                    assert_eq!(got.payload.to_map(), want.payload.to_map(), "{body}");
                    if body.get("eventId").is_none_or(Value::is_null) {
                        got.event_id = want.event_id.clone();
                    }
                    got.payload = want.payload.clone();
                    assert_eq!(got, want, "{body}");
                }
                (Err(got), Err(want)) => assert_eq!(got, want, "{body}"),
                (got, want) => panic!("{body}: from_slice {got:?}, checking path {want:?}"),
            }
        }
        // Both outcomes are well represented, so the comparison above means something.
        assert!(
            accepted > 20 && accepted < bodies.len() / 2,
            "{accepted} of {}",
            bodies.len()
        );
    }

    #[test]
    fn not_json_is_invalid_json() {
        assert!(matches!(
            Event::from_slice(b"{\"type\":"),
            Err(ValidationError::InvalidJson { .. })
        ));
    }
}
