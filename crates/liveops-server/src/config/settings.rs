//! The settings as clap reads them, from flags or the environment (the documented names (`.env.example`)), grouped
//! so that each subcommand takes only the groups it uses: `liveops serve` takes
//! [`Settings`] (every group), `liveops migrate` [`StoreArgs`], `liveops rebuild`
//! [`StoreArgs`] + [`CalendarArgs`] + [`HotStateArgs`], `liveops snapshot` [`StoreArgs`] +
//! [`CalendarArgs`] + [`BoardSizeArgs`] + [`ArchiveArgs`].
//!
//! Every value is typed here by its parser (`parse.rs`); the rules that involve several
//! settings are checked once, by `Settings::validate` (`mod.rs`). Each field's doc comment is
//! its `--help` text, written for the operator; clap adds the variable and the default.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use liveops_domain::keys::{KeyId, Secret};
use liveops_domain::window::Window;

use super::parse::{self, checked, choice, or_unset, secret, DbUrl, List, OrUnset, SeasonBound};
use super::{AnomalyAction, BusKind, Env};

/// Every setting of `liveops serve` (`.env.example`).
#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    #[command(flatten)]
    pub listen: ListenArgs,
    #[command(flatten)]
    pub signing: SigningArgs,
    #[command(flatten)]
    pub gateway: GatewayArgs,
    #[command(flatten)]
    pub fairness: FairnessArgs,
    #[command(flatten)]
    pub calendar: CalendarArgs,
    #[command(flatten)]
    pub board_size: BoardSizeArgs,
    #[command(flatten)]
    pub snapshots: SnapshotArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub archive: ArchiveArgs,
    #[command(flatten)]
    pub bus: BusArgs,
    #[command(flatten)]
    pub hot_state: HotStateArgs,
    #[command(flatten)]
    pub ops: OpsArgs,
}

/// Where the server listens and which kind of deployment it is.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Server")]
pub struct ListenArgs {
    /// The HTTP port every role of this process serves. Unset: 8080, or with `--role` that
    /// role's own port (gateway 8080, fairness 8081, leaderboard 8082, progression 8083,
    /// web 3000). 0 picks any free port.
    #[arg(long, env = "PORT", value_name = "PORT", value_parser = checked(parse::port))]
    pub port: Option<u16>,
    /// The address to listen on: 127.0.0.1 serves this machine only, 0.0.0.0 every interface.
    #[arg(long, env = "BIND_ADDR", value_name = "BIND_ADDR", default_value = "127.0.0.1",
        value_parser = checked(parse::ip_addr))]
    pub bind_addr: IpAddr,
    /// The kind of deployment. prod refuses to start without HMAC_SECRET and turns guest
    /// sessions off unless GUEST_SESSIONS=true; dev and staging generate a dev secret when
    /// HMAC_SECRET is unset.
    #[arg(long, env = "ENV", value_name = "ENV", default_value = "dev", value_parser = choice::<Env>())]
    pub env: Env,
}

/// How requests are signed (`docs/api.md`).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Request signing")]
pub struct SigningArgs {
    /// The default HMAC-SHA256 key of request signatures, receipts and guest sessions, at least
    /// 32 bytes. Required with ENV=prod. Unset otherwise: a random one is generated once into
    /// DATA_DIR/hmac_secret, printed, and reused by later runs and by `liveops send`.
    #[arg(long, env = "HMAC_SECRET", value_name = "HMAC_SECRET", hide_env_values = true,
        default_value = "", hide_default_value = true,
        value_parser = secret(or_unset(parse::signing_secret)))]
    pub hmac_secret: OrUnset<Secret>,
    /// Extra keys for rotation, as id:secret pairs separated by commas (each secret at least
    /// 32 bytes). A client picks one by sending its id as X-Key-Id. Default: none.
    #[arg(long, env = "HMAC_KEYS", value_name = "HMAC_KEYS", hide_env_values = true,
        default_value = "", hide_default_value = true, value_parser = secret(parse::hmac_keys))]
    pub hmac_keys: List<(KeyId, Secret)>,
    /// How far X-Timestamp may be from the server's clock (a bare number is seconds; also
    /// 500ms, 5m, 2h). Requests outside it get 401.
    #[arg(long, env = "SIGNATURE_TOLERANCE", value_name = "SIGNATURE_TOLERANCE",
        default_value = "300s", value_parser = checked(parse::duration))]
    pub signature_tolerance: Duration,
    /// Refuse signed requests without X-Timestamp (true or false). With false, a signature over
    /// the body alone is accepted too.
    #[arg(long, env = "REQUIRE_TIMESTAMP", value_name = "REQUIRE_TIMESTAMP",
        default_value = "false", action = clap::ArgAction::Set, value_parser = checked(parse::boolean))]
    pub require_timestamp: bool,
    /// Whether browsers may open guest sessions (POST /sessions, then X-Session instead of a
    /// signature). Unset: on, except with ENV=prod.
    #[arg(long, env = "GUEST_SESSIONS", value_name = "GUEST_SESSIONS",
        action = clap::ArgAction::Set, value_parser = checked(parse::boolean))]
    pub guest_sessions: Option<bool>,
}

