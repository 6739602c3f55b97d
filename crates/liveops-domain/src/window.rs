//! Leaderboard windows and their periods in a time zone (`.env.example` and `docs/api.md`).
//!
//! A period is a half-open UTC interval `[start, end)` with a stable id. Within one window the
//! periods partition time: every instant belongs to exactly one period and a period's `end` is the
//! next one's `start`, so a board can be picked by comparing instants and a rollover never loses
//! or double-counts an event.
//!
//! Boundaries are local midnights in `LB_TIMEZONE`. A local day can therefore last 23 or 25 hours
//! around daylight-saving changes. Where a zone skips midnight (the clock jumps from 23:59:59 to
//! 01:00), the day starts at the first instant that exists on that date; where midnight happens
//! twice, the day starts at the first of them. Everything here is a pure function of the
//! [`Calendar`] and the instant; the caller injects the time (see [`crate::clock`]).

use std::fmt;

use chrono::{
    DateTime, Datelike, LocalResult, Months, NaiveDate, NaiveTime, TimeZone, Utc, Weekday,
};
use serde::{Deserialize, Serialize};

/// A leaderboard window (`LB_WINDOWS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Window {
    Daily,
    Weekly,
    Seasonal,
}

impl Window {
    pub const ALL: [Window; 3] = [Window::Daily, Window::Weekly, Window::Seasonal];

