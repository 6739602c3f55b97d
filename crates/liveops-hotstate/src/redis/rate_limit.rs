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

/// KEYS: the bucket. ARGV: T (microseconds), N. Returns {1, 0} allowed or {0, wait in us}.
const GCRA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - burst * interval
if allow_at > now then return {0, allow_at - now} end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, 0}
"#;

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
            prefix: format!("{namespace}:rl:{name}:"),
            quota,
            script: Script::new(GCRA),
        }
    }
}

#[async_trait]
impl RateLimits for RedisRateLimits {
    async fn check(&self, key: &str) -> Result<Option<Duration>, HotStateError> {
        let Some(q) = self.quota else {
            return Ok(None);
        };
        let interval_us = (q.interval().as_micros() as u64).max(1);
        let (allowed, wait_us): (i64, i64) = self
            .conn
            .script(
                self.script
                    .key(format!("{}{key}", self.prefix))
                    .arg(interval_us)
                    .arg(q.max.get()),
            )
            .await?;
        Ok((allowed == 0).then(|| Duration::from_micros(wait_us.max(1) as u64)))
    }
}
