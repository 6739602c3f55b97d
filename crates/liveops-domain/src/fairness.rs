//! Fairness statistics (`docs/fairness.md`): hard limits, per-player and population baselines, the
//! verdict on one event, and the "three flags in ten minutes" window.
//!
//! Everything here is pure: the caller feeds the committed event stream in order, asks
//! [`Detector::judge`] before progression and leaderboards apply an event, and calls
//! [`Detector::accept`] only for events that passed (or that an operator released). A flagged
//! event therefore never moves a baseline, so a cheater cannot train the detector by repeating a
//! large value. Time is injected ([`FlagWindow::record`] takes `now`), so replaying the log
//! rebuilds exactly the same state.
//!
//! # The rules, in the order they are tried
//!
//! 1. **Hard limits**: `deltaXp > MAX_DELTA_XP` or boss `points > MAX_BOSS_POINTS` is flagged
//!    whatever the history.
//! 2. **The player's own baseline**: once the player has `min_player_samples` (10) accepted
//!    samples of the metric, `|z| > ANOMALY_Z` against their running mean flags the event.
//! 3. **The population**: before that, the event is judged against all accepted samples of the
//!    metric from all players, on a log scale (see below), once there are
//!    `min_population_samples` of them from `min_population_players` distinct players; with less
//!    data only the hard limits apply.
//!
//! # The deviation floor
//!
//! `z = (value - mean) / sigma`, where `sigma` is never the raw standard deviation alone:
//!
//! ```text
//! sigma = max(std * sqrt(1 + 1/n),  relative_floor * |mean|,  absolute_floor)
//! ```
//!
//! - `std * sqrt(1 + 1/n)` is the spread of a *new* observation when the mean itself is only
//!   estimated from `n` samples; it matters for small `n` and vanishes as the history grows.
//! - `relative_floor * |mean|` is why a steady player is not an outlier for a small change: a
//!   player who always sends exactly 100 has a standard deviation of 0, and without a floor 103
//!   would be infinitely many sigma away. With the player floor of 0.5 the effective sigma is 50,
//!   so 103 is 0.1 sigma and 5000 is 98 sigma. At `ANOMALY_Z = 3.5` a player is flagged only above
//!   `1 + 3.5 * 0.5 = 2.75` times their own mean (unless their history is noisier than that).
//!   Honest play varies by tens of percent from event to event; the cheats this guard exists for
//!   are 10x to 100x, so the floor costs almost no detection and removes the false positives
//!   that a standard deviation estimated from ten samples would otherwise cause (a Student t
//!   with 9 degrees of freedom exceeds 3.5 about ten times as often as a normal does).
//! - `absolute_floor` covers means near zero (a player who always sends `deltaXp` 1, a tier whose
//!   bosses give 0 points), where a relative floor would be tiny.
//!
//! Because the relative floor is at least `1 / ANOMALY_Z`, a *low* value of a non-negative
//! metric can never reach `-ANOMALY_Z`: the test is the `|z|` of docs/fairness.md, but in practice only
//! inflated values are flagged, which is what a cheater gains from.
//!
//! # The population rule
//!
//! The population of a metric mixes players of every level, whose typical values differ by
//! factors, not by amounts: one player's quest is worth 50 XP, another's 2000. On a linear scale
//! such a population is skewed, its standard deviation is dominated by the strongest players,
//! and whatever threshold catches a 50x first event also flags the strongest honest newcomers.
//! Worse, a flagged event never moves a baseline, so an honest newcomer flagged by the population
//! stays a newcomer and is flagged again and again. The population is therefore kept on a log
//! scale, `ln(1 + value)`, where "5 times the typical value" is the same distance whatever the
//! level, and the z-test there is a test on the *ratio* to the typical (geometric mean) value.
//! If player strengths are roughly log-normal, the share of honest players beyond 3.5 sigma stays
//! about 0.02% however wide the spread is.
//!
//! - The log-scale sigma has a floor of 0.5, so a population of near-identical players does not
//!   make every strong newcomer an outlier: at `ANOMALY_Z = 3.5` nobody is flagged below
//!   `e^(3.5 * 0.5) = 5.75` times the typical value.
//! - Only the upper side flags: on a log scale a weak beginner (deltaXp 1 where the typical is
//!   300) would otherwise be an outlier, and a low value gains a cheater nothing.
//! - The population is ready once it has 200 samples from 20 players, so a handful of early
//!   players (or one early cheater) cannot define "normal".
//! - The linear statistics are kept too, for display; they do not judge.
//!
//! # What this does not catch
//!
//! A slow ramp (each value a little above the last) moves the baseline with it, and a fresh
//! account whose values are consistently 5x the population from its first event looks like a
//! strong player. Both need a different signal (growth over time, comparison with the player's
//! level) and are out of scope here.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::event::EventKind;
use crate::ids::PlayerId;

