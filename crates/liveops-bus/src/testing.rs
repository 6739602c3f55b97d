//! Test support, public so that other crates' tests can use it; not for production code.
//!
//! - [`TestBus`]: a unique namespace on the shared NATS (127.0.0.1:4222, or `LIVEOPS_TEST_NATS`)
//!   whose stream (and with it every consumer) is deleted when it is dropped, so parallel test
//!   runs never see each other.
//! - [`NatsServer`]: a private `nats-server -js` on a spare loopback port with its own store
//!   directory, for tests that stop and restart the engine.
//!
//! When NATS is unreachable a test follows the store's rule,
//! [`liveops_store::testing::engine_missing`]: it fails under `CI=true` and otherwise skips with
//! a notice on the terminal.

use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::{BusError, NatsEventLog, NatsOptions};

/// The NATS the tests use: `LIVEOPS_TEST_NATS`, else the machine's `nats://127.0.0.1:4222`.
pub fn nats_url() -> String {
    std::env::var("LIVEOPS_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// Whether something accepts TCP connections at the host:port of `url` within a second.
pub fn reachable(url: &str) -> bool {
    let hostport = url.rsplit("://").next().unwrap_or(url);
    let hostport = hostport.rsplit('@').next().unwrap_or(hostport);
    let Ok(addrs) = hostport.to_socket_addrs() else {
        return false;
    };
    addrs
        .into_iter()
        .any(|a| TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_ok())
}

/// A namespace no other test or run uses: the test's name (shortened), the process id and a
/// per-process counter, in the characters stream names allow.
pub fn unique_namespace(test: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let short: String = test
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(24)
        .collect();
    format!("t_{short}_{}_{n}_{nanos:x}", std::process::id())
}

/// A unique namespace on the test NATS, cleaned up on drop.
pub struct TestBus {
    url: String,
    namespace: String,
}

impl TestBus {
    /// `None` (after the skip notice) when NATS is unreachable outside CI.
    pub fn new(test: &str) -> Option<Self> {
        let url = nats_url();
        if !reachable(&url) {
            liveops_store::testing::engine_missing("NATS", &url);
            return None;
        }
        Some(Self {
            url,
            namespace: unique_namespace(test),
        })
    }

    /// A namespace on a given server (e.g. a [`NatsServer`]), cleaned up on drop like the rest.
    pub fn on(url: String, test: &str) -> Self {
        Self {
            url,
            namespace: unique_namespace(test),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// A log on this namespace (another call gives another "process" on the same stream).
    pub async fn log(&self, opts: NatsOptions) -> Result<NatsEventLog, BusError> {
        NatsEventLog::connect(&self.url, &self.namespace, opts).await
    }
}

impl Drop for TestBus {
    /// Deletes the namespace's stream, which deletes its consumers too. Runs on a thread of its
    /// own with its own runtime, because drop cannot await and may run inside a runtime.
    fn drop(&mut self) {
        let url = self.url.clone();
        let stream = format!("{}_events", self.namespace);
        let cleanup = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let connect = async_nats::ConnectOptions::new()
                    .connection_timeout(Duration::from_secs(1))
                    .connect(url.as_str());
                if let Ok(Ok(client)) = tokio::time::timeout(Duration::from_secs(2), connect).await
                {
                    let js = async_nats::jetstream::new(client);
                    let _ = tokio::time::timeout(Duration::from_secs(2), js.delete_stream(&stream))
                        .await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// A private `nats-server -js` on a spare loopback port with its own store directory. `stop`
/// kills it (SIGKILL, like a crash), `start` runs it again on the same port and store. Killed,
/// and its directory removed, on drop. The binary is `NATS_SERVER_BIN` or `nats-server`.
pub struct NatsServer {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts a new server and waits until it accepts connections.
    pub fn spawn() -> std::io::Result<Self> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir = std::env::temp_dir().join(format!(
            "liveops-nats-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)?;
        let mut server = Self {
            port,
            dir,
            child: None,
        };
        server.start()?;
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on the same port and store; waits up to 10 s for it to listen.
    pub fn start(&mut self) -> std::io::Result<()> {
        if self.child.is_some() {
            return Ok(());
        }
        let bin = std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| "nats-server".into());
        let child = Command::new(&bin)
            .arg("-js")
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .arg("-sd")
            .arg(self.dir.join("store"))
            .arg("-l")
            .arg(self.dir.join("nats.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot run {bin}: {e}")))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        while Instant::now() < deadline {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(std::io::Error::other(format!(
                        "nats-server exited at start with {status}; see {}",
                        self.dir.join("nats.log").display()
                    )));
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.stop();
        Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "nats-server did not listen on port {} within 10 s",
                self.port
            ),
        ))
    }

    /// Kills the server (SIGKILL) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