/// The gateway's limits (`docs/api.md`).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Ingest limits")]
pub struct GatewayArgs {
    /// Requests per minute per client IP, with a burst of as many; beyond it, 429. 0 disables
    /// the limit.
    #[arg(long, env = "RATE_LIMIT_MAX", value_name = "RATE_LIMIT_MAX", default_value = "50",
        value_parser = checked(parse::int_in(0u32, u32::MAX)))]
    pub rate_limit_max: u32,
    /// Client addresses that skip the per-IP limit, such as the game servers' subnet: CIDRs or
    /// IP addresses separated by commas. Default: none.
    #[arg(long, env = "RATE_LIMIT_EXEMPT", value_name = "RATE_LIMIT_EXEMPT", default_value = "",
        hide_default_value = true, value_parser = checked(parse::cidrs))]
    pub rate_limit_exempt: List<IpNet>,
    /// Reverse proxies whose X-Forwarded-For is believed: CIDRs or IP addresses separated by
    /// commas. Default: none, so the socket's address is the client's.
    #[arg(long, env = "TRUSTED_PROXIES", value_name = "TRUSTED_PROXIES", default_value = "",
        hide_default_value = true, value_parser = checked(parse::cidrs))]
    pub trusted_proxies: List<IpNet>,
    /// Events per second per player, with a burst of as many; beyond it, 429. 0 disables the
    /// flood gate.
    #[arg(long, env = "FLOOD_MAX_PER_SEC", value_name = "FLOOD_MAX_PER_SEC", default_value = "10",
        value_parser = checked(parse::int_in(0u32, u32::MAX)))]
    pub flood_max_per_sec: u32,
    /// How long an Idempotency-Key is remembered, its first answer replayed to repeats (a bare
    /// number is seconds; also 500ms, 5m, 2h).
    #[arg(long, env = "IDEMP_TTL", value_name = "IDEMP_TTL", default_value = "300s",
        value_parser = checked(parse::duration))]
    pub idemp_ttl: Duration,
}

/// The fairness guard's thresholds (`docs/fairness.md`, docs/fairness.md).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Fairness guard")]
pub struct FairnessArgs {
    /// Flag an event whose value is more than this many standard deviations from the player's
    /// (or, early on, every player's) usual values. A number above 0; lower flags more.
    #[arg(long, env = "ANOMALY_Z", value_name = "ANOMALY_Z", default_value = "3.5",
        value_parser = checked(parse::positive_number))]
    pub anomaly_z: f64,
    /// What a flag does: quarantine holds the event (no XP, no score) until an operator
    /// releases or rejects it; flag applies it and records the flag.
    #[arg(long, env = "ANOMALY_ACTION", value_name = "ANOMALY_ACTION", default_value = "quarantine",
        value_parser = choice::<AnomalyAction>())]
    pub anomaly_action: AnomalyAction,
    /// How long a player is blocked after repeated flags: whole seconds (60), or 2m, 1h.
    #[arg(long, env = "BLOCK_SEC", value_name = "BLOCK_SEC", default_value = "60",
        value_parser = checked(parse::whole_seconds))]
    pub block_sec: Duration,
    /// The largest deltaXp of one progression event; larger ones are flagged whatever the
    /// history. At least 1.
    #[arg(long, env = "MAX_DELTA_XP", value_name = "MAX_DELTA_XP", default_value = "10000",
        value_parser = checked(parse::at_least(1i64)))]
    pub max_delta_xp: i64,
    /// The largest points of one boss kill; larger ones are flagged whatever the history. At
    /// least 0.
    #[arg(long, env = "MAX_BOSS_POINTS", value_name = "MAX_BOSS_POINTS", default_value = "100000",
        value_parser = checked(parse::at_least(0i64)))]
    pub max_boss_points: i64,
}