/// A running count, mean and sum of squared deviations (`M2`), updated one sample at a time with
/// Welford's algorithm, which stays accurate where the naive `sum(x^2) - n * mean^2` cancels
/// catastrophically (large values with a small spread). Persisted as JSON; serde_json (without
/// its `float_roundtrip` feature) may read a float back one unit in the last place off, which
/// cannot change a verdict other than exactly at the threshold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Welford {
    count: u64,
    mean: f64,
    m2: f64,
}

impl Welford {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one sample. Non-finite samples are ignored: one NaN would otherwise poison a baseline
    /// that is persisted and kept forever.
    pub fn push(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        self.count += 1;
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
    }

    /// Combines two baselines as if all their samples had been pushed into one (Chan et al.),
    /// for aggregating baselines kept apart (per shard, per day).
    pub fn merge(&mut self, other: &Welford) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *other;
            return;
        }
        let n = (self.count + other.count) as f64;
        let (na, nb) = (self.count as f64, other.count as f64);
        let delta = other.mean - self.mean;
        self.mean += delta * nb / n;
        self.m2 += other.m2 + delta * delta * na * nb / n;
        self.count += other.count;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The mean of the samples, 0 when there are none.
    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// The sum of squared deviations from the mean.
    pub fn m2(&self) -> f64 {
        self.m2
    }

    /// The sample variance (divided by `n - 1`, unbiased), 0 below two samples. The unbiased form
    /// matters here because baselines are judged from as few as ten samples.
    pub fn variance(&self) -> f64 {
        if self.count < 2 {
            0.0
        } else {
            // Rounding can leave M2 a hair below zero for identical samples.
            (self.m2 / (self.count - 1) as f64).max(0.0)
        }
    }

    pub fn std(&self) -> f64 {
        self.variance().sqrt()
    }
}

impl FromIterator<f64> for Welford {
    fn from_iter<I: IntoIterator<Item = f64>>(iter: I) -> Self {
        let mut w = Welford::new();
        for x in iter {
            w.push(x);
        }
        w
    }
}

/// What is measured: `deltaXp` per activity (a quest and a kill are different things) and boss
/// `points` per tier, written `deltaXp:<activity>` and `points:tier<n>`. It is the `metric` of a
/// flag and the key of the persisted baselines.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MetricKey(String);

impl MetricKey {
    pub fn delta_xp(activity: &str) -> Self {
        Self(format!("deltaXp:{activity}"))
    }

