//! The system of record: everything that must survive a crash.
//!
//! - [`EventLog`]: the durable, ordered event log. An append returns only after the commit, so
//!   the gateway can answer 202 (`docs/operations.md`). Each event gets a sequence number in commit
//!   order; `eventId` is unique forever (permanent dedup).
//! - [`ProgressStore`]: player progression, the reward ledger and receipts, applied from the log
//!   exactly once (the consumer's cursor moves in the same transaction as the effects).
//! - [`BoardSource`]: the sums the in-memory leaderboards are rebuilt from.
//! - [`Archive`]: final standings of ended leaderboard periods.
//! - [`AdminStore`]: operator blocks and the audit log of admin actions.
//! - [`FairnessStore`]: flagged events (`suspicious_events`), their review, and the "decided"
//!   view of the log that progression and leaderboards consume.
//!
//! Records carry the domain's typed ids ([`PlayerId`], [`EventId`]); the store binds them as
//! text and parses them back, so a row whose id does not parse is [`StoreError::Corrupt`].
//!
//! Modules:
//! - this file: the traits, their records and [`StoreError`];
//! - `sqlite/`: [`SqliteStore`], the embedded default (one file in `DATA_DIR`), one module per
//!   trait beside the writer thread that group-commits every write;
//! - `postgres/`: [`PgStore`], the scale-out system of record, one module per trait (it is also
//!   an [`Archive`]), with [`IdLookup`] for the gateway's dedup lookups;
//! - `archive`: the [`Archive`] trait and [`FileArchive`], the embedded one;
//! - [`testing`]: the helpers tests use to get a throwaway PostgreSQL database and to skip (or,
//!   under `CI=true`, fail) when an engine is missing.
//!
//! Every implementation passes the one contract suite in `tests/contract.rs`.

mod archive;
mod postgres;
mod sqlite;
pub mod testing;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use liveops_domain::progression::Progress;
use liveops_domain::signing::Receipt;
use liveops_domain::window::Period;
use liveops_domain::{Event, EventId, PlayerId};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{broadcast, watch};

pub use archive::{Archive, ArchivedEntry, ArchivedPeriod, FileArchive};
pub use postgres::{IdLookup, PgStore};
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(String),
    #[error("the store is shutting down")]
    Closed,
    #[error("corrupt record: {0}")]
    Corrupt(String),
    #[error("archive io error: {0}")]
    Io(#[from] std::io::Error),
    /// The engine (database, bus) cannot be reached (connection refused or lost, pool timeout, server shutting
    /// down): nothing was done, retry later. The gateway answers 503 with `Retry-After`.
    #[error("backend unavailable: {0}")]
    Unavailable(String),
}

