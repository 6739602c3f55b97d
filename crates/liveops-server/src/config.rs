//! The one typed configuration (SPEC section 3), read from the environment with the SPEC's
//! names. Every value is parsed and checked at start-up; a bad one stops the server with a
//! message naming the variable.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use ipnet::IpNet;
use liveops_domain::window::{SeasonRule, Window};

/// A secret whose `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
    /// The secret as text (secrets read from the environment are UTF-8).
    pub fn expose_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Env {
    Dev,
    Staging,
    Prod,
}

/// Raw settings as clap reads them from flags or the environment. `Config::from_raw` turns
/// them into checked values.
#[derive(Debug, Clone, clap::Args)]
pub struct RawConfig {
    #[arg(long, env = "PORT", value_name = "PORT")]
    pub port: Option<u16>,
    #[arg(
        long,
        env = "BIND_ADDR",
        value_name = "BIND_ADDR",
        default_value = "127.0.0.1"
    )]
    pub bind_addr: IpAddr,
    #[arg(
        long,
        env = "ENV",
        value_name = "ENV",
        value_enum,
        default_value = "dev"
    )]
    pub env: Env,
    #[arg(
        long,
        env = "DATA_DIR",
        value_name = "DATA_DIR",
        default_value = "./liveops-data"
    )]
    pub data_dir: PathBuf,
    #[arg(
        long,
        env = "HMAC_SECRET",
        value_name = "HMAC_SECRET",
        hide_env_values = true
    )]
    pub hmac_secret: Option<String>,
    #[arg(
        long,
        env = "HMAC_KEYS",
        value_name = "HMAC_KEYS",
        hide_env_values = true
    )]
    pub hmac_keys: Option<String>,
    #[arg(long, env = "DB_URL", value_name = "DB_URL")]
    pub db_url: Option<String>,
    #[arg(long, env = "DATABASE_URL", value_name = "DATABASE_URL", hide = true)]
    pub database_url: Option<String>,
    #[arg(long, env = "REDIS_URL", value_name = "REDIS_URL")]
    pub redis_url: Option<String>,
    #[arg(
        long,
        env = "BUS_KIND",
        value_name = "BUS_KIND",
        default_value = "inmem"
    )]
    pub bus_kind: String,
    #[arg(long, env = "BUS_CONN", value_name = "BUS_CONN")]
    pub bus_conn: Option<String>,
    #[arg(long, env = "ARCHIVE_URL", value_name = "ARCHIVE_URL")]
    pub archive_url: Option<String>,
    #[arg(
        long,
        env = "LB_WINDOWS",
        value_name = "LB_WINDOWS",
        default_value = "daily,weekly,seasonal"
    )]
    pub lb_windows: String,
    #[arg(long, env = "LB_TOPN", value_name = "LB_TOPN", default_value_t = 100)]
    pub lb_topn: usize,
    #[arg(
        long,
        env = "LB_TIMEZONE",
        value_name = "LB_TIMEZONE",
        default_value = "UTC"
    )]
    pub lb_timezone: String,
    #[arg(long, env = "SEASON_ID", value_name = "SEASON_ID")]
    pub season_id: Option<String>,
    #[arg(long, env = "SEASON_START", value_name = "SEASON_START")]
    pub season_start: Option<String>,
    #[arg(long, env = "SEASON_END", value_name = "SEASON_END")]
    pub season_end: Option<String>,
    /// When to snapshot the running leaderboards (6-field cron: sec min hour day month dow);
    /// empty or `off` disables.
    #[arg(
        long,
        env = "SNAPSHOT_CRON",
        value_name = "SNAPSHOT_CRON",
        default_value = "0 */15 * * * *"
    )]
    pub snapshot_cron: String,
    #[arg(
        long,
        env = "ANOMALY_Z",
        value_name = "ANOMALY_Z",
        default_value_t = 3.5
    )]
    pub anomaly_z: f64,
    #[arg(
        long,
        env = "ANOMALY_ACTION",
        value_name = "ANOMALY_ACTION",
        default_value = "quarantine"
    )]
    pub anomaly_action: String,
    #[arg(
        long,
        env = "BLOCK_SEC",
        value_name = "BLOCK_SEC",
        default_value_t = 60
    )]
    pub block_sec: i64,
    #[arg(
        long,
        env = "MAX_DELTA_XP",
        value_name = "MAX_DELTA_XP",
        default_value_t = 10_000
    )]
    pub max_delta_xp: i64,
    #[arg(
        long,
        env = "MAX_BOSS_POINTS",
        value_name = "MAX_BOSS_POINTS",
        default_value_t = 100_000
    )]
    pub max_boss_points: i64,
    #[arg(
        long,
        env = "RATE_LIMIT_MAX",
        value_name = "RATE_LIMIT_MAX",
        default_value_t = 50
    )]
    pub rate_limit_max: u32,
    #[arg(
        long,
        env = "FLOOD_MAX_PER_SEC",
        value_name = "FLOOD_MAX_PER_SEC",
        default_value_t = 10
    )]
    pub flood_max_per_sec: u32,
    #[arg(
        long,
        env = "RATE_LIMIT_EXEMPT",
        value_name = "RATE_LIMIT_EXEMPT",
        default_value = ""
    )]
    pub rate_limit_exempt: String,
    #[arg(
        long,
        env = "TRUSTED_PROXIES",
        value_name = "TRUSTED_PROXIES",
        default_value = ""
    )]
    pub trusted_proxies: String,
    #[arg(
        long,
        env = "IDEMP_TTL",
        value_name = "IDEMP_TTL",
        default_value = "300s"
    )]
    pub idemp_ttl: String,
    #[arg(
        long,
        env = "SIGNATURE_TOLERANCE",
        value_name = "SIGNATURE_TOLERANCE",
        default_value = "300s"
    )]
    pub signature_tolerance: String,
    #[arg(long, env = "REQUIRE_TIMESTAMP", value_name = "REQUIRE_TIMESTAMP", default_value_t = false, action = clap::ArgAction::Set)]
    pub require_timestamp: bool,
    /// Guest sessions (`POST /sessions`); default on except with ENV=prod.
    #[arg(long, env = "GUEST_SESSIONS", value_name = "GUEST_SESSIONS", action = clap::ArgAction::Set)]
    pub guest_sessions: Option<bool>,
    #[arg(
        long,
        env = "ADMIN_TOKEN",
        value_name = "ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<String>,
    #[arg(
        long,
        env = "LOG_LEVEL",
        value_name = "LOG_LEVEL",
        default_value = "info"
    )]
    pub log_level: String,
    #[arg(long, env = "METRICS_ENABLED", value_name = "METRICS_ENABLED", default_value_t = true, action = clap::ArgAction::Set)]
    pub metrics_enabled: bool,
    #[arg(
        long,
        env = "NAMESPACE",
        value_name = "NAMESPACE",
        default_value = "liveops"
    )]
    pub namespace: String,
    /// PostgreSQL connections per process (`DB_URL` set).
    #[arg(
        long,
        env = "DB_MAX_CONNECTIONS",
        value_name = "DB_MAX_CONNECTIONS",
        default_value_t = 16
    )]
    pub db_max_connections: u32,
}

