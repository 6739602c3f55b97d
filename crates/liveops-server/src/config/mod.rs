//! The one typed configuration (`.env.example`), read from flags or the environment with the
//! SPEC's names, in two steps (zero2prod's `Settings`):
//!
//! 1. [`settings`]: clap reads every setting into its type, one value at a time (`parse.rs`
//!    holds the parsers); a bad value stops the command with a message naming the variable.
//!    The settings come in small groups so each subcommand takes only those it uses.
//! 2. [`Settings::validate`]: the rules that involve several settings (ENV=prod needs
//!    HMAC_SECRET, BUS_KIND=nats needs DB_URL, a fixed season needs its three settings and a
//!    start before its end, ...), which yield the [`Config`] the application is built from.
//!
//! This module is a leaf: it depends on the domain and third-party crates only, and every role
//! reads its settings from [`Config`].

mod parse;
pub mod settings;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use liveops_domain::fairness::FairnessRules;
use liveops_domain::keys::DevSecret;
pub use liveops_domain::keys::Secret;
use liveops_domain::window::{Calendar, SeasonError, SeasonRule, Window};

pub use parse::{DbUrl, SeasonBound};
pub use settings::{
    ArchiveArgs, BoardSizeArgs, BusArgs, CalendarArgs, FairnessArgs, GatewayArgs, HotStateArgs,
    ListenArgs, OpsArgs, Settings, SigningArgs, SnapshotArgs, StoreArgs,
};

/// The kind of deployment (`ENV`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Env {
    Dev,
    Staging,
    Prod,
}

/// Where a 202 is made durable (`BUS_KIND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BusKind {
    Inmem,
    Nats,
}

/// What the fairness guard does with a flagged event (`ANOMALY_ACTION`, `docs/fairness.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AnomalyAction {
    /// Hold the event (no XP, no score) until an operator releases or rejects it.
    Quarantine,
    /// Apply the event and record the flag.
    Flag,
}

/// The system of record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// `DATA_DIR/liveops.db` (the embedded default).
    Sqlite,
    /// `DB_URL` / `DATABASE_URL`; the URL may carry a password.
    Postgres { url: Secret, max_connections: u32 },
}

/// Where a 202 is made durable and how the roles are fed (`BUS_KIND`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bus {
    /// The system of record's own log, in process.
    InMem,
    /// NATS JetStream at `BUS_CONN` (which may carry credentials).
    Nats { url: Secret },
}

/// The roles one process runs (`liveops serve --role`, `docs/operations.md`).
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

    /// The role's own port, used when `PORT` is unset.
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

/// A configuration error found by [`Settings::validate`], always naming the variable.
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
    /// Generated now into this file (not with ENV=prod).
    Generated(PathBuf),
    /// Read from the file an earlier run generated.
    File(PathBuf),
}

