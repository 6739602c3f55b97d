//! [`RedisRateLimits`]: GCRA in one Lua script (`lua/gcra.lua`), so every gateway shares one
//! bucket per key.
//!
//! The key holds the bucket's theoretical arrival time (TAT) in microseconds; the time is
//! Redis's own `TIME`, so gateways with skewed clocks still agree. A request is allowed when
//! `max(TAT, now) + T - N*T <= now` (T = period / N), i.e. a burst of N refilled at N per
//! period, exactly like `governor`. The key expires when the bucket is full again, so idle
//! clients cost nothing.

use std::time::Duration;

use async_trait::async_trait;
use redis::Script;

use super::RedisConn;
use crate::error::HotStateError;
use crate::rate_limit::{Quota, RateLimits};

/// GCRA as a Lua function (`lua/gcra.lua`), prepended to this script and the player gate's
/// (`super::gate`).
pub(super) const GCRA_FN: &str = include_str!("lua/gcra.lua");

/// One request against one bucket (`lua/rate_limit.lua`).
const GCRA_CALL: &str = include_str!("lua/rate_limit.lua");

/// The key prefix of the limit named `name`; the limited key (an IP, a player) follows.
pub(super) fn limit_prefix(namespace: &str, name: &str) -> String {
    format!("{namespace}:rl:{name}:")
}

/// GCRA's emission interval in whole microseconds (at least 1), as the scripts take it.
pub(super) fn interval_us(q: &Quota) -> u64 {
    (q.interval().as_micros() as u64).max(1)
}

pub struct RedisRateLimits {
    conn: RedisConn,
    /// `<ns>:rl:<name>:`; the limited key (an IP, a player) follows.
    prefix: String,
    /// `None`: disabled, nothing is sent.
    quota: Option<Quota>,
    script: Script,
}

impl RedisRateLimits {
    pub(crate) fn new(conn: RedisConn, namespace: &str, name: &str, quota: Option<Quota>) -> Self {
        Self {
            conn,
            prefix: limit_prefix(namespace, name),
            quota,
            script: Script::new(&format!("{GCRA_FN}{GCRA_CALL}")),
        }
    }
}

#[async_trait]
impl RateLimits for RedisRateLimits {
    async fn check(&self, key: &str) -> Result<Option<Duration>, HotStateError> {
        let Some(q) = self.quota else {
            return Ok(None);
        };
        let (allowed, wait_us): (i64, i64) = self
            .conn
            .script(
                self.script
                    .key(format!("{}{key}", self.prefix))
                    .arg(interval_us(&q))
                    .arg(q.max.get()),
            )
            .await?;
        Ok((allowed == 0).then(|| Duration::from_micros(wait_us.max(1) as u64)))
    }
}