/// The system of record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// `DATA_DIR/liveops.db` (the embedded default).
    Sqlite,
    /// `DB_URL` / `DATABASE_URL`.
    Postgres { url: String, max_connections: u32 },
}

/// Where a 202 is made durable and how the roles are fed (`BUS_KIND`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bus {
    /// The system of record's own log, in process.
    InMem,
    /// NATS JetStream at `BUS_CONN`.
    Nats { url: String },
}

/// The roles one process runs (`liveops serve --role`, SPEC section 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    All,
    Gateway,
    Fairness,
    Progression,
    Leaderboard,
    Web,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::All => "all",
            Role::Gateway => "gateway",
            Role::Fairness => "fairness",
            Role::Progression => "progression",
            Role::Leaderboard => "leaderboard",
            Role::Web => "web",
        }
    }

    /// The seed's port for the role, used when `PORT` is unset.
    pub fn default_port(self) -> u16 {
        match self {
            Role::All | Role::Gateway => 8080,
            Role::Fairness => 8081,
            Role::Leaderboard => 8082,
            Role::Progression => 8083,
            Role::Web => 3000,
        }
    }

    /// Whether this process runs `other`'s HTTP routes and workers.
    pub fn runs(self, other: Role) -> bool {
        self == Role::All || self == other
    }
}

