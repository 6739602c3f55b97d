//! The Redis implementations of the hot-state ports, for one node or a Redis Cluster.
//!
//! - [`RedisHotState::connect`]: one connection (reconnecting by itself) shared by all of them;
//!   a `REDIS_URL` holding a comma-separated list of node URLs means a cluster.
//! - [`RedisLeaderboards`], [`RedisIdempotencyKeys`], [`RedisRateLimits`], [`RedisBlockList`],
//!   and [`RedisPlayerGate`] (a player's block and flood bucket in one script).
//! - `lua/`: the scripts, one `.lua` file each, with a header saying what it does, its KEYS and
//!   its ARGV.
//!
//! Every key starts with the namespace (`NAMESPACE`), inside a hash tag where several keys must
//! share a cluster slot: `{<ns>:lb}:...` for the boards, `{<ns>}:blocks`, and plain
//! `<ns>:idem:...`, `<ns>:rl:...` for the single-key guards so they spread over the cluster.
//! Every command sent is counted in `redis_operations_total`, and every request is bounded by
//! [`REQUEST_TIMEOUT`], so a dead Redis turns into [`HotStateError::Unavailable`] in about a
//! second (the gateway answers 503 with `Retry-After`) rather than a hung request.

mod blocks;
mod gate;
mod idempotency;
mod leaderboards;
mod rate_limit;

use std::sync::Arc;
use std::time::Duration;

use liveops_domain::window::{Calendar, Window};
use liveops_domain::Clock;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

pub use blocks::RedisBlockList;
pub use gate::RedisPlayerGate;
pub use idempotency::RedisIdempotencyKeys;
pub use leaderboards::RedisLeaderboards;
pub use rate_limit::RedisRateLimits;

use crate::error::HotStateError;
use crate::gate::PlayerGate;
use crate::memory::SeparateGate;
use crate::rate_limit::Quota;

/// The longest any one request (a command, a pipeline, a script) may take, including a
/// reconnect. Long enough for a 5000-member ZADD on a busy node, short enough that a client
/// waiting on a 503 is not left hanging.
pub const REQUEST_TIMEOUT: Duration = Duration::from_millis(1500);
/// How long connecting to a node may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Clone)]
enum Inner {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

/// A cheap-to-clone handle on the shared connection; counts and times out every request.
#[derive(Clone)]
pub(crate) struct RedisConn {
    inner: Inner,
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        metrics::counter!("redis_operations_total").increment(1);
        let fut = match &mut self.inner {
            Inner::Single(c) => c.req_packed_command(cmd),
            Inner::Cluster(c) => c.req_packed_command(cmd),
        };
        Box::pin(bounded(fut))
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        metrics::counter!("redis_operations_total").increment(cmd.len() as u64);
        let fut = match &mut self.inner {
            Inner::Single(c) => c.req_packed_commands(cmd, offset, count),
            Inner::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        };
        Box::pin(bounded(fut))
    }

    fn get_db(&self) -> i64 {
        match &self.inner {
            Inner::Single(c) => c.get_db(),
            Inner::Cluster(c) => c.get_db(),
        }
    }
}

async fn bounded<T>(
    fut: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> redis::RedisResult<T> {
    match tokio::time::timeout(REQUEST_TIMEOUT, fut).await {
        Ok(r) => r,
        Err(_) => Err(redis::RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer from Redis within {REQUEST_TIMEOUT:?}"),
        ))),
    }
}

impl RedisConn {
    pub(crate) async fn query<T: redis::FromRedisValue>(
        &self,
        cmd: &Cmd,
    ) -> Result<T, HotStateError> {
        let mut c = self.clone();
        Ok(cmd.query_async(&mut c).await?)
    }

    pub(crate) async fn pipe<T: redis::FromRedisValue>(
        &self,
        p: &Pipeline,
    ) -> Result<T, HotStateError> {
        let mut c = self.clone();
        Ok(p.query_async(&mut c).await?)
    }

    pub(crate) async fn script<T: redis::FromRedisValue>(
        &self,
        inv: &redis::ScriptInvocation<'_>,
    ) -> Result<T, HotStateError> {
        let mut c = self.clone();
        Ok(inv.invoke_async(&mut c).await?)
    }
}

/// The connection to Redis (one node or a cluster) and the namespace; builds the four
/// hot-state implementations on it.
#[derive(Clone)]
pub struct RedisHotState {
    conn: RedisConn,
    namespace: String,
}

/// Checks `NAMESPACE`: it goes into key names, hash tags and SCAN patterns, so it is kept to
/// characters that mean nothing to any of them.
pub fn check_namespace(namespace: &str) -> Result<(), HotStateError> {
    if liveops_domain::ids::is_valid_namespace(namespace) {
        Ok(())
    } else {
        Err(HotStateError::Config(format!(
            "NAMESPACE must be {}, got {namespace:?}",
            liveops_domain::ids::NAMESPACE_RULE
        )))
    }
}

