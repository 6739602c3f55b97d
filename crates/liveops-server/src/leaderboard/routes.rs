//! The leaderboard reads (`docs/api.md`): a page of a window's current board (or just some
//! players' rows), one player's rank with their neighbours, and the archived final standings of
//! an ended period. Every answer is a typed struct whose schema `/openapi.json` shows.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use liveops_domain::window::{Calendar, Window};
use liveops_domain::PlayerId;
use liveops_hotstate::Entry;
use liveops_store::ArchivedEntry;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::rollover::archive_period;
use super::LeaderboardState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{number_param, Paging, PlayerPath, QueryParams};

/// Most players one `players=` request may name.
const MAX_FRIENDS: usize = 200;
/// Most neighbours on each side of `around=`.
const MAX_AROUND: usize = 50;

/// A board's window, as the API names it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WindowName {
    Daily,
    Weekly,
    Seasonal,
}

/// One row of a board: rank (1-based; ties share the order of their player ids), player and
/// score (the XP earned in the period).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeaderboardEntry {
    pub rank: u64,
    pub player_id: String,
    pub score: i64,
}

impl From<Entry> for LeaderboardEntry {
    fn from(e: Entry) -> Self {
        LeaderboardEntry {
            rank: e.rank,
            player_id: e.player_id.into(),
            score: e.score,
        }
    }
}

impl From<&ArchivedEntry> for LeaderboardEntry {
    fn from(e: &ArchivedEntry) -> Self {
        LeaderboardEntry {
            rank: e.rank,
            player_id: e.player_id.to_string(),
            score: e.score,
        }
    }
}

/// `GET /leaderboard`, and the data of every event of `GET /leaderboard/stream`: a page of a
/// window's current board.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BoardPage {
    #[schema(value_type = WindowName)]
    pub window: &'static str,
    /// The current season's id (e.g. `2026-Q3`), whatever the window.
    pub season: String,
    /// The window's current period id (e.g. `2026-11-21`, `2026-W47`, `2026-Q3`).
    pub period: String,
    /// When the period ends and the board starts empty.
    pub next_reset: DateTime<Utc>,
    /// When the board last changed (now when it never did).
    pub updated_at: DateTime<Utc>,
    /// Players with a score in the period.
    pub total: u64,
    /// The page, or the named players' rows with `players=`.
    pub entries: Vec<LeaderboardEntry>,
}

/// `GET /leaderboard/players/{playerId}`: one player's rank and score with their neighbours.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlayerStanding {
    #[schema(value_type = WindowName)]
    pub window: &'static str,
    pub period: String,
    pub next_reset: DateTime<Utc>,
    pub player_id: String,
    pub rank: u64,
    pub score: i64,
    /// Players with a score in the period.
    pub total: u64,
    /// Up to `around` rows above and below the player, the player's own included.
    pub entries: Vec<LeaderboardEntry>,
}

/// `GET /leaderboard/history`: the archived final standings of an ended period.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArchivedStandings {
    #[schema(value_type = WindowName)]
    pub window: String,
    pub period: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// When the standings were archived (at the rollover, or on the first read of a period
    /// that ended while the server was down).
    pub archived_at: DateTime<Utc>,
    /// Players in the standings.
    pub total: u64,
    /// The requested page of the standings.
    pub entries: Vec<LeaderboardEntry>,
}

/// `GET /leaderboard`'s own parameters (`limit` and `offset` are the paging).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BoardQuery {
    /// daily | weekly | seasonal (default weekly); it must be enabled (`LB_WINDOWS`).
    pub window: Option<String>,
    /// Comma-separated player ids (at most 200): just those players' rows, with their ranks,
    /// instead of a page.
    pub players: Option<String>,
}

/// `GET /leaderboard/players/{playerId}`'s parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StandingQuery {
    /// daily | weekly | seasonal (default weekly).
    pub window: Option<String>,
    /// Rows above and below the player: 0 to 50 (default 0).
    pub around: Option<String>,
}

/// `GET /leaderboard/history`'s own parameters (`limit` and `offset` page the standings).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// daily | weekly | seasonal (default weekly).
    pub window: Option<String>,
    /// An ended period id of the window, e.g. 2026-11-21, 2026-W47, 2026-Q3.
    #[param(required = true)]
    pub period: Option<String>,
}

