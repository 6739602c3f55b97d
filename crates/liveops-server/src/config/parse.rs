//! The value parsers of the settings: each turns one value, from a flag or the environment, into
//! its type at the clap layer. A refusal names the environment variable, says what is expected
//! and shows what was given (`PORT: expected a port number 0-65535, got "abc"`), except for
//! secrets, whose value is never echoed.
//!
//! Each parser is a plain function from the text to the value or to what was expected;
//! [`checked`] and [`secret`] wrap it into a clap value parser that adds the variable's name.

use std::ffi::OsStr;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use clap::builder::{PossibleValue, TypedValueParser};
use clap::error::ErrorKind;
use ipnet::IpNet;
use liveops_domain::keys::{self, KeyId, Secret};
use liveops_domain::window::Window;

type ParseFn<T> = dyn Fn(&str) -> Result<T, String> + Send + Sync;

/// A clap value parser around a parse function (see the module documentation).
#[derive(Clone)]
pub struct Checked<T> {
    parse: Arc<ParseFn<T>>,
    /// Listed in `--help` and completions, for choices such as `ENV`.
    possible: Option<fn() -> Vec<PossibleValue>>,
    /// A secret's value is never repeated in an error.
    secret: bool,
}

/// A parser whose error shows the value given.
pub fn checked<T>(parse: impl Fn(&str) -> Result<T, String> + Send + Sync + 'static) -> Checked<T> {
    Checked {
        parse: Arc::new(parse),
        possible: None,
        secret: false,
    }
}

/// A parser for a secret (or a URL that may carry a password): its error never shows the value.
pub fn secret<T>(parse: impl Fn(&str) -> Result<T, String> + Send + Sync + 'static) -> Checked<T> {
    Checked {
        secret: true,
        ..checked(parse)
    }
}

/// A parser for one of the variants of a [`clap::ValueEnum`], listing them in `--help`.
pub fn choice<E: clap::ValueEnum + Clone + Send + Sync + 'static>() -> Checked<E> {
    Checked {
        possible: Some(|| {
            E::value_variants()
                .iter()
                .filter_map(|v| v.to_possible_value())
                .collect()
        }),
        ..checked(|s| {
            E::from_str(s, true).map_err(|_| {
                let names: Vec<String> = E::value_variants()
                    .iter()
                    .filter_map(|v| v.to_possible_value())
                    .map(|p| p.get_name().to_string())
                    .collect();
                format!("expected one of {}", names.join(", "))
            })
        })
    }
}

impl<T: Clone + Send + Sync + 'static> TypedValueParser for Checked<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        let text = value.to_string_lossy();
        (self.parse)(&text).map_err(|expected| {
            let var = arg
                .and_then(|a| a.get_env())
                .map(|e| e.to_string_lossy().into_owned())
                .or_else(|| arg.map(|a| a.get_id().to_string().to_uppercase()))
                .unwrap_or_else(|| "value".to_string());
            let message = if self.secret {
                format!("{var}: {expected}")
            } else {
                format!("{var}: {expected}, got {text:?}")
            };
            clap::Error::raw(ErrorKind::ValueValidation, format!("{message}\n")).with_cmd(cmd)
        })
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        self.possible
            .map(|list| Box::new(list().into_iter()) as Box<dyn Iterator<Item = PossibleValue>>)
    }
}

/// A setting that may be absent or set empty, both meaning "unset" (`.env` files often carry
/// `DB_URL=`). It is an alias of `Option` because clap's derive would read a field spelled
/// `Option<T>` as "may be absent" and then refuse the empty value instead of reading it as
/// unset; such a field takes a hidden empty default and a parser that maps "" to `None`.
pub type OrUnset<T> = Option<T>;

/// A comma-separated list given as one value (`10.0.0.0/8,127.0.0.1`). An alias of `Vec`
/// because clap's derive would read a field spelled `Vec<T>` as a repeated flag.
pub type List<T> = Vec<T>;