/// A configuration error, always naming the variable.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

fn bad(var: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        message: message.into(),
    }
}

/// Where the HMAC secret came from, so start-up can tell the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Env,
    /// Generated now into this file (dev only).
    Generated(PathBuf),
    /// Read from a file generated by an earlier dev run.
    File(PathBuf),
}

/// The checked configuration the application is built from.
#[derive(Debug, Clone)]
pub struct Config {
    /// Set by `liveops serve --role` through [`Config::with_role`].
    pub role: Role,
    /// Whether `PORT` was given (a split role otherwise listens on its seed port).
    pub port_set: bool,
    pub database: Database,
    pub bus: Bus,
    pub port: u16,
    pub bind_addr: IpAddr,
    pub env: Env,
    pub data_dir: PathBuf,
    /// The directory of `ARCHIVE_URL` (`file://`), when it is set. Unset, the archive is
    /// `DATA_DIR/archive` on SQLite and the `leaderboard_snapshots` table on PostgreSQL.
    pub archive_dir: Option<PathBuf>,
    /// The default signing key (no `X-Key-Id`).
    pub hmac_secret: Secret,
    pub secret_source: SecretSource,
    /// Rotated keys selected with `X-Key-Id`.
    pub hmac_keys: Vec<(String, Secret)>,
    pub windows: Vec<Window>,
    pub lb_topn: usize,
    pub timezone: chrono_tz::Tz,
    pub season: SeasonRule,
    /// The fairness guard's thresholds (SPEC section 7).
    pub fairness: liveops_domain::fairness::FairnessRules,
    pub anomaly_action: crate::fairness::AnomalyAction,
    /// `None`: no periodic snapshots.
    pub snapshot_cron: Option<cron::Schedule>,
    pub rate_limit_max: u32,
    /// Events per second per player (burst of as many); 0 disables.
    pub flood_max_per_sec: u32,
    pub rate_limit_exempt: Vec<IpNet>,
    pub trusted_proxies: Vec<IpNet>,
    pub idemp_ttl: Duration,
    pub signature_tolerance: Duration,
    pub require_timestamp: bool,
    /// `None`: the admin API is disabled.
    pub admin_token: Option<Secret>,
    /// Whether `POST /sessions` and `X-Session` work.
    pub guest_sessions: bool,
    /// Guest sessions one client IP may open per minute (burst of as many); 0: no limit.
    pub session_issue_per_minute: u32,
    pub log_level: String,
    pub metrics_enabled: bool,
    pub namespace: String,
    /// `REDIS_URL`: hot state in Redis (a comma-separated list means a cluster); `None` keeps
    /// it in process memory. A `Secret` because the URL may carry a password.
    pub redis_url: Option<Secret>,
}

impl Config {
    /// Runs one role (`liveops serve --role`). A split role shares its state with the other
    /// processes only through the engines, so it needs all three.
    pub fn with_role(mut self, role: Role) -> Result<Config, ConfigError> {
        if role != Role::All {
            let missing: Vec<&str> = [
                (
                    matches!(self.database, Database::Sqlite),
                    "DB_URL=postgres://...",
                ),
                (
                    self.bus == Bus::InMem,
                    "BUS_KIND=nats (and BUS_CONN=nats://...)",
                ),
                (self.redis_url.is_none(), "REDIS_URL=redis://..."),
            ]
            .into_iter()
            .filter_map(|(missing, what)| missing.then_some(what))
            .collect();
            if !missing.is_empty() {
                return Err(bad(
                    "--role",
                    format!(
                        "--role {} runs one role of a split deployment, which shares state only through the engines; set {} (or run `liveops serve` for all roles in one process on the embedded defaults)",
                        role.as_str(),
                        missing.join(", ")
                    ),
                ));
            }
            if !self.port_set {
                self.port = role.default_port();
            }
        }
        self.role = role;
        Ok(self)
    }

