//! Identifiers, parsed once at the edge: a `PlayerId` in hand is always valid (`docs/api.md`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// 3 to 50 characters of `[A-Za-z0-9_]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PlayerId(String);

impl PlayerId {
    pub const MIN_LEN: usize = 3;
    pub const MAX_LEN: usize = 50;

    pub fn parse(s: impl Into<String>) -> Result<Self, String> {
        let s = s.into();
        if s.len() < Self::MIN_LEN || s.len() > Self::MAX_LEN {
            return Err(format!(
                "must be {} to {} characters, got {}",
                Self::MIN_LEN,
                Self::MAX_LEN,
                s.chars().count()
            ));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
        {
            return Err(format!("may only contain A-Z, a-z, 0-9 and _, found {c:?}"));
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PlayerId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(s)
    }
}

impl From<PlayerId> for String {
    fn from(p: PlayerId) -> String {
        p.0
    }
}

impl fmt::Display for PlayerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Up to 64 characters of `[A-Za-z0-9_.:-]`; assigned by the server (UUIDv7) when absent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventId(String);

impl EventId {
    pub const MAX_LEN: usize = 64;

    pub fn parse(s: impl Into<String>) -> Result<Self, String> {
        let s = s.into();
        if s.is_empty() || s.len() > Self::MAX_LEN {
            return Err(format!(
                "must be 1 to {} characters, got {}",
                Self::MAX_LEN,
                s.chars().count()
            ));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-')))
        {
            return Err(format!(
                "may only contain A-Z, a-z, 0-9 and _ . : -, found {c:?}"
            ));
        }
        Ok(Self(s))
    }

    /// A fresh server-assigned id: UUIDv7, so ids sort by creation time.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EventId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(s)
    }
}

impl From<EventId> for String {
    fn from(e: EventId) -> String {
        e.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The rule for `NAMESPACE`, the prefix of a deployment's Redis keys (and of its NATS names):
/// 1 to 64 characters of `[A-Za-z0-9_.-]`. One rule for the configuration and the Redis adapter.
pub const NAMESPACE_RULE: &str = "1 to 64 characters of A-Z, a-z, 0-9, _, - and .";

/// Whether `s` follows [`NAMESPACE_RULE`].
pub fn is_valid_namespace(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn player_id_bounds_and_alphabet() {
        assert!(PlayerId::parse("abc").is_ok());
        assert!(PlayerId::parse("ab").is_err());
        assert!(PlayerId::parse("a".repeat(50)).is_ok());
        assert!(PlayerId::parse("a".repeat(51)).is_err());
        assert!(PlayerId::parse("player-1").is_err());
        assert!(PlayerId::parse("player_1").is_ok());
    }

    #[test]
    fn event_id_bounds_and_alphabet() {
        assert!(EventId::parse("a.b:c-d_e").is_ok());
        assert!(EventId::parse("").is_err());
        assert!(EventId::parse("x".repeat(65)).is_err());
        assert!(EventId::parse("a b").is_err());
        assert!(EventId::parse(EventId::generate().to_string()).is_ok());
    }
}