/// `""` is unset; anything else goes through `parse`.
pub fn or_unset<T>(
    parse: impl Fn(&str) -> Result<T, String>,
) -> impl Fn(&str) -> Result<OrUnset<T>, String> {
    move |s| match s.trim() {
        "" => Ok(None),
        _ => parse(s).map(Some),
    }
}

pub fn port(s: &str) -> Result<u16, String> {
    s.trim()
        .parse()
        .map_err(|_| "expected a port number 0-65535 (0 picks any free port)".to_string())
}

pub fn ip_addr(s: &str) -> Result<IpAddr, String> {
    s.trim()
        .parse()
        .map_err(|_| "expected an IP address such as 127.0.0.1, 0.0.0.0 or ::".to_string())
}

pub fn directory(s: &str) -> Result<PathBuf, String> {
    match s.trim() {
        "" => Err("expected a directory path".to_string()),
        p => Ok(PathBuf::from(p)),
    }
}

/// `true` or `false` (also `1` / `0`, `yes` / `no`, `on` / `off`).
pub fn boolean(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("expected true or false".to_string()),
    }
}

/// An integer in `min..=max`.
pub fn int_in<T>(min: T, max: T) -> impl Fn(&str) -> Result<T, String> + Send + Sync + 'static
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy + Send + Sync + 'static,
{
    move |s| {
        s.trim()
            .parse::<T>()
            .ok()
            .filter(|n| *n >= min && *n <= max)
            .ok_or_else(|| format!("expected a whole number from {min} to {max}"))
    }
}

/// A whole number of at least `min`.
pub fn at_least<T>(min: T) -> impl Fn(&str) -> Result<T, String> + Send + Sync + 'static
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy + Send + Sync + 'static,
{
    move |s| {
        s.trim()
            .parse::<T>()
            .ok()
            .filter(|n| *n >= min)
            .ok_or_else(|| format!("expected a whole number of at least {min}"))
    }
}

pub fn positive_number(s: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|z| z.is_finite() && *z > 0.0)
        .ok_or_else(|| "expected a number above 0, such as 3.5".to_string())
}

/// `300`, `300s`, `5m`, `2h`, `500ms` (a bare number is seconds).
pub fn duration(s: &str) -> Result<Duration, String> {
    const EXPECTED: &str = "expected a duration such as 300s, 5m, 2h or 500ms";
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| EXPECTED.to_string())?;
    let secs = |mul: u64| n.checked_mul(mul).map(Duration::from_secs);
    match unit {
        "" | "s" => Some(Duration::from_secs(n)),
        "ms" => Some(Duration::from_millis(n)),
        "m" => secs(60),
        "h" => secs(3600),
        _ => None,
    }
    .ok_or_else(|| EXPECTED.to_string())
}

/// A duration of whole seconds, at least one (`BLOCK_SEC`: `60`, `60s`, `2m`).
pub fn whole_seconds(s: &str) -> Result<Duration, String> {
    const EXPECTED: &str = "expected a whole number of seconds of at least 1, such as 60 or 2m";
    duration(s)
        .ok()
        .filter(|d| d.as_secs() >= 1 && d.subsec_nanos() == 0 && d.as_secs() <= i64::MAX as u64)
        .ok_or_else(|| EXPECTED.to_string())
}

/// A comma-separated list of CIDRs or single IP addresses; empty is the empty list.
pub fn cidrs(s: &str) -> Result<List<IpNet>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<IpNet>()
                .or_else(|_| p.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    format!("{p:?} is not a CIDR or an IP address: expected a list such as 10.0.0.0/8,127.0.0.1")
                })
        })
        .collect()
}

/// A comma-separated list of windows, each named once; at least one.
pub fn windows(s: &str) -> Result<List<Window>, String> {
    let mut out = Vec::new();
    for name in s.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let w = Window::parse(name).ok_or_else(|| {
            format!("{name:?} is not a window: expected a list of daily, weekly and seasonal")
        })?;
        if !out.contains(&w) {
            out.push(w);
        }
    }
    if out.is_empty() {
        return Err("expected at least one of daily, weekly and seasonal".to_string());
    }
    Ok(out)
}

