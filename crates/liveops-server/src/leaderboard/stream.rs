//! `GET /leaderboard/stream?window=` (`docs/api.md`): the top entries of a window as
//! Server-Sent Events, one `leaderboard` event at connect and one after each change.
//!
//! Cost model, which is the point of this module: clients never read the boards themselves.
//! One publisher task per watched `(window, limit)` polls the board's `version` counter every
//! [`COALESCE`] and, only when it moved (or the period rolled over), builds the page once and
//! puts it in a `watch` channel. Every client of that feed just waits on the channel, so a
//! thousand dashboards cost one page build per change, and a burst of ten thousand events in a
//! quarter second reaches each client as one update (`watch` keeps only the latest value: a slow
//! client skips states, it never queues them). The publisher exits when its last client left,
//! so an unwatched window costs nothing, and a client that disconnects only drops its receiver
//! (noticed at the latest at the next heartbeat write). Concurrent streams are capped by
//! [`MAX_STREAMS`]; beyond that the answer is 503 with `Retry-After`.
//!
//! The data of each event is exactly what `GET /leaderboard` answers for the same parameters
//! (a [`BoardPage`]): both are built by the same function, so the two cannot drift apart.
//!
//! Shutdown: an open stream would keep the HTTP server's graceful drain waiting forever, so
//! [`Streams::close`] ends every stream (the composition root calls it when shutdown starts).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use liveops_domain::window::Window;
use parking_lot::Mutex;
use serde::Deserialize;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use utoipa::IntoParams;

use super::routes::{board_page, window_param, BoardPage};
use super::LeaderboardState;
use crate::error::{ApiError, ErrorCode, ErrorEnvelope};
use crate::extract::{Limit, LimitRule, Paged, Paging, QueryParams};

/// How often a publisher looks at the version counter: at most this many updates per second
/// per client is 1 / COALESCE (4 per second).
pub const COALESCE: Duration = Duration::from_millis(250);
/// An SSE comment this often keeps proxies from closing an idle stream and lets the server
/// notice a client that went away.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// Concurrent streams over all windows. Each costs a task-less future and a watch receiver
/// (well under a KiB), so the cap is about file descriptors, not memory.
pub const MAX_STREAMS: usize = 1000;

/// The SSE role's shared state; cheap to clone. Built once by the composition root.
#[derive(Clone)]
pub struct Streams {
    hub: Arc<Hub>,
}

struct Hub {
    board: LeaderboardState,
    /// The live feeds by (window, limit). A publisher removes its own entry, under this lock,
    /// when it sees no receivers; a client subscribes under the same lock, so it either finds a
    /// feed whose publisher will still see it, or starts a new one.
    feeds: Mutex<HashMap<(Window, usize), watch::Sender<Snapshot>>>,
    /// One permit per open stream, held by the stream until it ends.
    permits: Arc<Semaphore>,
    /// Cancelled at shutdown: publishers and streams end.
    closed: CancellationToken,
}

/// One board state as sent: the version read before the page was built (so a change racing
/// the build is published again on the next tick, never lost) and the JSON body.
#[derive(Clone)]
struct Snapshot {
    version: u64,
    period: String,
    json: Arc<str>,
}

impl Streams {
    pub fn new(board: LeaderboardState) -> Self {
        Streams {
            hub: Arc::new(Hub {
                board,
                feeds: Mutex::new(HashMap::new()),
                permits: Arc::new(Semaphore::new(MAX_STREAMS)),
                closed: CancellationToken::new(),
            }),
        }
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/leaderboard/stream", get(stream))
            .with_state(self.clone())
    }

    /// Ends every open stream and publisher; new requests still get one snapshot and an
    /// immediately closed stream (the server is draining anyway).
    pub fn close(&self) {
        self.hub.closed.cancel();
    }

    /// Streams open right now.
    pub fn open(&self) -> usize {
        MAX_STREAMS - self.hub.permits.available_permits()
    }
}

impl Paged for Streams {
    /// As `GET /leaderboard`: 1 to `LB_TOPN` entries, `LB_TOPN` by default.
    fn limit_rule(&self) -> LimitRule {
        self.hub.board.limit_rule()
    }
}

impl Hub {
    /// The first `limit` entries of `window` as `GET /leaderboard` answers them, with the
    /// version they reflect.
    async fn snapshot(&self, window: Window, limit: usize) -> Result<Snapshot, ApiError> {
        let version = self
            .board
            .boards
            .version(window)
            .await
            .map_err(ApiError::unavailable)?;
        let period = self.board.boards.period(window, self.board.clock.now()).id;
        let paging = Paging { limit, offset: 0 };
        let body: BoardPage = board_page(&self.board, window, paging, None).await?;
        let json = serde_json::to_string(&body)
            .map_err(|e| ApiError::new(ErrorCode::Internal, format!("snapshot: {e}")))?;
        Ok(Snapshot {
            version,
            period,
            json: json.into(),
        })
    }

