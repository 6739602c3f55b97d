//! The leaderboard role (SPEC section 6): applies the committed log to the boards (in memory
//! or in Redis, behind [`Leaderboards`]), rolls periods over and archives their final
//! standings, and serves rankings.
//!
//! The boards are derived state. Each apply moves a cursor stored with the boards, atomically,
//! so an event counts once even if a batch is applied twice. At start-up, unless the boards'
//! cursor is exactly the decided head, they are rebuilt from the system of record up to that
//! head; then the worker applies every event after it. When the boards lose their cursor
//! mid-run (Redis wiped or flushed), the worker notices, on its next batch or within a second
//! when idle, and rebuilds them exactly up to what it had applied.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use liveops_domain::window::{Calendar, Period, Window};
use liveops_domain::{Clock, PlayerId};
use liveops_hotstate::{ApplyOutcome, BoardEvent, Entry, HotStateError, Leaderboards};
use liveops_store::{Archive, ArchivedEntry, ArchivedPeriod, BoardSource, EventLog, StoreError};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::progression::parse_player;

pub mod stream;

pub const CONSUMER: &str = "leaderboard";
/// How long after a period ends its board stays open for events received before the end but
/// still in the pipeline.
const ROLLOVER_GRACE: chrono::Duration = chrono::Duration::seconds(2);
const MAX_FRIENDS: usize = 200;
const MAX_AROUND: usize = 50;

#[derive(Clone)]
pub struct LeaderboardState {
    pub boards: Arc<dyn Leaderboards>,
    pub source: Arc<dyn BoardSource>,
    pub archive: Arc<dyn Archive>,
    pub clock: Arc<dyn Clock>,
    pub topn: usize,
    /// `SNAPSHOT_CRON`: when to snapshot the running boards into the archive.
    pub snapshot_cron: Option<cron::Schedule>,
    /// Erased players and the last seq erased: their events up to it still in flight are not
    /// applied (GDPR erasure removes them from the boards at once).
    pub erased: Arc<parking_lot::RwLock<HashMap<PlayerId, u64>>>,
    /// The worker's cursor (the last seq it applied), held while a batch is applied: a live
    /// rebuild takes it so that the boards are rebuilt up to exactly the events the worker has
    /// applied, and the worker goes on after them (no event counted twice or missed).
    pub applied: Arc<tokio::sync::Mutex<u64>>,
}

pub fn router(state: LeaderboardState) -> Router {
    Router::new()
        .route("/leaderboard", get(get_leaderboard))
        .route("/leaderboard/players/{player_id}", get(get_player))
        .route("/leaderboard/history", get(get_history))
        .with_state(state)
}

/// A rebuild failed: the system of record or the hot state did not answer.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    HotState(#[from] HotStateError),
}

/// The consumer loop speaks `StoreError`; a hot-state failure is logged and retried like one.
fn hot(e: HotStateError) -> StoreError {
    StoreError::Database(format!("hot state: {e}"))
}

impl From<RebuildError> for StoreError {
    fn from(e: RebuildError) -> Self {
        match e {
            RebuildError::Store(e) => e,
            RebuildError::HotState(e) => hot(e),
        }
    }
}

/// Rebuilds every enabled window's current board from the log up to `upto`, and sets the
/// boards' cursor to `upto` in the same step.
pub async fn rebuild(state: &LeaderboardState, upto: u64) -> Result<(), RebuildError> {
    rebuild_boards(&*state.boards, &*state.source, state.clock.now(), upto).await
}

