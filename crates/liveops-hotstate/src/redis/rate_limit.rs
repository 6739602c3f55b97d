//! [`RedisRateLimits`]: GCRA in one Lua script, so every gateway shares one bucket per key.
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

/// GCRA as a Lua function, shared by this script and the player gate's
/// (`super::gate`): `gcra(key, T in microseconds, N)` returns {1, 0} allowed or {0, wait in us}.
pub(super) const GCRA_FN: &str = r#"
local function gcra(key, interval, burst)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local new_tat = tat + interval
  local allow_at = new_tat - burst * interval
  if allow_at > now then return {0, allow_at - now} end
  redis.call('SET', key, string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
  return {1, 0}
end
"#;

/// KEYS: the bucket. ARGV: T (microseconds), N.
const GCRA_CALL: &str = "return gcra(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))";

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