    /// Checks raw settings. In dev without `HMAC_SECRET`, a secret is generated once into
    /// `DATA_DIR/hmac_secret` and reused by later runs (and by `liveops send`).
    pub fn from_raw(raw: RawConfig) -> Result<Config, ConfigError> {
        let (hmac_secret, secret_source) = match raw.hmac_secret.as_deref() {
            Some(s) if s.len() >= liveops_domain::signing::MIN_SECRET_LEN => {
                (Secret::new(s.as_bytes()), SecretSource::Env)
            }
            Some(s) if raw.env == Env::Prod || !s.is_empty() => {
                return Err(bad(
                    "HMAC_SECRET",
                    format!("must be at least 32 bytes, got {}", s.len()),
                ))
            }
            _ if raw.env == Env::Prod => {
                return Err(bad(
                    "HMAC_SECRET",
                    "is required with ENV=prod (at least 32 bytes)",
                ))
            }
            _ => dev_secret(&raw.data_dir)?,
        };
        let mut hmac_keys = Vec::new();
        for part in raw
            .hmac_keys
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let (id, secret) = part
                .split_once(':')
                .ok_or_else(|| bad("HMAC_KEYS", "expected id:secret pairs separated by commas"))?;
            if id.is_empty() || secret.len() < liveops_domain::signing::MIN_SECRET_LEN {
                return Err(bad(
                    "HMAC_KEYS",
                    format!("key {id:?}: id must be non-empty and the secret at least 32 bytes"),
                ));
            }
            hmac_keys.push((id.to_string(), Secret::new(secret.as_bytes())));
        }
        let database = match raw
            .db_url
            .or(raw.database_url)
            .filter(|u| !u.is_empty())
        {
            None => Database::Sqlite,
            Some(url) if url.starts_with("sqlite:") => Database::Sqlite,
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                if raw.db_max_connections == 0 {
                    return Err(bad("DB_MAX_CONNECTIONS", "must be at least 1"));
                }
                Database::Postgres {
                    url,
                    max_connections: raw.db_max_connections,
                }
            }
            Some(_) => {
                return Err(bad(
                    "DB_URL",
                    "expected a postgres://user@host:port/database URL (or unset for the embedded SQLite store)",
                ))
            }
        };
        // One URL, or a comma-separated list of cluster nodes; the connection itself is made
        // (and its failure reported) when the application is built.
        let redis_url = match raw.redis_url.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(url) => {
                let nodes: Vec<&str> = url.split(',').map(str::trim).collect();
                if let Some(n) = nodes
                    .iter()
                    .find(|n| !(n.starts_with("redis://") || n.starts_with("rediss://")))
                {
                    return Err(bad(
                        "REDIS_URL",
                        format!(
                            "expected redis://host:port (or a comma-separated list of cluster nodes), got {:?}",
                            n.split('@').next_back().unwrap_or("")
                        ),
                    ));
                }
                Some(Secret::new(url.as_bytes()))
            }
        };
        if liveops_hotstate::redis::check_namespace(&raw.namespace).is_err() {
            return Err(bad(
                "NAMESPACE",
                format!(
                    "must be 1 to 64 characters of [A-Za-z0-9_.-], got {:?}",
                    raw.namespace
                ),
            ));
        }
        let bus = match raw.bus_kind.as_str() {
            "inmem" => Bus::InMem,
            "nats" => {
                let url = raw
                    .bus_conn
                    .clone()
                    .filter(|u| !u.is_empty())
                    .unwrap_or_else(|| "nats://127.0.0.1:4222".to_string());
                if !url.starts_with("nats://") && !url.starts_with("tls://") {
                    return Err(bad(
                        "BUS_CONN",
                        format!("expected a nats:// URL, got {url:?}"),
                    ));
                }
                // JetStream sequences the events; PostgreSQL records them. SQLite holds its own
                // log, so the two do not combine.
                if database == Database::Sqlite {
                    return Err(bad(
                        "BUS_KIND",
                        "BUS_KIND=nats needs PostgreSQL as the system of record: set DB_URL=postgres://...",
                    ));
                }
                Bus::Nats { url }
            }
            "sqs" | "servicebus" => {
                return Err(bad(
                    "BUS_KIND",
                    format!(
                        "{:?} is not available in this build; use inmem or nats",
                        raw.bus_kind
                    ),
                ))
            }
            other => {
                return Err(bad(
                    "BUS_KIND",
                    format!("expected inmem, nats, sqs or servicebus, got {other:?}"),
                ))
            }
        };
        let archive_dir = match raw.archive_url.as_deref().filter(|u| !u.is_empty()) {
            None => None,
            Some(url) => {
                let path = url.strip_prefix("file://").ok_or_else(|| {
                    bad(
                        "ARCHIVE_URL",
                        format!("only file:// archives are available in this build, got {url:?}"),
                    )
                })?;
                if !path.starts_with('/') {
                    return Err(bad(
                        "ARCHIVE_URL",
                        format!("expected file:// and an absolute path (file:///var/lib/liveops/archive), got {url:?}"),
                    ));
                }
                Some(PathBuf::from(path))
            }
        };
        let mut windows = Vec::new();
        for w in raw
            .lb_windows
            .split(',')
            .map(str::trim)
            .filter(|w| !w.is_empty())
        {
            let w = Window::parse(w).ok_or_else(|| {
                bad(
                    "LB_WINDOWS",
                    format!("unknown window {w:?}, expected daily, weekly or seasonal"),
                )
            })?;
            if !windows.contains(&w) {
                windows.push(w);
            }
        }
        if windows.is_empty() {
            return Err(bad("LB_WINDOWS", "must name at least one window"));
        }
        if raw.lb_topn == 0 || raw.lb_topn > 10_000 {
            return Err(bad("LB_TOPN", "must be between 1 and 10000"));
        }
        let timezone: chrono_tz::Tz = raw.lb_timezone.parse().map_err(|_| {
            bad(
                "LB_TIMEZONE",
                format!("unknown IANA time zone {:?}", raw.lb_timezone),
            )
        })?;
        let season = match (raw.season_id, raw.season_start, raw.season_end) {
            (None, None, None) => SeasonRule::CalendarQuarter,
            (Some(id), Some(start), Some(end)) => {
                let start = parse_instant(&start, timezone).ok_or_else(|| {
                    bad(
                        "SEASON_START",
                        "expected a date (2026-10-01) or RFC 3339 time",
                    )
                })?;
                let end = parse_instant(&end, timezone).ok_or_else(|| {
                    bad(
                        "SEASON_END",
                        "expected a date (2026-12-31) or RFC 3339 time",
                    )
                })?;
                SeasonRule::fixed(id, start, end).map_err(|e| {
                    let var = match e {
                        liveops_domain::window::SeasonError::EmptyRange { .. } => "SEASON_END",
                        _ => "SEASON_ID",
                    };
                    bad(var, e.to_string())
                })?
            }
            _ => {
                return Err(bad(
                    "SEASON_ID",
                    "SEASON_ID, SEASON_START and SEASON_END must be set together",
                ))
            }
        };
        Ok(Config {
            role: Role::All,
            port_set: raw.port.is_some(),
            database,
            bus,
            port: raw.port.unwrap_or(8080),
            bind_addr: raw.bind_addr,
            env: raw.env,
            data_dir: raw.data_dir,
            archive_dir,
            hmac_secret,
            secret_source,
            hmac_keys,
            windows,
            lb_topn: raw.lb_topn,
            timezone,
            season,
            fairness: {
                if !(raw.anomaly_z.is_finite() && raw.anomaly_z > 0.0) {
                    return Err(bad(
                        "ANOMALY_Z",
                        format!("must be a number above 0, got {}", raw.anomaly_z),
                    ));
                }
                if raw.block_sec < 1 {
                    return Err(bad("BLOCK_SEC", "must be at least 1 second"));
                }
                if raw.max_delta_xp < 1 {
                    return Err(bad("MAX_DELTA_XP", "must be at least 1"));
                }
                if raw.max_boss_points < 0 {
                    return Err(bad("MAX_BOSS_POINTS", "must be at least 0"));
                }
                liveops_domain::fairness::FairnessRules {
                    z_threshold: raw.anomaly_z,
                    max_delta_xp: raw.max_delta_xp,
                    max_boss_points: raw.max_boss_points,
                    block_sec: raw.block_sec,
                    ..Default::default()
                }
            },
            anomaly_action: match raw.anomaly_action.as_str() {
                "quarantine" => crate::fairness::AnomalyAction::Quarantine,
                "flag" => crate::fairness::AnomalyAction::Flag,
                other => {
                    return Err(bad(
                        "ANOMALY_ACTION",
                        format!("must be quarantine or flag, got {other:?}"),
                    ))
                }
            },
            snapshot_cron: match raw.snapshot_cron.trim() {
                "" | "off" => None,
                expr => Some(expr.parse::<cron::Schedule>().map_err(|e| {
                    bad(
                        "SNAPSHOT_CRON",
                        format!("expected a 6-field cron expression like \"0 */15 * * * *\": {e}"),
                    )
                })?),
            },
            rate_limit_max: raw.rate_limit_max,
            flood_max_per_sec: raw.flood_max_per_sec,
            rate_limit_exempt: parse_cidrs("RATE_LIMIT_EXEMPT", &raw.rate_limit_exempt)?,
            trusted_proxies: parse_cidrs("TRUSTED_PROXIES", &raw.trusted_proxies)?,
            idemp_ttl: parse_duration("IDEMP_TTL", &raw.idemp_ttl)?,
            signature_tolerance: parse_duration("SIGNATURE_TOLERANCE", &raw.signature_tolerance)?,
            require_timestamp: raw.require_timestamp,
            admin_token: match raw.admin_token.filter(|t| !t.is_empty()) {
                Some(t) if t.len() < 16 => {
                    return Err(bad("ADMIN_TOKEN", "must be at least 16 characters"))
                }
                Some(t) => Some(Secret::new(t.into_bytes())),
                None => None,
            },
            guest_sessions: raw.guest_sessions.unwrap_or(raw.env != Env::Prod),
            session_issue_per_minute: 20,
            log_level: raw.log_level,
            metrics_enabled: raw.metrics_enabled,
            namespace: raw.namespace,
            redis_url,
        })
    }

    /// A test configuration: everything default, data in `data_dir`, port 0 (any free port).
    pub fn for_tests(data_dir: PathBuf, secret: &str) -> Config {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct P {
            #[command(flatten)]
            raw: RawConfig,
        }
        // Parse from an empty argument list with no environment influence for the options
        // tests care about; defaults come from the attributes above.
        let mut raw = P::parse_from(["liveops"]).raw;
        raw.data_dir = data_dir;
        raw.hmac_secret = Some(secret.to_string());
        raw.hmac_keys = None;
        raw.db_url = None;
        raw.database_url = None;
        raw.redis_url = None;
        raw.bus_kind = "inmem".into();
        raw.archive_url = None;
        raw.admin_token = None;
        raw.port = Some(0);
        let mut cfg = Config::from_raw(raw).expect("test configuration is valid");
        cfg.port = 0;
        cfg
    }
}

