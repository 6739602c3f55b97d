//! One active worker per consumer role across processes (several processes of any role
//! may run against the same engines).
//!
//! The consumers apply the log in order from a cursor, which is what makes exactly-once and
//! consistent fairness decisions simple; two processes applying the same role at once would only
//! race for the cursor. So each role's worker runs where it holds a PostgreSQL session advisory
//! lock for `(NAMESPACE, role)`, and the other processes of that role stand by, retrying every
//! second. The lock lives as long as the session: when the leader dies (even `kill -9`), its
//! connection closes and PostgreSQL frees the lock at once, so a standby takes over within about
//! a second and resumes from the committed cursor. Correctness never rests on the lock alone:
//! every role also moves its cursor in the same transaction (or Redis script) as its effects,
//! so a brief overlap after a network partition still counts each event once.
//!
//! On the embedded defaults there is one process, which always leads.

use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::postgres::PgPool;
use sqlx::Connection;
use tokio_util::sync::CancellationToken;

/// How often a standby retries the lock and the leader checks its session is alive.
const POLL: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub enum Election {
    /// One process: always the leader.
    Alone,
    /// Leaders hold a session advisory lock on this database.
    Postgres { pool: PgPool, namespace: String },
}

/// Held while this process leads a role. `lost` is cancelled when the session holding the lock
/// fails: the worker must stop, and may run again only after winning the lock again.
pub struct Leadership {
    pub lost: CancellationToken,
    _watch: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Leadership {
    fn drop(&mut self) {
        // Stopping the watchdog drops its connection, which releases the lock.
        if let Some(w) = &self._watch {
            w.abort();
        }
    }
}

impl Election {
    /// The lock key of a role: stable across processes and versions.
    fn key(namespace: &str, role: &str) -> i64 {
        let digest = Sha256::digest(format!("liveops-leader:{namespace}:{role}").as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        i64::from_be_bytes(first)
    }

    /// Waits until this process leads `role`, or `None` when `shutdown` comes first.
    pub async fn lead(&self, role: &str, shutdown: &CancellationToken) -> Option<Leadership> {
        let (pool, namespace) = match self {
            Election::Alone => {
                return Some(Leadership {
                    lost: CancellationToken::new(),
                    _watch: None,
                })
            }
            Election::Postgres { pool, namespace } => (pool, namespace),
        };
        let key = Self::key(namespace, role);
        let mut waiting_logged = false;
        loop {
            match try_lock(pool, key).await {
                Ok(Some(conn)) => {
                    tracing::info!(role, "this process now leads the role");
                    let lost = CancellationToken::new();
                    let watch = tokio::spawn(watch_session(conn, lost.clone()));
                    return Some(Leadership {
                        lost,
                        _watch: Some(watch),
                    });
                }
                Ok(None) => {
                    if !waiting_logged {
                        tracing::info!(role, "another process leads the role; standing by");
                        waiting_logged = true;
                    }
                }
                Err(e) => tracing::warn!(role, error = %e, "leader election: database unavailable"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }
}

/// A dedicated session (detached from the pool, so the pool never hands it to anyone else or
/// closes it under us) that holds the lock if it got it.
async fn try_lock(pool: &PgPool, key: i64) -> Result<Option<sqlx::PgConnection>, sqlx::Error> {
    let mut conn = pool.acquire().await?.detach();
    let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(key)
        .fetch_one(&mut conn)
        .await?;
    if got {
        Ok(Some(conn))
    } else {
        let _ = conn.close().await;
        Ok(None)
    }
}

/// Keeps the locking session open and checks it: if PostgreSQL restarts or the connection
/// breaks, the lock is gone and so is the leadership.
async fn watch_session(mut conn: sqlx::PgConnection, lost: CancellationToken) {
    loop {
        tokio::time::sleep(POLL).await;
        if tokio::time::timeout(POLL * 3, conn.ping())
            .await
            .map_or(true, |r| r.is_err())
        {
            tracing::warn!("the leader's database session failed; giving the role up");
            lost.cancel();
            return;
        }
    }
}

/// Runs `work` whenever this process leads `role`, until `shutdown`: a worker that loses the
/// lock is stopped and waits to win it again.
pub async fn run_as_leader<F, Fut>(
    election: Election,
    role: &'static str,
    shutdown: CancellationToken,
    mut work: F,
) -> anyhow::Result<()>
where
    F: FnMut(CancellationToken) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    loop {
        let Some(leadership) = election.lead(role, &shutdown).await else {
            return Ok(());
        };
        // The worker stops on either: shutdown, or a lost lock.
        let stop = shutdown.child_token();
        let lost = leadership.lost.clone();
        let relay = {
            let stop = stop.clone();
            tokio::spawn(async move {
                lost.cancelled().await;
                stop.cancel();
            })
        };
        let result = work(stop).await;
        relay.abort();
        drop(leadership);
        if shutdown.is_cancelled() {
            return result;
        }
        if let Err(e) = result {
            tracing::error!(role, error = %e, "worker failed; retrying after the election");
            tokio::time::sleep(POLL).await;
        }
    }
}