impl RedisHotState {
    /// Connects to `url`: `redis://host:port[/db]`, or a comma-separated list of node URLs for
    /// a Redis Cluster. Fails quickly with [`HotStateError::Unavailable`] when nothing answers.
    /// The connection reconnects by itself afterwards.
    pub async fn connect(url: &str, namespace: &str) -> Result<RedisHotState, HotStateError> {
        check_namespace(namespace)?;
        let nodes: Vec<&str> = url
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .collect();
        let bad = |e: redis::RedisError| HotStateError::Config(format!("REDIS_URL: {e}"));
        let inner = match nodes.as_slice() {
            [] => return Err(HotStateError::Config("REDIS_URL is empty".into())),
            [one] => {
                let client = redis::Client::open(*one).map_err(bad)?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(CONNECT_TIMEOUT)
                    .set_response_timeout(REQUEST_TIMEOUT)
                    .set_number_of_retries(1)
                    .set_max_delay(200);
                let manager = tokio::time::timeout(
                    REQUEST_TIMEOUT * 2,
                    ConnectionManager::new_with_config(client, config),
                )
                .await
                .map_err(|_| HotStateError::Unavailable(format!("no answer from {one}")))??;
                Inner::Single(manager)
            }
            many => {
                let client = redis::cluster::ClusterClientBuilder::new(many.to_vec())
                    .connection_timeout(CONNECT_TIMEOUT)
                    .response_timeout(REQUEST_TIMEOUT)
                    .retries(2)
                    .build()
                    .map_err(bad)?;
                let conn = tokio::time::timeout(REQUEST_TIMEOUT * 2, client.get_async_connection())
                    .await
                    .map_err(|_| HotStateError::Unavailable(format!("no answer from {url}")))??;
                Inner::Cluster(conn)
            }
        };
        let state = RedisHotState {
            conn: RedisConn { inner },
            namespace: namespace.to_string(),
        };
        state.ping().await?;
        Ok(state)
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self.conn.inner, Inner::Cluster(_))
    }

    /// One round trip (for `/readyz`).
    pub async fn ping(&self) -> Result<(), HotStateError> {
        let pong: String = self.conn.query(&redis::cmd("PING")).await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(HotStateError::Backend(format!("PING answered {pong:?}")))
        }
    }

    pub fn leaderboards(&self, calendar: Calendar, windows: Vec<Window>) -> RedisLeaderboards {
        RedisLeaderboards::new(self.conn.clone(), &self.namespace, calendar, windows)
    }

    /// Idempotency keys living `ttl` (`IDEMP_TTL`).
    pub fn idempotency(&self, ttl: Duration) -> RedisIdempotencyKeys {
        RedisIdempotencyKeys::new(self.conn.clone(), &self.namespace, ttl)
    }

    /// One limit named `name` (a key prefix, e.g. `ip`, `flood`, `session`); `None` disables it.
    pub fn rate_limits(&self, name: &str, quota: Option<Quota>) -> RedisRateLimits {
        RedisRateLimits::new(self.conn.clone(), &self.namespace, name, quota)
    }

    /// The block list; expiry is judged with `clock`.
    pub fn block_list(&self, clock: Arc<dyn Clock>) -> RedisBlockList {
        RedisBlockList::new(self.conn.clone(), &self.namespace, clock)
    }

    /// The gateway's per-event gate: a player's block and their `flood` limit (`quota`, `None`
    /// disables it), on the keys of [`Self::block_list`] and `rate_limits("flood", ..)`. One
    /// script on a single node; on a cluster the two live in different slots, so they are
    /// asked separately (at once).
    pub fn player_gate(&self, quota: Option<Quota>, clock: Arc<dyn Clock>) -> Arc<dyn PlayerGate> {
        if self.is_cluster() {
            return Arc::new(SeparateGate::new(
                Arc::new(self.block_list(clock)),
                Arc::new(self.rate_limits("flood", quota)),
            ));
        }
        Arc::new(RedisPlayerGate::new(
            self.conn.clone(),
            rate_limit::limit_prefix(&self.namespace, "flood"),
            blocks::blocks_key(&self.namespace),
            quota,
            clock,
        ))
    }

    /// Deletes every key of this namespace (tests, `liveops` maintenance). Single node only:
    /// SCAN walks one node's keyspace. Returns how many keys were deleted.
    pub async fn delete_namespace(&self) -> Result<u64, HotStateError> {
        if self.is_cluster() {
            return Err(HotStateError::Config(
                "deleting a namespace is only supported on a single Redis node".into(),
            ));
        }
        let ns = &self.namespace;
        let mut deleted = 0u64;
        // The patterns of every key family (see the module doc).
        for pattern in [
            format!("{ns}:*"),
            format!("{{{ns}}}:*"),
            format!("{{{ns}:*"),
        ] {
            let mut cursor: u64 = 0;
            loop {
                let (next, keys): (u64, Vec<String>) = self
                    .conn
                    .query(
                        redis::cmd("SCAN")
                            .arg(cursor)
                            .arg("MATCH")
                            .arg(&pattern)
                            .arg("COUNT")
                            .arg(1000),
                    )
                    .await?;
                if !keys.is_empty() {
                    deleted += self
                        .conn
                        .query::<u64>(redis::cmd("UNLINK").arg(&keys))
                        .await?;
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(deleted)
    }
}