/// The leaderboards' calendar (`docs/api.md`): which windows, in which time zone, which season.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Leaderboards")]
pub struct CalendarArgs {
    /// The leaderboard windows to keep, separated by commas: daily, weekly, seasonal.
    #[arg(long, env = "LB_WINDOWS", value_name = "LB_WINDOWS", default_value = "daily,weekly,seasonal",
        value_parser = checked(parse::windows))]
    pub lb_windows: List<Window>,
    /// The IANA time zone in which days, weeks (from Monday) and seasons start.
    #[arg(long, env = "LB_TIMEZONE", value_name = "LB_TIMEZONE", default_value = "UTC",
        value_parser = checked(parse::time_zone))]
    pub lb_timezone: chrono_tz::Tz,
    /// A fixed season's id (1 to 64 characters of A-Z, a-z, 0-9, _ and -, not shaped like
    /// 2026-Q4). Set with SEASON_START and SEASON_END, all three or none. Unset: seasons are
    /// calendar quarters, with ids like 2026-Q4.
    #[arg(long, env = "SEASON_ID", value_name = "SEASON_ID")]
    pub season_id: Option<String>,
    /// When the fixed season starts: a date (midnight in LB_TIMEZONE, such as 2026-10-01) or an
    /// RFC 3339 time. Before SEASON_END.
    #[arg(long, env = "SEASON_START", value_name = "SEASON_START",
        value_parser = checked(parse::season_bound))]
    pub season_start: Option<SeasonBound>,
    /// When the fixed season ends (exclusive): a date or an RFC 3339 time. After SEASON_START.
    #[arg(long, env = "SEASON_END", value_name = "SEASON_END",
        value_parser = checked(parse::season_bound))]
    pub season_end: Option<SeasonBound>,
}

/// How many entries a board keeps and archives.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Leaderboards")]
pub struct BoardSizeArgs {
    /// The entries of each board that are served and archived (1 to 10000).
    #[arg(long, env = "LB_TOPN", value_name = "LB_TOPN", default_value = "100",
        value_parser = checked(parse::int_in(1usize, 10_000)))]
    pub lb_topn: usize,
}

/// When the running boards are archived.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Leaderboards")]
pub struct SnapshotArgs {
    /// When to snapshot the running leaderboards into the archive: a 6-field cron expression
    /// (sec min hour day month weekday), or off. The final standings of an ended period are
    /// archived at rollover whatever this says.
    #[arg(long, env = "SNAPSHOT_CRON", value_name = "SNAPSHOT_CRON", default_value = "0 */15 * * * *",
        value_parser = checked(parse::cron_or_off))]
    pub snapshot_cron: OrUnset<cron::Schedule>,
}

/// The system of record (`docs/operations.md`).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "System of record")]
pub struct StoreArgs {
    /// The directory of the embedded SQLite store (liveops.db), the dev secret and the default
    /// archive. Created when missing.
    #[arg(long, env = "DATA_DIR", value_name = "DATA_DIR", default_value = "./liveops-data",
        value_parser = checked(parse::directory))]
    pub data_dir: PathBuf,
    /// PostgreSQL as the system of record (postgres://user:password@host:port/database);
    /// migrations run at start-up and with `liveops migrate`. Unset: SQLite in DATA_DIR.
    /// Required by BUS_KIND=nats and by `serve --role`.
    #[arg(long, env = "DB_URL", value_name = "DB_URL", hide_env_values = true,
        default_value = "", hide_default_value = true,
        value_parser = secret(or_unset(parse::db_url)))]
    pub db_url: OrUnset<DbUrl>,
    /// Another name of DB_URL, read when DB_URL is unset.
    #[arg(long, env = "DATABASE_URL", value_name = "DATABASE_URL", hide = true,
        hide_env_values = true, default_value = "", hide_default_value = true,
        value_parser = secret(or_unset(parse::db_url)))]
    pub database_url: OrUnset<DbUrl>,
    /// PostgreSQL connections per process (with DB_URL), at least 1.
    #[arg(long, env = "DB_MAX_CONNECTIONS", value_name = "DB_MAX_CONNECTIONS", default_value = "16",
        value_parser = checked(parse::int_in(1u32, u32::MAX)))]
    pub db_max_connections: u32,
}