    pub fn as_str(self) -> &'static str {
        match self {
            Window::Daily => "daily",
            Window::Weekly => "weekly",
            Window::Seasonal => "seasonal",
        }
    }

    /// The exact lowercase name; anything else is `None` so the caller can name the bad value.
    pub fn parse(s: &str) -> Option<Window> {
        Window::ALL.into_iter().find(|w| w.as_str() == s)
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[start, end)` in UTC, with its id: "2026-11-22" (daily, local date), "2026-W47" (ISO week,
/// Monday start), "2026-Q4" (seasonal, default calendar quarter) or the configured SEASON_ID.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Period {
    pub window: Window,
    pub id: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Period {
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.start <= at && at < self.end
    }
}

/// How seasonal periods are cut (`SEASON_ID`, `SEASON_START`, `SEASON_END`).
#[derive(Debug, Clone)]
pub enum SeasonRule {
    /// Local-calendar quarters, ids like `2026-Q4`.
    CalendarQuarter,
    /// One configured season `[start, end)`; outside it, calendar quarters (see
    /// [`Calendar::period_at`]). Build it with [`SeasonRule::fixed`] to have it validated; a
    /// `Fixed` whose `start` is not before its `end` is ignored.
    Fixed {
        id: String,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
}

/// Why a configured season was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeasonError {
    #[error("season id must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -, got {0:?}")]
    BadId(String),
    #[error("season id {0:?} has the form of a calendar quarter id; pick another so archived periods cannot collide")]
    QuarterLikeId(String),
    #[error("season start {start} must be before season end {end}")]
    EmptyRange {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
}

impl SeasonRule {
    pub const MAX_ID_LEN: usize = 64;

    /// A validated fixed season. The id becomes a URL parameter and an archive file name, hence
    /// the restricted alphabet; a quarter-shaped id is refused because the fallback quarters
    /// outside the season would reuse it.
    pub fn fixed(
        id: impl Into<String>,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<SeasonRule, SeasonError> {
        let id = id.into();
        let alphabet_ok = id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if id.is_empty() || id.len() > Self::MAX_ID_LEN || !alphabet_ok {
            return Err(SeasonError::BadId(id));
        }
        if parse_quarter_id(&id).is_some() {
            return Err(SeasonError::QuarterLikeId(id));
        }
        if start >= end {
            return Err(SeasonError::EmptyRange { start, end });
        }
        Ok(SeasonRule::Fixed { id, start, end })
    }
}

/// The time zone and season configuration every period is computed from.
#[derive(Debug, Clone)]
pub struct Calendar {
    pub tz: chrono_tz::Tz,
    pub season: SeasonRule,
}

impl Default for Calendar {
    /// UTC with calendar-quarter seasons: the documented defaults.
    fn default() -> Self {
        Self::new(chrono_tz::UTC, SeasonRule::CalendarQuarter)
    }
}

/// Calendar units whose periods are cut at local midnights. A unit instance is named by its first
/// local date (the day itself, the ISO week's Monday, the quarter's first day).
#[derive(Debug, Clone, Copy)]
enum Unit {
    Day,
    Week,
    Quarter,
}

impl Unit {
    fn first_day(self, date: NaiveDate) -> NaiveDate {
        match self {
            Unit::Day => date,
            Unit::Week => {
                date - chrono::Days::new(u64::from(date.weekday().num_days_from_monday()))
            }
            Unit::Quarter => {
                let month = (date.month0() / 3) * 3 + 1;
                // Day 1 of a month between 1 and 10 always exists.
                NaiveDate::from_ymd_opt(date.year(), month, 1).unwrap_or(date)
            }
        }
    }

    /// The first day of the next (or previous) instance. Saturates at chrono's date range, which
    /// no real timestamp reaches.
    fn step(self, first: NaiveDate, forward: bool) -> NaiveDate {
        let stepped = match (self, forward) {
            (Unit::Day, true) => first.checked_add_days(chrono::Days::new(1)),
            (Unit::Day, false) => first.checked_sub_days(chrono::Days::new(1)),
            (Unit::Week, true) => first.checked_add_days(chrono::Days::new(7)),
            (Unit::Week, false) => first.checked_sub_days(chrono::Days::new(7)),
            (Unit::Quarter, true) => first.checked_add_months(Months::new(3)),
            (Unit::Quarter, false) => first.checked_sub_months(Months::new(3)),
        };
        stepped.unwrap_or(if forward {
            NaiveDate::MAX
        } else {
            NaiveDate::MIN
        })
    }

    fn id(self, first: NaiveDate) -> String {
        match self {
            Unit::Day => first.format("%Y-%m-%d").to_string(),
            Unit::Week => {
                let week = first.iso_week();
                format!("{}-W{:02}", week.year(), week.week())
            }
            Unit::Quarter => quarter_id(first),
        }
    }

    /// The first day of the instance named `id`, or `None` if `id` is not this unit's canonical
    /// spelling (so `2026-1-5` or `2026-W7` are refused instead of silently aliasing).
    fn parse_id(self, id: &str) -> Option<NaiveDate> {
        let first = match self {
            Unit::Day => NaiveDate::parse_from_str(id, "%Y-%m-%d").ok()?,
            Unit::Week => {
                let (year, week) = id.split_once("-W")?;
                NaiveDate::from_isoywd_opt(year.parse().ok()?, week.parse().ok()?, Weekday::Mon)?
            }
            Unit::Quarter => parse_quarter_id(id)?,
        };
        (self.id(first) == id).then_some(first)
    }
}

fn quarter_id(first: NaiveDate) -> String {
    format!("{}-Q{}", first.year(), first.month0() / 3 + 1)
}

/// First day of the quarter named `YYYY-Qn` (canonical spelling only).
fn parse_quarter_id(id: &str) -> Option<NaiveDate> {
    let (year, q) = id.split_once("-Q")?;
    let q: u32 = q.parse().ok()?;
    if !(1..=4).contains(&q) {
        return None;
    }
    let first = NaiveDate::from_ymd_opt(year.parse().ok()?, (q - 1) * 3 + 1, 1)?;
    (quarter_id(first) == id).then_some(first)
}

/// Suffix of the part of a quarter that follows a fixed season which also began in that quarter:
/// that quarter has two fallback parts and archived ids must stay unique.
const AFTER_SEASON_SUFFIX: &str = "-2";

impl Calendar {
    pub fn new(tz: chrono_tz::Tz, season: SeasonRule) -> Self {
        Self { tz, season }
    }

    /// The period of `window` that contains `at` (`start <= at < end`).
    ///
    /// With a fixed season, instants inside `[SEASON_START, SEASON_END)` belong to it and
    /// instants outside fall back to calendar quarters cut short at the season's edges. Falling
    /// back rather than refusing is deliberate: a season that has ended (or was configured
    /// ahead of time, or with a typo) must not stop ingest or make events vanish from the
    /// seasonal board; operators see quarter ids and fix the configuration. Cutting the quarters
    /// at the season's edges keeps the periods a partition of time, so `end` stays the real
    /// next reset.
    pub fn period_at(&self, window: Window, at: DateTime<Utc>) -> Period {
        match window {
            Window::Daily => self.unit_period(window, Unit::Day, at),
            Window::Weekly => self.unit_period(window, Unit::Week, at),
            Window::Seasonal => match self.fixed_season() {
                None => self.unit_period(window, Unit::Quarter, at),
                Some((id, s_start, s_end)) => {
                    if s_start <= at && at < s_end {
                        return Period {
                            window,
                            id: id.to_owned(),
                            start: s_start,
                            end: s_end,
                        };
                    }
                    let quarter = self.unit_period(window, Unit::Quarter, at);
                    let (before, after) = clip_quarter(&quarter, s_start, s_end);
                    // `at` lies in the quarter but outside the season, so it is in exactly one part.
                    match (before, after) {
                        (Some(p), _) if p.contains(at) => p,
                        (_, Some(p)) if p.contains(at) => p,
                        _ => quarter,
                    }
                }
            },
        }
    }

    /// The period with this id, for history lookups and validation of `?period=`; None if the
    /// id is malformed for that window, or names a period no instant belongs to (a date a zone
    /// skipped entirely, a quarter wholly covered by the fixed season).
    pub fn period_by_id(&self, window: Window, id: &str) -> Option<Period> {
        let unit = match window {
            Window::Daily => Unit::Day,
            Window::Weekly => Unit::Week,
            Window::Seasonal => Unit::Quarter,
        };
        let fixed = self.fixed_season();
        if let Some((season_id, start, end)) = fixed {
            if window == Window::Seasonal && id == season_id {
                return Some(Period {
                    window,
                    id: id.to_owned(),
                    start,
                    end,
                });
            }
        }
        let (base, after_suffix) = match id.strip_suffix(AFTER_SEASON_SUFFIX) {
            Some(base) if window == Window::Seasonal && fixed.is_some() => (base, true),
            _ => (id, false),
        };
        let period = self.unit_bounds(window, unit, unit.parse_id(base)?);
        let period = match (window, fixed) {
            (Window::Seasonal, Some((_, s_start, s_end))) => {
                match (clip_quarter(&period, s_start, s_end), after_suffix) {
                    ((Some(before), _), false) => before,
                    ((None, Some(after)), false) => after,
                    ((Some(_), Some(after)), true) => after,
                    _ => return None,
                }
            }
            _ => period,
        };
        (period.start < period.end).then_some(period)
    }

    /// The configured season if it is usable; an empty or inverted range is ignored so a bad
    /// `Fixed` built by hand degrades to plain quarters instead of swallowing every event.
    fn fixed_season(&self) -> Option<(&str, DateTime<Utc>, DateTime<Utc>)> {
        match &self.season {
            SeasonRule::Fixed { id, start, end } if start < end => Some((id, *start, *end)),
            _ => None,
        }
    }

    fn unit_period(&self, window: Window, unit: Unit, at: DateTime<Utc>) -> Period {
        let mut first = unit.first_day(at.with_timezone(&self.tz).date_naive());
        let mut period = self.unit_bounds(window, unit, first);
        // The local date of `at` and the chosen midnights can disagree for an instant in a
        // repeated hour next to midnight (the earliest midnight was picked), so move to the
        // neighbouring unit; one step is always enough since units last at least 23 hours.
        if at < period.start {
            first = unit.step(first, false);
            period = self.unit_bounds(window, unit, first);
        } else if at >= period.end {
            first = unit.step(first, true);
            period = self.unit_bounds(window, unit, first);
        }
        period
    }

    fn unit_bounds(&self, window: Window, unit: Unit, first: NaiveDate) -> Period {
        Period {
            window,
            id: unit.id(first),
            start: self.local_midnight(first),
            end: self.local_midnight(unit.step(first, true)),
        }
    }

    /// The first instant of `date` in the calendar's zone: the earliest midnight if it happens
    /// twice, the first existing instant if the zone skips it.
    fn local_midnight(&self, date: NaiveDate) -> DateTime<Utc> {
        let naive = date.and_time(NaiveTime::MIN);
        match self.tz.from_local_datetime(&naive) {
            LocalResult::Single(t) => t.with_timezone(&Utc),
            LocalResult::Ambiguous(a, b) => a.min(b).with_timezone(&Utc),
            LocalResult::None => {
                // Midnight falls in a gap: find the instant the clock jumps over it. Local time
                // is increasing across a forward gap, and no zone's offset exceeds a day, so the
                // answer lies in `naive ± 1 day` read as UTC; search it to the second.
                let local = |secs: i64| {
                    DateTime::from_timestamp(secs, 0)
                        .map(|t| t.with_timezone(&self.tz).naive_local())
                };
                let center = naive.and_utc().timestamp();
                let (mut lo, mut hi) = (center - 86_400, center + 86_400);
                while hi - lo > 1 {
                    let mid = lo + (hi - lo) / 2;
                    match local(mid) {
                        Some(t) if t >= naive => hi = mid,
                        Some(_) => lo = mid,
                        // Outside chrono's range: no real timestamp gets here.
                        None => return DateTime::<Utc>::MAX_UTC,
                    }
                }
                DateTime::from_timestamp(hi, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
            }
        }
    }
}

/// The parts of a calendar quarter outside a fixed season `[s_start, s_end)`: before it and after
/// it, each `None` when empty. The after part is renamed when both exist.
fn clip_quarter(
    quarter: &Period,
    s_start: DateTime<Utc>,
    s_end: DateTime<Utc>,
) -> (Option<Period>, Option<Period>) {
    let before = (quarter.start < s_start).then(|| Period {
        end: quarter.end.min(s_start),
        ..quarter.clone()
    });
    let after = (s_end < quarter.end).then(|| Period {
        start: quarter.start.max(s_end),
        id: if before.is_some() {
            format!("{}{AFTER_SEASON_SUFFIX}", quarter.id)
        } else {
            quarter.id.clone()
        },
        ..quarter.clone()
    });
    (before, after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use chrono_tz::Tz;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test timestamps are valid rfc 3339")
            .with_timezone(&Utc)
    }

    fn cal(tz: Tz) -> Calendar {
        Calendar::new(tz, SeasonRule::CalendarQuarter)
    }

    #[test]
    fn window_names_round_trip() {
        for w in Window::ALL {
            assert_eq!(Window::parse(w.as_str()), Some(w));
            assert_eq!(w.to_string(), w.as_str());
        }
        assert_eq!(Window::parse("Daily"), None);
        assert_eq!(Window::parse("monthly"), None);
        assert_eq!(
            serde_json::to_string(&Window::Weekly).ok().as_deref(),
            Some("\"weekly\"")
        );
    }

    #[test]
    fn ids_for_sample_dates_in_utc() {
        let c = Calendar::default();
        let at = utc("2026-11-22T13:45:00Z");
        let daily = c.period_at(Window::Daily, at);
        assert_eq!(daily.id, "2026-11-22");
        assert_eq!(
            (daily.start, daily.end),
            (utc("2026-11-22T00:00:00Z"), utc("2026-11-23T00:00:00Z"))
        );
        let weekly = c.period_at(Window::Weekly, at);
        assert_eq!(weekly.id, "2026-W47");
        assert_eq!(
            (weekly.start, weekly.end),
            (utc("2026-11-16T00:00:00Z"), utc("2026-11-23T00:00:00Z"))
        );
        let seasonal = c.period_at(Window::Seasonal, at);
        assert_eq!(seasonal.id, "2026-Q4");
        assert_eq!(
            (seasonal.start, seasonal.end),
            (utc("2026-10-01T00:00:00Z"), utc("2027-01-01T00:00:00Z"))
        );
        assert_eq!(
            c.period_at(Window::Seasonal, utc("2026-03-31T23:59:59Z"))
                .id,
            "2026-Q1"
        );
        assert_eq!(
            c.period_at(Window::Seasonal, utc("2026-04-01T00:00:00Z"))
                .id,
            "2026-Q2"
        );
        assert_eq!(
            c.period_at(Window::Weekly, utc("2026-01-05T00:00:00Z")).id,
            "2026-W02"
        );
    }

    #[test]
    fn week_spanning_a_year_boundary_uses_the_iso_year() {
        let c = Calendar::default();
        let w = c.period_at(Window::Weekly, utc("2026-12-31T12:00:00Z"));
        assert_eq!(w.id, "2026-W53");
        assert_eq!(
            (w.start, w.end),
            (utc("2026-12-28T00:00:00Z"), utc("2027-01-04T00:00:00Z"))
        );
        assert_eq!(
            c.period_at(Window::Weekly, utc("2027-01-03T23:59:59Z")).id,
            "2026-W53"
        );
        assert_eq!(
            c.period_at(Window::Weekly, utc("2027-01-04T00:00:00Z")).id,
            "2027-W01"
        );
        assert_eq!(
            c.period_at(Window::Weekly, utc("2024-12-30T00:00:00Z")).id,
            "2025-W01"
        );
    }

    #[test]
    fn new_york_dst_days_last_23_and_25_hours() {
        let c = cal(chrono_tz::America::New_York);
        let spring = c.period_at(Window::Daily, utc("2026-03-08T12:00:00Z"));
        assert_eq!(spring.id, "2026-03-08");
        assert_eq!(
            (spring.start, spring.end),
            (utc("2026-03-08T05:00:00Z"), utc("2026-03-09T04:00:00Z"))
        );
        assert_eq!(spring.end - spring.start, Duration::hours(23));
        let autumn = c.period_at(Window::Daily, utc("2026-11-01T12:00:00Z"));
        assert_eq!(autumn.id, "2026-11-01");
        assert_eq!(
            (autumn.start, autumn.end),
            (utc("2026-11-01T04:00:00Z"), utc("2026-11-02T05:00:00Z"))
        );
        assert_eq!(autumn.end - autumn.start, Duration::hours(25));
        // The week holding the spring change is an hour short.
        let week = c.period_at(Window::Weekly, utc("2026-03-08T12:00:00Z"));
        assert_eq!(week.id, "2026-W10");
        assert_eq!(week.end - week.start, Duration::hours(7 * 24 - 1));
    }

    #[test]
    fn skipped_midnight_starts_the_day_at_the_first_existing_instant() {
        // Sao Paulo, 2018-11-04: clocks jumped from 00:00 to 01:00 (-03 to -02).
        let c = cal(chrono_tz::America::Sao_Paulo);
        let day = c
            .period_by_id(Window::Daily, "2018-11-04")
            .expect("a real day");
        assert_eq!(day.start, utc("2018-11-04T03:00:00Z"));
        assert_eq!(day.end - day.start, Duration::hours(23));
        assert_eq!(
            c.period_at(Window::Daily, utc("2018-11-04T02:59:59Z")).id,
            "2018-11-03"
        );
        assert_eq!(
            c.period_at(Window::Daily, utc("2018-11-04T03:00:00Z")).id,
            "2018-11-04"
        );
    }

    #[test]
    fn repeated_midnight_starts_the_day_at_the_first_one() {
        // Havana, 2019-11-03: at 01:00 (-04) clocks went back to 00:00 (-05), so midnight
        // happened at 04:00Z and again at 05:00Z.
        let c = cal(chrono_tz::America::Havana);
        let day = c
            .period_by_id(Window::Daily, "2019-11-03")
            .expect("a real day");
        assert_eq!(
            (day.start, day.end),
            (utc("2019-11-03T04:00:00Z"), utc("2019-11-04T05:00:00Z"))
        );
        assert_eq!(
            c.period_at(Window::Daily, utc("2019-11-03T03:59:59Z")).id,
            "2019-11-02"
        );
        assert_eq!(c.period_at(Window::Daily, utc("2019-11-03T04:30:00Z")), day);
    }

    #[test]
    fn backward_change_at_midnight_lengthens_the_previous_day() {
        // Sao Paulo, 2019-02-17: at 00:00 (-02) clocks went back to 23:00 on the 16th (-03).
        let c = cal(chrono_tz::America::Sao_Paulo);
        let day = c
            .period_by_id(Window::Daily, "2019-02-16")
            .expect("a real day");
        assert_eq!(
            (day.start, day.end),
            (utc("2019-02-16T02:00:00Z"), utc("2019-02-17T03:00:00Z"))
        );
        assert_eq!(c.period_at(Window::Daily, utc("2019-02-17T02:30:00Z")), day);
    }

    #[test]
    fn seoul_daily_boundary_is_local_midnight() {
        let c = cal(chrono_tz::Asia::Seoul);
        let p = c.period_at(Window::Daily, utc("2026-11-21T15:00:00Z"));
        assert_eq!(p.id, "2026-11-22");
        assert_eq!(
            (p.start, p.end),
            (utc("2026-11-21T15:00:00Z"), utc("2026-11-22T15:00:00Z"))
        );
        assert_eq!(
            c.period_at(Window::Daily, utc("2026-11-21T14:59:59Z")).id,
            "2026-11-21"
        );
        assert_eq!(
            c.period_at(Window::Seasonal, utc("2026-09-30T15:00:00Z"))
                .id,
            "2026-Q4"
        );
        assert_eq!(
            c.period_at(Window::Weekly, utc("2026-11-22T15:00:00Z")).id,
            "2026-W48"
        );
    }

    /// Checks the partition invariants of every window from `from` to `to`: each period holds
    /// the instants it claims, starts where the previous one ended, and round-trips by id.
    fn check_partition(c: &Calendar, from: DateTime<Utc>, to: DateTime<Utc>) {
        for window in Window::ALL {
            let mut p = c.period_at(window, from);
            while p.start < to {
                let what = format!("{} {window} {p:?}", c.tz);
                assert!(p.start < p.end, "{what}");
                assert_eq!(c.period_by_id(window, &p.id).as_ref(), Some(&p), "{what}");
                for probe in [
                    p.start,
                    p.start + (p.end - p.start) / 2,
                    p.end - Duration::seconds(1),
                ] {
                    assert_eq!(c.period_at(window, probe), p, "{what} at {probe}");
                }
                let next = c.period_at(window, p.end);
                assert_eq!(next.start, p.end, "{what}: gap or overlap after it");
                assert_ne!(next.id, p.id, "{what}");
                p = next;
            }
        }
    }

    /// Two years in zones with DST, half-hour DST (Lord Howe), skipped and repeated midnights
    /// (Sao Paulo) and a skipped day (Apia).
    #[test]
    fn periods_partition_time_and_round_trip_by_id_in_many_zones() {
        let zones = [
            chrono_tz::UTC,
            chrono_tz::America::New_York,
            chrono_tz::America::Sao_Paulo,
            chrono_tz::America::Havana,
            chrono_tz::Asia::Seoul,
            chrono_tz::Australia::Lord_Howe,
            chrono_tz::Pacific::Apia,
        ];
        for tz in zones {
            check_partition(
                &cal(tz),
                utc("2011-01-01T00:00:00Z"),
                utc("2013-01-01T00:00:00Z"),
            );
            check_partition(
                &cal(tz),
                utc("2018-01-01T00:00:00Z"),
                utc("2019-06-01T00:00:00Z"),
            );
        }
    }

    #[test]
    fn periods_partition_time_around_fixed_seasons() {
        for (start, end) in [
            ("2026-11-01T00:00:00Z", "2027-02-01T00:00:00Z"),
            ("2026-11-01T00:00:00Z", "2026-11-15T00:00:00Z"),
            ("2026-09-15T00:00:00Z", "2027-01-15T00:00:00Z"),
            ("2026-10-01T00:00:00Z", "2027-01-01T00:00:00Z"),
        ] {
            let rule = SeasonRule::fixed("S1", utc(start), utc(end)).expect("a valid season");
            let c = Calendar::new(chrono_tz::America::New_York, rule);
            check_partition(&c, utc("2026-01-01T00:00:00Z"), utc("2028-01-01T00:00:00Z"));
        }
    }

    #[test]
    fn apia_skipped_day_has_no_period() {
        // Samoa skipped 2011-12-30 when it moved across the date line.
        let c = cal(chrono_tz::Pacific::Apia);
        assert_eq!(c.period_by_id(Window::Daily, "2011-12-30"), None);
        let before = c
            .period_by_id(Window::Daily, "2011-12-29")
            .expect("a real day");
        assert_eq!(c.period_at(Window::Daily, before.end).id, "2011-12-31");
    }

    #[test]
    fn period_end_is_next_period_start() {
        let c = cal(chrono_tz::Europe::Berlin);
        for window in Window::ALL {
            let p = c.period_at(window, utc("2026-10-25T00:30:00Z"));
            let next = c.period_at(window, p.end);
            assert_eq!(next.start, p.end);
            let prev = c.period_at(window, p.start - Duration::nanoseconds(1));
            assert_eq!(prev.end, p.start);
        }
    }

    #[test]
    fn period_by_id_round_trips_and_rejects_malformed_ids() {
        let c = cal(chrono_tz::Asia::Seoul);
        for (window, id) in [
            (Window::Daily, "2026-11-22"),
            (Window::Weekly, "2026-W47"),
            (Window::Weekly, "2026-W53"),
            (Window::Weekly, "2020-W01"),
            (Window::Seasonal, "2026-Q4"),
        ] {
            let p = c.period_by_id(window, id).expect(id);
            assert_eq!(p.id, id);
            assert_eq!(c.period_at(window, p.start), p);
            assert_eq!(c.period_at(window, p.end - Duration::seconds(1)), p);
        }
        for (window, id) in [
            (Window::Daily, "2026-11-31"),
            (Window::Daily, "2026-1-5"),
            (Window::Daily, "2026-01-05T00"),
            (Window::Daily, ""),
            (Window::Weekly, "2025-W53"),
            (Window::Weekly, "2026-W00"),
            (Window::Weekly, "2026-W7"),
            (Window::Weekly, "2026-w07"),
            (Window::Weekly, "+2026-W07"),
            (Window::Seasonal, "2026-Q5"),
            (Window::Seasonal, "2026-Q0"),
            (Window::Seasonal, "2026-Q4-2"),
            (Window::Seasonal, "2026-q4"),
            (Window::Daily, "2026-W47"),
        ] {
            assert_eq!(c.period_by_id(window, id), None, "{window} {id:?}");
        }
    }

    fn fixed(id: &str, start: &str, end: &str) -> Calendar {
        let rule = SeasonRule::fixed(id, utc(start), utc(end)).expect("a valid season");
        Calendar::new(chrono_tz::UTC, rule)
    }

    #[test]
    fn fixed_season_applies_inside_its_range() {
        let c = fixed("S7", "2026-11-01T00:00:00Z", "2027-02-01T00:00:00Z");
        let p = c.period_at(Window::Seasonal, utc("2026-12-25T00:00:00Z"));
        assert_eq!(p.id, "S7");
        assert_eq!(
            (p.start, p.end),
            (utc("2026-11-01T00:00:00Z"), utc("2027-02-01T00:00:00Z"))
        );
        assert_eq!(c.period_by_id(Window::Seasonal, "S7"), Some(p));
        // Daily and weekly ignore seasons.
        assert_eq!(
            c.period_at(Window::Daily, utc("2026-12-25T00:00:00Z")).id,
            "2026-12-25"
        );
    }

    #[test]
    fn outside_a_fixed_season_quarters_are_cut_at_its_edges() {
        let c = fixed("S7", "2026-11-01T00:00:00Z", "2027-02-01T00:00:00Z");
        let before = c.period_at(Window::Seasonal, utc("2026-10-15T00:00:00Z"));
        assert_eq!(before.id, "2026-Q4");
        assert_eq!(
            (before.start, before.end),
            (utc("2026-10-01T00:00:00Z"), utc("2026-11-01T00:00:00Z"))
        );
        let after = c.period_at(Window::Seasonal, utc("2027-02-15T00:00:00Z"));
        assert_eq!(after.id, "2027-Q1");
        assert_eq!(
            (after.start, after.end),
            (utc("2027-02-01T00:00:00Z"), utc("2027-04-01T00:00:00Z"))
        );
        assert_eq!(c.period_by_id(Window::Seasonal, "2026-Q4"), Some(before));
        assert_eq!(c.period_by_id(Window::Seasonal, "2027-Q1"), Some(after));
        assert_eq!(
            c.period_at(Window::Seasonal, utc("2027-04-01T00:00:00Z"))
                .id,
            "2027-Q2"
        );
    }

    #[test]
    fn a_season_inside_one_quarter_leaves_two_uniquely_named_parts() {
        let c = fixed("event_1", "2026-11-01T00:00:00Z", "2026-11-15T00:00:00Z");
        let ids: Vec<String> = [
            "2026-10-20T00:00:00Z",
            "2026-11-05T00:00:00Z",
            "2026-11-20T00:00:00Z",
        ]
        .into_iter()
        .map(|at| c.period_at(Window::Seasonal, utc(at)).id)
        .collect();
        assert_eq!(ids, ["2026-Q4", "event_1", "2026-Q4-2"]);
        let tail = c
            .period_by_id(Window::Seasonal, "2026-Q4-2")
            .expect("the part after the season");
        assert_eq!(
            (tail.start, tail.end),
            (utc("2026-11-15T00:00:00Z"), utc("2027-01-01T00:00:00Z"))
        );
        assert_eq!(c.period_by_id(Window::Seasonal, "2027-Q1-2"), None);
    }

    #[test]
    fn a_quarter_covered_by_the_season_has_no_period() {
        let c = fixed("long", "2026-09-15T00:00:00Z", "2027-01-15T00:00:00Z");
        assert_eq!(c.period_by_id(Window::Seasonal, "2026-Q4"), None);
        let p = c.period_at(Window::Seasonal, utc("2026-09-01T00:00:00Z"));
        assert_eq!(
            (p.id.as_str(), p.end),
            ("2026-Q3", utc("2026-09-15T00:00:00Z"))
        );
    }

    #[test]
    fn fixed_season_is_validated() {
        let (a, b) = (utc("2026-01-01T00:00:00Z"), utc("2026-02-01T00:00:00Z"));
        assert!(SeasonRule::fixed("S1", a, b).is_ok());
        assert!(matches!(
            SeasonRule::fixed("", a, b),
            Err(SeasonError::BadId(_))
        ));
        assert!(matches!(
            SeasonRule::fixed("s/1", a, b),
            Err(SeasonError::BadId(_))
        ));
        assert!(matches!(
            SeasonRule::fixed("2026-Q1", a, b),
            Err(SeasonError::QuarterLikeId(_))
        ));
        assert!(matches!(
            SeasonRule::fixed("S1", b, a),
            Err(SeasonError::EmptyRange { .. })
        ));
        // A hand-built inverted season is ignored rather than swallowing events.
        let c = Calendar::new(
            chrono_tz::UTC,
            SeasonRule::Fixed {
                id: "S1".into(),
                start: b,
                end: a,
            },
        );
        assert_eq!(c.period_at(Window::Seasonal, a).id, "2026-Q1");
    }
}