    /// A receiver on the feed for `key`, starting its publisher if nobody watches it yet
    /// (`first` becomes the feed's first value then).
    fn subscribe(
        self: &Arc<Self>,
        key: (Window, usize),
        first: Snapshot,
    ) -> watch::Receiver<Snapshot> {
        let mut feeds = self.feeds.lock();
        if let Some(tx) = feeds.get(&key) {
            return tx.subscribe();
        }
        let (tx, rx) = watch::channel(first);
        feeds.insert(key, tx.clone());
        drop(feeds);
        tokio::spawn(publish(self.clone(), key, tx));
        rx
    }
}

/// Polls the version counter of `key`'s window every [`COALESCE`] and publishes a new snapshot
/// when it moved or the period changed; exits when the feed has no receivers or at shutdown.
async fn publish(hub: Arc<Hub>, key: (Window, usize), tx: watch::Sender<Snapshot>) {
    let (window, limit) = key;
    let mut tick = tokio::time::interval(COALESCE);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = hub.closed.cancelled() => break,
            _ = tick.tick() => {}
        }
        {
            // The map holds a sender too, so `receiver_count` is the only sign of life.
            let mut feeds = hub.feeds.lock();
            if tx.receiver_count() == 0 {
                feeds.remove(&key);
                return;
            }
        }
        let (seen_version, seen_period) = {
            let s = tx.borrow();
            (s.version, s.period.clone())
        };
        // Redis may be briefly unreachable: skip this tick, the next one tries again.
        let Ok(version) = hub.board.boards.version(window).await else {
            continue;
        };
        let period = hub.board.boards.period(window, hub.board.clock.now()).id;
        if version == seen_version && period == seen_period {
            continue;
        }
        match hub.snapshot(window, limit).await {
            Ok(s) => {
                tx.send_replace(s);
            }
            // Cannot happen with parameters that passed at subscribe time, but a publisher
            // must not die silently: say so and try again on the next tick.
            Err(e) => {
                tracing::warn!(window = window.as_str(), error = ?e.body, "leaderboard stream snapshot failed")
            }
        }
    }
    hub.feeds.lock().remove(&key);
}

/// The stream's own parameters besides `limit`. `offset` and `players` are refused rather
/// than ignored, since one feed serves every client of a window.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// daily | weekly | seasonal (default weekly); it must be enabled (`LB_WINDOWS`).
    pub window: Option<String>,
    #[param(ignore)]
    pub offset: Option<String>,
    #[param(ignore)]
    pub players: Option<String>,
}

#[utoipa::path(get, path = "/leaderboard/stream", tag = "leaderboard",
    params(
        StreamQuery,
        ("limit" = Option<usize>, Query, description = "entries per event: 1 to LB_TOPN (default LB_TOPN)"),
    ),
    responses(
        (status = 200, description = "text/event-stream: a `leaderboard` event at connect and after each change, at most 4 per second, whose data is the JSON answer of GET /leaderboard for the same window and limit (the BoardPage schema) and whose id is the board version; `: heartbeat` comments every 15 s", content_type = "text/event-stream"),
        (status = 400, description = "bad parameter, named in error.field", body = ErrorEnvelope),
        (status = 503, description = "too many open streams, or the boards did not answer; retry after Retry-After", body = ErrorEnvelope),
    ))]
pub async fn stream(
    State(s): State<Streams>,
    Limit(limit): Limit,
    QueryParams(q): QueryParams<StreamQuery>,
) -> Result<Response, ApiError> {
    let window = window_param(&s.hub.board, q.window.as_deref())?;
    for (name, given) in [("offset", &q.offset), ("players", &q.players)] {
        if given.is_some() {
            return Err(ApiError::invalid(
                name,
                format!("{name} is not supported on the stream; use GET /leaderboard"),
            ));
        }
    }
    let key = (window, limit);
    let first = s.hub.snapshot(window, limit).await?;
    let permit = s.hub.permits.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            ErrorCode::Unavailable,
            format!("too many open leaderboard streams (at most {MAX_STREAMS}); retry shortly"),
        )
        .retry_after(5)
    })?;
    let rx = s.hub.subscribe(key, first);
    let state = Client {
        rx,
        sent_first: false,
        closed: s.hub.closed.clone(),
        _permit: permit,
    };
    let events = futures::stream::unfold(state, |mut c| async move {
        if c.sent_first {
            tokio::select! {
                changed = c.rx.changed() => changed.ok()?,
                _ = c.closed.cancelled() => return None,
            }
        }
        c.sent_first = true;
        let snap = c.rx.borrow_and_update().clone();
        let event = Event::default()
            .event("leaderboard")
            .id(snap.version.to_string())
            .data(&*snap.json);
        Some((Ok::<_, Infallible>(event), c))
    });
    let mut resp = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(HEARTBEAT).text("heartbeat"))
        .into_response();
    // Reverse proxies (nginx) buffer responses by default, which would hold the events back.
    resp.headers_mut().insert(
        "x-accel-buffering",
        axum::http::HeaderValue::from_static("no"),
    );
    Ok(resp)
}

/// One client's stream state; dropping it (the client left, or the stream ended) releases the
/// receiver and the permit.
struct Client {
    rx: watch::Receiver<Snapshot>,
    sent_first: bool,
    closed: CancellationToken,
    _permit: OwnedSemaphorePermit,
}
