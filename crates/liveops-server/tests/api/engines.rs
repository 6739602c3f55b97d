//! The API tests on PostgreSQL + Redis + NATS JetStream: one contract suite, two deployments.
//!
//! Every test of the suite carries `#[api_test]` (the `liveops-test-macros` crate), which turns
//! `async fn <name>()` into two tests, `<name>::embedded` and `<name>::on_engines`; a test that
//! cannot mean the same on both says why in `#[api_test(not_on_engines = "...")]` and runs once
//! as `<name>`. [`every_api_test_runs_on_both_deployments_or_says_why`] fails when a test of the
//! suite bypasses the attribute. Filter with `on_engines`, or skip them with `--skip on_engines`.
//!
//! [`engines`] runs one test with an engine run active on its thread; while it is, `spawn_with`
//! (helpers.rs) puts each app on the engines instead of SQLite and memory. The engine resources
//! follow the test's data dir, which is what a test already uses to say "the same deployment":
//! a fresh data dir gets a fresh database, Redis namespace and JetStream stream, and a restart
//! that passes the old data dir back gets the same ones again. Everything is removed when the
//! test ends, also when it panics (the guards drop during unwinding, after the test's runtime,
//! and with it the servers, has shut down).
//!
//! [`block_on`] builds each test's runtime on the calling thread, so a thread-local set here is
//! seen by `spawn_with` inside it.

use std::cell::RefCell;
use std::future::Future;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use liveops_bus::testing::{nats_url, TestBus};
use liveops_hotstate::testing::{redis_url, WipeOnDrop};
use liveops_server::config::{Bus, Database, Secret};
use liveops_server::Config;
use liveops_store::testing::{temp_postgres, TempPostgres, DEFAULT_TEST_PG};

/// PostgreSQL connections per app: a test app needs few, and several test binaries of several
/// engineers share one server (`max_connections` 100).
const POOL_PER_APP: u32 = 6;

/// The engines of one deployment (one data dir). Fields drop in order: Redis keys, the
/// JetStream stream, then the database.
struct Deployment {
    data_dir: PathBuf,
    /// Held for its `Drop`, which deletes the namespace's keys.
    _redis: WipeOnDrop,
    bus: TestBus,
    pg: TempPostgres,
}

thread_local! {
    /// `Some` while [`engines`] runs a test on this thread: the deployments made so far.
    static RUN: RefCell<Option<Vec<Deployment>>> = const { RefCell::new(None) };
}

/// Clears the thread's run and drops its deployments (also while unwinding from a panic).
struct RunGuard;

impl Drop for RunGuard {
    fn drop(&mut self) {
        let deployments = RUN.with(|r| r.borrow_mut().take());
        drop(deployments);
    }
}

/// Runs an async test to completion on a current-thread runtime of its own, as `#[tokio::test]`
/// does.
pub fn block_on<F: Future<Output = ()>>(test: impl FnOnce() -> F) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a test runtime")
        .block_on(test())
}

/// Runs `test` with its apps on PostgreSQL + Redis + NATS. When an engine is unreachable the
/// test fails under `CI=true` and is otherwise skipped with a notice on the terminal.
pub fn engines(test: impl FnOnce()) {
    if let Err((engine, url)) = engines_reachable() {
        liveops_store::testing::engine_missing(engine, url);
        return;
    }
    RUN.with(|r| *r.borrow_mut() = Some(Vec::new()));
    let _guard = RunGuard;
    test();
}

/// The engines' addresses: `LIVEOPS_TEST_PG`, `LIVEOPS_TEST_REDIS`, `LIVEOPS_TEST_NATS`, or the
/// machine's defaults.
pub fn pg_admin_url() -> String {
    std::env::var("LIVEOPS_TEST_PG").unwrap_or_else(|_| DEFAULT_TEST_PG.into())
}

