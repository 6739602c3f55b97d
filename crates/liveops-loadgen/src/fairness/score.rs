//! Scoring the fairness run: what the gateway answered to each event, the table rows per label
//! (flagged or refused counts as caught), and the report as a table or JSON.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{json, Value};

use super::scenario::{Kind, Label, PlannedEvent};
use super::send::SEND_DEADLINE;
use super::Options;
use crate::options::Plan;
use crate::stats::error_code;

/// What the gateway answered to one event.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    Accepted,
    /// 403 `player_blocked`.
    Blocked,
    /// 429 `player_flooding`.
    Flooding,
    /// Any other answer: status and error code.
    Error(String),
    /// No answer (connection or timeout).
    Transport,
    /// Not sent before the deadline.
    Unsent,
}

impl Outcome {
    pub fn classify(status: u16, body: &[u8]) -> Outcome {
        if (200..300).contains(&status) {
            return Outcome::Accepted;
        }
        let code = error_code(body);
        match (status, code.as_deref()) {
            (403, Some("player_blocked")) => Outcome::Blocked,
            (429, Some("player_flooding")) => Outcome::Flooding,
            (s, c) => Outcome::Error(format!("{s} {}", c.unwrap_or("-"))),
        }
    }

    fn refused(&self) -> bool {
        matches!(self, Outcome::Blocked | Outcome::Flooding)
    }
}

/// One line of the table: the events of one label.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    pub label: String,
    pub players: usize,
    /// Events attempted (answered or not; not counting unsent).
    pub sent: u64,
    pub flagged: u64,
    pub blocked: u64,
    pub flooding: u64,
    /// Other answers and transport failures.
    pub errors: u64,
    pub unsent: u64,
    /// Flagged or refused.
    pub caught: u64,
    /// Players with at least one caught event of this label.
    pub players_caught: usize,
    /// Flags by rule.
    pub rules: BTreeMap<String, u64>,
}

impl Row {
    pub fn rate(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            self.caught as f64 / self.sent as f64
        }
    }
}

/// Scores every event: `flags` maps a flagged event id to its rule.
pub fn score(
    events: &[(&str, &PlannedEvent, Outcome)],
    flags: &HashMap<String, String>,
) -> Vec<Row> {
    let mut rows: BTreeMap<Label, (Row, HashSet<&str>, HashSet<&str>)> = BTreeMap::new();
    for (player, ev, outcome) in events {
        let (row, players, caught_players) = rows.entry(ev.label).or_default();
        players.insert(player);
        if *outcome == Outcome::Unsent {
            row.unsent += 1;
            continue;
        }
        row.sent += 1;
        let rule = flags.get(&ev.id);
        match outcome {
            Outcome::Blocked => row.blocked += 1,
            Outcome::Flooding => row.flooding += 1,
            Outcome::Error(_) | Outcome::Transport => row.errors += 1,
            _ => {}
        }
        if let Some(rule) = rule {
            row.flagged += 1;
            *row.rules.entry(rule.clone()).or_default() += 1;
        }
        if rule.is_some() || outcome.refused() {
            row.caught += 1;
            caught_players.insert(player);
        }
    }
    let mut rows: Vec<(Label, _)> = rows.into_iter().collect();
    // Honest first, then per kind its warm-up and its cheat.
    rows.sort_by_key(|(label, _)| match label {
        Label::Honest => (0, 0),
        Label::Warmup(k) => (1 + *k as u8, 0),
        Label::Cheat(k) => (1 + *k as u8, 1),
    });
    rows.into_iter()
        .map(|(label, (mut row, players, caught))| {
            row.label = label.name();
            row.players = players.len();
            row.players_caught = caught.len();
            row
        })
        .collect()
}

pub(super) fn row_json(r: &Row) -> Value {
    json!({
        "label": r.label,
        "players": r.players,
        "sent": r.sent,
        "flagged": r.flagged,
        "refusedBlocked": r.blocked,
        "refusedFlooding": r.flooding,
        "errors": r.errors,
        "unsent": r.unsent,
        "caught": r.caught,
        "rate": r.rate(),
        "playersCaught": r.players_caught,
        "flagsByRule": r.rules,
    })
}