    pub fn boss_points(tier: u8) -> Self {
        Self(format!("points:tier{tier}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The payload field measured (`deltaXp`, `points`), as written in a flag's reason.
    pub fn field(&self) -> &str {
        self.0.split_once(':').map_or(&self.0, |(field, _)| field)
    }
}

impl fmt::Display for MetricKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The metric an event feeds and its value, or `None` when the event has nothing to measure.
///
/// A drop has no metric: its `weight` is the catalogue rarity of the item, bounded to (0, 1] by
/// validation, so the XP it grants is at most 100 whatever the client sends. There is no
/// quantity a cheater can inflate; claiming drops too often is the flood limit's business.
pub fn observation(kind: &EventKind) -> Option<(MetricKey, f64)> {
    match kind {
        EventKind::Progression { delta_xp, activity } => {
            Some((MetricKey::delta_xp(activity), *delta_xp as f64))
        }
        EventKind::BossKill { tier, points, .. } => {
            Some((MetricKey::boss_points(*tier), *points as f64))
        }
        EventKind::DropClaimed { .. } => None,
    }
}

/// The thresholds of the fairness guard. `Default` is the documented defaults (docs/fairness.md); the floors and the
/// population sizes are explained in the module documentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FairnessRules {
    /// `ANOMALY_Z`: an event more than this many (floored) sigma from the mean is flagged.
    pub z_threshold: f64,
    /// `MAX_DELTA_XP`: a larger `deltaXp` is flagged whatever the history.
    pub max_delta_xp: i64,
    /// `MAX_BOSS_POINTS`: larger boss `points` are flagged whatever the history.
    pub max_boss_points: i64,
    /// Accepted samples of a metric before a player is judged against their own baseline.
    pub min_player_samples: u64,
    /// Accepted samples of a metric, from all players, before the population judges anyone.
    pub min_population_samples: u64,
    /// Distinct players behind those samples, so a few players cannot define "normal".
    pub min_population_players: u64,
    /// The floor of a player's sigma as a fraction of their mean.
    pub player_relative_floor: f64,
    /// The floor of the population's sigma on its log scale, `ln(1 + value)`.
    pub population_log_floor: f64,
    /// The floor of any sigma, in the metric's unit, for means near zero. Must be > 0.
    pub absolute_floor: f64,
    /// The window in which `flags_to_block` flags block a player (10 minutes).
    pub flag_window_sec: i64,
    /// Flags within the window that block a player (3).
    pub flags_to_block: usize,
    /// `BLOCK_SEC`: how long a block lasts.
    pub block_sec: i64,
}

impl Default for FairnessRules {
    fn default() -> Self {
        Self {
            z_threshold: 3.5,
            max_delta_xp: 10_000,
            max_boss_points: 100_000,
            min_player_samples: 10,
            min_population_samples: 200,
            min_population_players: 20,
            player_relative_floor: 0.5,
            population_log_floor: 0.5,
            absolute_floor: 10.0,
            flag_window_sec: 600,
            flags_to_block: 3,
            block_sec: 60,
        }
    }
}

impl FairnessRules {
    pub fn flag_window(&self) -> Duration {
        Duration::seconds(self.flag_window_sec)
    }

    pub fn block_duration(&self) -> Duration {
        Duration::seconds(self.block_sec)
    }

    /// The hard limit of an event's metric and the name of its setting.
    fn hard_limit(&self, kind: &EventKind) -> Option<(i64, &'static str)> {
        match kind {
            EventKind::Progression { .. } => Some((self.max_delta_xp, "MAX_DELTA_XP")),
            EventKind::BossKill { .. } => Some((self.max_boss_points, "MAX_BOSS_POINTS")),
            EventKind::DropClaimed { .. } => None,
        }
    }

    /// The effective sigma of a player's baseline: see "The deviation floor" in the module docs.
    fn player_sigma(&self, stats: &Welford) -> f64 {
        predictive_std(stats)
            .max(self.player_relative_floor * stats.mean().abs())
            .max(self.absolute_floor)
            // Only reached with a misconfigured absolute floor of 0: never divide by zero.
            .max(f64::MIN_POSITIVE)
    }

    /// The effective sigma of a population's log-scale baseline: see "The population rule".
    fn population_sigma(&self, log_stats: &Welford) -> f64 {
        predictive_std(log_stats)
            .max(self.population_log_floor)
            .max(f64::MIN_POSITIVE)
    }
}

/// The spread of a new observation when the mean is estimated from the same `n` samples.
fn predictive_std(stats: &Welford) -> f64 {
    let n = stats.count().max(1) as f64;
    stats.std() * (1.0 + 1.0 / n).sqrt()
}

/// The population's scale: `ln(1 + value)` is defined for the 0 boss points a tier may give.
fn log_scale(value: f64) -> f64 {
    value.max(0.0).ln_1p()
}

/// Which rule flagged an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Over `MAX_DELTA_XP` or `MAX_BOSS_POINTS`.
    HardLimit,
    /// Too far from the player's own baseline.
    PlayerZ,
    /// A player without enough history, too far from the population of the metric.
    PopulationZ,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::HardLimit => "hard_limit",
            Rule::PlayerZ => "player_z",
            Rule::PopulationZ => "population_z",
        }
    }
}

/// The guard's opinion of one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Pass,
    Flag {
        /// The metric key, `deltaXp:<activity>` or `points:tier<n>`.
        metric: String,
        value: f64,
        rule: Rule,
        /// Why, in words a reviewer understands without knowing the statistics.
        reason: String,
    },
}

impl Verdict {
    pub fn is_flag(&self) -> bool {
        matches!(self, Verdict::Flag { .. })
    }
}

/// Every accepted sample of one metric from all players, and how many players contributed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PopulationBaseline {
    /// The samples as they are, for display.
    stats: Welford,
    /// The samples on the log scale `ln(1 + value)`, which is what judges.
    log_stats: Welford,
    players: u64,
}

impl PopulationBaseline {
    pub fn stats(&self) -> &Welford {
        &self.stats
    }

    pub fn log_stats(&self) -> &Welford {
        &self.log_stats
    }

    /// The typical value: the geometric mean of `1 + value`, minus 1.
    pub fn typical(&self) -> f64 {
        self.log_stats.mean().exp_m1()
    }