/// Checked once per test binary: each engine accepts TCP connections. `Err` names the first
/// that does not, and its URL.
fn engines_reachable() -> Result<(), (&'static str, &'static str)> {
    static CHECKED: OnceLock<Result<(), (&'static str, String)>> = OnceLock::new();
    CHECKED
        .get_or_init(|| {
            for (engine, url) in [
                ("PostgreSQL", pg_admin_url()),
                ("Redis", redis_url()),
                ("NATS", nats_url()),
            ] {
                if !accepts_tcp(&url) {
                    return Err((engine, url));
                }
            }
            Ok(())
        })
        .as_ref()
        .map(|_| ())
        .map_err(|(engine, url)| (*engine, url.as_str()))
}

/// Whether the host:port of `url` (scheme, credentials, path and query ignored) accepts a TCP
/// connection within a second.
fn accepts_tcp(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let hostport = rest.split(['/', '?']).next().unwrap_or(rest);
    let Ok(addrs) = hostport.to_socket_addrs() else {
        return false;
    };
    addrs
        .into_iter()
        .any(|a| TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_ok())
}

/// The database URL and the namespace (Redis keys and JetStream stream) of the deployment of
/// `data_dir` in this thread's engine run, if it has one.
pub fn deployment_of(data_dir: &Path) -> Option<(String, String)> {
    RUN.with(|r| {
        r.borrow().as_ref().and_then(|ds| {
            ds.iter()
                .find(|d| d.data_dir == data_dir)
                .map(|d| (d.pg.url().to_string(), d.bus.namespace().to_string()))
        })
    })
}

/// When an engine run is active on this thread, points `cfg` at the engines of the deployment
/// of `data_dir`, making one if this data dir has none yet. Does nothing otherwise.
pub async fn configure(data_dir: &Path, cfg: &mut Config) {
    let active = RUN.with(|r| r.borrow().is_some());
    if !active {
        return;
    }
    let (pg_url, namespace) = match deployment_of(data_dir) {
        Some(k) => k,
        None => {
            // The engines answered at the start of the run; failing now is a broken setup, not
            // a missing engine, so the test fails rather than running on the embedded path.
            let pg = temp_postgres()
                .await
                .expect("PostgreSQL answered at the start of the run but not now");
            let bus = TestBus::new("api").expect("NATS answered at the start of the run");
            let namespace = bus.namespace().to_string();
            let redis = WipeOnDrop {
                url: redis_url(),
                namespace: namespace.clone(),
            };
            let known = (pg.url().to_string(), namespace);
            let deployment = Deployment {
                data_dir: data_dir.to_path_buf(),
                _redis: redis,
                bus,
                pg,
            };
            RUN.with(|r| {
                if let Some(ds) = r.borrow_mut().as_mut() {
                    ds.push(deployment);
                }
            });
            known
        }
    };
    cfg.database = Database::Postgres {
        url: Secret::new(pg_url),
        max_connections: POOL_PER_APP,
    };
    cfg.bus = Bus::Nats {
        url: Secret::new(nats_url()),
    };
    cfg.redis_url = Some(Secret::new(redis_url()));
    cfg.namespace = namespace;
}

/// The suite's tests are all `#[api_test]`s: a plain `#[test]` or `#[tokio::test]` would run on
/// one deployment only, silently. The harness's own tests here are the exception (they drive
/// [`engines`] themselves).
#[test]
fn every_api_test_runs_on_both_deployments_or_says_why() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api");
    let mut bypassing = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("tests/api") {
        let path = entry.expect("a directory entry").path();
        let file = path
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or_default();
        if !file.ends_with(".rs") || file == "engines.rs" {
            continue;
        }
        let source = std::fs::read_to_string(&path).expect("a test file");
        for (n, line) in source.lines().enumerate() {
            let line = line.trim_start();
            if line.starts_with("#[test]") || line.starts_with("#[tokio::test") {
                bypassing.push(format!("{file}:{}", n + 1));
            }
        }
    }
    assert!(
        bypassing.is_empty(),
        "these tests bypass #[api_test], so they would not run on the engines; use #[api_test] \
         (or #[api_test(not_on_engines = \"<why>\")]): {bypassing:?}"
    );
}

/// The harness itself: under `engines` an app really runs on PostgreSQL, JetStream and Redis,
/// in its own database and namespace, and both are gone once the test is over.
#[test]
fn apps_under_engines_are_on_the_engines_and_leave_nothing_behind() {
    use sqlx::Connection;

    let seen = std::cell::RefCell::new(None);
    engines(|| {
        block_on(|| async {
            let app = crate::helpers::spawn_app().await;
            let e = crate::helpers::progression("h-1", "player_h", 5);
            assert_eq!(app.post(&e).await.status, 202);
            app.wait_for_xp("player_h", 5).await;
            let ready = app.get("/readyz").await.body;
            for engine in ["store", "bus", "redis"] {
                assert_eq!(ready["checks"][engine], "ok", "{ready}");
            }
            let (url, namespace) =
                deployment_of(app.data_dir.path()).expect("the app's data dir has a deployment");
            let mut db = sqlx::PgConnection::connect(&url)
                .await
                .expect("test database");
            let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
                .fetch_one(&mut db)
                .await
                .expect("events table");
            assert_eq!(stored, 1, "the event is recorded in this test's database");
            let _ = db.close().await;
            *seen.borrow_mut() = Some((url, namespace));
        });
    });
    // `None`: the engines are missing and the run was skipped (outside CI).
    let Some((url, namespace)) = seen.into_inner() else {
        return;
    };
    let name = url.rsplit('/').next().unwrap_or_default().to_string();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let left: i64 = rt.block_on(async {
        let mut admin = sqlx::PgConnection::connect(&pg_admin_url())
            .await
            .expect("PostgreSQL");
        sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
            .bind(&name)
            .fetch_one(&mut admin)
            .await
            .expect("pg_database")
    });
    assert_eq!(left, 0, "database {name} was dropped");
    let keys = liveops_hotstate::testing::WipeOnDrop {
        url: liveops_hotstate::testing::redis_url(),
        namespace,
    };
    assert_eq!(
        keys.wipe().expect("Redis"),
        0,
        "the namespace's keys are gone"
    );
}
