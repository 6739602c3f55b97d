//! The request and answer bodies of the progression routes (`docs/api.md`), each deriving
//! its OpenAPI schema.
//!
//! The answers are the API's own types rather than the store's or the domain's records
//! serialized as they are: the JSON contract changes only here, never because a storage type
//! gained a field.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use liveops_domain::progression::Drop;
use liveops_domain::signing::Receipt;
use liveops_domain::PlayerId;
use liveops_store::RewardRecord;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `GET /players/{playerId}/progress`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProgressAnswer {
    #[schema(value_type = String, example = "player_12345")]
    pub player_id: PlayerId,
    /// The current season's period id, e.g. `2026-Q4`.
    pub season: String,
    /// All XP the player earned.
    pub xp: i64,
    /// `xp / 1000 + 1`.
    pub level: i64,
    /// XP earned inside the current level.
    pub xp_into_level: i64,
    /// The XP a level spans.
    pub xp_for_next_level: i64,
    /// Kills per bossId.
    #[schema(example = json!({"dragon": 2}))]
    pub boss_kills: BTreeMap<String, u64>,
    /// The most recent drops, oldest first (at most 100).
    pub drops: Vec<DropView>,
    /// When an event last changed this progress.
    pub updated_at: DateTime<Utc>,
}

/// A drop the player claimed.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DropView {
    pub drop_id: String,
    pub weight: f64,
    pub source: String,
    /// The `drop_claimed` event.
    pub event_id: String,
}

impl From<Drop> for DropView {
    fn from(d: Drop) -> Self {
        Self {
            drop_id: d.drop_id,
            weight: d.weight,
            source: d.source,
            event_id: d.event_id,
        }
    }
}

/// `GET /players/{playerId}/rewards`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RewardsAnswer {
    #[schema(value_type = String, example = "player_12345")]
    pub player_id: PlayerId,
    /// Earned and not claimed yet: claim them with `POST /rewards/claim`.
    pub pending: Vec<RewardView>,
    /// Claimed, each with its receipt's id.
    pub claimed: Vec<RewardView>,
}

/// A reward in a player's ledger.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RewardView {
    /// What `POST /rewards/claim` takes, e.g. `lvl5_chest_rare`.
    #[schema(example = "lvl2_gold_100")]
    pub reward_id: String,
    /// `gold_100` or `chest_rare`.
    pub item: String,
    /// The level that granted it.
    pub level: i64,
    pub granted_at: DateTime<Utc>,
    /// The event whose XP crossed the level.
    pub event_id: String,
    /// The claim's receipt; null while pending.
    pub receipt_id: Option<String>,
}

impl From<RewardRecord> for RewardView {
    fn from(r: RewardRecord) -> Self {
        Self {
            reward_id: r.reward_id,
            item: r.item,
            level: r.level,
            granted_at: r.granted_at,
            event_id: r.event_id.into(),
            receipt_id: r.receipt_id,
        }
    }
}

/// The body of `POST /rewards/claim`, signed like an event.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClaimRequest {
    #[schema(min_length = 3, max_length = 50, pattern = "^[A-Za-z0-9_]+$")]
    pub player_id: String,
    #[schema(min_length = 1, max_length = 64, example = "lvl2_gold_100")]
    pub reward_id: String,
}

/// A signed reward receipt: what `POST /rewards/claim` answers and `POST /receipts/verify`
/// checks. `sig` is the hex HMAC-SHA256 of `receiptId:playerId:item:timestamp`.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptBody {
    pub receipt_id: String,
    pub player_id: String,
    pub item: String,
    pub sig: String,
    /// Unix seconds at issue; the receipt is valid for 24 hours.
    pub timestamp: i64,
}

impl From<Receipt> for ReceiptBody {
    fn from(r: Receipt) -> Self {
        Self {
            receipt_id: r.receipt_id,
            player_id: r.player_id,
            item: r.item,
            sig: r.sig,
            timestamp: r.timestamp,
        }
    }
}

impl From<ReceiptBody> for Receipt {
    fn from(r: ReceiptBody) -> Self {
        Self {
            receipt_id: r.receipt_id,
            player_id: r.player_id,
            item: r.item,
            sig: r.sig,
            timestamp: r.timestamp,
        }
    }
}

/// `POST /receipts/verify`.
#[derive(Serialize, ToSchema)]
pub struct VerifyAnswer {
    /// The signature matches the receipt's fields.
    pub valid: bool,
    /// Issued more than 24 hours ago.
    pub expired: bool,
}
