//! Command-line options of `liveops loadgen` and the [`Plan`] they resolve to.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use anyhow::{bail, Context};
use liveops_domain::EventType;

use liveops_client::cli::{KeyArgs, DEFAULT_URL};

/// The largest batch the server accepts (`docs/api.md`).
pub const MAX_BATCH: usize = 500;
/// The run length when neither --duration nor --count is given: a load test is always bounded.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(10);

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Server URL; loopback only (127.0.0.1, ::1, localhost).
    #[arg(long, env = "LIVEOPS_URL", default_value = DEFAULT_URL)]
    pub url: String,
    /// Target events per second, open loop: request i is due at start + i/rate and its latency
    /// counts from that due time, so a stalled server shows in the percentiles instead of
    /// slowing the generator down (no coordinated omission). Without --rate: flat out.
    #[arg(long, value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// Connections (each with one request in flight): the pool that carries --rate, or the
    /// closed-loop workers when flat out.
    #[arg(long, short = 'c', default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub concurrency: u32,
    /// Generator threads, each with its own single-threaded runtime. One is cheapest per request
    /// and leaves the other cores to the server; add more if the generator thread saturates.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub threads: u32,
    /// How long to send (e.g. 500ms, 10s, 2m); the default when --count is not given is 10s.
    #[arg(long, value_parser = parse_duration, conflicts_with = "count")]
    pub duration: Option<Duration>,
    /// Send exactly this many events, then stop.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Number of players; events go round robin over lg_000000 .. lg_<N-1>, so each player gets
    /// rate/N events per second (keep that under the server's FLOOD_MAX_PER_SEC). Default 1000;
    /// with `--scenario fairness`, the honest players (default 300).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000_000))]
    pub players: Option<u32>,
    /// `load` (default): throughput and latency. `fairness`: honest players and five kinds of
    /// cheaters, then how many cheat events the fairness guard caught and how many honest
    /// events it flagged or refused.
    #[arg(long, value_enum, default_value_t = Scenario::Load)]
    pub scenario: Scenario,
    /// With `--scenario fairness`: cheaters per kind.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub cheaters: u32,
    /// With `--scenario fairness`: the seed of the players' values (ids stay unique per run).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// POST /events/batch with K events per request (1..=500); throughput is counted in events.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=MAX_BATCH as i64))]
    pub batch: Option<u32>,
    /// Event types and their weights, e.g. `progression=90,boss_kill=5,drop_claimed=5`. Payloads
    /// are small and steady (deltaXp 1..=200) so they never trip the fairness limits.
    #[arg(long, default_value = "progression=90,boss_kill=5,drop_claimed=5", value_parser = Mix::parse)]
    pub mix: Mix,
    /// Send X-Timestamp and bind every signature to it (for REQUIRE_TIMESTAMP=true servers).
    #[arg(long)]
    pub timestamp: bool,
    /// Give up on one request after this long (it counts as a transport error).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Print one JSON object with the figures instead of the table (no progress bar).
    #[arg(long)]
    pub json: bool,
    /// Also measure how soon an accepted event shows on the leaderboard (`docs/api.md`: within
    /// 100 ms at p99 under load): every --probe-interval, one event for a fresh player on
    /// connections of its own, then `GET /leaderboard/players/<id>?window=daily` every
    /// millisecond until it shows the event's score. Probes are not in the load's figures.
    #[arg(long)]
    pub probe_visibility: bool,
    /// Time between two visibility probes (with --probe-visibility).
    #[arg(long, default_value = "50ms", value_parser = parse_duration)]
    pub probe_interval: Duration,
    #[command(flatten)]
    pub key: KeyArgs,
}

/// What a loadgen run measures.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    Load,
    Fairness,
}

/// Weighted event types.
#[derive(Debug, Clone, PartialEq)]
pub struct Mix {
    /// (type, weight), weights > 0.
    pub weights: Vec<(EventType, u32)>,
}

