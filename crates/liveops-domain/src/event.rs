//! The event envelope (SPEC section 4) and its validation.
//!
//! Validation works on a parsed `serde_json::Value` rather than a derived `Deserialize` so that
//! every error can name the exact field (`payload.deltaXp`) and suggest the right name for a near
//! miss (`player_id` -> `playerId`), which serde's derived errors cannot do.

use serde_json::{Map, Value};

use crate::ids::{EventId, PlayerId};

/// The largest integer accepted in a payload: 2^53 - 1, so browsers and JSON tools that read
/// numbers as doubles see the exact value.
pub const MAX_SAFE_INTEGER: i64 = 9_007_199_254_740_991;
/// Free-text payload fields (activity, bossId, ...) are bounded so the log stays small.
pub const MAX_TEXT_LEN: usize = 128;

const TOP_LEVEL_FIELDS: &[&str] = &["eventId", "type", "playerId", "ts", "payload"];

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
    pub payload: Map<String, Value>,
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
            payload,
        })
    }

    /// Rebuilds an event read back from the log, where it was validated on the way in.
    pub fn from_stored(
        event_id: EventId,
        player_id: PlayerId,
        ts: i64,
        event_type: EventType,
        payload: Map<String, Value>,
    ) -> Result<Self, ValidationError> {
        let kind = parse_payload(event_type, &payload)?;
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
            if !(1..=10).contains(&tier) {
                return Err(ValidationError::field(
                    "payload.tier",
                    format!("must be an integer from 1 to 10, got {tier}"),
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
            if !(weight > 0.0 && weight <= 1.0) {
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
        Value::String(s) if s.is_empty() => Err(ValidationError::field(field, "must not be empty")),
        Value::String(s) if s.chars().count() > MAX_TEXT_LEN => Err(ValidationError::field(
            field,
            format!("must be at most {MAX_TEXT_LEN} characters"),
        )),
        Value::String(s) => Ok(s.clone()),
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

    #[test]
    fn not_json_is_invalid_json() {
        assert!(matches!(
            Event::from_slice(b"{\"type\":"),
            Err(ValidationError::InvalidJson { .. })
        ));
    }
}