#[allow(clippy::too_many_arguments)]
pub(super) fn human(
    plan: &Plan,
    opts: &Options,
    run_id: &str,
    rows: &[Row],
    send: Duration,
    waited: Duration,
    ours: usize,
    errors: &BTreeMap<String, u64>,
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "fairness scenario against {}: {} honest players, {} x {} cheaters, seed {}, run {run_id}",
        plan.url,
        opts.honest,
        Kind::ALL.len(),
        opts.cheaters,
        opts.seed
    );
    let _ = writeln!(
        s,
        "sent in {:.1}s, flags settled after {:.1}s, {ours} flags on this run's events\n",
        send.as_secs_f64(),
        waited.as_secs_f64()
    );
    let _ = writeln!(
        s,
        "{:<15} {:>7} {:>7} {:>7} {:>7} {:>7} {:>6} {:>7} {:>7}  {:>9}",
        "events",
        "players",
        "sent",
        "flagged",
        "403blk",
        "429fld",
        "errors",
        "caught",
        "rate",
        "plrs hit"
    );
    for r in rows {
        let _ = writeln!(
            s,
            "{:<15} {:>7} {:>7} {:>7} {:>7} {:>7} {:>6} {:>7} {:>6.1}%  {:>9}",
            r.label,
            r.players,
            r.sent,
            r.flagged,
            r.blocked,
            r.flooding,
            r.errors,
            r.caught,
            100.0 * r.rate(),
            r.players_caught
        );
    }
    let _ = writeln!(
        s,
        "\ncaught = flagged, or refused at the gateway (403 player_blocked, 429 player_flooding);"
    );
    let _ = writeln!(
        s,
        "for honest and warm-up rows that is the false-positive rate. plrs hit = players with one or more caught events."
    );
    for k in Kind::ALL {
        let _ = writeln!(s, "  {:<6} {}", k.as_str(), k.describe());
    }
    let unsent: u64 = rows.iter().map(|r| r.unsent).sum();
    if unsent > 0 {
        let _ = writeln!(s, "{unsent} events not sent within {SEND_DEADLINE:?}");
    }
    if !errors.is_empty() {
        let list: Vec<String> = errors.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        let _ = writeln!(s, "other answers: {}", list.join(", "));
    }
    let rules: BTreeMap<&str, u64> =
        rows.iter()
            .flat_map(|r| r.rules.iter())
            .fold(BTreeMap::new(), |mut m, (k, v)| {
                *m.entry(k.as_str()).or_default() += v;
                m
            });
    if !rules.is_empty() {
        let list: Vec<String> = rules.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        let _ = writeln!(s, "flags by rule: {}", list.join(", "));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fairness::scenario::Body;

    #[test]
    fn scoring_counts_flags_and_refusals_once() {
        let ev = |id: &str, label| PlannedEvent {
            id: id.into(),
            label,
            body: Body::Xp {
                xp: 1,
                activity: "exploration",
            },
        };
        let (h1, h2, c1, c2, c3, c4) = (
            ev("h1", Label::Honest),
            ev("h2", Label::Honest),
            ev("c1", Label::Cheat(Kind::Jump)),
            ev("c2", Label::Cheat(Kind::Jump)),
            ev("c3", Label::Cheat(Kind::Jump)),
            ev("c4", Label::Cheat(Kind::Jump)),
        );
        let events = vec![
            ("p1", &h1, Outcome::Accepted),
            ("p2", &h2, Outcome::Accepted),
            ("j1", &c1, Outcome::Accepted),
            ("j1", &c2, Outcome::Blocked),
            ("j2", &c3, Outcome::Error("400 invalid".into())),
            ("j2", &c4, Outcome::Unsent),
        ];
        let flags: HashMap<String, String> = [
            ("h2".to_string(), "population".to_string()),
            ("c1".to_string(), "zscore".to_string()),
            ("someone_else".to_string(), "hard_limit".to_string()),
        ]
        .into();
        let rows = score(&events, &flags);
        assert_eq!(rows.len(), 2);
        let honest = &rows[0];
        assert_eq!(honest.label, "honest");
        assert_eq!((honest.sent, honest.flagged, honest.caught), (2, 1, 1));
        assert_eq!((honest.players, honest.players_caught), (2, 1));
        let jump = &rows[1];
        assert_eq!(jump.label, "jump cheat");
        assert_eq!(
            (
                jump.sent,
                jump.flagged,
                jump.blocked,
                jump.errors,
                jump.unsent
            ),
            (3, 1, 1, 1, 1)
        );
        assert_eq!((jump.caught, jump.players_caught), (2, 1));
        assert!((jump.rate() - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(jump.rules.get("zscore"), Some(&1));
    }

    #[test]
    fn answers_classify() {
        let body = |code: &str| format!(r#"{{"error":{{"code":"{code}","message":"m"}}}}"#);
        assert_eq!(Outcome::classify(202, b"{}"), Outcome::Accepted);
        assert_eq!(
            Outcome::classify(403, body("player_blocked").as_bytes()),
            Outcome::Blocked
        );
        assert_eq!(
            Outcome::classify(429, body("player_flooding").as_bytes()),
            Outcome::Flooding
        );
        assert_eq!(
            Outcome::classify(429, body("rate_limited").as_bytes()),
            Outcome::Error("429 rate_limited".into())
        );
    }
}