impl Mix {
    pub fn parse(s: &str) -> Result<Mix, String> {
        let mut weights: Vec<(EventType, u32)> = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = match part.split_once('=') {
                Some((n, w)) => {
                    let w: u32 = w.trim().parse().map_err(|_| {
                        format!("weight of {n:?} must be a whole number, got {w:?}")
                    })?;
                    (n.trim(), w)
                }
                None => (part, 1),
            };
            let ty = EventType::parse(name).ok_or_else(|| {
                format!(
                    "unknown event type {name:?} (expected progression, boss_kill or drop_claimed)"
                )
            })?;
            if weights.iter().any(|(t, _)| *t == ty) {
                return Err(format!("{name:?} is given twice"));
            }
            if weight > 0 {
                weights.push((ty, weight));
            }
        }
        if weights.is_empty() {
            return Err("the mix needs at least one event type with a weight above 0".into());
        }
        Ok(Mix { weights })
    }

    pub fn total(&self) -> u32 {
        self.weights.iter().map(|(_, w)| w).sum()
    }

    /// The type for a draw in `0..total()`.
    pub fn pick(&self, mut draw: u32) -> EventType {
        for (ty, w) in &self.weights {
            if draw < *w {
                return *ty;
            }
            draw -= w;
        }
        self.weights[self.weights.len() - 1].0
    }

    pub fn describe(&self) -> String {
        self.weights
            .iter()
            .map(|(t, w)| format!("{}={w}", t.as_str()))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// `500ms`, `10s`, `2m`, `1h`, or a bare number of seconds (`1.5`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (try 500ms, 10s, 2m)"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {s:?} (use ms, s, m or h)"
            ))
        }
    };
    if !(secs > 0.0 && secs.is_finite() && secs < 1e9) {
        return Err(format!("{s:?}: a duration must be above zero"));
    }
    Ok(Duration::from_secs_f64(secs))
}

pub fn parse_rate(s: &str) -> Result<f64, String> {
    let r: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of events per second"))?;
    if !(r > 0.0 && r.is_finite()) {
        return Err("the rate must be above zero".into());
    }
    Ok(r)
}

/// How requests are paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// Open loop: requests per second (events/s divided by the batch size).
    Rate { requests_per_sec: f64 },
    /// Closed loop: every connection sends its next request when the answer arrives.
    FlatOut,
}

/// When the run stops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    Duration(Duration),
    /// A number of requests (the events are spread over them, the last one maybe smaller).
    Requests {
        requests: u64,
        events: u64,
    },
}

/// The resolved run: what the workers and the report read.
#[derive(Debug, Clone)]
pub struct Plan {
    pub url: String,
    pub addr: SocketAddr,
    /// The `Host` header.
    pub host: String,
    /// The URL's path prefix without a trailing slash (usually empty), for the other endpoints.
    pub prefix: String,
    /// Request target, e.g. `/events`.
    pub path: String,
    pub pace: Pace,
    /// Target events per second, when paced.
    pub rate: Option<f64>,
    pub concurrency: u32,
    /// Generator threads (never more than connections).
    pub threads: u32,
    pub bound: Bound,
    pub players: u32,
    /// Events per request (1 for single events).
    pub batch_size: u32,
    /// Whether requests go to /events/batch.
    pub batch: bool,
    pub mix: Mix,
    pub timestamp: bool,
    pub timeout: Duration,
    pub json: bool,
    /// The interval between visibility probes, when probing.
    pub probe: Option<Duration>,
}