impl StoreError {
    /// Whether the error means "engine unreachable, retry later" rather than a failed request.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

impl StoreError {
    /// An id read back from a table fails to parse: the store writes only parsed ids, so the
    /// row is corrupt. `column` names where it was read.
    pub(crate) fn stored_id<T: TryFrom<String, Error = String>>(
        column: &str,
        s: String,
    ) -> Result<T, StoreError> {
        T::try_from(s).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

/// An event on its way into the log, with the server's receive time (windows use it).
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event: Event,
    pub received_at: DateTime<Utc>,
}

/// The fate of one appended event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Committed with this sequence number.
    New { seq: u64 },
    /// An event with the same `eventId` was committed before (now or in an earlier batch).
    Duplicate,
}

/// An event read back from the log.
#[derive(Debug, Clone)]
pub struct LoggedEvent {
    pub seq: u64,
    pub event: Event,
    pub received_at: DateTime<Utc>,
    /// The XP the event grants, computed once at append with the progression rules.
    pub xp: i64,
}

/// One commit's new events: the head before and after it, so a consumer can tell whether the
/// batch follows on from where it is.
#[derive(Debug, Clone)]
pub struct CommittedBatch {
    pub prev_head: u64,
    pub head: u64,
    pub events: Arc<Vec<LoggedEvent>>,
}

#[async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// Appends events durably, in order; returns when they are committed.
    async fn append(&self, events: Vec<NewEvent>) -> Result<Vec<Appended>, StoreError>;
    /// Events with `seq > after`, in order, at most `limit`.
    async fn read_after(&self, after: u64, limit: usize) -> Result<Vec<LoggedEvent>, StoreError>;
    /// The highest committed sequence number, updated after every commit.
    fn committed(&self) -> watch::Receiver<u64>;
    /// Batches committed by this process, as they commit, so in-process consumers need not
    /// read them back. Best effort: a consumer that lags or sees a gap reads the log instead.
    fn tail(&self) -> Option<broadcast::Receiver<CommittedBatch>> {
        None
    }
    /// How long a consumer only a little behind the head waits for more events before it
    /// applies them: a log whose consumers pay a network transaction per batch asks for a few
    /// milliseconds, trading that much visibility latency for fewer, larger batches.
    fn linger(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
    /// Database connections this process holds open, when the store has any
    /// (`database_connections_active`).
    fn open_connections(&self) -> Option<u64> {
        None
    }
    /// Whether the store answers (for `/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;
}

/// A reward in a player's ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RewardRecord {
    pub reward_id: String,
    pub item: String,
    pub level: i64,
    pub granted_at: DateTime<Utc>,
    /// The event whose XP crossed the level.
    pub event_id: EventId,
    /// `None` while pending.
    pub receipt_id: Option<String>,
}

/// A player's stored progression with its last update time.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredProgress {
    pub progress: Progress,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The reward was pending and is now claimed with this receipt.
    Claimed(Receipt),
    /// The reward was claimed before: the original receipt, nothing granted again.
    AlreadyClaimed(Receipt),
    /// The player never earned this reward.
    NotEarned,
}

/// Issues the receipt for a claim once the store knows the reward's item.
pub type ReceiptMaker = Box<dyn FnOnce(&str) -> Receipt + Send>;

#[async_trait]
pub trait ProgressStore: Send + Sync + 'static {
    /// Applies log events with `seq` above the consumer's cursor, and moves the cursor, in one
    /// transaction: a crash before the commit applies nothing, after it everything, so every
    /// event is applied exactly once. Events at or below the cursor are skipped. Returns the
    /// new cursor.
    async fn apply_events(
        &self,
        consumer: &str,
        events: Arc<Vec<LoggedEvent>>,
    ) -> Result<u64, StoreError>;
    /// Where a consumer stopped (0 before its first batch).
    async fn cursor(&self, consumer: &str) -> Result<u64, StoreError>;
    async fn progress(&self, player: &PlayerId) -> Result<Option<StoredProgress>, StoreError>;
    async fn rewards(&self, player: &PlayerId) -> Result<Vec<RewardRecord>, StoreError>;
    /// Claims an earned reward once; a second claim returns the first receipt.
    async fn claim(
        &self,
        player: &PlayerId,
        reward_id: &str,
        make: ReceiptMaker,
    ) -> Result<ClaimOutcome, StoreError>;
    async fn receipt(&self, receipt_id: &str) -> Result<Option<Receipt>, StoreError>;
}

/// A player blocked by an operator or by the fairness guard until `until` (`None`: until
/// unblocked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Block {
    pub player_id: PlayerId,
    pub until: Option<DateTime<Utc>>,
    pub reason: String,
    pub created_at: DateTime<Utc>,
}

/// One admin action: who, what, on what, when.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: serde_json::Value,
}

#[async_trait]
pub trait AdminStore: Send + Sync + 'static {
    /// Erases everything stored about a player (GDPR): events, progress, drops, rewards,
    /// receipts, flags, blocks. Events of theirs already read by a consumer (seq up to the
    /// returned one) are skipped by progression. Returns that seq.
    async fn erase_player(&self, player: &PlayerId) -> Result<u64, StoreError>;
    async fn set_block(&self, block: Block) -> Result<(), StoreError>;
    async fn clear_block(&self, player: &PlayerId) -> Result<(), StoreError>;
    async fn blocks(&self) -> Result<Vec<Block>, StoreError>;
    async fn append_audit(&self, entry: AuditEntry) -> Result<(), StoreError>;
    /// The newest entries first.
    async fn audit(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError>;
}

