//! The leaderboard worker: applies the decided log to the boards, exactly once, and rebuilds
//! them from the system of record whenever their cursor is not where the worker stands.
//!
//! Exactly once: the boards store their own cursor, moved in the same step as each batch's
//! scores; the worker's cursor ([`LeaderboardState::applied`]) is a lock held while a batch is
//! applied, so a rebuild (start-up, wiped hot state, operator) always rebuilds up to exactly the
//! events the worker has applied, and the worker goes on after them.
//!
//! Released events (an operator's release of a quarantined event) reach the boards by release
//! number, not by seq: [`catch_up_releases`] applies every release the boards do not include
//! yet, after each release and every second, so each counts once even when the hot state was
//! down when it was committed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use liveops_domain::window::Window;
use liveops_hotstate::{ApplyOutcome, BoardEvent, Leaderboards};
use liveops_store::{BoardSource, EventLog};
use tokio_util::sync::CancellationToken;

use super::{hot, BoardsError, LeaderboardState, CONSUMER};

/// Rebuilds every enabled window's current board from the log up to `upto`, and sets the
/// boards' cursor to `upto` in the same step.
pub async fn rebuild(state: &LeaderboardState, upto: u64) -> Result<(), BoardsError> {
    rebuild_boards(&*state.boards, &*state.source, state.clock.now(), upto).await
}

/// Rebuilds every enabled window's board current at `now` from the system of record: the log
/// up to `upto` and every release committed so far. Sets both cursors in the same step.
pub async fn rebuild_boards(
    boards: &dyn Leaderboards,
    source: &dyn BoardSource,
    now: DateTime<Utc>,
    upto: u64,
) -> Result<(), BoardsError> {
    // Read before the sums: every release up to it is committed, so the sums include exactly
    // those, and later ones are caught up by number.
    let released = source.release_head().await?;
    let mut rebuilt = Vec::new();
    for w in boards.windows() {
        let period = boards.period(w, now);
        let rows = source.period_xp(&period, upto, released).await?;
        rebuilt.push((period, rows));
    }
    boards.replace(rebuilt, upto, released).await?;
    Ok(())
}

/// Most releases read per store query while catching up.
const RELEASES_PER_READ: usize = 100;

/// Applies every release the boards do not include yet, in release order, under the worker's
/// lock (so a live rebuild never runs in between). Called right after an operator's release,
/// and every second by the roll-over loop: a release the hot state could not take (Redis down)
/// reaches the boards once it is back. Returns how many releases were counted; nothing when
/// the boards are not built (the wiped-boards check rebuilds them, releases included).
pub async fn catch_up_releases(state: &LeaderboardState) -> Result<u64, BoardsError> {
    let _applied = state.applied.lock().await;
    let Some(mut at) = state.boards.released_cursor().await? else {
        return Ok(0);
    };
    let mut counted = 0;
    loop {
        let releases = state.source.released_after(at, RELEASES_PER_READ).await?;
        for r in &releases {
            let e = &r.event;
            // An erased player's flags are gone from the store; one read just before the
            // erasure is skipped here (its number is never read again).
            let erased = state
                .erased
                .read()
                .get(&e.event.player_id)
                .is_some_and(|upto| e.seq <= *upto);
            if !erased {
                let event = BoardEvent {
                    seq: e.seq,
                    player: e.event.player_id.clone(),
                    xp: e.xp,
                    received_at: e.received_at,
                };
                let except = reset_since(state, &event).await?;
                match state
                    .boards
                    .apply_released(r.release, &event, &except)
                    .await?
                {
                    ApplyOutcome::Applied {
                        counted: n, late, ..
                    } => {
                        counted += n;
                        metrics::counter!("leaderboard_updates_total").increment(n);
                        if !late.is_empty() {
                            metrics::counter!("leaderboard_late_events_total")
                                .increment(late.len() as u64);
                        }
                    }
                    // Wiped meanwhile: the rebuild that follows counts every release.
                    ApplyOutcome::NotBuilt => return Ok(counted),
                }
            }
            at = r.release;
        }
        if releases.len() < RELEASES_PER_READ {
            return Ok(counted);
        }
    }
}

/// The windows whose board of the event's period an operator reset after the event: a
/// release leaves those boards alone, as a rebuild (`period_xp`) does. Releases are rare, so
/// one lookup per window each is cheap.
async fn reset_since(
    state: &LeaderboardState,
    event: &BoardEvent,
) -> Result<Vec<Window>, BoardsError> {
    let mut except = Vec::new();
    for w in state.boards.windows() {
        let period = state.boards.calendar().period_at(w, event.received_at);
        if state
            .source
            .reset_after(&period)
            .await?
            .is_some_and(|after| event.seq <= after)
        {
            except.push(w);
        }
    }
    Ok(except)
}