fn dev_secret(data_dir: &std::path::Path) -> Result<(Secret, SecretSource), ConfigError> {
    let path = data_dir.join("hmac_secret");
    match std::fs::read_to_string(&path) {
        Ok(s) if s.trim().len() >= 32 => {
            return Ok((Secret::new(s.trim().as_bytes()), SecretSource::File(path)))
        }
        Ok(_) => {
            return Err(bad(
                "HMAC_SECRET",
                format!(
                    "{} holds a secret shorter than 32 bytes; delete it or set HMAC_SECRET",
                    path.display()
                ),
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(bad(
                "DATA_DIR",
                format!("cannot read {}: {e}", path.display()),
            ))
        }
    }
    let secret = hex::encode(rand::random::<[u8; 32]>());
    std::fs::create_dir_all(data_dir).map_err(|e| {
        bad(
            "DATA_DIR",
            format!("cannot create {}: {e}", data_dir.display()),
        )
    })?;
    std::fs::write(&path, &secret)
        .map_err(|e| bad("DATA_DIR", format!("cannot write {}: {e}", path.display())))?;
    Ok((
        Secret::new(secret.into_bytes()),
        SecretSource::Generated(path),
    ))
}

/// `300`, `300s`, `5m`, `2h`, `500ms`.
pub fn parse_duration(var: &'static str, s: &str) -> Result<Duration, ConfigError> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| {
        bad(
            var,
            format!("expected a duration like 300s or 5m, got {s:?}"),
        )
    })?;
    Ok(match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => {
            return Err(bad(
                var,
                format!("unknown unit {unit:?}; use ms, s, m or h"),
            ))
        }
    })
}