/// Where ended periods' standings and snapshots are kept.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "System of record")]
pub struct ArchiveArgs {
    /// The archive directory, as file:///absolute/path; every process of a deployment must see
    /// the same one. Unset: DATA_DIR/archive, or with DB_URL the leaderboard_snapshots table.
    #[arg(long, env = "ARCHIVE_URL", value_name = "ARCHIVE_URL", default_value = "",
        hide_default_value = true, value_parser = checked(or_unset(parse::archive_url)))]
    pub archive_url: OrUnset<PathBuf>,
}

/// The durable log of a scaled-out deployment.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Engines")]
pub struct BusArgs {
    /// Where an accepted event is made durable before its 202: inmem is the system of record's
    /// own log; nats is a NATS JetStream stream (needs DB_URL). sqs and servicebus are not
    /// available in this build.
    #[arg(long, env = "BUS_KIND", value_name = "BUS_KIND", default_value = "inmem",
        value_parser = checked(parse_bus_kind))]
    pub bus_kind: BusKind,
    /// The NATS server of BUS_KIND=nats (nats://host:port or tls://host:port). Unset:
    /// nats://127.0.0.1:4222.
    #[arg(long, env = "BUS_CONN", value_name = "BUS_CONN", hide_env_values = true,
        default_value = "", hide_default_value = true,
        value_parser = secret(or_unset(parse::nats_url)))]
    pub bus_conn: OrUnset<Secret>,
}

/// `BUS_KIND`, with a plain answer for the documented kinds this build does not have.
fn parse_bus_kind(s: &str) -> Result<BusKind, String> {
    match s.trim() {
        "inmem" => Ok(BusKind::Inmem),
        "nats" => Ok(BusKind::Nats),
        "sqs" | "servicebus" => Err("not available in this build: expected inmem or nats".into()),
        _ => Err("expected inmem or nats".into()),
    }
}

/// The hot state (`docs/operations.md`): boards, idempotency keys, rate limits, blocks.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Engines")]
pub struct HotStateArgs {
    /// Keep the hot state in Redis (redis://host:port, rediss:// for TLS; several URLs
    /// separated by commas for a Redis Cluster), shared by every process. Unset: in this
    /// process's memory, rebuilt from the system of record at start-up.
    #[arg(long, env = "REDIS_URL", value_name = "REDIS_URL", hide_env_values = true,
        default_value = "", hide_default_value = true,
        value_parser = secret(or_unset(parse::redis_url)))]
    pub redis_url: OrUnset<Secret>,
    /// The prefix of Redis keys and of NATS stream and subject names (1 to 64 characters of
    /// A-Z, a-z, 0-9, _, - and .), so several deployments can share one Redis and one NATS.
    #[arg(long, env = "NAMESPACE", value_name = "NAMESPACE", default_value = "liveops",
        value_parser = checked(parse::namespace))]
    pub namespace: String,
}

/// Operating the server (`docs/api.md`).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Operations")]
pub struct OpsArgs {
    /// Enables the admin API under /admin (Authorization: Bearer <token>), at least 16
    /// characters. Unset: the admin API is disabled.
    #[arg(long, env = "ADMIN_TOKEN", value_name = "ADMIN_TOKEN", hide_env_values = true,
        default_value = "", hide_default_value = true,
        value_parser = secret(or_unset(parse::admin_token)))]
    pub admin_token: OrUnset<Secret>,
    /// The log filter of the JSON logs on standard error: a level (error, warn, info, debug,
    /// trace) or directives such as info,liveops_server=debug.
    #[arg(long, env = "LOG_LEVEL", value_name = "LOG_LEVEL", default_value = "info",
        value_parser = checked(parse::log_filter))]
    pub log_level: String,
    /// Serve Prometheus metrics at /metrics (true or false).
    #[arg(long, env = "METRICS_ENABLED", value_name = "METRICS_ENABLED", default_value = "true",
        action = clap::ArgAction::Set, value_parser = checked(parse::boolean))]
    pub metrics_enabled: bool,
}
