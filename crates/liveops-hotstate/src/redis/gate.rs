//! [`RedisPlayerGate`]: the block and the flood bucket of a player in one script on one Redis
//! node (`lua/admit.lua`), one command per event rather than two. The keys are those of [`super::RedisBlockList`]
//! and of the `flood` [`super::RedisRateLimits`], so blocks set, cleared and pruned through the
//! block list hold here at once. A Redis Cluster keeps the two in different slots; there the
//! gate is a [`crate::memory::SeparateGate`] over those two (see [`super::RedisHotState::player_gate`]).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use liveops_domain::{Clock, PlayerId};
use redis::Script;

use super::blocks::decode;
use super::rate_limit::{interval_us, GCRA_FN};
use super::RedisConn;
use crate::blocks::holds;
use crate::error::HotStateError;
use crate::gate::{Admission, PlayerGate};
use crate::rate_limit::Quota;

/// The block read and the flood draw (`lua/admit.lua`), appended to the GCRA function.
const ADMIT_CALL: &str = include_str!("lua/admit.lua");

pub struct RedisPlayerGate {
    conn: RedisConn,
    /// `<ns>:rl:flood:`; the player follows.
    flood_prefix: String,
    blocks_key: String,
    /// `None`: no flood limit, only the block is read.
    quota: Option<Quota>,
    /// Judges block expiry, like the block list.
    clock: Arc<dyn Clock>,
    script: Script,
}

impl RedisPlayerGate {
    pub(crate) fn new(
        conn: RedisConn,
        flood_prefix: String,
        blocks_key: String,
        quota: Option<Quota>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            conn,
            flood_prefix,
            blocks_key,
            quota,
            clock,
            script: Script::new(&format!("{GCRA_FN}{ADMIT_CALL}")),
        }
    }
}

#[async_trait]
impl PlayerGate for RedisPlayerGate {
    async fn admit(&self, player: &PlayerId) -> Result<Admission, HotStateError> {
        let (interval, burst) = self
            .quota
            .map_or((1, 0), |q| (interval_us(&q), q.max.get()));
        let (allowed, wait_us, block): (i64, i64, Option<String>) = self
            .conn
            .script(
                self.script
                    .key(format!("{}{}", self.flood_prefix, player.as_str()))
                    .key(&self.blocks_key)
                    .arg(interval)
                    .arg(burst)
                    .arg(player.as_str()),
            )
            .await?;
        let blocked = match block {
            Some(v) => Some(decode(&v)?).filter(|until| holds(*until, self.clock.now())),
            None => None,
        };
        Ok(Admission {
            blocked,
            flood_wait: (allowed == 0).then(|| Duration::from_micros(wait_us.max(1) as u64)),
        })
    }
}