pub fn time_zone(s: &str) -> Result<chrono_tz::Tz, String> {
    s.trim()
        .parse()
        .map_err(|_| "expected an IANA time zone such as UTC or Europe/Paris".to_string())
}

/// A season boundary: a date (midnight in `LB_TIMEZONE`, which is only known once every
/// setting is read) or an exact RFC 3339 time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeasonBound {
    Date(NaiveDate),
    Time(DateTime<Utc>),
}

impl SeasonBound {
    pub fn in_zone(self, tz: chrono_tz::Tz) -> Option<DateTime<Utc>> {
        match self {
            SeasonBound::Time(t) => Some(t),
            SeasonBound::Date(d) => tz
                .from_local_datetime(&d.and_hms_opt(0, 0, 0)?)
                .earliest()
                .map(|t| t.with_timezone(&Utc)),
        }
    }
}

pub fn season_bound(s: &str) -> Result<SeasonBound, String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(SeasonBound::Time(t.with_timezone(&Utc)));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(SeasonBound::Date)
        .map_err(|_| {
            "expected a date such as 2026-10-01 or an RFC 3339 time such as 2026-10-01T00:00:00Z"
                .to_string()
        })
}

/// A 6-field cron expression; empty or `off` is no schedule.
pub fn cron_or_off(s: &str) -> Result<OrUnset<cron::Schedule>, String> {
    match s.trim() {
        "" | "off" => Ok(None),
        expr => expr.parse().map(Some).map_err(|e| {
            format!("expected a 6-field cron expression (sec min hour day month weekday) such as \"0 */15 * * * *\", or off ({e})")
        }),
    }
}

/// A signing secret of at least 32 bytes.
pub fn signing_secret(s: &str) -> Result<Secret, String> {
    keys::signing_secret(s).map_err(|e| e.to_string())
}

/// `HMAC_KEYS`: `id:secret,...`, each secret at least 32 bytes.
pub fn hmac_keys(s: &str) -> Result<List<(KeyId, Secret)>, String> {
    keys::parse_hmac_keys(s)
        .map_err(|e| format!("{e}; expected id:secret pairs separated by commas"))
}

/// What a URL shows in an error: its scheme and host, never a user or password.
fn shown(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.rsplit('@').next().unwrap_or("");
    format!("{scheme}://{host}")
}

/// The system of record's URL: PostgreSQL, or `sqlite:...` for the embedded store in
/// `DATA_DIR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbUrl {
    Sqlite,
    Postgres(Secret),
}

pub fn db_url(s: &str) -> Result<DbUrl, String> {
    let s = s.trim();
    if s.starts_with("sqlite:") {
        Ok(DbUrl::Sqlite)
    } else if s.starts_with("postgres://") || s.starts_with("postgresql://") {
        Ok(DbUrl::Postgres(Secret::new(s)))
    } else {
        Err(format!(
            "expected a postgres://user@host:port/database URL (or unset for the embedded SQLite store), got {:?}",
            shown(s)
        ))
    }
}

/// One Redis URL, or a comma-separated list of cluster nodes.
pub fn redis_url(s: &str) -> Result<Secret, String> {
    let s = s.trim();
    if let Some(n) = s
        .split(',')
        .map(str::trim)
        .find(|n| !(n.starts_with("redis://") || n.starts_with("rediss://")))
    {
        return Err(format!(
            "expected redis://host:port (or a comma-separated list of cluster nodes), got {:?}",
            shown(n)
        ));
    }
    Ok(Secret::new(s))
}

pub fn nats_url(s: &str) -> Result<Secret, String> {
    let s = s.trim();
    if s.starts_with("nats://") || s.starts_with("tls://") {
        Ok(Secret::new(s))
    } else {
        Err(format!(
            "expected a nats://host:port URL, got {:?}",
            shown(s)
        ))
    }
}

/// `file:///absolute/path`: the archive directory.
pub fn archive_url(s: &str) -> Result<PathBuf, String> {
    match s.trim().strip_prefix("file://") {
        Some(path) if path.starts_with('/') => Ok(PathBuf::from(path)),
        Some(_) => Err("expected file:// and an absolute path, such as file:///var/lib/liveops/archive".to_string()),
        None => Err("expected a file:///absolute/path URL (only file:// archives are available in this build)".to_string()),
    }
}