    /// Distinct players with at least one accepted sample of the metric.
    pub fn players(&self) -> u64 {
        self.players
    }
}

/// One player's baselines, by metric.
pub type PlayerBaselines = BTreeMap<MetricKey, Welford>;

/// The detector's whole state, serializable so the store can persist it and restore it at start
/// instead of replaying the log; replaying the accepted events from the start rebuilds it too.
/// The population is persisted with the players: its log-scale statistics cannot be recomputed
/// from the players' linear ones.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Baselines {
    /// Per player and metric: the player's accepted samples. Grows by one entry per player and
    /// metric ever accepted; never shrinks.
    players: HashMap<PlayerId, PlayerBaselines>,
    /// Per metric: all accepted samples of all players.
    population: HashMap<MetricKey, PopulationBaseline>,
}

impl Baselines {
    pub fn player(&self, player: &PlayerId) -> Option<&PlayerBaselines> {
        self.players.get(player)
    }

    pub fn players(&self) -> impl Iterator<Item = (&PlayerId, &PlayerBaselines)> {
        self.players.iter()
    }

    pub fn population(&self, metric: &MetricKey) -> Option<&PopulationBaseline> {
        self.population.get(metric)
    }
}

/// Judges events against hard limits and baselines, and learns from accepted events.
#[derive(Debug, Clone, Default)]
pub struct Detector {
    /// Configuration, not state: a restart may change it without touching the baselines.
    rules: FairnessRules,
    /// Moved only by [`Detector::accept`].
    baselines: Baselines,
}

impl Detector {
    /// Forgets a player's own baselines (GDPR erasure). The population keeps their samples as
    /// anonymous aggregates: a mean and a deviation identify nobody.
    pub fn forget(&mut self, player: &PlayerId) {
        self.baselines.players.remove(player);
    }

    pub fn new(rules: FairnessRules) -> Self {
        Self::restore(rules, Baselines::default())
    }

    /// A detector continuing from a persisted [`Detector::snapshot`].
    pub fn restore(rules: FairnessRules, baselines: Baselines) -> Self {
        Self { rules, baselines }
    }

    /// The state to persist (serialize it with serde).
    pub fn snapshot(&self) -> &Baselines {
        &self.baselines
    }

    pub fn rules(&self) -> &FairnessRules {
        &self.rules
    }

    pub fn player(&self, player: &PlayerId) -> Option<&PlayerBaselines> {
        self.baselines.player(player)
    }

    pub fn population(&self, metric: &MetricKey) -> Option<&PopulationBaseline> {
        self.baselines.population(metric)
    }

    /// The verdict on one event, without changing any state.
    pub fn judge(&self, player: &PlayerId, kind: &EventKind) -> Verdict {
        let Some((metric, value)) = observation(kind) else {
            return Verdict::Pass;
        };
        let rules = &self.rules;
        let field = metric.field().to_string();
        let flag = |rule: Rule, reason: String| Verdict::Flag {
            metric: metric.as_str().to_string(),
            value,
            rule,
            reason,
        };

        if let Some((limit, setting)) = rules.hard_limit(kind) {
            if value > limit as f64 {
                return flag(
                    Rule::HardLimit,
                    format!(
                        "{field} {value} is over the hard limit of {limit} per event ({setting})"
                    ),
                );
            }
        }

        let own = self.player(player).and_then(|m| m.get(&metric));
        let own_count = own.map_or(0, Welford::count);
        if let Some(own) = own.filter(|w| w.count() >= rules.min_player_samples) {
            let z = (value - own.mean()) / rules.player_sigma(own);
            if z.abs() > rules.z_threshold {
                return flag(
                    Rule::PlayerZ,
                    format!(
                        "{field} {value} is {:.1} sigma {} this player's mean {:.0} (n={})",
                        z.abs(),
                        above_below(z),
                        own.mean(),
                        own.count()
                    ),
                );
            }
            return Verdict::Pass;
        }

        let population = self.population(&metric).filter(|p| {
            p.stats.count() >= rules.min_population_samples
                && p.players >= rules.min_population_players
        });
        if let Some(pop) = population {
            let z =
                (log_scale(value) - pop.log_stats.mean()) / rules.population_sigma(&pop.log_stats);
            if z > rules.z_threshold {
                let typical = pop.typical();
                return flag(
                    Rule::PopulationZ,
                    format!(
                        "{field} {value} is {:.1}x the typical {typical:.0} of all players \
                         ({z:.1} sigma above on a log scale, n={} from {} players); this player \
                         has only {own_count} earlier samples of {metric}",
                        value / typical.max(1.0),
                        pop.log_stats.count(),
                        pop.players
                    ),
                );
            }
        }
        Verdict::Pass
    }