impl Plan {
    pub fn from_args(args: &Args) -> anyhow::Result<Plan> {
        let target = LoopbackTarget::parse(&args.url)?;
        let batch_size = args.batch.unwrap_or(1);
        let pace = match args.rate {
            Some(rate) => Pace::Rate {
                requests_per_sec: rate / f64::from(batch_size),
            },
            None => Pace::FlatOut,
        };
        let bound = match (args.count, args.duration) {
            (Some(events), _) => Bound::Requests {
                requests: events.div_ceil(u64::from(batch_size)),
                events,
            },
            (None, Some(d)) => Bound::Duration(d),
            (None, None) => Bound::Duration(DEFAULT_DURATION),
        };
        let suffix = if args.batch.is_some() {
            "/events/batch"
        } else {
            "/events"
        };
        Ok(Plan {
            url: args.url.clone(),
            addr: target.addr,
            host: target.host,
            path: format!("{}{suffix}", target.prefix),
            prefix: target.prefix,
            pace,
            rate: args.rate,
            concurrency: args.concurrency,
            threads: args.threads.min(args.concurrency),
            bound,
            players: args.players.unwrap_or(1000),
            batch_size,
            batch: args.batch.is_some(),
            mix: args.mix.clone(),
            timestamp: args.timestamp,
            timeout: args.timeout,
            json: args.json,
            probe: args.probe_visibility.then_some(args.probe_interval),
        })
    }

    /// Events carried by request `index` (the last request of a --count run may be short).
    pub fn events_in_request(&self, index: u64) -> u32 {
        match self.bound {
            Bound::Requests { events, .. } => {
                let first = index * u64::from(self.batch_size);
                let left = events.saturating_sub(first);
                left.min(u64::from(self.batch_size)) as u32
            }
            Bound::Duration(_) => self.batch_size,
        }
    }
}

/// A server address that is certainly this machine.
#[derive(Debug, Clone, PartialEq)]
pub struct LoopbackTarget {
    pub addr: SocketAddr,
    pub host: String,
    /// A path prefix from the URL, without a trailing slash (usually empty).
    pub prefix: String,
}

