//! Helpers for tests that need a Redis (this crate's and the server's).
//!
//! The engine-missing rule ([`engine_missing`]): when Redis is unreachable and `CI=true`, a test
//! that needs it fails; otherwise it writes a skip notice to the terminal and returns early.
//! The URL comes from `LIVEOPS_TEST_REDIS` (default `redis://127.0.0.1:6379`). Each test gets its
//! own namespace, so parallel runs never see each other's keys, and deletes it afterwards.

use crate::redis::RedisHotState;

/// The Redis the tests use.
pub fn redis_url() -> String {
    std::env::var("LIVEOPS_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A namespace no other test run uses: `lotest_<pid>_<counter>_<nanos>`.
pub fn unique_namespace() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "lotest_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Applies the engine-missing rule to `engine` being unreachable because of `why`: panics
/// under `CI=true`, else writes `SKIPPED <test>: ...; to run it: ...` to the process's stderr
/// (libtest captures a passing test's `eprintln!`, which would hide the skip) and returns, so
/// the caller skips. The same rule and wording as `liveops_store::testing::skip_or_fail`, which
/// this crate cannot reach (it does not depend on the store).
pub fn engine_missing(engine: &str, why: &dyn std::fmt::Display) {
    use std::io::Write;
    const ENABLE: &str = "`.ci/engines` (installs and starts PostgreSQL, Redis and NATS \
                          JetStream on 127.0.0.1), or point LIVEOPS_TEST_REDIS at a running Redis";
    let current = std::thread::current();
    let test = current.name().unwrap_or("a test");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test} cannot run under CI=true: {engine} is not reachable ({why}); to run it: {ENABLE}");
    }
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {engine} is not reachable ({why}); to run it: {ENABLE}"
    );
}

/// A connection to the test Redis in a fresh namespace, or `None` (after the engine-missing
/// rule) when Redis is unreachable.
pub async fn redis_or_skip() -> Option<RedisHotState> {
    let url = redis_url();
    match RedisHotState::connect(&url, &unique_namespace()).await {
        Ok(r) => Some(r),
        Err(e) => {
            engine_missing(&format!("Redis at {url}"), &e);
            None
        }
    }
}

/// Deletes every key of a namespace when dropped, also when the test panicked (a blocking
/// connection, since `Drop` cannot await). Single node only, like
/// [`RedisHotState::delete_namespace`].
pub struct WipeOnDrop {
    pub url: String,
    pub namespace: String,
}

impl WipeOnDrop {
    pub fn new(state: &RedisHotState) -> Self {
        Self {
            url: redis_url(),
            namespace: state.namespace().to_string(),
        }
    }

    /// Deletes the namespace's keys now; returns how many there were.
    pub fn wipe(&self) -> redis::RedisResult<u64> {
        let client = redis::Client::open(self.url.as_str())?;
        let mut conn = client.get_connection_with_timeout(std::time::Duration::from_secs(2))?;
        let ns = &self.namespace;
        let mut deleted = 0;
        for pattern in [
            format!("{ns}:*"),
            format!("{{{ns}}}:*"),
            format!("{{{ns}:*"),
        ] {
            // SCAN, not KEYS: the shared database may be large.
            let keys: Vec<String> =
                redis::Commands::scan_match::<_, String>(&mut conn, &pattern)?.collect();
            if !keys.is_empty() {
                deleted += redis::cmd("DEL").arg(&keys).query::<u64>(&mut conn)?;
            }
        }
        Ok(deleted)
    }
}

impl Drop for WipeOnDrop {
    fn drop(&mut self) {
        if let Err(e) = self.wipe() {
            eprintln!(
                "could not delete the test namespace {}: {e}",
                self.namespace
            );
        }
    }
}
