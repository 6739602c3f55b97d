//! The composition root: the one place that picks the adapters from the configuration, builds
//! each role's state and runs the HTTP server and the workers (zero2prod's `startup.rs`).
//! Used by `liveops serve` and by the tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use liveops_domain::window::Calendar;
use liveops_domain::Clock;
use liveops_hotstate::MemoryLeaderboards;
use liveops_store::{
    AdminStore, Archive, BoardSource, EventLog, FairnessStore, FileArchive, ProgressStore,
    SqliteStore,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::gateway::auth::Verifier;
use crate::gateway::failed::FailedEvents;
use crate::gateway::idempotency::IdempotencyCache;
use crate::gateway::rate_limit::IpRateLimiter;
use crate::gateway::GatewayState;
use crate::leaderboard::LeaderboardState;
use crate::ops::OpsState;
use crate::progression::ProgressionState;

/// How many refused requests the failed-events store keeps.
const FAILED_EVENTS_KEPT: usize = 1000;

/// The adapters, built once from the configuration.
pub struct Services {
    pub log: Arc<dyn EventLog>,
    pub progress: Arc<dyn ProgressStore>,
    pub board_source: Arc<dyn BoardSource>,
    pub archive: Arc<dyn Archive>,
    pub admin: Arc<dyn AdminStore>,
    pub fairness: Arc<dyn FairnessStore>,
    pub clock: Arc<dyn Clock>,
}

impl Services {
    /// Embedded defaults: SQLite and files in `DATA_DIR` (SPEC section 2).
    pub fn embedded(cfg: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Services> {
        let store = SqliteStore::open(&cfg.data_dir)
            .with_context(|| format!("opening the SQLite store in {}", cfg.data_dir.display()))?;
        Ok(Services {
            log: Arc::new(store.clone()),
            progress: Arc::new(store.clone()),
            board_source: Arc::new(store.clone()),
            admin: Arc::new(store.clone()),
            fairness: Arc::new(store),
            archive: Arc::new(FileArchive::new(cfg.data_dir.join("archive"))),
            clock,
        })
    }
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    gateway: GatewayState,
    leaderboards: LeaderboardState,
    services: Services,
    fairness: crate::fairness::FairnessState,
    /// What progression and leaderboards consume: the log as the fairness guard decided it.
    decided: Arc<crate::fairness::DecidedLog>,
    /// The Prometheus handle, for the periodic upkeep; `None` with `METRICS_ENABLED=false`.
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// The open leaderboard streams, ended when shutdown starts (else the drain would wait on
    /// them forever).
    streams: crate::leaderboard::stream::Streams,
}

impl Application {
    /// Builds every role on the embedded backends and binds the listener (port 0: any).
    pub async fn build(cfg: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Application> {
        let services = Services::embedded(&cfg, clock.clone())?;
        let calendar = Arc::new(Calendar::new(cfg.timezone, cfg.season.clone()));
        let blocks = Arc::new(crate::gateway::blocks::BlockList::new(clock.clone()));
        blocks.load(
            services
                .admin
                .blocks()
                .await
                .context("loading the block list")?,
        );
        let gateway = GatewayState {
            log: services.log.clone(),
            verifier: Arc::new(Verifier::new(&cfg, clock.clone())),
            idempotency: Arc::new(IdempotencyCache::new(cfg.idemp_ttl)),
            ip_limiter: Arc::new(IpRateLimiter::new(
                cfg.rate_limit_max,
                cfg.rate_limit_exempt.clone(),
                cfg.trusted_proxies.clone(),
            )),
            blocks: blocks.clone(),
            session_limiter: Arc::new(crate::gateway::limiter::KeyedLimiter::new(
                std::num::NonZeroU32::new(cfg.session_issue_per_minute)
                    .map(governor::Quota::per_minute),
            )),
            flood: Arc::new(crate::gateway::flood::FloodGate::new(cfg.flood_max_per_sec)),
            failed: Arc::new(FailedEvents::new(FAILED_EVENTS_KEPT)),
            clock: clock.clone(),
        };
        let progression = ProgressionState {
            store: services.progress.clone(),
            calendar: calendar.clone(),
            clock: clock.clone(),
            gateway: gateway.clone(),
        };
        let fairness_cursor = services.progress.cursor(crate::fairness::CONSUMER).await?;
        let (fairness, decided) = crate::fairness::FairnessState::new(
            &cfg,
            &services,
            gateway.blocks.clone(),
            fairness_cursor,
        );
        let leaderboards = LeaderboardState {
            boards: Arc::new(MemoryLeaderboards::new(
                (*calendar).clone(),
                cfg.windows.clone(),
            )),
            source: services.board_source.clone(),
            archive: services.archive.clone(),
            clock: clock.clone(),
            topn: cfg.lb_topn,
            snapshot_cron: cfg.snapshot_cron.clone(),
            erased: fairness.erased.clone(),
            applied: Arc::new(tokio::sync::Mutex::new(0)),
        };
        if cfg.admin_token.is_none() {
            tracing::warn!("ADMIN_TOKEN is not set: the admin API under /admin is disabled");
        }
        let admin = crate::admin::AdminState {
            token: cfg.admin_token.clone(),
            store: services.admin.clone(),
            blocks,
            failed: gateway.failed.clone(),
            leaderboards: leaderboards.clone(),
            fairness: fairness.clone(),
            clock: clock.clone(),
        };
        let ops = OpsState {
            log: services.log.clone(),
            metrics: cfg.metrics_enabled.then(crate::ops::prometheus),
        };
        let metrics = ops.metrics.clone();
        let streams = crate::leaderboard::stream::Streams::new(leaderboards.clone());
        let router = Router::new()
            .merge(crate::gateway::router(gateway.clone()))
            .merge(crate::progression::router(progression))
            .merge(crate::leaderboard::router(leaderboards.clone()))
            .merge(streams.router())
            .merge(crate::web::router())
            .merge(crate::admin::router(admin))
            .merge(crate::fairness::router(fairness.clone()))
            .merge(crate::ops::router(ops))
            // Innermost: a panic in a handler becomes a 500 for that request (never a dead
            // connection task), which `json_errors` then turns into a JSON error.
            .layer(tower_http::catch_panic::CatchPanicLayer::new())
            .layer(axum::middleware::from_fn(crate::error::json_errors))
            .layer(axum::middleware::from_fn(crate::ops::track_http));
        let addr = SocketAddr::new(cfg.bind_addr, cfg.port);
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr} (PORT, BIND_ADDR)"))?;
        // Exported from the start as the SPEC lists it; on the embedded defaults there is no
        // Redis, so it honestly stays 0.
        metrics::counter!("redis_operations_total").absolute(0);
        Ok(Application {
            listener,
            router,
            gateway,
            leaderboards,
            services,
            fairness,
            decided,
            metrics,
            streams,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Serves HTTP and runs the workers until `shutdown` is cancelled, then drains: the
    /// listener stops accepting, in-flight requests finish, workers stop after their batch.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Application {
            listener,
            router,
            gateway,
            leaderboards,
            services,
            fairness,
            decided,
            metrics,
            streams,
        } = self;
        let mut workers = tokio::task::JoinSet::new();
        workers.spawn(crate::fairness::run_worker(
            fairness,
            services.log.clone(),
            shutdown.clone(),
        ));
        let decided: Arc<dyn EventLog> = decided;
        workers.spawn(crate::progression::run_worker(
            decided.clone(),
            services.progress.clone(),
            shutdown.clone(),
        ));
        workers.spawn(crate::leaderboard::run_worker(
            leaderboards,
            decided,
            shutdown.clone(),
        ));
        workers.spawn(housekeeping(
            gateway,
            services.log.clone(),
            metrics,
            shutdown.clone(),
        ));
        let server = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown({
            let shutdown = shutdown.clone();
            async move {
                shutdown.cancelled().await;
                streams.close();
            }
        });
        let served = server.await.context("http server");
        shutdown.cancel();
        while let Some(r) = workers.join_next().await {
            match r {
                Ok(Err(e)) => tracing::error!(error = %e, "worker failed"),
                Err(e) if e.is_panic() => tracing::error!(error = %e, "worker panicked"),
                _ => {}
            }
        }
        served
    }
}

/// Keeps per-client state bounded: expired idempotency keys, idle rate-limit and flood buckets;
/// and drains the Prometheus histograms, which buffer every sample until the next render or
/// upkeep: without a scraper they would grow by one entry per request forever.
async fn housekeeping(
    g: GatewayState,
    log: Arc<dyn EventLog>,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tick.tick() => {
                g.idempotency.purge_expired();
                g.ip_limiter.clean();
                g.flood.clean();
                g.blocks.prune();
                g.session_limiter.clean();
                if let Some(m) = &metrics {
                    m.run_upkeep();
                }
                if let Some(n) = log.open_connections() {
                    metrics::gauge!("database_connections_active").set(n as f64);
                }
            }
        }
    }
}