impl LoopbackTarget {
    /// Refuses anything that is not plain http on a loopback address: a load test must never
    /// hit a shared or production server by accident.
    pub fn parse(url: &str) -> anyhow::Result<LoopbackTarget> {
        let parsed = reqwest::Url::parse(url).with_context(|| format!("invalid --url {url:?}"))?;
        if parsed.scheme() != "http" {
            bail!("--url {url:?}: loadgen speaks plain http:// only");
        }
        let host = parsed.host_str().unwrap_or_default().to_string();
        if !liveops_client::is_loopback_host(&host) {
            bail!(
                "refusing to load {host:?}: load tests only talk to loopback (127.0.0.1, ::1, localhost), \
                 so a test never floods a shared or production server; run loadgen on the server's machine"
            );
        }
        let port = parsed.port_or_known_default().unwrap_or(80);
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let mut addrs: Vec<SocketAddr> = (bare, port)
            .to_socket_addrs()
            .with_context(|| format!("resolving {host}"))?
            .filter(|a| a.ip().is_loopback())
            .collect();
        // `localhost` may resolve to both; the server binds 127.0.0.1 by default.
        addrs.sort_by_key(|a| !a.is_ipv4());
        let addr = *addrs
            .first()
            .with_context(|| format!("{host} does not resolve to a loopback address"))?;
        let host_header = match parsed.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        Ok(LoopbackTarget {
            addr,
            host: host_header,
            prefix: parsed.path().trim_end_matches('/').to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn parse(argv: &[&str]) -> Result<Args, clap::Error> {
        let mut full = vec!["loadgen"];
        full.extend_from_slice(argv);
        Cli::try_parse_from(full).map(|c| c.args)
    }

    fn plan(argv: &[&str]) -> Plan {
        Plan::from_args(&parse(argv).unwrap()).unwrap()
    }

    #[test]
    fn defaults_are_a_bounded_flat_out_run_of_single_events() {
        let p = plan(&["--url", "http://127.0.0.1:8080"]);
        assert_eq!(p.pace, Pace::FlatOut);
        assert_eq!(p.bound, Bound::Duration(Duration::from_secs(10)));
        assert_eq!(p.concurrency, 64);
        assert_eq!(p.players, 1000);
        assert_eq!(p.batch_size, 1);
        assert_eq!(p.path, "/events");
        assert_eq!(p.host, "127.0.0.1:8080");
        assert_eq!(
            p.mix.describe(),
            "progression=90,boss_kill=5,drop_claimed=5"
        );
        assert_eq!(p.probe, None);
    }

    #[test]
    fn probes_are_off_unless_asked_and_paced_at_the_interval() {
        let p = plan(&["--url", "http://127.0.0.1:8080/api/", "--probe-visibility"]);
        assert_eq!(p.probe, Some(Duration::from_millis(50)));
        assert_eq!(p.prefix, "/api");
        let url = ["--url", "http://127.0.0.1:8080"];
        let p = plan(
            &[
                &url[..],
                &["--probe-visibility", "--probe-interval", "200ms"],
            ]
            .concat(),
        );
        assert_eq!(p.probe, Some(Duration::from_millis(200)));
        assert_eq!(
            plan(&[&url[..], &["--probe-interval", "200ms"]].concat()).probe,
            None
        );
        assert!(parse(&["--probe-visibility", "--probe-interval", "0ms"]).is_err());
    }

    #[test]
    fn rate_is_in_events_and_batches_divide_it() {
        let p = plan(&[
            "--url",
            "http://localhost:9000/",
            "--rate",
            "1000",
            "--batch",
            "50",
        ]);
        assert_eq!(
            p.pace,
            Pace::Rate {
                requests_per_sec: 20.0
            }
        );
        assert_eq!(p.path, "/events/batch");
        assert_eq!(p.addr, "127.0.0.1:9000".parse().unwrap());
    }

    #[test]
    fn count_rounds_requests_up_and_shortens_the_last() {
        let p = plan(&[
            "--url",
            "http://127.0.0.1:1",
            "--count",
            "1001",
            "--batch",
            "100",
        ]);
        assert_eq!(
            p.bound,
            Bound::Requests {
                requests: 11,
                events: 1001
            }
        );
        assert_eq!(p.events_in_request(0), 100);
        assert_eq!(p.events_in_request(10), 1);
    }

    #[test]
    fn bad_options_are_refused() {
        assert!(parse(&["--count", "5", "--duration", "1s"]).is_err());
        assert!(parse(&["--batch", "501"]).is_err());
        assert!(parse(&["--batch", "0"]).is_err());
        assert!(parse(&["--rate", "0"]).is_err());
        assert!(parse(&["--concurrency", "0"]).is_err());
        assert!(parse(&["--mix", "progression=x"]).is_err());
        assert!(parse(&["--duration", "10 parsecs"]).is_err());
    }

    #[test]
    fn non_loopback_hosts_are_refused() {
        for url in [
            "http://10.1.2.3:8080",
            "http://example.com",
            "https://127.0.0.1:8080",
        ] {
            let err = Plan::from_args(&parse(&["--url", url]).unwrap()).unwrap_err();
            assert!(
                err.to_string().contains("loopback") || err.to_string().contains("http://"),
                "{url}: {err}"
            );
        }
        assert!(LoopbackTarget::parse("http://[::1]:8080").is_ok());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("3 weeks").is_err());
    }

    #[test]
    fn mixes() {
        let m = Mix::parse("progression=3, boss_kill=1, drop_claimed=0").unwrap();
        assert_eq!(m.total(), 4);
        assert_eq!(m.pick(0), EventType::Progression);
        assert_eq!(m.pick(2), EventType::Progression);
        assert_eq!(m.pick(3), EventType::BossKill);
        assert_eq!(Mix::parse("boss_kill").unwrap().total(), 1);
        assert!(Mix::parse("progression=0").is_err());
        assert!(Mix::parse("bosskill")
            .unwrap_err()
            .contains("unknown event type"));
        assert!(Mix::parse("progression,progression").is_err());
    }
}
