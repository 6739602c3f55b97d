//! The composition root: the one place that picks the adapters from the configuration, builds
//! each role's state and runs the HTTP server and the workers (zero2prod's `startup.rs`).
//! Used by `liveops serve` and by the tests.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use liveops_domain::window::Calendar;
use liveops_domain::{Clock, PlayerId};
use liveops_hotstate::{
    BlockList, IdempotencyKeys, Leaderboards, MemoryBlockList, MemoryIdempotencyKeys,
    MemoryLeaderboards, MemoryRateLimits, PlayerGate, Quota, RateLimits, RedisHotState,
    SeparateGate,
};
use liveops_store::EventLog;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use crate::backends::Services;
use crate::config::{Config, Role};
use crate::gateway::auth::Verifier;
use crate::gateway::failed::FailedEvents;
use crate::gateway::rate_limit::IpRateLimiter;
use crate::gateway::{GatewayState, SignedChecks};
use crate::leaderboard::LeaderboardState;
use crate::ops::OpsState;
use crate::progression::ProgressionState;

/// How many refused requests the failed-events store keeps.
const FAILED_EVENTS_KEPT: usize = 1000;

/// The hot state (`docs/operations.md`): in process memory, or in Redis when `REDIS_URL` is set.
pub struct HotState {
    pub leaderboards: Arc<dyn Leaderboards>,
    pub idempotency: Arc<dyn IdempotencyKeys>,
    /// Per client IP, `RATE_LIMIT_MAX` a minute.
    pub ip_limits: Arc<dyn RateLimits>,
    /// Per player, `FLOOD_MAX_PER_SEC` a second.
    pub flood: Arc<dyn RateLimits>,
    /// Guest sessions issued per client IP.
    pub sessions: Arc<dyn RateLimits>,
    pub blocks: Arc<dyn BlockList>,
    /// `blocks` and `flood` asked together for every event (one command on a Redis node).
    pub gate: Arc<dyn PlayerGate>,
    /// The Redis connection, for `/readyz`; `None` in memory.
    pub redis: Option<RedisHotState>,
}

