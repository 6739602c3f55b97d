//! Progression rules (`docs/api.md`): XP per event, levels, level-up rewards.
//!
//! The rules are plain functions of their inputs so the consumer that applies them, the rebuild
//! and the tests all agree by construction.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::{Event, EventKind};

/// XP per level: level = xp / XP_PER_LEVEL + 1.
pub const XP_PER_LEVEL: i64 = 1000;
pub const REWARD_PER_LEVEL: &str = "gold_100";
pub const REWARD_EVERY_FIFTH_LEVEL: &str = "chest_rare";

/// The XP an event grants: `deltaXp`, boss `points`, or `round(weight * 100)` for a drop.
pub fn xp_for(kind: &EventKind) -> i64 {
    match kind {
        EventKind::Progression { delta_xp, .. } => *delta_xp,
        EventKind::BossKill { points, .. } => *points,
        EventKind::DropClaimed { weight, .. } => (weight * 100.0).round() as i64,
    }
}

pub fn level_for(xp: i64) -> i64 {
    xp.max(0) / XP_PER_LEVEL + 1
}

/// Where a player stands inside their level, for a level bar: `into` of `span` XP.
pub fn level_progress(xp: i64) -> (i64, i64) {
    let level = level_for(xp);
    (xp.max(0) - (level - 1) * XP_PER_LEVEL, XP_PER_LEVEL)
}

/// A reward granted for reaching a level. `reward_id` is deterministic (`lvl5_chest_rare`), so
/// granting it twice is a no-op and a replayed event cannot mint a second copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelReward {
    pub reward_id: String,
    pub level: i64,
    pub item: &'static str,
}

/// The most levels one event is rewarded for. `deltaXp` may be as large as 2^53 (`docs/api.md`
/// sets no maximum), which is 9 * 10^12 levels: one reward row each would exhaust memory and
/// stop progression for good (the event would be replayed after every restart). The fairness
/// guard flags any event over `MAX_DELTA_XP` (10 levels at the defaults), so only such an event,
/// applied under `ANOMALY_ACTION=flag` or released by an operator, reaches this bound; it still
/// moves XP and level in full.
pub const MAX_LEVELS_REWARDED_PER_EVENT: i64 = 100;

/// The rewards for going from `old_level` to `new_level`: `gold_100` per level gained and
/// `chest_rare` for every 5th level, for the first [`MAX_LEVELS_REWARDED_PER_EVENT`] levels.
pub fn rewards_between(old_level: i64, new_level: i64) -> Vec<LevelReward> {
    let mut out = Vec::new();
    let last = new_level.min(old_level.saturating_add(MAX_LEVELS_REWARDED_PER_EVENT));
    for level in (old_level + 1)..=last {
        out.push(LevelReward {
            reward_id: format!("lvl{level}_{REWARD_PER_LEVEL}"),
            level,
            item: REWARD_PER_LEVEL,
        });
        if level % 5 == 0 {
            out.push(LevelReward {
                reward_id: format!("lvl{level}_{REWARD_EVERY_FIFTH_LEVEL}"),
                level,
                item: REWARD_EVERY_FIFTH_LEVEL,
            });
        }
    }
    out
}

/// How many recent drops a player's progress keeps; older ones stay in the event log.
pub const MAX_RECENT_DROPS: usize = 100;

/// A drop the player claimed, as shown in their progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Drop {
    pub drop_id: String,
    pub weight: f64,
    pub source: String,
    pub event_id: String,
}

/// A player's progression state: the fold of every event applied to them, in log order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub xp: i64,
    pub level: i64,
    pub boss_kills: BTreeMap<String, u64>,
    /// The most recent drops, oldest first, at most [`MAX_RECENT_DROPS`].
    pub drops: Vec<Drop>,
}

impl Progress {
    pub fn new() -> Self {
        Self {
            level: 1,
            ..Self::default()
        }
    }

    /// Applies one event and returns the rewards it earned (empty unless a level was gained).
    pub fn apply(&mut self, event: &Event) -> Vec<LevelReward> {
        let (xp, rewards) = gain(self.xp, &event.kind);
        self.xp = xp;
        self.level = level_for(xp);
        match &event.kind {
            EventKind::Progression { .. } => {}
            EventKind::BossKill { boss_id, .. } => {
                *self.boss_kills.entry(boss_id.clone()).or_default() += 1;
            }
            EventKind::DropClaimed {
                drop_id,
                weight,
                source,
            } => {
                if self.drops.len() >= MAX_RECENT_DROPS {
                    self.drops.remove(0);
                }
                self.drops.push(Drop {
                    drop_id: drop_id.clone(),
                    weight: *weight,
                    source: source.clone(),
                    event_id: event.event_id.to_string(),
                });
            }
        }
        rewards
    }
}