/// The checked configuration the application is built from.
#[derive(Debug, Clone)]
pub struct Config {
    /// Set by `liveops serve --role` through [`Config::with_role`].
    pub role: Role,
    /// Whether `PORT` was given (a split role otherwise listens on its own port).
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
    /// The fairness guard's thresholds (`docs/fairness.md`).
    pub fairness: FairnessRules,
    pub anomaly_action: AnomalyAction,
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

/// Guest sessions one client IP may open per minute.
const SESSION_ISSUE_PER_MINUTE: u32 = 20;

impl Settings {
    /// Checks the rules that involve several settings and yields the [`Config`].
    ///
    /// Without `HMAC_SECRET` outside `ENV=prod`, the default key is the dev secret of
    /// `DATA_DIR`, which `dev_secret` reads or creates (`liveops serve` passes the client's
    /// `load_or_create_dev_secret`, the file convention `liveops send` reads too; this module
    /// does no IO).
    pub fn validate(
        self,
        dev_secret: impl FnOnce(&Path) -> Result<DevSecret, String>,
    ) -> Result<Config, ConfigError> {
        let Settings {
            listen,
            signing,
            gateway,
            fairness,
            calendar,
            board_size,
            snapshots,
            store,
            archive,
            bus,
            hot_state,
            ops,
        } = self;
        let (hmac_secret, secret_source) = match signing.hmac_secret {
            Some(secret) => (secret, SecretSource::Env),
            None if listen.env == Env::Prod => {
                return Err(bad(
                    "HMAC_SECRET",
                    "is required with ENV=prod (at least 32 bytes)",
                ))
            }
            None => {
                let dev = dev_secret(&store.data_dir).map_err(|e| {
                    bad(
                        "HMAC_SECRET",
                        format!("is unset and the dev secret in DATA_DIR cannot be used: {e}"),
                    )
                })?;
                let source = if dev.created {
                    SecretSource::Generated(dev.path)
                } else {
                    SecretSource::File(dev.path)
                };
                (dev.secret, source)
            }
        };
        let database = store.database();
        let bus = bus.check(&database)?;
        let season = calendar.season()?;
        Ok(Config {
            role: Role::All,
            port_set: listen.port.is_some(),
            database,
            bus,
            port: listen.port.unwrap_or(Role::All.default_port()),
            bind_addr: listen.bind_addr,
            env: listen.env,
            data_dir: store.data_dir,
            archive_dir: archive.archive_url,
            hmac_secret,
            secret_source,
            hmac_keys: signing.hmac_keys,
            windows: calendar.lb_windows,
            lb_topn: board_size.lb_topn,
            timezone: calendar.lb_timezone,
            season,
            fairness: fairness.rules(),
            anomaly_action: fairness.anomaly_action,
            snapshot_cron: snapshots.snapshot_cron,
            rate_limit_max: gateway.rate_limit_max,
            flood_max_per_sec: gateway.flood_max_per_sec,
            rate_limit_exempt: gateway.rate_limit_exempt,
            trusted_proxies: gateway.trusted_proxies,
            idemp_ttl: gateway.idemp_ttl,
            signature_tolerance: signing.signature_tolerance,
            require_timestamp: signing.require_timestamp,
            admin_token: ops.admin_token,
            guest_sessions: signing.guest_sessions.unwrap_or(listen.env != Env::Prod),
            session_issue_per_minute: SESSION_ISSUE_PER_MINUTE,
            log_level: ops.log_level,
            metrics_enabled: ops.metrics_enabled,
            namespace: hot_state.namespace,
            redis_url: hot_state.redis_url,
        })
    }

    /// Every setting at its default, whatever the process environment holds.
    pub fn defaults() -> Settings {
        use clap::{Args, FromArgMatches};
        let cmd =
            Settings::augment_args(clap::Command::new("liveops")).mut_args(|a| a.env(None::<&str>));
        let matches = cmd
            .try_get_matches_from(["liveops"])
            .expect("every setting has a valid default");
        Settings::from_arg_matches(&matches).expect("every setting has a valid default")
    }
}

impl StoreArgs {
    /// `DB_URL`, else `DATABASE_URL`, else the embedded SQLite store.
    pub fn database(&self) -> Database {
        match self.db_url.as_ref().or(self.database_url.as_ref()) {
            None | Some(DbUrl::Sqlite) => Database::Sqlite,
            Some(DbUrl::Postgres(url)) => Database::Postgres {
                url: url.clone(),
                max_connections: self.db_max_connections,
            },
        }
    }
}

impl BusArgs {
    /// JetStream sequences the events and PostgreSQL records them; SQLite holds its own log,
    /// so the two do not combine.
    fn check(self, database: &Database) -> Result<Bus, ConfigError> {
        match self.bus_kind {
            BusKind::Inmem => Ok(Bus::InMem),
            BusKind::Nats if *database == Database::Sqlite => Err(bad(
                "BUS_KIND",
                "BUS_KIND=nats needs PostgreSQL as the system of record: set DB_URL=postgres://...",
            )),
            BusKind::Nats => Ok(Bus::Nats {
                url: self
                    .bus_conn
                    .unwrap_or_else(|| Secret::new("nats://127.0.0.1:4222")),
            }),
        }
    }
}

impl CalendarArgs {
    /// A fixed season needs `SEASON_ID`, `SEASON_START` and `SEASON_END` together, its start
    /// before its end (dates are midnight in `LB_TIMEZONE`); none of them: calendar quarters.
    pub fn season(&self) -> Result<SeasonRule, ConfigError> {
        let tz = self.lb_timezone;
        let (id, start, end) = match (&self.season_id, self.season_start, self.season_end) {
            (None, None, None) => return Ok(SeasonRule::CalendarQuarter),
            (Some(id), Some(start), Some(end)) => (id, start, end),
            (id, start, end) => {
                let missing = [
                    (id.is_none(), "SEASON_ID"),
                    (start.is_none(), "SEASON_START"),
                    (end.is_none(), "SEASON_END"),
                ];
                let (_, var) = missing
                    .iter()
                    .find(|(m, _)| *m)
                    .copied()
                    .unwrap_or_default();
                return Err(bad(
                    var,
                    "is unset: SEASON_ID, SEASON_START and SEASON_END are set together (or none, for calendar quarters)",
                ));
            }
        };
        let in_zone = |bound: SeasonBound, var: &'static str| {
            bound.in_zone(tz).ok_or_else(|| {
                bad(
                    var,
                    format!("midnight of that date does not exist in LB_TIMEZONE={tz}"),
                )
            })
        };
        let (start, end) = (in_zone(start, "SEASON_START")?, in_zone(end, "SEASON_END")?);
        SeasonRule::fixed(id.clone(), start, end).map_err(|e| match e {
            SeasonError::EmptyRange { .. } => {
                bad("SEASON_END", format!("must be after SEASON_START ({e})"))
            }
            _ => bad("SEASON_ID", e.to_string()),
        })
    }

