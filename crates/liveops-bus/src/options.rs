//! [`NatsOptions`]: how the event log's stream and connection are set up, and the name rule
//! shared by the log and the role consumers (names become parts of JetStream stream, subject
//! and consumer names).

use std::time::Duration;

use crate::BusError;

/// How the log's stream and connection are set up. [`Default`] gives the documented defaults.
#[derive(Debug, Clone)]
pub struct NatsOptions {
    /// JetStream drops a message whose `Nats-Msg-Id` (eventId) it stored within this window.
    /// The integrator sets it from `IDEMP_TTL`; default 10 minutes. Longer costs server memory
    /// (one id per message in the window).
    pub duplicate_window: Duration,
    /// Messages older than this are removed from the stream (limits retention); default 7 days.
    pub max_age: Duration,
    /// Stream replicas (1 on a single server, 3 in a cluster).
    pub replicas: usize,
    /// The longest an append waits for its PubAck, and the timeout of every JetStream request.
    pub request_timeout: Duration,
    /// The longest the first connection attempt waits.
    pub connect_timeout: Duration,
    /// How often the stream's last sequence is polled, so [`EventLog::committed`] sees other
    /// processes' appends (own appends are seen at once).
    pub head_poll_interval: Duration,
    /// The cap of the reconnect backoff after a lost connection.
    pub max_reconnect_delay: Duration,
}

impl Default for NatsOptions {
    fn default() -> Self {
        Self {
            duplicate_window: Duration::from_secs(600),
            max_age: Duration::from_secs(7 * 24 * 3600),
            replicas: 1,
            request_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(2),
            head_poll_interval: Duration::from_millis(20),
            max_reconnect_delay: Duration::from_secs(1),
        }
    }
}

impl NatsOptions {
    pub(crate) fn validate(&self) -> Result<(), BusError> {
        let bad = |m: String| Err(BusError::InvalidOptions(m));
        if self.duplicate_window.is_zero() || self.duplicate_window > self.max_age {
            return bad(format!(
                "duplicate window {:?} must be > 0 and at most the retention {:?}",
                self.duplicate_window, self.max_age
            ));
        }
        if self.replicas == 0 || self.replicas > 5 {
            return bad(format!("replicas must be 1..=5, got {}", self.replicas));
        }
        for (name, d) in [
            ("request timeout", self.request_timeout),
            ("connect timeout", self.connect_timeout),
            ("head poll interval", self.head_poll_interval),
        ] {
            if d.is_zero() {
                return bad(format!("{name} must be > 0"));
            }
        }
        Ok(())
    }
}

/// Checks a namespace or role name: it becomes part of stream, subject and consumer names.
pub(crate) fn check_name(kind: &str, name: &str) -> Result<(), BusError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(BusError::InvalidName {
            name: name.to_owned(),
            reason: format!(
                "a {kind} must be 1 to 64 characters of A-Z, a-z, 0-9, '_' and '-': it becomes \
                 part of JetStream stream and consumer names, which cannot hold '.', '*', '>' \
                 or whitespace"
            ),
        })
    }
}