/// Rebuilds every enabled window's board current at `now` from the system of record: the log
/// up to `upto` and every release committed so far. Sets both cursors in the same step.
pub async fn rebuild_boards(
    boards: &dyn Leaderboards,
    source: &dyn BoardSource,
    now: DateTime<Utc>,
    upto: u64,
) -> Result<(), RebuildError> {
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
pub async fn catch_up_releases(state: &LeaderboardState) -> Result<u64, RebuildError> {
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
) -> Result<Vec<Window>, RebuildError> {
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
) -> Result<HashMap<&'static str, u64>, RebuildError> {
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
async fn prepare(state: &LeaderboardState, head: u64) -> Result<u64, RebuildError> {
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
async fn rebuild_if_wiped(state: &LeaderboardState) -> Result<(), RebuildError> {
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
/// every second.
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
    let roller = tokio::spawn(roll_over_loop(state.clone(), shutdown.clone()));
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

async fn roll_over_loop(state: LeaderboardState, shutdown: CancellationToken) {
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
            // The archive is computed from the system of record, not the in-memory board:
            // exact even for an event that reached the pipeline after the rollover.
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

async fn archive_period(
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

type Params = HashMap<String, String>;

fn window_param(state: &LeaderboardState, q: &Params) -> Result<Window, ApiError> {
    let raw = q.get("window").map(String::as_str).unwrap_or("weekly");
    let w = Window::parse(raw).ok_or_else(|| {
        ApiError::invalid(
            "window",
            format!("window must be daily, weekly or seasonal, got {raw:?}"),
        )
    })?;
    if !state.boards.is_enabled(w) {
        return Err(ApiError::invalid(
            "window",
            format!("window {raw:?} is not enabled (LB_WINDOWS)"),
        ));
    }
    Ok(w)
}

fn number_param(
    q: &Params,
    name: &str,
    default: usize,
    min: usize,
    max: usize,
) -> Result<usize, ApiError> {
    match q.get(name) {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(
                    name,
                    format!("{name} must be an integer from {min} to {max}, got {v:?}"),
                )
            }),
    }
}

fn entries_json(entries: &[Entry]) -> Value {
    Value::Array(
        entries
            .iter()
            .map(|e| json!({"rank": e.rank, "playerId": e.player_id.as_str(), "score": e.score}))
            .collect(),
    )
}

#[utoipa::path(get, path = "/leaderboard", tag = "leaderboard",
    params(
        ("window" = Option<String>, Query, description = "daily | weekly | seasonal (default weekly)"),
        ("limit" = Option<usize>, Query, description = "1..LB_TOPN (default LB_TOPN)"),
        ("offset" = Option<usize>, Query, description = ">= 0"),
        ("players" = Option<String>, Query, description = "comma-separated playerIds: just those players with their ranks"),
    ),
    responses((status = 200, description = "{window, season, period, nextReset, updatedAt, total, entries: [{rank, playerId, score}]}"),
              (status = 400, description = "bad parameter, named in error.field")))]
pub async fn get_leaderboard(
    State(s): State<LeaderboardState>,
    Query(q): Query<Params>,
) -> Result<Json<BoardResponse>, ApiError> {
    let window = window_param(&s, &q)?;
    let limit = number_param(&q, "limit", s.topn, 1, s.topn)?;
    let offset = number_param(&q, "offset", 0, 0, usize::MAX)?;
    let now = s.clock.now();
    let season = s.boards.period(Window::Seasonal, now).id;
    let page = s
        .boards
        .page(window, now, offset, limit)
        .await
        .map_err(ApiError::unavailable)?;
    let entries = match q.get("players") {
        Some(list) => {
            let players: Vec<PlayerId> = list
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| {
                    PlayerId::parse(p)
                        .map_err(|m| ApiError::invalid("players", format!("player {p:?}: {m}")))
                })
                .collect::<Result<_, _>>()?;
            if players.len() > MAX_FRIENDS {
                return Err(ApiError::invalid(
                    "players",
                    format!("at most {MAX_FRIENDS} players per request"),
                ));
            }
            s.boards
                .entries_for(window, now, &players)
                .await
                .map_err(ApiError::unavailable)?
        }
        None => page.entries,
    };
    // A typed body rather than `json!`: this is the hottest read, and serializing the entries
    // directly skips building a `Value` tree of a hundred objects per request.
    Ok(Json(BoardResponse {
        window: window.as_str(),
        season,
        period: page.period.id,
        next_reset: page.period.end,
        updated_at: page.updated_at.unwrap_or(now),
        total: page.total,
        entries,
    }))
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BoardResponse {
    window: &'static str,
    season: String,
    period: String,
    next_reset: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    total: u64,
    entries: Vec<Entry>,
}

#[utoipa::path(get, path = "/leaderboard/players/{playerId}", tag = "leaderboard",
    params(("playerId" = String, Path), ("window" = Option<String>, Query), ("around" = Option<usize>, Query, description = "entries above and below (default 0, max 50)")),
    responses((status = 200, description = "{window, period, playerId, rank, score, entries}"), (status = 404, description = "no score in this period")))]