/// The XP after an event of `kind` and the rewards that event earned, from the XP before it:
/// the part of [`Progress::apply`] that a store adding XP in SQL needs to attribute rewards.
pub fn gain(xp_before: i64, kind: &EventKind) -> (i64, Vec<LevelReward>) {
    let xp = xp_before.saturating_add(xp_for(kind));
    (xp, rewards_between(level_for(xp_before), level_for(xp)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_folds_events_and_grants_level_rewards() {
        let ev = |kind| Event {
            event_id: crate::EventId::generate(),
            player_id: crate::PlayerId::parse("p_1").unwrap(),
            ts: 0,
            kind,
            payload: Default::default(),
        };
        let mut p = Progress::new();
        let r = p.apply(&ev(EventKind::Progression {
            delta_xp: 999,
            activity: "q".into(),
        }));
        assert!(r.is_empty());
        let r = p.apply(&ev(EventKind::BossKill {
            boss_id: "dragon".into(),
            tier: 2,
            points: 4001,
        }));
        assert_eq!(p.xp, 5000);
        assert_eq!(p.level, 6);
        assert_eq!(r.len(), 6, "levels 2..=6 gold plus the level 5 chest");
        assert_eq!(p.boss_kills["dragon"], 1);
        p.apply(&ev(EventKind::DropClaimed {
            drop_id: "d".into(),
            weight: 0.5,
            source: "s".into(),
        }));
        assert_eq!(p.xp, 5050);
        assert_eq!(p.drops.len(), 1);
    }

    #[test]
    fn xp_per_event_type() {
        let p = EventKind::Progression {
            delta_xp: 150,
            activity: "q".into(),
        };
        assert_eq!(xp_for(&p), 150);
        let b = EventKind::BossKill {
            boss_id: "b".into(),
            tier: 1,
            points: 700,
        };
        assert_eq!(xp_for(&b), 700);
        let d = EventKind::DropClaimed {
            drop_id: "d".into(),
            weight: 0.255,
            source: "s".into(),
        };
        assert_eq!(xp_for(&d), 26);
        let d = EventKind::DropClaimed {
            drop_id: "d".into(),
            weight: 1.0,
            source: "s".into(),
        };
        assert_eq!(xp_for(&d), 100);
    }

    #[test]
    fn levels_are_thousands_plus_one() {
        assert_eq!(level_for(0), 1);
        assert_eq!(level_for(999), 1);
        assert_eq!(level_for(1000), 2);
        assert_eq!(level_for(4999), 5);
        assert_eq!(level_progress(2150), (150, 1000));
    }

    #[test]
    fn rewards_gold_each_level_and_chest_every_fifth() {
        let r = rewards_between(1, 6);
        let items: Vec<_> = r.iter().map(|r| (r.level, r.item)).collect();
        assert_eq!(
            items,
            vec![
                (2, "gold_100"),
                (3, "gold_100"),
                (4, "gold_100"),
                (5, "gold_100"),
                (5, "chest_rare"),
                (6, "gold_100")
            ]
        );
        assert!(rewards_between(3, 3).is_empty());
    }

    #[test]
    fn a_huge_jump_is_rewarded_for_its_first_hundred_levels_and_keeps_its_xp() {
        // A million levels: without the bound, a million rewards (fails here, quickly).
        assert_eq!(
            rewards_between(1, 1_000_001).len() as i64,
            MAX_LEVELS_REWARDED_PER_EVENT + MAX_LEVELS_REWARDED_PER_EVENT / 5
        );
        let mut p = Progress::new();
        let rewards = p.apply(&Event {
            event_id: crate::EventId::generate(),
            player_id: crate::PlayerId::parse("p_1").unwrap(),
            ts: 0,
            kind: EventKind::Progression {
                delta_xp: crate::event::MAX_SAFE_INTEGER,
                activity: "exploit".into(),
            },
            payload: Default::default(),
        });
        assert_eq!(p.xp, crate::event::MAX_SAFE_INTEGER);
        assert_eq!(p.level, level_for(crate::event::MAX_SAFE_INTEGER));
        let gold = rewards
            .iter()
            .filter(|r| r.item == REWARD_PER_LEVEL)
            .count();
        assert_eq!(gold as i64, MAX_LEVELS_REWARDED_PER_EVENT);
        assert_eq!(rewards.last().map(|r| r.level), Some(101));
        // Below the bound nothing changes: levels 2..=11 for 10,000 XP.
        assert_eq!(rewards_between(1, 11).len(), 10 + 2);
    }
}