    /// Learns from an event that was not flagged (or that an operator released): moves the
    /// player's and the population's baselines of its metric.
    pub fn accept(&mut self, player: &PlayerId, kind: &EventKind) {
        let Some((metric, value)) = observation(kind) else {
            return;
        };
        let own = self
            .baselines
            .players
            .entry(player.clone())
            .or_default()
            .entry(metric.clone())
            .or_default();
        let new_contributor = own.count() == 0;
        own.push(value);
        let pop = self.baselines.population.entry(metric).or_default();
        pop.stats.push(value);
        pop.log_stats.push(log_scale(value));
        if new_contributor {
            pop.players += 1;
        }
    }
}

fn above_below(z: f64) -> &'static str {
    if z >= 0.0 {
        "above"
    } else {
        "below"
    }
}

/// One player's recent flags, for "three flags within 10 minutes block the player for
/// `BLOCK_SEC`". Times are injected (the flag times of the committed stream), so a rebuild that
/// replays the flags in order reaches the same decisions. Times are expected in order; an earlier
/// time is tolerated (kept sorted) and judged by the window ending at it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlagWindow {
    window_sec: i64,
    threshold: usize,
    /// Flag times, oldest first; those that fell out of the window are dropped on each record.
    flags: VecDeque<DateTime<Utc>>,
}

impl FlagWindow {
    /// `threshold` flags less than `window` apart block the player.
    pub fn new(window: Duration, threshold: usize) -> Self {
        Self {
            window_sec: window.num_seconds(),
            threshold,
            flags: VecDeque::new(),
        }
    }

    pub fn from_rules(rules: &FairnessRules) -> Self {
        Self::new(rules.flag_window(), rules.flags_to_block)
    }

    /// Records a flag at `now`; true when it makes at least `threshold` flags within the window
    /// ending at `now` (a flag exactly `window` old no longer counts), i.e. the player is to be
    /// blocked from `now` for `BLOCK_SEC`.
    pub fn record(&mut self, now: DateTime<Utc>) -> bool {
        let at = self.flags.partition_point(|t| *t <= now);
        self.flags.insert(at, now);
        let window = Duration::seconds(self.window_sec);
        if let Some(&newest) = self.flags.back() {
            while self.flags.front().is_some_and(|t| newest - *t >= window) {
                self.flags.pop_front();
            }
        }
        self.count(now) >= self.threshold
    }

