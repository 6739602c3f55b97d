//! How the boards' values travel: a period as its live-set member, a stored score (`-xp`) as
//! XP, a ZRANGE WITHSCORES answer as entries.

use chrono::{TimeZone, Utc};
use liveops_domain::window::{Period, Window};
use liveops_domain::PlayerId;

use crate::error::HotStateError;
use crate::leaderboards::Entry;

/// The live-set member naming a period: everything needed to rebuild the `Period`.
pub(super) fn member(p: &Period) -> String {
    format!(
        "{}|{}|{}|{}",
        p.window.as_str(),
        p.start.timestamp_millis(),
        p.end.timestamp_millis(),
        p.id
    )
}

pub(super) fn parse_member(m: &str) -> Option<Period> {
    let mut parts = m.splitn(4, '|');
    let window = Window::parse(parts.next()?)?;
    let start = Utc
        .timestamp_millis_opt(parts.next()?.parse().ok()?)
        .single()?;
    let end = Utc
        .timestamp_millis_opt(parts.next()?.parse().ok()?)
        .single()?;
    let id = parts.next()?.to_string();
    Some(Period {
        window,
        id,
        start,
        end,
    })
}

/// A stored score (`-xp`) back to XP. Redis prints integral doubles without a fraction.
pub(super) fn xp_of(score: &str) -> Result<i64, HotStateError> {
    if let Ok(n) = score.parse::<i64>() {
        return Ok(n.saturating_neg());
    }
    match score.parse::<f64>() {
        Ok(f) if f.is_finite() && f.fract() == 0.0 => Ok(-(f as i64)),
        _ => Err(HotStateError::Corrupt(format!(
            "leaderboard score {score:?} is not an integer"
        ))),
    }
}

fn player_of(name: String) -> Result<PlayerId, HotStateError> {
    PlayerId::parse(name).map_err(|e| HotStateError::Corrupt(format!("board member: {e}")))
}

/// Entries from a flat ZRANGE WITHSCORES answer whose first element is at 0-based `first`.
pub(super) fn entries(
    first: u64,
    rows: Vec<(String, String)>,
) -> Result<Vec<Entry>, HotStateError> {
    rows.into_iter()
        .zip(first..)
        .map(|((name, score), pos)| {
            Ok(Entry {
                rank: pos + 1,
                player_id: player_of(name)?,
                score: xp_of(&score)?,
            })
        })
        .collect()
}

pub(super) fn corrupt(what: &str, e: impl std::fmt::Display) -> HotStateError {
    HotStateError::Corrupt(format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_round_trip_even_with_bars_in_the_period_id() {
        let p = Period {
            window: Window::Seasonal,
            id: "s|1".into(),
            start: Utc.timestamp_millis_opt(1_000).single().expect("valid"),
            end: Utc.timestamp_millis_opt(2_000).single().expect("valid"),
        };
        assert_eq!(parse_member(&member(&p)), Some(p));
        assert_eq!(parse_member("hourly|1|2|x"), None);
        assert_eq!(parse_member("daily|x|2|x"), None);
    }

    #[test]
    fn scores_are_negated_exact_integers() {
        assert_eq!(xp_of("-150").ok(), Some(150));
        assert_eq!(xp_of("0").ok(), Some(0));
        assert_eq!(xp_of("-0").ok(), Some(0));
        assert_eq!(xp_of("25").ok(), Some(-25));
        assert_eq!(xp_of("-1e+15").ok(), Some(1_000_000_000_000_000));
        assert!(xp_of("1.5").is_err());
        assert!(xp_of("inf").is_err());
    }
}
