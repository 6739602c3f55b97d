//! [`RedisIdempotencyKeys`]: `SET <ns>:idem:<key> <value> NX PX <IDEMP_TTL>` reserves a key;
//! when it is taken, GET tells a replay (same body hash) from a conflict. The value is the hex
//! SHA-256 of the body, `|`, then the recorded eventIds separated by `,` (`~` for a refused
//! position); neither character can occur in an eventId (`docs/api.md`).

use std::time::Duration;

use async_trait::async_trait;
use liveops_domain::EventId;

use super::RedisConn;
use crate::error::HotStateError;
use crate::idempotency::{body_hash, IdempotencyKeys, Lookup, Recorded};

pub struct RedisIdempotencyKeys {
    conn: RedisConn,
    /// `<ns>:idem:`; the client's key follows. Not hash-tagged: keys spread over the cluster.
    prefix: String,
    ttl_ms: u64,
}

fn encode(hash: &[u8; 32], recorded: &Recorded) -> String {
    let ids: Vec<&str> = recorded
        .0
        .iter()
        .map(|id| id.as_ref().map_or("~", EventId::as_str))
        .collect();
    format!("{}|{}", hex::encode(hash), ids.join(","))
}

/// The stored hash and the recorded ids.
fn decode(value: &str) -> Result<(String, Recorded), HotStateError> {
    let (hash, ids) = value
        .split_once('|')
        .ok_or_else(|| HotStateError::Corrupt(format!("idempotency value {value:?}")))?;
    if ids.is_empty() {
        return Ok((hash.to_string(), Recorded(Vec::new())));
    }
    let ids = ids
        .split(',')
        .map(|id| match id {
            "~" => Ok(None),
            id => EventId::parse(id)
                .map(Some)
                .map_err(|e| HotStateError::Corrupt(format!("recorded eventId: {e}"))),
        })
        .collect::<Result<_, _>>()?;
    Ok((hash.to_string(), Recorded(ids)))
}

impl RedisIdempotencyKeys {
    pub(crate) fn new(conn: RedisConn, namespace: &str, ttl: Duration) -> Self {
        Self {
            conn,
            prefix: format!("{namespace}:idem:"),
            // PX 0 is refused by Redis: a zero TTL still lives a millisecond.
            ttl_ms: (ttl.as_millis() as u64).max(1),
        }
    }
}

#[async_trait]
impl IdempotencyKeys for RedisIdempotencyKeys {
    async fn check_and_reserve(
        &self,
        key: &str,
        body: &[u8],
        recorded: Recorded,
    ) -> Result<Lookup, HotStateError> {
        let hash = body_hash(body);
        let redis_key = format!("{}{key}", self.prefix);
        let value = encode(&hash, &recorded);
        // A key that expires between the SET and the GET is simply fresh again: retry.
        for _ in 0..3 {
            let set: Option<String> = self
                .conn
                .query(
                    redis::cmd("SET")
                        .arg(&redis_key)
                        .arg(&value)
                        .arg("NX")
                        .arg("PX")
                        .arg(self.ttl_ms),
                )
                .await?;
            if set.is_some() {
                return Ok(Lookup::Fresh);
            }
            let existing: Option<String> =
                self.conn.query(redis::cmd("GET").arg(&redis_key)).await?;
            if let Some(existing) = existing {
                let (stored, ids) = decode(&existing)?;
                return Ok(if stored == hex::encode(hash) {
                    Lookup::Replay(ids)
                } else {
                    Lookup::Conflict
                });
            }
        }
        Err(HotStateError::Backend(format!(
            "idempotency key {key:?} kept expiring while being reserved"
        )))
    }

    async fn release(&self, key: &str) -> Result<(), HotStateError> {
        self.conn
            .query(redis::cmd("DEL").arg(format!("{}{key}", self.prefix)))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        let hash = body_hash(b"x");
        for ids in [
            vec![],
            vec![None],
            vec![Some(EventId::parse("a-1:b.c").expect("valid")), None],
        ] {
            let rec = Recorded(ids);
            let (h, back) = decode(&encode(&hash, &rec)).expect("decodes");
            assert_eq!((h, back), (hex::encode(hash), rec));
        }
        assert!(decode("no-bar").is_err());
    }
}
