//! Runs the real `liveops` binary as a child process for black-box tests (STYLE "Tests": failures
//! are injected for real, by killing the process).
//!
//! Each server gets a free loopback port, the caller's `DATA_DIR`, a fixed secret and no per-IP
//! limit, and a clean environment so a developer's shell (`DB_URL`, `REDIS_URL`, `ENV=prod`...)
//! cannot change what is tested. The child is killed when its [`Server`] is dropped, so a failing
//! test never leaves a server behind.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use liveops_client::{Client, ClientConfig};
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

/// A running `liveops serve` child.
pub struct Server {
    child: Child,
    pub port: u16,
    /// A signing client for this server.
    pub client: Client,
    /// Where the child's stdout and stderr go; shown when the server fails.
    log: PathBuf,
}

impl Server {
    /// Starts `liveops serve` on `data_dir` and waits until `/healthz` answers 200. `extra_env`
    /// overrides the defaults. Logs go to a file in `log_dir`.
    pub async fn start(data_dir: &Path, log_dir: &Path, extra_env: &[(&str, &str)]) -> Server {
        let mut last_failure = String::new();
        for _attempt in 0..3 {
            let port = free_port();
            let log = log_dir.join(format!("liveops-{port}.log"));
            let out = std::fs::File::create(&log).expect("creating the server log");
            let err = out.try_clone().expect("cloning the log handle");
            let child = Command::new(env!("CARGO_BIN_EXE_liveops"))
                .arg("serve")
                .env_clear()
                .env("PORT", port.to_string())
                .env("BIND_ADDR", "127.0.0.1")
                .env("DATA_DIR", data_dir)
                .env("HMAC_SECRET", SECRET)
                .env("RATE_LIMIT_MAX", "0")
                .env("LOG_LEVEL", "warn")
                .env("RUST_BACKTRACE", "1")
                .envs(extra_env.iter().copied())
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

    /// `kill -TERM`: the polite stop (SPEC section 8: stop accepting, drain, exit).
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
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(4000);
        let start = (start..text.len())
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(text.len());
        text[start..].to_string()
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