/// Rebuilds the live boards from the system of record while the worker runs: under the
/// worker's cursor lock, up to the last event it applied. Returns the players per window.
pub async fn rebuild_live(
    state: &LeaderboardState,
) -> Result<HashMap<&'static str, u64>, BoardsError> {
    let applied = state.applied.lock().await;
    rebuild(state, *applied).await?;
    drop(applied);
    let now = state.clock.now();
    let mut totals = HashMap::new();
    for w in state.boards.windows() {
        totals.insert(w.as_str(), state.boards.total(w, now).await?);
    }
    Ok(totals)
}

/// Where the worker starts: the boards' own cursor when it is exactly the decided head (the
/// boards in Redis outlived a restart), else a rebuild up to the head.
async fn prepare(state: &LeaderboardState, head: u64) -> Result<u64, BoardsError> {
    if state.boards.cursor().await? == Some(head) {
        tracing::info!(
            upto = head,
            "leaderboards kept: their cursor is the decided head"
        );
        return Ok(head);
    }
    rebuild(state, head).await?;
    tracing::info!(
        upto = head,
        "leaderboards rebuilt from the system of record"
    );
    Ok(head)
}

/// Rebuilds the boards if they lost their cursor (a wiped Redis) while the worker was idle.
pub(super) async fn rebuild_if_wiped(state: &LeaderboardState) -> Result<(), BoardsError> {
    if state.boards.cursor().await?.is_some() {
        return Ok(());
    }
    let applied = state.applied.lock().await;
    // Checked again under the lock: the worker may have rebuilt them meanwhile.
    if state.boards.cursor().await?.is_none() {
        tracing::warn!(
            upto = *applied,
            "the leaderboards lost their cursor (hot state wiped); rebuilding"
        );
        metrics::counter!("leaderboard_rebuilds_total", "reason" => "wiped").increment(1);
        rebuild(state, *applied).await?;
    }
    Ok(())
}

/// Rebuilds the boards, then applies the log to them until `shutdown`; rolls periods over
/// every second (see [`super::rollover`]).
pub async fn run_worker(
    state: LeaderboardState,
    log: Arc<dyn EventLog>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let head = *log.committed().borrow();
    // The hot state may be down at start-up (Redis restarting): keep trying, it is derived
    // state and the log keeps everything meanwhile.
    let start = loop {
        match prepare(&state, head).await {
            Ok(start) => break start,
            Err(e) => {
                tracing::warn!(error = %e, "preparing the leaderboards failed; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    };
    *state.applied.lock().await = start;
    let roller = tokio::spawn(super::rollover::roll_over_loop(
        state.clone(),
        shutdown.clone(),
    ));
    crate::pipeline::consume(CONSUMER, log, start, shutdown, move |batch| {
        let state = state.clone();
        async move {
            let mut cursor = state.applied.lock().await;
            let last = batch.last().map_or(*cursor, |e| e.seq);
            let events: Vec<BoardEvent> = {
                let erased = state.erased.read();
                batch
                    .iter()
                    .filter(|e| {
                        erased
                            .get(&e.event.player_id)
                            .is_none_or(|upto| e.seq > *upto)
                    })
                    .map(|e| BoardEvent {
                        seq: e.seq,
                        player: e.event.player_id.clone(),
                        xp: e.xp,
                        received_at: e.received_at,
                    })
                    .collect()
            };
            loop {
                match state.boards.apply(&events, last).await.map_err(hot)? {
                    ApplyOutcome::Applied { counted, late, .. } => {
                        metrics::counter!("leaderboard_updates_total").increment(counted);
                        if !late.is_empty() {
                            metrics::counter!("leaderboard_late_events_total")
                                .increment(late.len() as u64);
                        }
                        break;
                    }
                    // Wiped under us: rebuild exactly up to what this worker applied, then
                    // apply the batch on top (its events are all above that).
                    ApplyOutcome::NotBuilt => {
                        tracing::warn!(
                            upto = *cursor,
                            "the leaderboards lost their cursor (hot state wiped); rebuilding"
                        );
                        metrics::counter!("leaderboard_rebuilds_total", "reason" => "wiped")
                            .increment(1);
                        rebuild(&state, *cursor).await?;
                    }
                }
            }
            *cursor = last;
            Ok(last)
        }
    })
    .await;
    roller.abort();
    Ok(())
}