pub async fn get_player(
    State(s): State<LeaderboardState>,
    Path(player): Path<String>,
    Query(q): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    let player = parse_player(&player)?;
    let window = window_param(&s, &q)?;
    let around = number_param(&q, "around", 0, 0, MAX_AROUND)?;
    let now = s.clock.now();
    let period = s.boards.period(window, now);
    let not_found = || {
        ApiError::not_found(format!(
            "player {player} has no score in the {} period {}",
            window.as_str(),
            period.id
        ))
    };
    let me = s
        .boards
        .rank_of(window, now, &player)
        .await
        .map_err(ApiError::unavailable)?
        .ok_or_else(not_found)?;
    let entries = s
        .boards
        .around(window, now, &player, around)
        .await
        .map_err(ApiError::unavailable)?
        .ok_or_else(not_found)?;
    let total = s
        .boards
        .total(window, now)
        .await
        .map_err(ApiError::unavailable)?;
    Ok(Json(json!({
        "window": window.as_str(),
        "period": period.id,
        "nextReset": period.end,
        "playerId": player.as_str(),
        "rank": me.rank,
        "score": me.score,
        "total": total,
        "entries": entries_json(&entries),
    })))
}

#[utoipa::path(get, path = "/leaderboard/history", tag = "leaderboard",
    params(("window" = Option<String>, Query), ("period" = String, Query, description = "an ended period id, e.g. 2026-11-21, 2026-W47, 2026-Q3"),
           ("limit" = Option<usize>, Query), ("offset" = Option<usize>, Query)),
    responses((status = 200, description = "the archived final standings"), (status = 404, description = "the period has not ended or is unknown")))]
pub async fn get_history(
    State(s): State<LeaderboardState>,
    Query(q): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    let window = window_param(&s, &q)?;
    let limit = number_param(&q, "limit", s.topn, 1, s.topn)?;
    let offset = number_param(&q, "offset", 0, 0, usize::MAX)?;
    let raw = q
        .get("period")
        .ok_or_else(|| ApiError::invalid("period", "period is required, e.g. period=2026-11-21"))?;
    let calendar: &Calendar = s.boards.calendar();
    let period = calendar.period_by_id(window, raw).ok_or_else(|| {
        ApiError::invalid(
            "period",
            format!("{raw:?} is not a {} period id", window.as_str()),
        )
    })?;
    let now = s.clock.now();
    if period.end > now {
        return Err(ApiError::not_found(format!(
            "period {raw} has not ended yet; see GET /leaderboard"
        )));
    }
    let archived = match s
        .archive
        .get_period(window.as_str(), &period.id)
        .await
        .map_err(ApiError::unavailable)?
    {
        Some(a) => a,
        // Not archived (the server was down at the rollover): the log still knows.
        None => archive_period(&s, &period, now)
            .await
            .map_err(ApiError::unavailable)?,
    };
    let entries: Vec<&ArchivedEntry> = archived.entries.iter().skip(offset).take(limit).collect();
    Ok(Json(json!({
        "window": archived.window,
        "period": archived.period,
        "start": archived.start,
        "end": archived.end,
        "archivedAt": archived.archived_at,
        "total": archived.total,
        "entries": entries,
    })))
}
