//! The players of the fairness scenario and the events each sends: an honest population drawn
//! from a seeded RNG, and five kinds of cheaters (see the parent module for the kinds).

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const ACTIVITIES: [&str; 3] = ["quest_completion", "monster_hunt", "exploration"];
/// Honest events per player, and how many of them go out in the warm-up.
pub(super) const HONEST_EVENTS: usize = 30;
pub(super) const HONEST_WARMUP: usize = 10;
/// The share of honest events that are boss kills.
const BOSS_SHARE: f64 = 0.1;
/// The population's typical deltaXp (the median of the log-normal strengths).
const TYPICAL_XP: f64 = 100.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Jump,
    Ramp,
    Boss,
    Fresh,
    Flood,
}

impl Kind {
    pub const ALL: [Kind; 5] = [Kind::Jump, Kind::Ramp, Kind::Boss, Kind::Fresh, Kind::Flood];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Jump => "jump",
            Kind::Ramp => "ramp",
            Kind::Boss => "boss",
            Kind::Fresh => "fresh",
            Kind::Flood => "flood",
        }
    }

    pub(super) fn describe(self) -> &'static str {
        match self {
            Kind::Jump => "2 events at 100x the player's mean",
            Kind::Ramp => "+10%/event drift (not expected to be caught)",
            Kind::Boss => "boss points at 20x",
            Kind::Fresh => "new account, first 3 events at 50x typical",
            Kind::Flood => "40 events within one second",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Label {
    Honest,
    /// A cheater's honest-looking events before the cheat.
    Warmup(Kind),
    Cheat(Kind),
}

impl Label {
    pub fn name(self) -> String {
        match self {
            Label::Honest => "honest".into(),
            Label::Warmup(k) => format!("{} warm-up", k.as_str()),
            Label::Cheat(k) => format!("{} cheat", k.as_str()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Body {
    Xp { xp: u32, activity: &'static str },
    Boss { tier: u32, points: u32 },
}

#[derive(Debug, Clone)]
pub struct PlannedEvent {
    pub id: String,
    pub label: Label,
    pub body: Body,
}

/// One player's events in order, sent on one connection.
#[derive(Debug, Clone)]
pub struct Script {
    pub player: String,
    pub events: Vec<PlannedEvent>,
    /// At most 5 events/s; false for the flooders (as fast as the answers come).
    pub paced: bool,
}

/// The whole run: the warm-up phase, then the main phase.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub warmup: Vec<Script>,
    pub main: Vec<Script>,
}

/// A log-normal strength around `median` with log-sd 0.5 (so players differ by factors).
fn strength(rng: &mut SmallRng, median: f64) -> f64 {
    // Box-Muller.
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.gen();
    let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    median * (0.5 * z).exp()
}

fn noisy(rng: &mut SmallRng, mean: f64) -> u32 {
    (mean * rng.gen_range(0.7..=1.3)).round().max(1.0) as u32
}

struct Builder {
    run: String,
    rng: SmallRng,
}

impl Builder {
    fn script(&mut self, player: String, paced: bool, events: Vec<(Label, Body)>) -> Script {
        let events = events
            .into_iter()
            .enumerate()
            .map(|(i, (label, body))| PlannedEvent {
                id: format!("fg.{}.{player}.{i}", self.run),
                label,
                body,
            })
            .collect();
        Script {
            player,
            events,
            paced,
        }
    }

    fn player(&self, tag: &str, i: u32) -> String {
        format!("fg_{}_{tag}{i:04}", self.run)
    }

    fn xp(&mut self, mean: f64, activity: &'static str) -> Body {
        Body::Xp {
            xp: noisy(&mut self.rng, mean),
            activity,
        }
    }
}

impl Scenario {
    /// Builds every player's events; deterministic for a seed (apart from `run` in the ids).
    pub fn build(run: &str, honest: u32, cheaters: u32, seed: u64) -> Scenario {
        let mut b = Builder {
            run: run.to_string(),
            rng: SmallRng::seed_from_u64(seed),
        };
        let (mut warmup, mut main) = (Vec::new(), Vec::new());
        for i in 0..honest {
            let s = strength(&mut b.rng, TYPICAL_XP);
            let n_act = b.rng.gen_range(1..=3usize);
            let first = b.rng.gen_range(0..ACTIVITIES.len());
            let acts: Vec<&'static str> = (0..n_act)
                .map(|k| ACTIVITIES[(first + k) % ACTIVITIES.len()])
                .collect();
            let events: Vec<(Label, Body)> = (0..HONEST_EVENTS)
                .map(|_| {
                    let body = if b.rng.gen_bool(BOSS_SHARE) {
                        let tier = b.rng.gen_range(1..=5u32);
                        Body::Boss {
                            tier,
                            points: noisy(&mut b.rng, 100.0 * f64::from(tier)),
                        }
                    } else {
                        let a = acts[b.rng.gen_range(0..acts.len())];
                        b.xp(s, a)
                    };
                    (Label::Honest, body)
                })
                .collect();
            let player = b.player("h", i);
            let mut all = b.script(player, true, events);
            let rest = all.events.split_off(HONEST_WARMUP);
            main.push(Script {
                player: all.player.clone(),
                events: rest,
                paced: true,
            });
            warmup.push(all);
        }
        for i in 0..cheaters {
            // (a) one huge jump.
            let s = strength(&mut b.rng, TYPICAL_XP);
            let a = ACTIVITIES[b.rng.gen_range(0..ACTIVITIES.len())];
            let mut ev: Vec<(Label, Body)> = (0..15)
                .map(|_| (Label::Warmup(Kind::Jump), b.xp(s, a)))
                .collect();
            for _ in 0..2 {
                let xp = (s * 100.0).round() as u32;
                ev.push((Label::Cheat(Kind::Jump), Body::Xp { xp, activity: a }));
            }
            let p = b.player("jump", i);
            main.push(b.script(p, true, ev));

            // (b) slow ramp: the first 10 build the baseline, the other 20 are the drift.
            let s = strength(&mut b.rng, TYPICAL_XP);
            let a = ACTIVITIES[b.rng.gen_range(0..ACTIVITIES.len())];
            let ev = (0..30)
                .map(|k| {
                    let label = if k < 10 {
                        Label::Warmup(Kind::Ramp)
                    } else {
                        Label::Cheat(Kind::Ramp)
                    };
                    (label, b.xp(s * 1.1f64.powi(k), a))
                })
                .collect();
            let p = b.player("ramp", i);
            main.push(b.script(p, true, ev));

            // (c) boss-point inflation at one tier.
            let tier = b.rng.gen_range(1..=5u32);
            let base = 100.0 * f64::from(tier);
            let ev = (0..15)
                .map(|k| {
                    let (label, mean) = if k < 12 {
                        (Label::Warmup(Kind::Boss), base)
                    } else {
                        (Label::Cheat(Kind::Boss), base * 20.0)
                    };
                    let points = noisy(&mut b.rng, mean);
                    (label, Body::Boss { tier, points })
                })
                .collect();
            let p = b.player("boss", i);
            main.push(b.script(p, true, ev));

            // (d) fresh account, first 3 events at 50x the typical deltaXp.
            let a = ACTIVITIES[b.rng.gen_range(0..ACTIVITIES.len())];
            let ev = (0..3)
                .map(|_| (Label::Cheat(Kind::Fresh), b.xp(TYPICAL_XP * 50.0, a)))
                .collect();
            let p = b.player("fresh", i);
            main.push(b.script(p, true, ev));

            // (e) flooding: 40 honest-looking events as fast as possible.
            let s = strength(&mut b.rng, TYPICAL_XP);
            let a = ACTIVITIES[b.rng.gen_range(0..ACTIVITIES.len())];
            let ev = (0..40)
                .map(|_| (Label::Cheat(Kind::Flood), b.xp(s, a)))
                .collect();
            let p = b.player("flood", i);
            main.push(b.script(p, false, ev));
        }
        Scenario { warmup, main }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashSet};

    use super::*;
    use crate::fairness::send::write_event;

    #[test]
    fn scenario_labels_values_and_ids() {
        let sc = Scenario::build("r1", 30, 4, 7);
        assert_eq!(sc.warmup.len(), 30);
        assert_eq!(sc.main.len(), 30 + 5 * 4);
        let mut ids = HashSet::new();
        let mut by_label: BTreeMap<Label, usize> = BTreeMap::new();
        for s in sc.warmup.iter().chain(&sc.main) {
            assert!(s.player.len() <= 50, "{}", s.player);
            for e in &s.events {
                assert!(ids.insert(e.id.clone()), "duplicate {}", e.id);
                *by_label.entry(e.label).or_default() += 1;
                let mut out = Vec::new();
                write_event(&mut out, &e.id, &s.player, 1_700_000_000, e.body);
                liveops_domain::event::Event::from_slice(&out)
                    .unwrap_or_else(|err| panic!("{err:?}: {}", String::from_utf8_lossy(&out)));
            }
        }
        assert_eq!(by_label[&Label::Honest], 30 * HONEST_EVENTS);
        assert_eq!(by_label[&Label::Warmup(Kind::Jump)], 4 * 15);
        assert_eq!(by_label[&Label::Cheat(Kind::Jump)], 4 * 2);
        assert_eq!(by_label[&Label::Cheat(Kind::Ramp)], 4 * 20);
        assert_eq!(by_label[&Label::Cheat(Kind::Boss)], 4 * 3);
        assert_eq!(by_label[&Label::Cheat(Kind::Fresh)], 4 * 3);
        assert_eq!(by_label[&Label::Cheat(Kind::Flood)], 4 * 40);
        assert!(sc
            .main
            .iter()
            .filter(|s| !s.paced)
            .all(|s| s.player.contains("flood")));

        // The jump is ~100x the warm-up's mean; the fresh account's events ~50x typical.
        let jump = sc.main.iter().find(|s| s.player.contains("jump")).unwrap();
        let xp = |e: &PlannedEvent| match e.body {
            Body::Xp { xp, .. } => f64::from(xp),
            Body::Boss { .. } => panic!("not xp"),
        };
        let mean = jump.events[..15].iter().map(xp).sum::<f64>() / 15.0;
        let ratio = xp(&jump.events[15]) / mean;
        assert!((60.0..160.0).contains(&ratio), "{ratio}");
        let fresh = sc.main.iter().find(|s| s.player.contains("fresh")).unwrap();
        assert!(fresh.events.iter().all(|e| xp(e) >= 3500.0));
        // Seeded: the same seed gives the same values.
        let again = Scenario::build("r1", 30, 4, 7);
        assert_eq!(again.main[3].events[2].body, sc.main[3].events[2].body);
    }
}
