//! Period ends and archives: once a second the roll-over loop ends every board whose period is
//! over (after [`ROLLOVER_GRACE`]), archives its final standings, catches up with released
//! events, rebuilds wiped boards, snapshots the running boards on `SNAPSHOT_CRON`, and sets the
//! active-players gauge.
//!
//! An archive is computed from the system of record, not from the board it replaces: it is
//! exact even for an event that reached the pipeline after the rollover, and a period that
//! ended while the server was down is archived on its first read (`GET /leaderboard/history`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use liveops_domain::window::Period;
use liveops_hotstate::Entry;
use liveops_store::{ArchivedEntry, ArchivedPeriod, StoreError};
use tokio_util::sync::CancellationToken;

use super::worker::{catch_up_releases, rebuild_if_wiped};
use super::{hot, LeaderboardState};

/// How long after a period ends its board stays open for events received before the end but
/// still in the pipeline.
const ROLLOVER_GRACE: chrono::Duration = chrono::Duration::seconds(2);

/// Runs beside the worker (which spawns it) until `shutdown`.
pub(super) async fn roll_over_loop(state: LeaderboardState, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let next_snapshot = |after: DateTime<Utc>| {
        state
            .snapshot_cron
            .as_ref()
            .and_then(|c| c.after(&after).next())
    };
    let mut snapshot_due = next_snapshot(state.clock.now());
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = rebuild_if_wiped(&state).await {
            tracing::warn!(error = %e, "checking the leaderboards' cursor failed");
        }
        match catch_up_releases(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                releases = n,
                "released events the leaderboards had missed are counted"
            ),
            Err(e) => tracing::warn!(error = %e, "catching up with released events failed"),
        }
        let now = state.clock.now();
        let finished = match state.boards.roll_over(now - ROLLOVER_GRACE).await {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "rolling the leaderboards over failed; retrying");
                Vec::new()
            }
        };
        for finished in finished {
            if let Err(e) = archive_period(&state, &finished.period, now).await {
                tracing::error!(window = finished.period.window.as_str(), period = %finished.period.id, error = %e, "archiving a period failed");
            } else {
                tracing::info!(window = finished.period.window.as_str(), period = %finished.period.id, "period archived");
            }
        }
        if snapshot_due.is_some_and(|due| due <= now) {
            match snapshot(&state, now).await {
                Ok(n) => tracing::info!(boards = n, "leaderboard snapshot taken"),
                Err(e) => tracing::error!(error = %e, "leaderboard snapshot failed"),
            }
            snapshot_due = next_snapshot(now);
        }
        if let Some(w) = state.boards.windows().first() {
            if let Ok(n) = state.boards.total(*w, now).await {
                metrics::gauge!("active_players_gauge").set(n as f64);
            }
        }
    }
}

/// Writes the top `LB_TOPN` of every running board, as they stand at `now`, to the archive.
pub async fn snapshot(state: &LeaderboardState, now: DateTime<Utc>) -> Result<usize, StoreError> {
    let windows = state.boards.windows();
    for w in &windows {
        let page = state
            .boards
            .page(*w, now, 0, state.topn)
            .await
            .map_err(hot)?;
        state
            .archive
            .put_snapshot(&standings(&page.period, page.total, &page.entries, now))
            .await?;
    }
    Ok(windows.len())
}

/// Standings in the archive's shape.
pub fn standings(
    period: &Period,
    total: u64,
    entries: &[Entry],
    at: DateTime<Utc>,
) -> ArchivedPeriod {
    ArchivedPeriod {
        window: period.window.as_str().to_string(),
        period: period.id.clone(),
        start: period.start,
        end: period.end,
        archived_at: at,
        total,
        entries: entries
            .iter()
            .map(|e| ArchivedEntry {
                rank: e.rank,
                player_id: e.player_id.clone(),
                score: e.score,
            })
            .collect(),
    }
}

/// Computes the final standings of an ended period from the system of record and archives
/// them; returns what it archived.
pub(super) async fn archive_period(
    state: &LeaderboardState,
    period: &Period,
    now: DateTime<Utc>,
) -> Result<ArchivedPeriod, StoreError> {
    let mut rows = state.source.period_xp(period, u64::MAX, u64::MAX).await?;
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let entries: Vec<ArchivedEntry> = rows
        .into_iter()
        .enumerate()
        .map(|(i, (p, score))| ArchivedEntry {
            rank: i as u64 + 1,
            player_id: p,
            score,
        })
        .collect();
    let archived = ArchivedPeriod {
        window: period.window.as_str().to_string(),
        period: period.id.clone(),
        start: period.start,
        end: period.end,
        archived_at: now,
        total: entries.len() as u64,
        entries,
    };
    state.archive.put_period(&archived).await?;
    Ok(archived)
}