/// What became of a flagged event (`docs/fairness.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FlagStatus {
    /// Held out of progression and leaderboards until an operator decides.
    Quarantined,
    /// Applied, only recorded (`ANOMALY_ACTION=flag`).
    Flagged,
    Released,
    Rejected,
}

impl FlagStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Quarantined => "quarantined",
            Self::Flagged => "flagged",
            Self::Released => "released",
            Self::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Quarantined,
            Self::Flagged,
            Self::Released,
            Self::Rejected,
        ]
        .into_iter()
        .find(|f| f.as_str() == s)
    }

    /// Whether consumers apply an event in this state.
    pub fn applies(self) -> bool {
        matches!(self, Self::Flagged | Self::Released)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlagRecord {
    #[serde(skip)]
    pub seq: u64,
    pub event_id: EventId,
    pub player_id: PlayerId,
    pub metric: String,
    pub value: f64,
    pub rule: String,
    /// Why, in words a reviewer understands.
    pub reason: String,
    pub status: FlagStatus,
    pub flagged_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct FlagFilter {
    pub player: Option<PlayerId>,
    pub status: Option<FlagStatus>,
    pub limit: usize,
    pub offset: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    Release,
    Reject,
}

#[derive(Debug, Clone)]
pub enum ResolveOutcome {
    /// Done. On release the event, now applied to progression in the same transaction; the
    /// boards catch up with it through [`BoardSource::released_after`].
    Resolved {
        flag: FlagRecord,
        event: Option<LoggedEvent>,
    },
    /// The event is not quarantined: it never was, or it is already released or rejected.
    NotQuarantined(FlagRecord),
    NotFound,
}

#[async_trait]
pub trait FairnessStore: Send + Sync + 'static {
    /// Records a batch's flags and moves the fairness cursor, in one transaction.
    async fn record_flags(
        &self,
        consumer: &str,
        flags: Vec<FlagRecord>,
        cursor: u64,
    ) -> Result<(), StoreError>;
    /// For a durable log kept outside the store (JetStream sequences the events, `seq` being
    /// the stream sequence): records the batch's events themselves together with their flags
    /// and the cursor, in one transaction. An event whose `eventId` is already recorded is not
    /// recorded again (nor are its flags). Returns the seqs recorded.
    ///
    /// A store that keeps its own log (SQLite) has nothing to record: the configuration never
    /// pairs it with an outside log, and it answers with an error if asked.
    async fn record_sequenced(
        &self,
        _consumer: &str,
        _events: &[LoggedEvent],
        _flags: Vec<FlagRecord>,
        _cursor: u64,
    ) -> Result<Vec<u64>, StoreError> {
        Err(StoreError::Database(
            "this store keeps its own event log; it does not record an outside one".into(),
        ))
    }
    /// Newest first, with the total matching the filter.
    async fn flags(&self, filter: FlagFilter) -> Result<(Vec<FlagRecord>, u64), StoreError>;
    /// The status of every flag on events up to `upto`, by seq (for rebuilding the detector).
    async fn flag_statuses(&self, upto: u64) -> Result<HashMap<u64, FlagStatus>, StoreError>;
    /// Releases (applying the event to progression in the same transaction, and giving the
    /// release the next release number, see [`BoardSource::released_after`]) or rejects a
    /// quarantined event; exactly once, whoever asks twice.
    async fn resolve(
        &self,
        event_id: &EventId,
        resolution: Resolution,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<ResolveOutcome, StoreError>;
    /// Log events in `(after, upto]` that consumers apply as they pass: unflagged or flagged.
    /// Quarantined and rejected events are held out; a released one is applied by the release
    /// itself (progression in its transaction), never through this view, so it counts once.
    async fn read_decided_after(
        &self,
        after: u64,
        limit: usize,
        upto: u64,
    ) -> Result<Vec<LoggedEvent>, StoreError>;
}

/// A quarantined event an operator released, with its release number: releases are numbered
/// 1, 2, 3... in commit order, so the boards can keep a release cursor beside their log cursor
/// (the log consumer never sees a released event; the release applies it).
#[derive(Debug, Clone)]
pub struct ReleasedEvent {
    pub release: u64,
    pub event: LoggedEvent,
}

/// What the leaderboards are built from: per-player XP sums over a time range, and the
/// released events.
///
/// An event counts on the boards either through the log (unflagged or flagged, up to a log
/// seq) or through its release (up to a release number), never both; a rebuild takes both
/// bounds and the boards keep both cursors.
#[async_trait]
pub trait BoardSource: Send + Sync + 'static {
    /// XP per player of the events received in `[from, to)`: those the log applies with
    /// `seq <= upto`, and every released one.
    async fn xp_by_player(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        upto: u64,
    ) -> Result<Vec<(PlayerId, i64)>, StoreError>;
    /// XP per player on a leaderboard period's board: the events the log applies with
    /// `seq <= upto` and the released ones with a release number `<= released_upto`, received
    /// in the period and after its last operator reset.
    async fn period_xp(
        &self,
        period: &Period,
        upto: u64,
        released_upto: u64,
    ) -> Result<Vec<(PlayerId, i64)>, StoreError>;
    /// The last release number handed out (0 before any). Every release up to it is committed:
    /// read it before the sums it bounds.
    async fn release_head(&self) -> Result<u64, StoreError>;
    /// Released events with a release number above `after`, in release order, at most `limit`.
    async fn released_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<ReleasedEvent>, StoreError>;
    /// The `after_seq` of the period's last operator reset, `None` if it was never reset. A
    /// release applied to the live boards after a reset must leave that period's board alone
    /// when the event is at or below it, as [`period_xp`](Self::period_xp) does in a rebuild.
    async fn reset_after(&self, period: &Period) -> Result<Option<u64>, StoreError>;
    /// Records an operator reset of a period: events up to `after_seq` stop counting on it.
    async fn reset_period(
        &self,
        period: &Period,
        after_seq: u64,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The typed ids serialize as the plain strings the HTTP answers have always carried.
    #[test]
    fn records_with_typed_ids_serialize_ids_as_strings() {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        let flag = FlagRecord {
            seq: 7,
            event_id: EventId::parse("e_1").unwrap(),
            player_id: PlayerId::parse("p_1").unwrap(),
            metric: "deltaXp:a".into(),
            value: 1.0,
            rule: "hard_limit".into(),
            reason: "r".into(),
            status: FlagStatus::Quarantined,
            flagged_at: at,
            resolved_at: None,
            resolved_by: None,
        };
        let json = serde_json::to_value(&flag).unwrap();
        assert_eq!(json["eventId"], "e_1");
        assert_eq!(json["playerId"], "p_1");
        let reward = RewardRecord {
            reward_id: "lvl2".into(),
            item: "gold".into(),
            level: 2,
            granted_at: at,
            event_id: EventId::parse("e_2").unwrap(),
            receipt_id: None,
        };
        assert_eq!(serde_json::to_value(&reward).unwrap()["eventId"], "e_2");
        let entry = ArchivedEntry {
            rank: 1,
            player_id: PlayerId::parse("p_2").unwrap(),
            score: 5,
        };
        let json = serde_json::to_string(&entry).unwrap();
        assert_eq!(json, r#"{"rank":1,"playerId":"p_2","score":5}"#);
        assert_eq!(serde_json::from_str::<ArchivedEntry>(&json).unwrap(), entry);
    }

    #[test]
    fn an_id_that_does_not_parse_is_a_corrupt_row() {
        let err = StoreError::stored_id::<PlayerId>("rewards.player_id", "x".into()).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(m) if m.starts_with("rewards.player_id: ")));
    }
}
