//! Runs the real `liveops` binary as a child process for black-box tests (STYLE "Tests": failures
//! are injected for real, by killing the process).
//!
//! Each server gets a free loopback port, the caller's `DATA_DIR`, a fixed secret and no per-IP
//! limit, and a clean environment so a developer's shell (`DB_URL`, `REDIS_URL`, `ENV=prod`...)
//! cannot change what is tested. The child is killed when its [`Server`] is dropped, so a failing
//! test never leaves a server behind.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

pub mod ledger;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use liveops_bus::testing::{reachable, TestBus};
use liveops_client::{Client, ClientConfig};
use liveops_hotstate::testing::{redis_url, WipeOnDrop};
use liveops_store::testing::{
    skip_or_fail, temp_postgres, TempPostgres, DEFAULT_TEST_PG, ENABLE_ENGINES,
};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The HMAC secret every test server runs with (>= 32 bytes).
pub const SECRET: &str = "liveops-black-box-tests-secret-0123456789abcdef";

/// How long a fresh server may take to answer `/healthz`.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A port that was free a moment ago. The child cannot bind port 0 and report it back, so the
/// port is reserved by binding it here and released just before the child starts; [`Server::start`]
/// retries on another port if someone else took it in between.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding an ephemeral port");
    listener.local_addr().expect("local address").port()
}

/// The binary with the clean environment every test server gets (see the module doc); the
/// caller adds the subcommand, arguments and its own variables.
fn base_command(data_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_liveops"));
    cmd.env_clear()
        .env("BIND_ADDR", "127.0.0.1")
        .env("DATA_DIR", data_dir)
        .env("HMAC_SECRET", SECRET)
        .env("RATE_LIMIT_MAX", "0")
        .env("LOG_LEVEL", "warn")
        .env("RUST_BACKTRACE", "1");
    cmd
}