fn parse_cidrs(var: &'static str, s: &str) -> Result<Vec<IpNet>, ConfigError> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<IpNet>()
                .or_else(|_| p.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    bad(
                        var,
                        format!("{p:?} is not a CIDR (10.0.0.0/8) or an IP address"),
                    )
                })
        })
        .collect()
}

fn parse_instant(s: &str, tz: chrono_tz::Tz) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    tz.from_local_datetime(&d.and_hms_opt(0, 0, 0)?)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct P {
        #[command(flatten)]
        raw: RawConfig,
    }

    fn raw(args: &[&str], dir: &std::path::Path) -> RawConfig {
        let mut argv = vec!["liveops", "--data-dir", dir.to_str().unwrap()];
        argv.extend_from_slice(args);
        P::try_parse_from(argv).expect("flags parse").raw
    }

    #[test]
    fn archive_url_picks_the_archive_directory_or_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let default = Config::from_raw(raw(&[], dir.path())).unwrap();
        assert_eq!(default.archive_dir, None);
        let set = Config::from_raw(raw(&["--archive-url", "file:///srv/archive"], dir.path()));
        assert_eq!(
            set.unwrap().archive_dir,
            Some(PathBuf::from("/srv/archive"))
        );
        for bad_url in ["s3://bucket/x", "file://relative/dir", "/srv/archive"] {
            let e = Config::from_raw(raw(&["--archive-url", bad_url], dir.path())).unwrap_err();
            assert_eq!(e.var, "ARCHIVE_URL", "{bad_url}");
        }
        // SPEC section 2: on the engines too, the archive goes where ARCHIVE_URL says.
        let on_pg = Config::from_raw(raw(
            &[
                "--archive-url",
                "file:///srv/archive",
                "--db-url",
                "postgres://localhost/x",
            ],
            dir.path(),
        ))
        .unwrap();
        assert_eq!(on_pg.archive_dir, Some(PathBuf::from("/srv/archive")));
    }

    #[test]
    fn prod_refuses_to_start_without_a_long_secret() {
        let dir = tempfile::tempdir().unwrap();
        let e = Config::from_raw(raw(&["--env", "prod"], dir.path())).unwrap_err();
        assert_eq!(e.var, "HMAC_SECRET");
        let e = Config::from_raw(raw(
            &["--env", "prod", "--hmac-secret", "short"],
            dir.path(),
        ))
        .unwrap_err();
        assert_eq!(e.var, "HMAC_SECRET");
        let ok = Config::from_raw(raw(
            &["--env", "prod", "--hmac-secret", &"s".repeat(32)],
            dir.path(),
        ));
        assert!(ok.is_ok());
        assert!(
            !dir.path().join("hmac_secret").exists(),
            "prod never generates a secret"
        );
    }

    #[test]
    fn guest_sessions_are_off_in_prod_unless_enabled() {
        let dir = tempfile::tempdir().unwrap();
        let secret = "s".repeat(32);
        let prod = Config::from_raw(raw(
            &["--env", "prod", "--hmac-secret", &secret],
            dir.path(),
        ))
        .unwrap();
        assert!(!prod.guest_sessions);
        let enabled = Config::from_raw(raw(
            &[
                "--env",
                "prod",
                "--hmac-secret",
                &secret,
                "--guest-sessions",
                "true",
            ],
            dir.path(),
        ))
        .unwrap();
        assert!(enabled.guest_sessions);
        assert!(
            Config::from_raw(raw(&["--hmac-secret", &secret], dir.path()))
                .unwrap()
                .guest_sessions
        );
    }

    #[test]
    fn dev_generates_a_secret_once_and_reuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = Config::from_raw(raw(&[], dir.path())).unwrap();
        assert!(matches!(first.secret_source, SecretSource::Generated(_)));
        assert!(first.hmac_secret.expose().len() >= 32);
        let second = Config::from_raw(raw(&[], dir.path())).unwrap();
        assert!(matches!(second.secret_source, SecretSource::File(_)));
        assert_eq!(first.hmac_secret, second.hmac_secret);
        assert_eq!(format!("{:?}", first.hmac_secret), "Secret(***)");
    }

    #[test]
    fn bad_values_name_their_variable() {
        let dir = tempfile::tempdir().unwrap();
        let secret = "s".repeat(32);
        let cases: &[(&[&str], &str)] = &[
            (&["--lb-windows", "daily,hourly"], "LB_WINDOWS"),
            (&["--lb-timezone", "Mars/Olympus"], "LB_TIMEZONE"),
            (&["--idemp-ttl", "forever"], "IDEMP_TTL"),
            (&["--trusted-proxies", "not-an-ip"], "TRUSTED_PROXIES"),
            (&["--lb-topn", "0"], "LB_TOPN"),
            (&["--season-id", "s1"], "SEASON_ID"),
            (&["--redis-url", "http://127.0.0.1"], "REDIS_URL"),
            (&["--namespace", "a b"], "NAMESPACE"),
            (&["--snapshot-cron", "every quarter hour"], "SNAPSHOT_CRON"),
            (&["--anomaly-action", "ban"], "ANOMALY_ACTION"),
            (&["--anomaly-z", "0"], "ANOMALY_Z"),
        ];
        for (args, var) in cases {
            let mut a = vec!["--hmac-secret", secret.as_str()];
            a.extend_from_slice(args);
            let e = Config::from_raw(raw(&a, dir.path())).unwrap_err();
            assert_eq!(e.var, *var, "{args:?}");
            assert!(e.to_string().starts_with(var), "{e}");
        }
        // Numbers that do not parse are refused by clap, whose message names the variable too.
        let err = P::try_parse_from(["liveops", "--port", "eighty"])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("PORT"), "{err}");
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(
            parse_duration("X", "300").unwrap(),
            Duration::from_secs(300)
        );
        assert_eq!(parse_duration("X", "5m").unwrap(), Duration::from_secs(300));
        assert_eq!(
            parse_duration("X", "250ms").unwrap(),
            Duration::from_millis(250)
        );
        let e = parse_duration("IDEMP_TTL", "soon").unwrap_err();
        assert!(e.to_string().starts_with("IDEMP_TTL"));
    }

    #[test]
    fn cidrs_and_single_ips_parse() {
        let v = parse_cidrs("X", "10.0.0.0/8, 127.0.0.1").unwrap();
        assert_eq!(v.len(), 2);
        assert!(parse_cidrs("TRUSTED_PROXIES", "nope")
            .unwrap_err()
            .to_string()
            .contains("TRUSTED_PROXIES"));
    }
}