/// The `window` parameter: default weekly, and enabled in `LB_WINDOWS`.
pub(crate) fn window_param(
    state: &LeaderboardState,
    raw: Option<&str>,
) -> Result<Window, ApiError> {
    let raw = raw.unwrap_or("weekly");
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

/// The `players` parameter: comma-separated ids, blanks skipped, at most [`MAX_FRIENDS`].
fn players_param(list: &str) -> Result<Vec<PlayerId>, ApiError> {
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
    Ok(players)
}

/// The page of `window` as it stands now: `paging`'s slice of the board, or only `players`'
/// rows. Shared by `GET /leaderboard` and the stream, so the two cannot drift apart.
pub(crate) async fn board_page(
    s: &LeaderboardState,
    window: Window,
    paging: Paging,
    players: Option<&[PlayerId]>,
) -> Result<BoardPage, ApiError> {
    let now = s.clock.now();
    let season = s.boards.period(Window::Seasonal, now).id;
    let page = s
        .boards
        .page(window, now, paging.offset, paging.limit)
        .await
        .map_err(ApiError::unavailable)?;
    let entries = match players {
        Some(players) => s
            .boards
            .entries_for(window, now, players)
            .await
            .map_err(ApiError::unavailable)?,
        None => page.entries,
    };
    // The entries move into the answer's rows (same layout, no copy of the ids): this is the
    // hottest read, serialized straight from the struct without a `Value` tree.
    Ok(BoardPage {
        window: window.as_str(),
        season,
        period: page.period.id,
        next_reset: page.period.end,
        updated_at: page.updated_at.unwrap_or(now),
        total: page.total,
        entries: entries.into_iter().map(LeaderboardEntry::from).collect(),
    })
}

#[utoipa::path(get, path = "/leaderboard", tag = "leaderboard",
    params(
        BoardQuery,
        ("limit" = Option<usize>, Query, description = "entries per page: 1 to LB_TOPN (default LB_TOPN)"),
        ("offset" = Option<usize>, Query, description = "entries skipped: 0 or more (default 0)"),
    ),
    responses(
        (status = 200, description = "a page of the window's current board", body = BoardPage),
        (status = 400, description = "bad parameter, named in error.field", body = ErrorEnvelope),
        (status = 503, description = "the boards did not answer; retry after Retry-After", body = ErrorEnvelope),
    ))]
pub async fn get_leaderboard(
    State(s): State<LeaderboardState>,
    paging: Paging,
    QueryParams(q): QueryParams<BoardQuery>,
) -> Result<Json<BoardPage>, ApiError> {
    let window = window_param(&s, q.window.as_deref())?;
    let players = q.players.as_deref().map(players_param).transpose()?;
    board_page(&s, window, paging, players.as_deref())
        .await
        .map(Json)
}

#[utoipa::path(get, path = "/leaderboard/players/{playerId}", tag = "leaderboard",
    params(("playerId" = String, Path, description = "3-50 of [A-Za-z0-9_]"), StandingQuery),
    responses(
        (status = 200, description = "the player's rank, score and neighbours", body = PlayerStanding),
        (status = 400, description = "bad parameter, named in error.field", body = ErrorEnvelope),
        (status = 404, description = "the player has no score in this period", body = ErrorEnvelope),
        (status = 503, description = "the boards did not answer; retry after Retry-After", body = ErrorEnvelope),
    ))]
pub async fn get_player(
    State(s): State<LeaderboardState>,
    PlayerPath(player): PlayerPath,
    QueryParams(q): QueryParams<StandingQuery>,
) -> Result<Json<PlayerStanding>, ApiError> {
    let window = window_param(&s, q.window.as_deref())?;
    let around = number_param("around", q.around.as_deref(), 0, 0, MAX_AROUND)?;
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
    Ok(Json(PlayerStanding {
        window: window.as_str(),
        period: period.id,
        next_reset: period.end,
        player_id: player.into(),
        rank: me.rank,
        score: me.score,
        total,
        entries: entries.into_iter().map(LeaderboardEntry::from).collect(),
    }))
}

#[utoipa::path(get, path = "/leaderboard/history", tag = "leaderboard",
    params(
        HistoryQuery,
        ("limit" = Option<usize>, Query, description = "entries per page: 1 to LB_TOPN (default LB_TOPN)"),
        ("offset" = Option<usize>, Query, description = "entries skipped: 0 or more (default 0)"),
    ),
    responses(
        (status = 200, description = "the archived final standings", body = ArchivedStandings),
        (status = 400, description = "bad parameter, named in error.field", body = ErrorEnvelope),
        (status = 404, description = "the period has not ended yet", body = ErrorEnvelope),
        (status = 503, description = "the archive or the store did not answer; retry after Retry-After", body = ErrorEnvelope),
    ))]
pub async fn get_history(
    State(s): State<LeaderboardState>,
    paging: Paging,
    QueryParams(q): QueryParams<HistoryQuery>,
) -> Result<Json<ArchivedStandings>, ApiError> {
    let window = window_param(&s, q.window.as_deref())?;
    let raw = q
        .period
        .as_deref()
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
    let entries = archived
        .entries
        .iter()
        .skip(paging.offset)
        .take(paging.limit)
        .map(LeaderboardEntry::from)
        .collect();
    Ok(Json(ArchivedStandings {
        window: archived.window,
        period: archived.period,
        start: archived.start,
        end: archived.end,
        archived_at: archived.archived_at,
        total: archived.total,
        entries,
    }))
}