    /// Flags within the window ending at `now`.
    pub fn count(&self, now: DateTime<Utc>) -> usize {
        let window = Duration::seconds(self.window_sec);
        self.flags
            .iter()
            .filter(|t| **t <= now && now - **t < window)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn pid(s: &str) -> PlayerId {
        PlayerId::parse(s).unwrap()
    }

    fn xp(delta_xp: i64) -> EventKind {
        EventKind::Progression {
            delta_xp,
            activity: "quest_completion".into(),
        }
    }

    fn boss(tier: u8, points: i64) -> EventKind {
        EventKind::BossKill {
            boss_id: "dragon".into(),
            tier,
            points,
        }
    }

    fn reason(v: &Verdict) -> &str {
        match v {
            Verdict::Flag { reason, .. } => reason,
            Verdict::Pass => panic!("expected a flag, got Pass"),
        }
    }

    fn rule(v: &Verdict) -> Option<Rule> {
        match v {
            Verdict::Flag { rule, .. } => Some(*rule),
            Verdict::Pass => None,
        }
    }

    fn two_pass(xs: &[f64]) -> (f64, f64) {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, var)
    }

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-300)
    }

    #[test]
    fn welford_matches_a_two_pass_computation() {
        let xs: Vec<f64> = (0..1000)
            .map(|i| ((i * 7919) % 1013) as f64 * 0.37 - 50.0)
            .collect();
        let w: Welford = xs.iter().copied().collect();
        let (mean, var) = two_pass(&xs);
        assert_eq!(w.count(), 1000);
        assert!(close(w.mean(), mean, 1e-12), "{} vs {mean}", w.mean());
        assert!(close(w.variance(), var, 1e-12), "{} vs {var}", w.variance());
        assert!(close(w.std(), var.sqrt(), 1e-12));
    }

    #[test]
    fn welford_is_stable_for_large_values_with_a_small_spread() {
        // The naive sum of squares loses every digit of the spread at this magnitude.
        let xs: Vec<f64> = (0..100).map(|i| 1e9 + (i % 4) as f64).collect();
        let w: Welford = xs.iter().copied().collect();
        let (mean, var) = two_pass(&xs);
        assert!(close(w.mean(), mean, 1e-15));
        // The spread is 1e-9 of the values, so ~1e-8 is what f64 can give; the naive formula
        // returns noise here.
        assert!(close(w.variance(), var, 1e-6), "{} vs {var}", w.variance());
    }

    #[test]
    fn welford_edge_cases() {
        let empty = Welford::new();
        assert_eq!(
            (empty.count(), empty.mean(), empty.variance()),
            (0, 0.0, 0.0)
        );
        let one: Welford = [42.0].into_iter().collect();
        assert_eq!((one.mean(), one.variance()), (42.0, 0.0));
        let same: Welford = std::iter::repeat_n(100.0, 50).collect();
        assert_eq!((same.mean(), same.std()), (100.0, 0.0));
        let mut w = same;
        w.push(f64::NAN);
        w.push(f64::INFINITY);
        assert_eq!(w, same, "non-finite samples are ignored");
    }

    #[test]
    fn welford_merge_equals_pushing_everything() {
        let xs: Vec<f64> = (0..300).map(|i| ((i * 31) % 97) as f64).collect();
        let all: Welford = xs.iter().copied().collect();
        let mut a: Welford = xs[..120].iter().copied().collect();
        let b: Welford = xs[120..].iter().copied().collect();
        a.merge(&b);
        assert_eq!(a.count(), all.count());
        assert!(close(a.mean(), all.mean(), 1e-12));
        assert!(close(a.variance(), all.variance(), 1e-12));
        let mut e = Welford::new();
        e.merge(&all);
        assert_eq!(e, all);
    }

    #[test]
    fn welford_round_trips_through_json() {
        let w: Welford = [0.1, 0.2, 0.30000000000000004, 1e-7, 123456.789]
            .into_iter()
            .collect();
        let json = serde_json::to_string(&w).unwrap();
        assert!(json.starts_with(r#"{"count":5,"mean":"#), "{json}");
        assert_same(&serde_json::from_str::<Welford>(&json).unwrap(), &w);
    }

    /// Equal up to the last-place rounding of serde_json's float parser.
    fn assert_same(a: &Welford, b: &Welford) {
        assert_eq!(a.count(), b.count());
        assert!(close(a.mean(), b.mean(), 1e-14), "{a:?} vs {b:?}");
        assert!(close(a.m2(), b.m2(), 1e-12), "{a:?} vs {b:?}");
    }

    #[test]
    fn metrics_are_delta_xp_per_activity_and_points_per_tier() {
        assert_eq!(
            observation(&xp(150)),
            Some((MetricKey::delta_xp("quest_completion"), 150.0))
        );
        assert_eq!(
            MetricKey::delta_xp("quest_completion").as_str(),
            "deltaXp:quest_completion"
        );
        let (key, value) = observation(&boss(3, 500)).unwrap();
        assert_eq!(
            (key.as_str(), key.field(), value),
            ("points:tier3", "points", 500.0)
        );
        let drop = EventKind::DropClaimed {
            drop_id: "sword".into(),
            weight: 0.5,
            source: "chest".into(),
        };
        assert_eq!(observation(&drop), None);
        assert_eq!(Detector::default().judge(&pid("p_1"), &drop), Verdict::Pass);
    }

    #[test]
    fn hard_limits_flag_whatever_the_history() {
        let d = Detector::default();
        let p = pid("p_1");
        assert_eq!(d.judge(&p, &xp(10_000)), Verdict::Pass);
        let v = d.judge(&p, &xp(10_001));
        assert_eq!(rule(&v), Some(Rule::HardLimit));
        assert_eq!(
            reason(&v),
            "deltaXp 10001 is over the hard limit of 10000 per event (MAX_DELTA_XP)"
        );
        assert_eq!(d.judge(&p, &boss(5, 100_000)), Verdict::Pass);
        let v = d.judge(&p, &boss(5, 100_001));
        assert_eq!(rule(&v), Some(Rule::HardLimit));
        assert!(reason(&v).contains("MAX_BOSS_POINTS"), "{}", reason(&v));
    }

    #[test]
    fn zero_deviation_does_not_make_every_change_an_outlier() {
        let mut d = Detector::default();
        let p = pid("steady");
        for _ in 0..20 {
            d.accept(&p, &xp(100));
        }
        assert_eq!(
            d.player(&p).unwrap()[&MetricKey::delta_xp("quest_completion")].std(),
            0.0
        );
        assert_eq!(d.judge(&p, &xp(103)), Verdict::Pass);
        assert_eq!(d.judge(&p, &xp(250)), Verdict::Pass);
        assert_eq!(d.judge(&p, &xp(1)), Verdict::Pass);
        assert_eq!(rule(&d.judge(&p, &xp(5000))), Some(Rule::PlayerZ));
    }

    #[test]
    fn absolute_floor_covers_a_mean_near_zero() {
        let mut d = Detector::default();
        let p = pid("tiny");
        for _ in 0..20 {
            d.accept(&p, &xp(1));
        }
        // sigma = 10: 3 is 0.2 sigma, 100 is 9.9 sigma.
        assert_eq!(d.judge(&p, &xp(3)), Verdict::Pass);
        assert_eq!(rule(&d.judge(&p, &xp(100))), Some(Rule::PlayerZ));
    }

    #[test]
    fn player_z_applies_from_the_tenth_sample_not_before() {
        let mut d = Detector::default();
        let p = pid("p_1");
        for i in 0..9 {
            d.accept(&p, &xp(100 + i % 3));
        }
        // Nine samples and no population: only the hard limit applies.
        assert_eq!(d.judge(&p, &xp(9000)), Verdict::Pass);
        d.accept(&p, &xp(100));
        assert_eq!(rule(&d.judge(&p, &xp(9000))), Some(Rule::PlayerZ));
    }

    #[test]
    fn metrics_are_judged_separately() {
        let mut d = Detector::default();
        let p = pid("p_1");
        for _ in 0..20 {
            d.accept(&p, &xp(100));
        }
        let kill = EventKind::Progression {
            delta_xp: 5000,
            activity: "raid".into(),
        };
        assert_eq!(d.judge(&p, &kill), Verdict::Pass, "no history for raid yet");
        assert_eq!(d.judge(&p, &boss(1, 5000)), Verdict::Pass);
    }

    #[test]
    fn player_z_reason_reads_like_a_sentence() {
        let mut d = Detector::new(FairnessRules {
            max_delta_xp: i64::MAX,
            ..FairnessRules::default()
        });
        let p = pid("p_1");
        for i in 0..20 {
            d.accept(&p, &xp(if i % 2 == 0 { 50 } else { 150 }));
        }
        // mean 100, std 51.3, sigma max(51.3 * sqrt(1 + 1/20), 0.5 * 100, 10) = 52.6
        let v = d.judge(&p, &xp(100_000));
        match &v {
            Verdict::Flag {
                metric,
                value,
                rule,
                reason,
            } => {
                assert_eq!(metric, "deltaXp:quest_completion");
                assert_eq!(*value, 100_000.0);
                assert_eq!(*rule, Rule::PlayerZ);
                assert_eq!(
                    reason,
                    "deltaXp 100000 is 1900.5 sigma above this player's mean 100 (n=20)"
                );
            }
            Verdict::Pass => panic!("not flagged"),
        }
    }

    fn with_population(players: usize, per_player: i64) -> Detector {
        let mut d = Detector::default();
        for i in 0..players {
            let p = pid(&format!("pop_{i}"));
            for j in 0..per_player {
                d.accept(&p, &xp(80 + (i as i64 % 5) * 10 + j % 3));
            }
        }
        d
    }

    #[test]
    fn a_fresh_player_is_judged_against_the_population_once_it_is_big_enough() {
        let fresh = pid("fresh");
        // Enough samples (19 x 20 = 380) but too few players.
        let d = with_population(19, 20);
        assert_eq!(d.judge(&fresh, &xp(5000)), Verdict::Pass);
        // Enough players but too few samples (25 x 5 = 125).
        let d = with_population(25, 5);
        assert_eq!(d.judge(&fresh, &xp(5000)), Verdict::Pass);
        // Both: 20 players x 10 samples.
        let d = with_population(20, 10);
        let v = d.judge(&fresh, &xp(5000));
        assert_eq!(rule(&v), Some(Rule::PopulationZ));
        assert_eq!(
            reason(&v),
            "deltaXp 5000 is 50.0x the typical 100 of all players (7.8 sigma above on a log \
             scale, n=200 from 20 players); this player has only 0 earlier samples of \
             deltaXp:quest_completion"
        );
        // A strong but plausible newcomer (4x the typical value) passes, and so does a weak one.
        assert_eq!(d.judge(&fresh, &xp(400)), Verdict::Pass);
        assert_eq!(d.judge(&fresh, &xp(1)), Verdict::Pass);
    }

    #[test]
    fn a_player_with_a_few_samples_is_still_judged_by_the_population() {
        let mut d = with_population(30, 10);
        let p = pid("newbie");
        for _ in 0..5 {
            d.accept(&p, &xp(100));
        }
        let v = d.judge(&p, &xp(5000));
        assert_eq!(rule(&v), Some(Rule::PopulationZ));
        assert!(
            reason(&v).contains("only 5 earlier samples"),
            "{}",
            reason(&v)
        );
    }

    #[test]
    fn judging_does_not_move_baselines_and_flagged_events_are_not_accepted() {
        let mut d = with_population(20, 10);
        let p = pid("cheater");
        for _ in 0..10 {
            d.accept(&p, &xp(100));
        }
        let before = d.snapshot().clone();
        // The pipeline: judge, accept only on Pass. Repeating the cheat never trains the detector.
        for _ in 0..100 {
            let v = d.judge(&p, &xp(5000));
            assert_eq!(rule(&v), Some(Rule::PlayerZ));
            if !v.is_flag() {
                d.accept(&p, &xp(5000));
            }
        }
        assert_eq!(d.snapshot(), &before);
    }

    #[test]
    fn population_counts_distinct_players() {
        let d = with_population(7, 4);
        let pop = d
            .population(&MetricKey::delta_xp("quest_completion"))
            .unwrap();
        assert_eq!((pop.stats().count(), pop.players()), (28, 7));
    }

    #[test]
    fn baselines_round_trip_through_json() {
        let mut d = with_population(5, 6);
        d.accept(&pid("boss_1"), &boss(2, 700));
        let json = serde_json::to_string(d.snapshot()).unwrap();
        let restored: Baselines = serde_json::from_str(&json).unwrap();
        assert_eq!(restored.players().count(), 6);
        for (p, metrics) in d.snapshot().players() {
            let back = restored.player(p).unwrap();
            assert_eq!(back.len(), metrics.len());
            for (key, w) in metrics {
                assert_same(&back[key], w);
            }
        }
        for key in [
            MetricKey::delta_xp("quest_completion"),
            MetricKey::boss_points(2),
        ] {
            let (a, b) = (
                restored.population(&key).unwrap(),
                d.population(&key).unwrap(),
            );
            assert_eq!(a.players(), b.players());
            assert_same(a.stats(), b.stats());
            assert_same(a.log_stats(), b.log_stats());
        }
        let d2 = Detector::restore(FairnessRules::default(), restored);
        for value in [1, 100, 400, 5000, 20_000] {
            assert_eq!(
                d2.judge(&pid("pop_1"), &xp(value)),
                d.judge(&pid("pop_1"), &xp(value))
            );
        }
    }

    #[test]
    fn three_flags_within_ten_minutes_block() {
        let t0 = Utc.with_ymd_and_hms(2025, 1, 1, 12, 0, 0).unwrap();
        let m = Duration::minutes;
        let mut w = FlagWindow::from_rules(&FairnessRules::default());
        assert!(!w.record(t0));
        assert!(!w.record(t0 + m(5)));
        assert!(w.record(t0 + m(9) + Duration::seconds(59)));
        assert!(w.record(t0 + m(10)), "t0+5, t0+9:59, t0+10 are still three");

        let mut w = FlagWindow::from_rules(&FairnessRules::default());
        assert!(!w.record(t0));
        assert!(!w.record(t0 + m(5)));
        assert!(
            !w.record(t0 + m(10)),
            "a flag exactly ten minutes old has expired"
        );
        assert!(w.record(t0 + m(11)));
        assert!(!w.record(t0 + m(30)));
        assert_eq!(w.count(t0 + m(30)), 1);
    }

    #[test]
    fn flag_window_tolerates_an_earlier_time_and_round_trips() {
        let t0 = Utc.with_ymd_and_hms(2025, 1, 1, 12, 0, 0).unwrap();
        let mut w = FlagWindow::new(Duration::minutes(10), 3);
        assert!(!w.record(t0 + Duration::minutes(4)));
        assert!(!w.record(t0));
        assert!(w.record(t0 + Duration::minutes(6)));
        let json = serde_json::to_string(&w).unwrap();
        assert_eq!(serde_json::from_str::<FlagWindow>(&json).unwrap(), w);
    }
}
