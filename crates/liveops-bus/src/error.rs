//! [`BusError`]: what can go wrong talking to JetStream, and how it maps onto the store's
//! error for code that only knows [`liveops_store::EventLog`].

use liveops_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// A namespace or role name that cannot be part of a stream, subject or consumer name.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName { name: String, reason: String },
    /// Options that contradict each other (e.g. a duplicate window longer than the retention).
    #[error("invalid bus options: {0}")]
    InvalidOptions(String),
    /// The first connection failed. Start-up fails fast rather than waiting for NATS: the
    /// process supervisor restarts us, and a gateway that cannot append must not look ready.
    #[error("cannot connect to nats at {url}: {reason}")]
    Connect { url: String, reason: String },
    /// NATS is unreachable or did not answer in time (no ack, timeout, disconnected). Transient:
    /// the client reconnects by itself and the same call may succeed later.
    #[error("nats unavailable: {0}")]
    Unavailable(String),
    /// JetStream answered with an error (stream or consumer missing, bad configuration).
    #[error("jetstream error: {0}")]
    JetStream(String),
    /// A role consumer's cursor is past the stream's last sequence: the stream was deleted or
    /// replaced since the cursor was committed, so its sequences no longer mean the same events.
    /// Starting anyway would silently skip events; an operator must decide.
    #[error("cursor {cursor} of consumer {consumer} is past the stream's last sequence {last}: the stream was recreated")]
    CursorAhead {
        consumer: String,
        cursor: u64,
        last: u64,
    },
    /// A stored message that is not a valid event record of a version this build reads.
    #[error("undecodable message at seq {seq}: {reason}")]
    Decode { seq: u64, reason: String },
    /// An event that cannot be encoded (never expected: events are validated before).
    #[error("cannot encode event: {0}")]
    Encode(String),
}

impl BusError {
    pub(crate) fn unavailable(what: &str, e: impl std::fmt::Display) -> Self {
        Self::Unavailable(format!("{what}: {e}"))
    }
}

impl From<BusError> for StoreError {
    /// Everything that can heal by itself or by an operator fixing NATS is `Unavailable` (the
    /// gateway answers 503 and consumers retry); an undecodable record is `Corrupt`, like a bad
    /// row in SQLite.
    fn from(e: BusError) -> Self {
        match e {
            BusError::Decode { .. } | BusError::Encode(_) => StoreError::Corrupt(e.to_string()),
            other => StoreError::Unavailable(other.to_string()),
        }
    }
}
