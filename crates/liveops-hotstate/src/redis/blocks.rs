//! [`RedisBlockList`]: one hash `{<ns>}:blocks`, player -> end of the block in unix ms, or
//! `forever` until an operator unblocks. Expiry is judged with the injected clock (the same
//! one that set the block), and `prune` deletes expired entries in one script
//! (`lua/blocks_prune.lua`); `load` replaces the hash in one (`lua/blocks_load.lua`).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use liveops_domain::{Clock, PlayerId};
use redis::Script;

use super::RedisConn;
use crate::blocks::{holds, BlockList, Until};
use crate::error::HotStateError;

const FOREVER: &str = "forever";

/// The hash of blocks, shared with the player gate's script.
pub(super) fn blocks_key(namespace: &str) -> String {
    format!("{{{namespace}}}:blocks")
}

pub struct RedisBlockList {
    conn: RedisConn,
    key: String,
    clock: Arc<dyn Clock>,
    load: Script,
    prune: Script,
}

fn encode(until: Until) -> String {
    until.map_or_else(|| FOREVER.to_string(), |t| t.timestamp_millis().to_string())
}

/// A stored block end (`forever` or unix ms), as the gate's script reads it too.
pub(super) fn decode(v: &str) -> Result<Until, HotStateError> {
    if v == FOREVER {
        return Ok(None);
    }
    v.parse::<i64>()
        .ok()
        .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
        .map(Some)
        .ok_or_else(|| HotStateError::Corrupt(format!("block end {v:?}")))
}

impl RedisBlockList {
    pub(crate) fn new(conn: RedisConn, namespace: &str, clock: Arc<dyn Clock>) -> Self {
        Self {
            conn,
            key: blocks_key(namespace),
            clock,
            load: Script::new(include_str!("lua/blocks_load.lua")),
            prune: Script::new(include_str!("lua/blocks_prune.lua")),
        }
    }
}

#[async_trait]
impl BlockList for RedisBlockList {
    async fn blocked(&self, player: &PlayerId) -> Result<Option<Until>, HotStateError> {
        let v: Option<String> = self
            .conn
            .query(redis::cmd("HGET").arg(&self.key).arg(player.as_str()))
            .await?;
        let Some(v) = v else {
            return Ok(None);
        };
        let until = decode(&v)?;
        Ok(holds(until, self.clock.now()).then_some(until))
    }

    async fn set(&self, player: &PlayerId, until: Until) -> Result<(), HotStateError> {
        self.conn
            .query(
                redis::cmd("HSET")
                    .arg(&self.key)
                    .arg(player.as_str())
                    .arg(encode(until)),
            )
            .await
    }

    async fn clear(&self, player: &PlayerId) -> Result<(), HotStateError> {
        self.conn
            .query(redis::cmd("HDEL").arg(&self.key).arg(player.as_str()))
            .await
    }

    async fn load(&self, blocks: Vec<(PlayerId, Until)>) -> Result<(), HotStateError> {
        let now = self.clock.now();
        let mut inv = self.load.key(&self.key);
        for (player, until) in blocks.into_iter().filter(|(_, u)| holds(*u, now)) {
            inv.arg(player.as_str()).arg(encode(until));
        }
        self.conn.script::<i64>(&inv).await?;
        Ok(())
    }

    async fn prune(&self) -> Result<(), HotStateError> {
        let now = self.clock.now().timestamp_millis();
        self.conn
            .script::<i64>(self.prune.key(&self.key).arg(now))
            .await?;
        Ok(())
    }
}