/// Runs `liveops <args>` to its end (it must exit within 30 s) in the tests' clean environment
/// plus `extra_env`; returns the exit status and what it wrote to stderr.
pub fn run_to_exit(
    args: &[&str],
    data_dir: &Path,
    extra_env: &[(&str, &str)],
) -> (std::process::ExitStatus, String) {
    let mut child = base_command(data_dir)
        .args(args)
        .envs(extra_env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning the liveops binary");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    // Read on a thread so a chatty child cannot block on a full pipe while we wait.
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("polling the child") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("liveops {args:?} did not exit within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status, reader.join().unwrap_or_default())
}

/// A running `liveops serve` child.
pub struct Server {
    child: Child,
    pub port: u16,
    /// A signing client for this server.
    pub client: Client,
    /// Where the child's stdout and stderr go; shown when the server fails.
    log: PathBuf,
    /// How it was started, for [`Server::restart`].
    spec: Spec,
}

/// What a server is started with: `serve` arguments, data and log directories, extra env.
#[derive(Clone)]
struct Spec {
    args: Vec<String>,
    data_dir: PathBuf,
    log_dir: PathBuf,
    env: Vec<(String, String)>,
}

impl Server {
    /// Starts `liveops serve` on `data_dir` and waits until `/healthz` answers 200. `extra_env`
    /// overrides the defaults. Logs go to a file in `log_dir`.
    pub async fn start(data_dir: &Path, log_dir: &Path, extra_env: &[(&str, &str)]) -> Server {
        Self::start_with_args(&[], data_dir, log_dir, extra_env).await
    }

    /// Starts `liveops serve --role <role>` (a split deployment's process), otherwise like
    /// [`Server::start`].
    pub async fn start_role(
        role: &str,
        data_dir: &Path,
        log_dir: &Path,
        extra_env: &[(&str, &str)],
    ) -> Server {
        Self::start_with_args(&["--role", role], data_dir, log_dir, extra_env).await
    }

    async fn start_with_args(
        args: &[&str],
        data_dir: &Path,
        log_dir: &Path,
        extra_env: &[(&str, &str)],
    ) -> Server {
        let spec = Spec {
            args: args.iter().map(|a| a.to_string()).collect(),
            data_dir: data_dir.to_path_buf(),
            log_dir: log_dir.to_path_buf(),
            env: extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        Self::spawn(spec).await
    }

    /// Starts the same command again (after [`Server::sigkill`]), on a new port and log file;
    /// `client` then points at the new process.
    pub async fn restart(&mut self) {
        if self.exited().is_none() {
            panic!(
                "restart of a server that is still running (port {})",
                self.port
            );
        }
        let fresh = Self::spawn(self.spec.clone()).await;
        // The old child has been reaped; replacing it drops nothing that runs.
        *self = fresh;
    }

    async fn spawn(spec: Spec) -> Server {
        let mut last_failure = String::new();
        for _attempt in 0..3 {
            let port = free_port();
            let log = spec.log_dir.join(format!("liveops-{port}.log"));
            let out = std::fs::File::create(&log).expect("creating the server log");
            let err = out.try_clone().expect("cloning the log handle");
            let child = base_command(&spec.data_dir)
                .arg("serve")
                .args(&spec.args)
                .env("PORT", port.to_string())
                .envs(spec.env.iter().map(|(k, v)| (k, v)))
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .expect("spawning the liveops binary");
            let base = format!("http://127.0.0.1:{port}");
            let client = Client::new(ClientConfig::new(base, SECRET.as_bytes().to_vec()))
                .expect("building the client");
            let mut server = Server {
                child,
                port,
                client,
                log,
                spec: spec.clone(),
            };
            match server.wait_healthy().await {
                Ok(()) => return server,
                // Most likely the port was taken between free_port() and the bind: try another.
                Err(why) => last_failure = why,
            }
        }
        panic!("the server did not start three times; last: {last_failure}");
    }

    async fn wait_healthy(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("polling the child") {
                return Err(format!(
                    "the server exited with {status} before answering /healthz; log:\n{}",
                    self.log_tail()
                ));
            }
            if let Ok(r) = self.client.get("/healthz").await {
                if r.status == 200 {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "/healthz did not answer 200 within {START_TIMEOUT:?}; log:\n{}",
                    self.log_tail()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `kill -9`: no drain, no flush, no shutdown hook.
    pub fn sigkill(&mut self) {
        let pid = Pid::from_raw(i32::try_from(self.child.id()).expect("pid fits in i32"));
        kill(pid, Signal::SIGKILL).expect("sending SIGKILL");
        self.child.wait().expect("reaping the killed server");
    }

    /// `kill -TERM`: the polite stop (`docs/api.md`: stop accepting, drain, exit).
    pub fn sigterm(&self) {
        let pid = Pid::from_raw(i32::try_from(self.child.id()).expect("pid fits in i32"));
        kill(pid, Signal::SIGTERM).expect("sending SIGTERM");
    }

    /// Waits up to `timeout` for the child to exit by itself, polling without blocking the
    /// runtime (other tasks of the test keep running); `None` if it is still running.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// `Some(status)` when the child has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The end of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        // Backtrace frames would push a panic's message out of the tail: keep the message.
        let text: String = std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| {
                let t = l.trim_start();
                !(t.starts_with("at ")
                    || t.split_once(": ")
                        .is_some_and(|(n, _)| n.parse::<u32>().is_ok()))
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let start = text.len().saturating_sub(4000);
        let start = (start..text.len())
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(text.len());
        text[start..].to_string()
    }
}

impl Server {
    /// When this process last won the election for `role` (the `timestamp` of its last "this
    /// process now leads the role" log line, RFC 3339, so later sorts higher), `None` if it
    /// never did. The log level must include `liveops_server::leader=info`.
    pub fn led_since(&self, role: &str) -> Option<String> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["message"] == "this process now leads the role" && v["role"] == role)
            .filter_map(|v| v["timestamp"].as_str().map(str::to_string))
            .next_back()
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The scale-out engines of one test: a fresh PostgreSQL database, and one `NAMESPACE` for its
/// Redis keys and its NATS stream. All three are removed when this is dropped (the database
/// dropped, the keys deleted, the stream deleted), also when the test panicked.
pub struct Engines {
    pg: TempPostgres,
    redis: WipeOnDrop,
    bus: TestBus,
}

impl Engines {
    /// On the machine's PostgreSQL, Redis and NATS; `None` (after the skip notice of
    /// [`skip_or_fail`]) when one of them is unreachable.
    pub async fn acquire(test: &str) -> Option<Engines> {
        Self::acquire_on(test, liveops_bus::testing::nats_url()).await
    }

    /// Like [`Engines::acquire`], with the NATS at `nats_url` (e.g. a test's private
    /// `NatsServer`).
    pub async fn acquire_on(test: &str, nats_url: String) -> Option<Engines> {
        let pg_url = std::env::var("LIVEOPS_TEST_PG").unwrap_or_else(|_| DEFAULT_TEST_PG.into());
        let missing: Vec<String> = [
            ("PostgreSQL", pg_url),
            ("Redis", redis_url()),
            ("NATS", nats_url.clone()),
        ]
        .into_iter()
        .filter(|(_, url)| !reachable(host_port(url)))
        .map(|(engine, url)| format!("{engine} at {url}"))
        .collect();
        if !missing.is_empty() {
            skip_or_fail(
                &format!("{} not reachable", missing.join(", ")),
                ENABLE_ENGINES,
            );
            return None;
        }
        // `None` after its own skip notice.
        let pg = temp_postgres().await?;
        let bus = TestBus::on(nats_url, test);
        let redis = WipeOnDrop {
            url: redis_url(),
            namespace: bus.namespace().to_string(),
        };
        Some(Engines { pg, redis, bus })
    }

    /// The test database's URL.
    pub fn pg_url(&self) -> &str {
        self.pg.url()
    }

    /// How busy the shared PostgreSQL is, for failure reports (a server short of connections
    /// stalls elections and requests): client connections in all and on this test's database,
    /// `max_connections`, and the advisory locks (role leaderships) held now.
    pub async fn postgres_state(&self) -> String {
        use sqlx::Connection;
        let state = async {
            let mut db = sqlx::PgConnection::connect(self.pg.url()).await?;
            let (all, ours): (i64, i64) = sqlx::query_as(
                "SELECT count(*), count(*) FILTER (WHERE datname = current_database())
                 FROM pg_stat_activity WHERE backend_type = 'client backend'",
            )
            .fetch_one(&mut db)
            .await?;
            let max: String = sqlx::query_scalar("SHOW max_connections")
                .fetch_one(&mut db)
                .await?;
            let locks: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
                 WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()",
            )
            .fetch_one(&mut db)
            .await?;
            let _ = db.close().await;
            Ok::<_, sqlx::Error>(format!(
                "PostgreSQL: {all} client connections of max_connections {max} ({ours} on this test's database); {locks} advisory locks held on it"
            ))
        };
        match tokio::time::timeout(Duration::from_secs(10), state).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => format!("PostgreSQL state unreadable: {e}"),
            Err(_) => "PostgreSQL state unreadable: no answer within 10 s".into(),
        }
    }

    /// The settings that put a `liveops serve` on these engines. `db_connections` bounds each
    /// process's pool: many processes share one PostgreSQL (100 connections by default).
    pub fn env(&self, db_connections: u32) -> Vec<(String, String)> {
        vec![
            ("DB_URL".into(), self.pg.url().to_string()),
            ("DB_MAX_CONNECTIONS".into(), db_connections.to_string()),
            ("REDIS_URL".into(), self.redis.url.clone()),
            ("BUS_KIND".into(), "nats".into()),
            ("BUS_CONN".into(), self.bus.url().to_string()),
            ("NAMESPACE".into(), self.bus.namespace().to_string()),
        ]
    }
}

/// `host:port` of an engine URL (`reachable` takes no path: PostgreSQL's names a database).
fn host_port(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap_or(rest)
}
