//! The request bodies of the ingest routes (`docs/api.md`) as OpenAPI schemas: the event
//! envelope and the batch around it.
//!
//! The handlers never deserialize into these types: `liveops_domain::Event::from_slice` reads
//! the raw bytes (one typed pass, or a checking pass whose errors name the field and suggest a
//! near-miss's right name), and a batch is split into raw items first. These types describe
//! what that parser accepts; the tests below read the envelopes the domain accepts into them,
//! so the two cannot drift apart unnoticed.

use serde::Deserialize;
use utoipa::ToSchema;

/// One event, as `POST /events` takes it and as each item of `POST /events/batch`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"eventId": "quest-7f3a", "type": "progression",
    "playerId": "player_12345", "ts": 1638360000,
    "payload": {"deltaXp": 150, "activity": "quest_completion"}}))]
pub struct EventEnvelope {
    /// The client's id for the event: a repeated eventId is a duplicate forever. Without one
    /// the server assigns a UUIDv7 and returns it.
    #[serde(default)]
    #[schema(max_length = 64, pattern = "^[A-Za-z0-9_.:-]+$")]
    pub event_id: Option<String>,
    #[serde(rename = "type")]
    pub event_type: EventType,
    #[schema(min_length = 3, max_length = 50, pattern = "^[A-Za-z0-9_]+$")]
    pub player_id: String,
    /// Client time in unix seconds, kept for analysis; windows use the server's receive time.
    #[schema(minimum = 0, maximum = 9_007_199_254_740_991_i64)]
    pub ts: i64,
    /// The payload of `type`. Keys beyond the ones listed are kept in the log as sent.
    pub payload: EventPayload,
}

/// What happened; it decides the payload's shape.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    Progression,
    BossKill,
    DropClaimed,
}

/// The payload of each event type.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum EventPayload {
    Progression(ProgressionPayload),
    BossKill(BossKillPayload),
    DropClaimed(DropClaimedPayload),
}

/// `type: progression`: XP earned by an activity; it adds `deltaXp`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProgressionPayload {
    #[schema(minimum = 1, maximum = 9_007_199_254_740_991_i64)]
    pub delta_xp: i64,
    #[schema(min_length = 1, max_length = 128)]
    pub activity: String,
}

/// `type: boss_kill`: it adds `points` XP and counts the boss in the player's `bossKills`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BossKillPayload {
    #[schema(min_length = 1, max_length = 128)]
    pub boss_id: String,
    #[schema(minimum = 1, maximum = 10)]
    pub tier: i64,
    #[schema(minimum = 0, maximum = 9_007_199_254_740_991_i64)]
    pub points: i64,
}

/// `type: drop_claimed`: it adds `round(weight * 100)` XP and lists the drop in the player's
/// `drops`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DropClaimedPayload {
    #[schema(min_length = 1, max_length = 128)]
    pub drop_id: String,
    #[schema(exclusive_minimum = 0, maximum = 1)]
    pub weight: f64,
    #[schema(min_length = 1, max_length = 128)]
    pub source: String,
}

/// The body of `POST /events/batch`.
#[derive(Deserialize, ToSchema)]
pub struct BatchRequest {
    /// Judged one by one: each gets its own result, in order.
    #[schema(min_items = 1, max_items = 500)]
    pub events: Vec<EventEnvelope>,
}

#[cfg(test)]
mod tests {
    use super::*;

    use liveops_domain::Event;

    #[test]
    fn envelopes_the_domain_accepts_read_into_the_schema_types_with_their_payload() {
        let samples = [
            r#"{"eventId": "e-1", "type": "progression", "playerId": "player_one", "ts": 1,
                "payload": {"deltaXp": 150, "activity": "quest", "note": "kept"}}"#,
            r#"{"type": "boss_kill", "playerId": "player_one", "ts": 1,
                "payload": {"bossId": "dragon", "tier": 10, "points": 0}}"#,
            r#"{"eventId": null, "type": "drop_claimed", "playerId": "player_one", "ts": 1,
                "payload": {"dropId": "sword", "weight": 1, "source": "chest"}}"#,
        ];
        for sample in samples {
            let event = Event::from_slice(sample.as_bytes()).expect("the domain accepts it");
            let envelope: EventEnvelope = serde_json::from_str(sample).expect(sample);
            assert_eq!(envelope.player_id, event.player_id.as_str());
            let paired = matches!(
                (&envelope.event_type, &envelope.payload),
                (EventType::Progression, EventPayload::Progression(_))
                    | (EventType::BossKill, EventPayload::BossKill(_))
                    | (EventType::DropClaimed, EventPayload::DropClaimed(_))
            );
            assert!(paired, "{sample}");
        }
        let batch = format!(r#"{{"events": [{}]}}"#, samples.join(","));
        let batch: BatchRequest = serde_json::from_str(&batch).unwrap();
        assert_eq!(batch.events.len(), samples.len());
    }
}