/// The prefix of Redis keys and NATS names: 1 to 64 characters of `[A-Za-z0-9_.-]`.
pub fn namespace(s: &str) -> Result<String, String> {
    if liveops_domain::ids::is_valid_namespace(s) {
        Ok(s.to_string())
    } else {
        Err(format!("expected {}", liveops_domain::ids::NAMESPACE_RULE))
    }
}

/// The admin token: at least 16 characters.
pub fn admin_token(s: &str) -> Result<Secret, String> {
    if s.len() < 16 {
        return Err(format!("must be at least 16 characters, got {}", s.len()));
    }
    Ok(Secret::new(s))
}

/// A `tracing` filter: a level (`info`) or directives (`info,liveops_server=debug`).
pub fn log_filter(s: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(s.trim())
        .map(|_| s.trim().to_string())
        .map_err(|_| {
            "expected a level (error, warn, info, debug, trace) or filter directives such as info,liveops_server=debug".to_string()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(duration("300"), Ok(Duration::from_secs(300)));
        assert_eq!(duration("300s"), Ok(Duration::from_secs(300)));
        assert_eq!(duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        for bad in ["soon", "5 weeks", "", "-1s", "99999999999999999999h"] {
            assert!(duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn block_seconds_are_whole_and_positive() {
        assert_eq!(whole_seconds("60"), Ok(Duration::from_secs(60)));
        assert_eq!(whole_seconds("2m"), Ok(Duration::from_secs(120)));
        for bad in ["0", "1500ms", "-5", "x"] {
            assert!(whole_seconds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cidrs_and_single_ips_parse() {
        assert_eq!(cidrs("10.0.0.0/8, 127.0.0.1").unwrap().len(), 2);
        assert_eq!(cidrs("").unwrap(), vec![]);
        assert!(cidrs("nope").unwrap_err().contains("\"nope\""));
    }

    #[test]
    fn windows_are_deduplicated_and_never_empty() {
        assert_eq!(
            windows("daily, daily,weekly").unwrap(),
            vec![Window::Daily, Window::Weekly]
        );
        assert!(windows("daily,hourly").unwrap_err().contains("hourly"));
        assert!(windows(" , ").is_err());
    }

    #[test]
    fn urls_never_show_their_password() {
        let e = db_url("mysql://admin:hunter2@db/x").unwrap_err();
        assert!(!e.contains("hunter2") && e.contains("mysql://db/x"), "{e}");
        let e = redis_url("redis://a:1,http://user:hunter2@b:2").unwrap_err();
        assert!(!e.contains("hunter2") && e.contains("http://b:2"), "{e}");
        assert!(!nats_url("http://u:hunter2@n")
            .unwrap_err()
            .contains("hunter2"));
        assert_eq!(db_url("sqlite:whatever"), Ok(DbUrl::Sqlite));
    }

    #[test]
    fn season_bounds_are_dates_in_the_zone_or_exact_times() {
        let tz: chrono_tz::Tz = "Europe/Paris".parse().unwrap();
        let d = season_bound("2026-10-01").unwrap();
        assert_eq!(
            d.in_zone(tz).unwrap().to_rfc3339(),
            "2026-09-30T22:00:00+00:00"
        );
        let t = season_bound("2026-10-01T12:00:00Z").unwrap();
        assert_eq!(
            t.in_zone(tz).unwrap().to_rfc3339(),
            "2026-10-01T12:00:00+00:00"
        );
        assert!(season_bound("October").is_err());
    }

    #[test]
    fn unset_accepts_the_empty_value() {
        let p = or_unset(db_url);
        assert_eq!(p(""), Ok(None));
        assert_eq!(p("sqlite:x"), Ok(Some(DbUrl::Sqlite)));
        assert!(cron_or_off("off").unwrap().is_none());
        assert!(cron_or_off("every quarter hour").is_err());
    }
}