impl HotState {
    /// Redis when `cfg.redis_url` is set (failing fast if it does not answer), memory otherwise.
    pub async fn build(
        cfg: &Config,
        calendar: &Calendar,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<HotState> {
        let ip = Quota::per_minute(cfg.rate_limit_max);
        let flood = Quota::per_second(cfg.flood_max_per_sec);
        let sessions = Quota::per_minute(cfg.session_issue_per_minute);
        let Some(url) = &cfg.redis_url else {
            let flood: Arc<dyn RateLimits> = Arc::new(MemoryRateLimits::new(flood));
            let blocks: Arc<dyn BlockList> = Arc::new(MemoryBlockList::new(clock));
            return Ok(HotState {
                leaderboards: Arc::new(MemoryLeaderboards::new(
                    calendar.clone(),
                    cfg.windows.clone(),
                )),
                idempotency: Arc::new(MemoryIdempotencyKeys::new(cfg.idemp_ttl)),
                ip_limits: Arc::new(MemoryRateLimits::new(ip)),
                gate: Arc::new(SeparateGate::new(blocks.clone(), flood.clone())),
                flood,
                sessions: Arc::new(MemoryRateLimits::new(sessions)),
                blocks,
                redis: None,
            });
        };
        let redis = RedisHotState::connect(url.expose_str(), &cfg.namespace)
            .await
            .context("connecting to REDIS_URL")?;
        tracing::info!(
            namespace = %cfg.namespace,
            cluster = redis.is_cluster(),
            "hot state in Redis"
        );
        Ok(HotState {
            leaderboards: Arc::new(redis.leaderboards(calendar.clone(), cfg.windows.clone())),
            idempotency: Arc::new(redis.idempotency(cfg.idemp_ttl)),
            ip_limits: Arc::new(redis.rate_limits("ip", ip)),
            flood: Arc::new(redis.rate_limits("flood", flood)),
            sessions: Arc::new(redis.rate_limits("session", sessions)),
            blocks: Arc::new(redis.block_list(clock.clone())),
            gate: redis.player_gate(flood, clock),
            redis: Some(redis),
        })
    }
}

pub struct Application {
    /// The roles this process runs (`liveops serve --role`).
    role: Role,
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
        let services = Services::connect(&cfg, clock.clone()).await?;
        let calendar = Arc::new(Calendar::new(cfg.timezone, cfg.season.clone()));
        let hot = HotState::build(&cfg, &calendar, clock.clone()).await?;
        let blocks = hot.blocks.clone();
        // The system of record holds the blocks; the hot copy is refreshed from it at start-up.
        let stored = services
            .admin
            .blocks()
            .await
            .context("loading the block list")?;
        blocks
            .load(stored.into_iter().map(|b| (b.player_id, b.until)).collect())
            .await
            .context("loading the block list into the hot state")?;
        let failed = Arc::new(FailedEvents::new(FAILED_EVENTS_KEPT));
        // One set of signed-request checks for ingest and claims.
        let checks = SignedChecks::new(
            Verifier::new(&cfg, clock.clone()),
            IpRateLimiter::new(
                hot.ip_limits.clone(),
                cfg.rate_limit_exempt.clone(),
                cfg.trusted_proxies.clone(),
            ),
            failed.clone(),
            clock.clone(),
        );
        let gateway = GatewayState {
            checks: checks.clone(),
            log: services.log.clone(),
            idempotency: hot.idempotency.clone(),
            blocks: blocks.clone(),
            session_limiter: hot.sessions.clone(),
            flood: hot.flood.clone(),
            gate: hot.gate.clone(),
            clock: clock.clone(),
        };
        let progression = ProgressionState {
            store: services.progress.clone(),
            calendar: calendar.clone(),
            clock: clock.clone(),
            checks,
        };
        let fairness_cursor = services.progress.cursor(crate::fairness::CONSUMER).await?;
        // Erased players whose in-flight events neither fairness nor the leaderboards apply:
        // one map, marked by the erasure, read by both workers.
        let erased: Arc<parking_lot::RwLock<HashMap<PlayerId, u64>>> = Default::default();
        let (fairness, decided) = crate::fairness::FairnessState::new(
            &cfg,
            &services,
            gateway.blocks.clone(),
            erased.clone(),
            fairness_cursor,
        );
        let leaderboards = LeaderboardState {
            boards: hot.leaderboards.clone(),
            source: services.board_source.clone(),
            archive: services.archive.clone(),
            clock: clock.clone(),
            topn: cfg.lb_topn,
            snapshot_cron: cfg.snapshot_cron.clone(),
            erased,
            applied: Arc::new(tokio::sync::Mutex::new(0)),
        };
        if cfg.admin_token.is_none() {
            tracing::warn!("ADMIN_TOKEN is not set: the admin API under /admin is disabled");
        }
        let admin = crate::admin::AdminState {
            token: cfg.admin_token.clone(),
            store: services.admin.clone(),
            blocks,
            failed,
            boards: Arc::new(crate::leaderboard::BoardControl::new(leaderboards.clone())),
            review: Arc::new(crate::fairness::Review::new(&fairness)),
            clock: clock.clone(),
        };
        let ops = OpsState {
            log: services.history.clone(),
            bus: services.external_log.then(|| services.log.clone()),
            redis: hot.redis.clone(),
            // Every metric of the catalog described and at zero from the first scrape.
            metrics: cfg
                .metrics_enabled
                .then(|| crate::ops::exporter::install(cfg.role)),
        };
        let metrics = ops.metrics.clone();
        let streams = crate::leaderboard::stream::Streams::new(leaderboards.clone());
        // Each role serves its own routes; `web` serves the pages, the admin API and every
        // read, plus the gateway's routes so that the demo game works from one origin.
        let role = cfg.role;
        let mut router = Router::new().merge(crate::ops::router(ops));
        if role.runs(Role::Gateway) || role == Role::Web {
            router = router.merge(crate::gateway::router(gateway.clone()));
        }
        if role.runs(Role::Progression) || role == Role::Web {
            router = router.merge(crate::progression::router(progression));
        }
        if role.runs(Role::Leaderboard) || role == Role::Web {
            router = router
                .merge(crate::leaderboard::router(leaderboards.clone()))
                .merge(streams.router());
        }
        if role.runs(Role::Fairness) || role == Role::Web {
            router = router.merge(crate::fairness::router(fairness.clone()));
        }
        if role.runs(Role::Web) {
            router = router
                .merge(crate::web::router())
                .merge(crate::admin::router(admin));
        }
        let router = router
            // Last, so that it wraps every route: trace id, HTTP metrics, JSON errors, panics.
            .layer(crate::edge::EdgeLayer::new(role.as_str()));
        let addr = SocketAddr::new(cfg.bind_addr, cfg.port);
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr} (PORT, BIND_ADDR)"))?;
        Ok(Application {
            role,
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
            role,
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
        // Consumer workers run where this process leads their role (always, on one process).
        let election = services.election.clone();
        if let Some(pg) = &services.postgres {
            // Another process may lead fairness: learn of its decisions from the store.
            let watch = pg.cursor_watch(crate::fairness::CONSUMER, Duration::from_millis(20));
            let (fairness, shutdown) = (fairness.clone(), shutdown.clone());
            workers.spawn(async move {
                fairness.follow_stored_cursor(watch, shutdown).await;
                Ok(())
            });
        }
        if role.runs(Role::Fairness) {
            let log = services.log.clone();
            let cursors = services.progress.clone();
            let bus = services.bus.clone();
            workers.spawn(crate::leader::run_as_leader(
                election.clone(),
                crate::fairness::CONSUMER,
                shutdown.clone(),
                move |stop| {
                    let (fairness, log, cursors) = (fairness.clone(), log.clone(), cursors.clone());
                    let bus = bus.clone();
                    async move {
                        // On JetStream, the leader reads through the role's durable consumer,
                        // positioned at the committed cursor, acking after each commit.
                        let log: Arc<dyn EventLog> = match bus {
                            Some(bus) => {
                                let cursor = cursors.cursor(crate::fairness::CONSUMER).await?;
                                Arc::new(
                                    liveops_bus::RoleFeed::open(
                                        bus,
                                        crate::fairness::CONSUMER,
                                        cursor,
                                    )
                                    .await?,
                                )
                            }
                            None => log,
                        };
                        crate::fairness::run_worker(fairness, log, cursors, stop).await
                    }
                },
            ));
        }
        let decided: Arc<dyn EventLog> = decided;
        if role.runs(Role::Progression) {
            let decided = decided.clone();
            let store = services.progress.clone();
            workers.spawn(crate::leader::run_as_leader(
                election.clone(),
                crate::progression::CONSUMER,
                shutdown.clone(),
                move |stop| crate::progression::run_worker(decided.clone(), store.clone(), stop),
            ));
        }
        if role.runs(Role::Leaderboard) {
            workers.spawn(crate::leader::run_as_leader(
                election.clone(),
                crate::leaderboard::CONSUMER,
                shutdown.clone(),
                move |stop| {
                    crate::leaderboard::run_worker(leaderboards.clone(), decided.clone(), stop)
                },
            ));
        }
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
                // Memory needs the sweeping; in Redis keys expire by themselves and these are
                // cheap no-ops (blocks: one small script). A failure only delays the sweep.
                let swept = [
                    g.idempotency.purge_expired().await,
                    g.checks.ip_limiter().clean().await,
                    g.flood.clean().await,
                    g.blocks.prune().await,
                    g.session_limiter.clean().await,
                ];
                if let Some(Err(e)) = swept.into_iter().find(Result::is_err) {
                    tracing::debug!(error = %e, "hot-state housekeeping failed");
                }
                if let Some(m) = &metrics {
                    m.run_upkeep();
                }
                if let Some(n) = log.open_connections() {
                    metrics::gauge!(crate::ops::catalog::DATABASE_CONNECTIONS_ACTIVE).set(n as f64);
                }
            }
        }
    }
}