    /// The windows' calendar: the time zone and the season rule.
    pub fn calendar(&self) -> Result<Calendar, ConfigError> {
        Ok(Calendar::new(self.lb_timezone, self.season()?))
    }
}

impl FairnessArgs {
    /// The guard's thresholds: these settings over the SPEC's defaults for the rest.
    pub fn rules(&self) -> FairnessRules {
        FairnessRules {
            z_threshold: self.anomaly_z,
            max_delta_xp: self.max_delta_xp,
            max_boss_points: self.max_boss_points,
            // The parser keeps BLOCK_SEC between 1 s and i64::MAX seconds.
            block_sec: self.block_sec.as_secs() as i64,
            ..FairnessRules::default()
        }
    }
}

impl Config {
    /// Runs one role (`liveops serve --role`). A split role shares its state with the other
    /// processes only through the engines, so it needs all three.
    pub fn with_role(mut self, role: Role) -> Result<Config, ConfigError> {
        if role != Role::All {
            let missing: Vec<(&'static str, &str)> = [
                (
                    matches!(self.database, Database::Sqlite),
                    ("DB_URL", "DB_URL=postgres://..."),
                ),
                (
                    self.bus == Bus::InMem,
                    ("BUS_KIND", "BUS_KIND=nats (and BUS_CONN=nats://...)"),
                ),
                (
                    self.redis_url.is_none(),
                    ("REDIS_URL", "REDIS_URL=redis://..."),
                ),
            ]
            .into_iter()
            .filter_map(|(missing, what)| missing.then_some(what))
            .collect();
            if let Some(&(var, _)) = missing.first() {
                let wanted: Vec<&str> = missing.iter().map(|(_, what)| *what).collect();
                return Err(bad(
                    var,
                    format!(
                        "--role {} runs one role of a split deployment, which shares state only through the engines; set {} (or run `liveops serve` for all roles in one process on the embedded defaults)",
                        role.as_str(),
                        wanted.join(", ")
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

    /// A test configuration: every setting at its default whatever the environment holds,
    /// data in `data_dir`, the given secret, port 0 (any free port).
    pub fn for_tests(data_dir: PathBuf, secret: &str) -> Config {
        let mut settings = Settings::defaults();
        settings.store.data_dir = data_dir;
        settings.signing.hmac_secret = Some(Secret::new(secret));
        settings.listen.port = Some(0);
        settings
            .validate(|_| Err("tests sign with their own secret".into()))
            .expect("test configuration is valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Args, FromArgMatches};

    const SECRET: &str = "s-0123456789abcdef0123456789abcdef";

    /// The settings' command with the process environment ignored, so the tests see only their
    /// flags. Every setting's id is its variable in lower case (checked below), so the errors
    /// read as they do with the environment.
    fn command() -> clap::Command {
        Settings::augment_args(clap::Command::new("liveops")).mut_args(|a| a.env(None::<&str>))
    }

    fn parse(args: &[&str]) -> Result<Settings, String> {
        let argv = std::iter::once("liveops").chain(args.iter().copied());
        command()
            .try_get_matches_from(argv)
            .and_then(|m| Settings::from_arg_matches(&m))
            .map_err(|e| e.to_string())
    }

    /// Parses and validates with `SECRET` unless the flags set one; the dev secret is refused.
    fn config(args: &[&str]) -> Result<Config, ConfigError> {
        let mut settings = parse(args).expect("flags parse");
        if settings.signing.hmac_secret.is_none() && settings.listen.env != Env::Prod {
            settings.signing.hmac_secret = Some(Secret::new(SECRET));
        }
        settings.validate(|_| Err("no dev secret in this test".into()))
    }

    #[test]
    fn every_setting_is_named_after_its_variable_and_documented() {
        let cmd = Settings::augment_args(clap::Command::new("liveops"));
        for arg in cmd.get_arguments() {
            let env = arg.get_env().expect("every setting reads a variable");
            assert_eq!(
                arg.get_id().as_str().to_uppercase(),
                env.to_string_lossy(),
                "{arg}"
            );
            let help = arg
                .get_long_help()
                .or(arg.get_help())
                .map(|h| h.to_string());
            assert!(
                help.is_some_and(|h| h.len() > 20),
                "{env:?} has no help text"
            );
        }
    }

    #[test]
    fn defaults_are_the_specs() {
        let c = config(&[]).unwrap();
        assert_eq!(c.port, 8080);
        assert!(!c.port_set);
        assert_eq!(c.database, Database::Sqlite);
        assert_eq!(c.bus, Bus::InMem);
        assert_eq!(
            c.windows,
            vec![Window::Daily, Window::Weekly, Window::Seasonal]
        );
        assert_eq!(c.lb_topn, 100);
        assert_eq!(c.timezone, chrono_tz::UTC);
        assert!(matches!(c.season, SeasonRule::CalendarQuarter));
        assert_eq!(c.fairness, FairnessRules::default());
        assert_eq!(c.anomaly_action, AnomalyAction::Quarantine);
        assert!(c.snapshot_cron.is_some());
        assert_eq!((c.rate_limit_max, c.flood_max_per_sec), (50, 10));
        assert!(c.rate_limit_exempt.is_empty() && c.trusted_proxies.is_empty());
        assert_eq!(c.idemp_ttl, Duration::from_secs(300));
        assert_eq!(c.signature_tolerance, Duration::from_secs(300));
        assert!(!c.require_timestamp && c.guest_sessions && c.metrics_enabled);
        assert_eq!(c.admin_token, None);
        assert_eq!(c.namespace, "liveops");
        assert_eq!(c.redis_url, None);
        assert_eq!(
            Settings::defaults().store.data_dir,
            PathBuf::from("./liveops-data")
        );
    }

    #[test]
    fn empty_values_mean_unset() {
        let c = config(&[
            "--db-url=",
            "--redis-url=",
            "--archive-url=",
            "--admin-token=",
            "--bus-conn=",
            "--hmac-keys=",
            "--snapshot-cron=",
            "--trusted-proxies=",
        ])
        .unwrap();
        assert_eq!(c.database, Database::Sqlite);
        assert_eq!(
            (c.redis_url, c.archive_dir, c.admin_token),
            (None, None, None)
        );
        assert!(c.hmac_keys.is_empty() && c.snapshot_cron.is_none());
    }

    #[test]
    fn typed_values_parse() {
        let keys = format!("k1:{SECRET},k2:{SECRET}");
        let c = config(&[
            "--env",
            "staging",
            "--bus-kind",
            "nats",
            "--db-url",
            "postgres://u:pw@localhost/x",
            "--db-max-connections",
            "4",
            "--redis-url",
            "redis://a:1,redis://b:2",
            "--anomaly-action",
            "flag",
            "--block-sec",
            "2m",
            "--idemp-ttl",
            "500ms",
            "--lb-windows",
            "weekly",
            "--lb-timezone",
            "Europe/Paris",
            "--rate-limit-exempt",
            "10.0.0.0/8, 127.0.0.1",
            "--hmac-keys",
            &keys,
            "--snapshot-cron",
            "off",
            "--require-timestamp",
            "true",
            "--log-level",
            "info,liveops_server=debug",
        ])
        .unwrap();
        assert_eq!(c.env, Env::Staging);
        assert_eq!(
            c.database,
            Database::Postgres {
                url: Secret::new("postgres://u:pw@localhost/x"),
                max_connections: 4
            }
        );
        assert_eq!(
            c.bus,
            Bus::Nats {
                url: Secret::new("nats://127.0.0.1:4222")
            }
        );
        assert_eq!(c.anomaly_action, AnomalyAction::Flag);
        assert_eq!(c.fairness.block_sec, 120);
        assert_eq!(c.idemp_ttl, Duration::from_millis(500));
        assert_eq!(c.windows, vec![Window::Weekly]);
        assert_eq!(c.timezone, chrono_tz::Europe::Paris);
        assert_eq!(c.rate_limit_exempt.len(), 2);
        assert_eq!(c.hmac_keys.len(), 2);
        assert!(c.snapshot_cron.is_none() && c.require_timestamp);
        let debug = format!("{c:?}");
        assert!(!debug.contains("pw@") && !debug.contains(SECRET), "{debug}");
    }

    #[test]
    fn bad_values_name_their_variable_and_what_is_expected() {
        let cases: &[(&[&str], &str)] = &[
            (&["--port", "abc"], "PORT: expected a port number 0-65535"),
            (
                &["--bind-addr", "localhost"],
                "BIND_ADDR: expected an IP address",
            ),
            (
                &["--env", "production"],
                "ENV: expected one of dev, staging, prod",
            ),
            (
                &["--lb-windows", "daily,hourly"],
                "LB_WINDOWS: \"hourly\" is not a window",
            ),
            (
                &["--lb-timezone", "Mars/Olympus"],
                "LB_TIMEZONE: expected an IANA time zone",
            ),
            (
                &["--idemp-ttl", "forever"],
                "IDEMP_TTL: expected a duration",
            ),
            (
                &["--signature-tolerance", "5 weeks"],
                "SIGNATURE_TOLERANCE: expected a duration",
            ),
            (
                &["--block-sec", "0"],
                "BLOCK_SEC: expected a whole number of seconds",
            ),
            (
                &["--trusted-proxies", "not-an-ip"],
                "TRUSTED_PROXIES: \"not-an-ip\" is not a CIDR",
            ),
            (
                &["--lb-topn", "0"],
                "LB_TOPN: expected a whole number from 1 to 10000",
            ),
            (
                &["--redis-url", "http://127.0.0.1"],
                "REDIS_URL: expected redis://host:port",
            ),
            (
                &["--namespace", "a b"],
                "NAMESPACE: expected 1 to 64 characters",
            ),
            (
                &["--snapshot-cron", "every quarter hour"],
                "SNAPSHOT_CRON: expected a 6-field cron",
            ),
            (
                &["--anomaly-action", "ban"],
                "ANOMALY_ACTION: expected one of quarantine, flag",
            ),
            (
                &["--anomaly-z", "0"],
                "ANOMALY_Z: expected a number above 0",
            ),
            (
                &["--bus-kind", "sqs"],
                "BUS_KIND: not available in this build",
            ),
            (
                &["--archive-url", "s3://bucket/x"],
                "ARCHIVE_URL: expected a file:///absolute/path",
            ),
            (
                &["--archive-url", "file://relative/dir"],
                "ARCHIVE_URL: expected file:// and an absolute path",
            ),
            (
                &["--db-max-connections", "0"],
                "DB_MAX_CONNECTIONS: expected a whole number from 1",
            ),
            (
                &["--db-url", "mysql://root:pw@db/x"],
                "DB_URL: expected a postgres://",
            ),
            (
                &["--hmac-secret", "short"],
                "HMAC_SECRET: must be at least 32 bytes, got 5",
            ),
            (
                &["--hmac-keys", "k1:short-key"],
                "HMAC_KEYS: key \"k1\": the secret must be at least 32 bytes",
            ),
            (
                &["--admin-token", "tiny"],
                "ADMIN_TOKEN: must be at least 16 characters",
            ),
            (
                &["--log-level", "liveops=loud"],
                "LOG_LEVEL: expected a level",
            ),
            (
                &["--metrics-enabled", "maybe"],
                "METRICS_ENABLED: expected true or false",
            ),
            (
                &["--season-start", "October"],
                "SEASON_START: expected a date",
            ),
        ];
        for (args, expected) in cases {
            let e = parse(args).err().unwrap_or_default();
            assert!(e.contains(expected), "{args:?}: {e}");
        }
        // A value is shown back, a secret (or a URL's password) never.
        assert!(parse(&["--port", "abc"])
            .unwrap_err()
            .contains("got \"abc\""));
        for (flag, value) in [
            ("--hmac-secret", "short"),
            ("--admin-token", "tiny"),
            ("--db-url", "mysql://root:pw@db/x"),
        ] {
            let e = parse(&[flag, value]).unwrap_err();
            assert!(!e.contains(value) && !e.contains("pw@"), "{e}");
        }
    }

    #[test]
    fn prod_refuses_to_start_without_a_secret_and_never_generates_one() {
        let e = config(&["--env", "prod"]).unwrap_err();
        assert_eq!(e.var, "HMAC_SECRET");
        assert!(e.to_string().contains("ENV=prod"), "{e}");
        let ok = config(&["--env", "prod", "--hmac-secret", SECRET]);
        assert_eq!(ok.unwrap().secret_source, SecretSource::Env);
    }

    #[test]
    fn dev_without_a_secret_uses_the_dev_secret_of_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let dir_arg = dir.path().to_str().unwrap();
        let settings = parse(&["--data-dir", dir_arg]).unwrap();
        let c = settings
            .validate(|data_dir| {
                Ok(DevSecret {
                    secret: Secret::new(SECRET),
                    path: data_dir.join("hmac_secret"),
                    created: true,
                })
            })
            .unwrap();
        assert_eq!(c.hmac_secret, Secret::new(SECRET));
        assert_eq!(
            c.secret_source,
            SecretSource::Generated(dir.path().join("hmac_secret"))
        );
        let e = parse(&[])
            .unwrap()
            .validate(|_| Err("too short".into()))
            .unwrap_err();
        assert_eq!(e.var, "HMAC_SECRET");
        assert!(e.to_string().contains("too short"), "{e}");
    }

    #[test]
    fn guest_sessions_are_off_in_prod_unless_enabled() {
        let prod = config(&["--env", "prod", "--hmac-secret", SECRET]).unwrap();
        assert!(!prod.guest_sessions);
        let enabled = config(&[
            "--env",
            "prod",
            "--hmac-secret",
            SECRET,
            "--guest-sessions",
            "true",
        ])
        .unwrap();
        assert!(enabled.guest_sessions);
        assert!(config(&[]).unwrap().guest_sessions);
    }

    #[test]
    fn settings_across_variables_are_checked_together() {
        let e = config(&["--bus-kind", "nats"]).unwrap_err();
        assert_eq!(e.var, "BUS_KIND");
        assert!(e.to_string().contains("DB_URL"), "{e}");
        let e = config(&["--season-id", "s1"]).unwrap_err();
        assert_eq!(e.var, "SEASON_START");
        assert!(e.to_string().contains("SEASON_END"), "{e}");
        let e = config(&[
            "--season-id",
            "s1",
            "--season-start",
            "2026-12-01",
            "--season-end",
            "2026-10-01",
        ])
        .unwrap_err();
        assert_eq!(e.var, "SEASON_END");
        let e = config(&[
            "--season-id",
            "2026-Q4",
            "--season-start",
            "2026-10-01",
            "--season-end",
            "2027-01-01",
        ])
        .unwrap_err();
        assert_eq!(e.var, "SEASON_ID");
        let ok = config(&[
            "--season-id",
            "s1",
            "--season-start",
            "2026-10-01",
            "--season-end",
            "2027-01-01T00:00:00Z",
            "--lb-timezone",
            "Asia/Tokyo",
        ])
        .unwrap();
        let SeasonRule::Fixed { start, .. } = ok.season else {
            panic!("a fixed season")
        };
        assert_eq!(start.to_rfc3339(), "2026-09-30T15:00:00+00:00");
        // DB_URL wins over its alias DATABASE_URL.
        let c = config(&["--db-url", "sqlite:x", "--database-url", "postgres://h/db"]).unwrap();
        assert_eq!(c.database, Database::Sqlite);
    }

    #[test]
    fn a_split_role_needs_the_engines_and_names_what_is_missing() {
        let e = config(&[]).unwrap().with_role(Role::Gateway).unwrap_err();
        assert_eq!(e.var, "DB_URL");
        for var in ["DB_URL", "BUS_KIND", "REDIS_URL"] {
            assert!(e.to_string().contains(var), "{e}");
        }
        let c = config(&[
            "--db-url",
            "postgres://h/db",
            "--bus-kind",
            "nats",
            "--redis-url",
            "redis://h:6379",
        ])
        .unwrap();
        assert_eq!(c.clone().with_role(Role::Leaderboard).unwrap().port, 8082);
        let mut pinned = c;
        pinned.port_set = true;
        pinned.port = 9000;
        assert_eq!(pinned.with_role(Role::Leaderboard).unwrap().port, 9000);
    }

    #[test]
    fn for_tests_ignores_the_environment_and_listens_on_any_port() {
        let dir = tempfile::tempdir().unwrap();
        let c = Config::for_tests(dir.path().to_path_buf(), SECRET);
        assert_eq!((c.port, c.data_dir.as_path()), (0, dir.path()));
        assert_eq!(c.hmac_secret, Secret::new(SECRET));
    }
}
