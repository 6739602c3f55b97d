//! Test support, public so the server's tests and other crates' engine tests share it (not used
//! by the product code).
//!
//! - [`temp_postgres`]: a fresh, uniquely named PostgreSQL database for one test, dropped when
//!   the returned [`TempPostgres`] is dropped, so parallel runs never see each other.
//! - [`skip_or_fail`]: the one rule for a test that cannot run here (an engine unreachable, a
//!   browser missing): under `CI=true` it fails (a missing engine in CI is a broken CI),
//!   elsewhere it writes a notice to the terminal, naming what enables the test, and the test
//!   returns early; [`engine_missing`] applies it to an engine.
//! - [`TcpProxy`]: a proxy a test cuts and restores, to take an engine away and bring it back.
//!
//! A setup that cannot work (no spare port, a database PostgreSQL refuses to create) panics:
//! these helpers run only in tests, where the panic is the failure report.

use std::time::Duration;

use sqlx::{Connection, PgConnection};

/// The server tests create their databases on, unless `LIVEOPS_TEST_PG` names another.
pub const DEFAULT_TEST_PG: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// How long a test waits for an engine before calling it unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What makes the engine tests run on a machine without the engines, named in every skip notice.
pub const ENABLE_ENGINES: &str =
    "`.ci/engines` (installs and starts PostgreSQL, Redis and NATS JetStream on 127.0.0.1), \
     or point LIVEOPS_TEST_PG, LIVEOPS_TEST_REDIS and LIVEOPS_TEST_NATS at running ones";

/// The one rule for a test that cannot run on this machine. Under `CI=true` it panics: CI runs
/// everything, so a missing prerequisite is a broken CI. Elsewhere it writes
/// `SKIPPED <test>: <why>; to run it: <enable_with>` to the process's stderr and returns, and the
/// caller returns early. The notice bypasses libtest's capture (which swallows a passing
/// test's `eprintln!`), so a skipped test never passes silently.
pub fn skip_or_fail(why: &str, enable_with: &str) {
    use std::io::Write;
    let current = std::thread::current();
    let test = current.name().unwrap_or("a test");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test} cannot run under CI=true: {why}; to run it: {enable_with}");
    }
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {why}; to run it: {enable_with}"
    );
}

/// [`skip_or_fail`] for an unreachable engine: `engine` is not reachable at `detail`.
pub fn engine_missing(engine: &str, detail: &str) {
    skip_or_fail(
        &format!("{engine} is not reachable at {detail}"),
        ENABLE_ENGINES,
    );
}

/// A TCP proxy in front of an engine that a test can cut and restore: what an engine that goes
/// away and comes back with its data looks like to a client (connections reset, new ones
/// refused, then accepted again).
pub struct TcpProxy {
    port: u16,
    target: String,
    /// The accept loop and the connections it forwards; `cut` stops it through `stop`.
    task: Option<(
        tokio::task::JoinHandle<()>,
        tokio::sync::oneshot::Sender<()>,
    )>,
}

impl TcpProxy {
    /// Listens on a spare loopback port and forwards to `target` (`host:port`).
    pub async fn start(target: String) -> TcpProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a spare loopback port");
        let port = listener.local_addr().expect("a bound listener").port();
        let mut p = TcpProxy {
            port,
            target,
            task: None,
        };
        p.spawn(listener);
        p
    }

    /// The loopback port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    fn spawn(&mut self, listener: tokio::net::TcpListener) {
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let serve = Self::serve(listener, self.target.clone(), stopped);
        self.task = Some((tokio::spawn(serve), stop));
    }

    async fn serve(
        listener: tokio::net::TcpListener,
        target: String,
        mut stopped: tokio::sync::oneshot::Receiver<()>,
    ) {
        let mut conns = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                accepted = listener.accept() => {
                    let Ok((mut client, _)) = accepted else { break };
                    let target = target.clone();
                    conns.spawn(async move {
                        if let Ok(mut server) = tokio::net::TcpStream::connect(&target).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                }
            }
        }
        // Wait until every forwarding task is gone, its sockets closed: an abort alone only asks,
        // and a connection still forwarding after `cut` returned could commit what the test
        // sends "while the engine is gone".
        conns.abort_all();
        while conns.join_next().await.is_some() {}
    }

    /// Closes the listener and every proxied connection; when it returns, nothing more reaches
    /// the engine.
    pub async fn cut(&mut self) {
        if let Some((task, stop)) = self.task.take() {
            let _ = stop.send(());
            let _ = task.await;
        }
    }

    /// Accepts connections again, on the same port.
    pub async fn restore(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("the proxy's port is free again");
        self.spawn(listener);
    }
}

/// A throwaway database `liveops_t_<random>`; dropped (`WITH (FORCE)`, best effort) on `Drop`,
/// which works inside and outside a tokio runtime.
#[derive(Debug)]
pub struct TempPostgres {
    url: String,
    admin_url: String,
    name: String,
}

impl TempPostgres {
    /// The URL of the fresh database.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// Creates a fresh database on `LIVEOPS_TEST_PG` (default [`DEFAULT_TEST_PG`]). `None` (after
/// [`engine_missing`]) when PostgreSQL is unreachable. Panics when it is reachable but refuses
/// to create the database: that is a broken setup, not a missing engine.
pub async fn temp_postgres() -> Option<TempPostgres> {
    let admin_url = std::env::var("LIVEOPS_TEST_PG").unwrap_or_else(|_| DEFAULT_TEST_PG.into());
    let mut conn =
        match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect(&admin_url)).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                engine_missing("PostgreSQL", &format!("{admin_url} ({e})"));
                return None;
            }
            Err(_) => {
                engine_missing("PostgreSQL", &format!("{admin_url} (connect timed out)"));
                return None;
            }
        };
    let name = format!("liveops_t_{}", uuid::Uuid::now_v7().simple());
    if let Err(e) = sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
    {
        panic!("PostgreSQL at {admin_url} refused to create database {name}: {e}");
    }
    let _ = conn.close().await;
    Some(TempPostgres {
        url: with_database(&admin_url, &name),
        admin_url,
        name,
    })
}

/// `url` with its database path replaced by `name` (the query string kept).
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let root = match base[host_start..].find('/') {
        Some(i) => &base[..host_start + i],
        None => base,
    };
    if query.is_empty() {
        format!("{root}/{name}")
    } else {
        format!("{root}/{name}?{query}")
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // A thread with its own runtime: blocking on the caller's runtime from `Drop` would
        // panic inside tokio, and there may be no runtime at all.
        let dropped = std::thread::spawn(move || -> Result<(), String> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let mut conn = PgConnection::connect(&admin_url)
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .map_err(|e| e.to_string())?;
                let _ = conn.close().await;
                Ok(())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop test database {}: {e}", self.name),
            Err(_) => eprintln!(
                "could not drop test database {}: the thread panicked",
                self.name
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_of_a_url_is_replaced() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "x"),
            "postgres://h:5432/x"
        );
    }
}
