//! The HTTP edge: the one layer every request passes through, on every route.
//!
//! It does three jobs in one layer:
//! - the trace id: taken from `traceparent` or `X-Request-Id`, else made; log lines inside the
//!   request carry it (a span), and the answer echoes it in `X-Trace-Id`;
//! - the HTTP metrics of `docs/api.md` (`http_requests_total`, `http_requests_duration_seconds`)
//!   by method, route template, status and the `service` (the role the process runs);
//! - JSON errors: every 4xx/5xx answer is `{"error": {...}}` (`docs/api.md`), also the ones axum
//!   makes itself (no route, wrong method, bad path or query) and a handler's panic, which
//!   becomes a 500 for that request instead of a dead connection task.
//!
//! Why by hand rather than with `axum::middleware::from_fn` and tower-http's `CatchPanicLayer`:
//! axum applies a router layer to each route, and it clones the layered service and boxes its
//! future on every request at every level; `from_fn` adds another clone, a boxed `Next` and a
//! boxed future of its own. On the single-event ingest path such layers cost about a fifth of
//! the server's CPU per event (`docs/performance.md` says how the ingest path is measured).
//! This one polls the handler's future in place; its own allocations are the trace id's header
//! value and, on the rare error answer that needs rewriting, the rewrite. The metric handles are
//! registered once per series and found again without allocating.

use std::convert::Infallible;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::future::BoxFuture;
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::error::ErrorCode;

/// Wraps each route in [`Edge`]; put it on the router last, so that it sees every answer.
#[derive(Clone, Copy, Debug)]
pub struct EdgeLayer {
    /// The `service` label of the HTTP metrics: the role this process runs (`all`, `gateway`,
    /// ...), as `liveops serve --role` names it.
    service: &'static str,
}

impl EdgeLayer {
    pub fn new(service: &'static str) -> Self {
        EdgeLayer { service }
    }
}

impl<S> Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Edge<S> {
        Edge {
            inner,
            service: self.service,
        }
    }
}

/// One route behind the edge.
#[derive(Clone, Debug)]
pub struct Edge<S> {
    inner: S,
    service: &'static str,
}

impl<S> Service<Request> for Edge<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = EdgeFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match ready!(self.inner.poll_ready(cx)) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(never) => match never {},
        }
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let started = Instant::now();
        let trace = trace_id(&req);
        let span = tracing::info_span!("request", trace_id = trace.to_str().unwrap_or_default());
        let method = method_label(req.method());
        let path = req.extensions().get::<MatchedPath>().cloned();
        let state = match catch_unwind(AssertUnwindSafe(|| span.in_scope(|| self.inner.call(req))))
        {
            Ok(future) => Stage::Handler { future },
            Err(panic) => Stage::Rewriting {
                future: Box::pin(std::future::ready(panicked(panic))),
            },
        };
        EdgeFuture {
            stage: state,
            started,
            service: self.service,
            method,
            path,
            trace,
            span,
        }
    }
}

pin_project! {
    /// The handler's future, polled in place; then, only for an error answer that is not JSON
    /// yet, the rewrite (it reads the body, so it is a future of its own).
    pub struct EdgeFuture<F> {
        #[pin]
        stage: Stage<F>,
        started: Instant,
        service: &'static str,
        method: &'static str,
        path: Option<MatchedPath>,
        trace: HeaderValue,
        span: tracing::Span,
    }
}

pin_project! {
    #[project = StageProj]
    enum Stage<F> {
        Handler { #[pin] future: F },
        Rewriting { future: BoxFuture<'static, Response> },
    }
}

impl<F> Future for EdgeFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let mut resp = loop {
            match this.stage.as_mut().project() {
                StageProj::Handler { future } => {
                    let _entered = this.span.enter();
                    // A panic leaves the handler's future unusable; it is never polled again.
                    let resp = match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
                        Ok(Poll::Pending) => return Poll::Pending,
                        Ok(Poll::Ready(Ok(resp))) => resp,
                        Ok(Poll::Ready(Err(never))) => match never {},
                        Err(panic) => panicked(panic),
                    };
                    if is_json_or_success(&resp) {
                        break resp;
                    }
                    this.stage.set(Stage::Rewriting {
                        future: Box::pin(json_error(resp)),
                    });
                }
                StageProj::Rewriting { future } => break ready!(future.as_mut().poll(cx)),
            }
        };
        resp.headers_mut().insert("x-trace-id", this.trace.clone());
        let path = this.path.as_ref().map_or("unmatched", MatchedPath::as_str);
        record_http(
            Series {
                service: this.service,
                method: this.method,
                path,
                status: resp.status().as_u16(),
            },
            this.started.elapsed().as_secs_f64(),
        );
        Poll::Ready(Ok(resp))
    }
}

/// The request's trace id: the trace-id of a W3C `traceparent` header, else `X-Request-Id`,
/// else a fresh random one, as a header value ready to echo.
fn trace_id(req: &Request) -> HeaderValue {
    let headers = req.headers();
    if let Some(tp) = headers.get("traceparent").map(HeaderValue::as_bytes) {
        let mut parts = tp.split(|&b| b == b'-');
        let (_, id) = (parts.next(), parts.next().unwrap_or_default());
        if parts.count() == 2 && id.len() == 32 && id.iter().all(u8::is_ascii_hexdigit) {
            if let Ok(v) = HeaderValue::from_bytes(&id.to_ascii_lowercase()) {
                return v;
            }
        }
    }
    if let Some(id) = headers.get("x-request-id") {
        let b = id.as_bytes();
        if !b.is_empty()
            && b.len() <= 64
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
        {
            return id.clone();
        }
    }
    let mut hex = [0u8; 32];
    // Cannot fail: 16 bytes always fill 32 hex digits.
    let _ = hex::encode_to_slice(rand::random::<[u8; 16]>(), &mut hex);
    // Cannot fail: hex digits are valid header bytes.
    HeaderValue::from_bytes(&hex).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

/// The method as a label: the standard ones by name, anything else as `other`, so a client
/// inventing methods cannot grow the metric series without bound.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// One series of the HTTP metrics: the labels of a request once it is answered.
#[derive(Clone, Copy, Debug)]
struct Series<'a> {
    service: &'static str,
    method: &'static str,
    /// The route template (`/players/{player_id}/progress`), or `unmatched`.
    path: &'a str,
    status: u16,
}

/// The handles of the registered series: by route template, then by (service, method, status).
type Handles = std::collections::HashMap<
    String,
    std::collections::HashMap<
        (&'static str, &'static str, u16),
        (metrics::Counter, metrics::Histogram),
    >,
>;

fn handles() -> &'static parking_lot::RwLock<Handles> {
    static HANDLES: OnceLock<parking_lot::RwLock<Handles>> = OnceLock::new();
    HANDLES.get_or_init(Default::default)
}

/// Counts and times one request in its series, registered once and then found under a read
/// lock without allocating: building the labelled key and looking it up in the recorder on
/// every request costs about 2% of the server's CPU per event. The series are bounded
/// (services and methods as above, route templates, three-digit statuses), and so is this map.
fn record_http(series: Series<'_>, secs: f64) {
    let key = (series.service, series.method, series.status);
    if let Some((count, duration)) = handles().read().get(series.path).and_then(|s| s.get(&key)) {
        count.increment(1);
        duration.record(secs);
        return;
    }
    let (count, duration) = register(series);
    count.increment(1);
    duration.record(secs);
}

/// Registers a series (if new) and returns its handles.
fn register(series: Series<'_>) -> (metrics::Counter, metrics::Histogram) {
    let mut handles = handles().write();
    handles
        .entry(series.path.to_string())
        .or_default()
        .entry((series.service, series.method, series.status))
        .or_insert_with(|| {
            let labels = [
                ("method", series.method.to_string()),
                ("path", series.path.to_string()),
                ("status", series.status.to_string()),
                ("service", series.service.to_string()),
            ];
            (
                metrics::counter!(crate::ops::catalog::HTTP_REQUESTS_TOTAL, &labels),
                metrics::histogram!(crate::ops::catalog::HTTP_REQUESTS_DURATION_SECONDS, &labels),
            )
        })
        .clone()
}

/// Whether the answer goes out as it is: a success, or an error that is JSON already (every
/// handler error is an `ApiError`).
fn is_json_or_success(resp: &Response) -> bool {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return true;
    }
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"))
}

/// A handler's panic as a 500; the panic message goes to the log, never to the client.
fn panicked(panic: Box<dyn std::any::Any + Send>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    tracing::error!(panic = message, "a handler panicked");
    error_body(
        StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::Internal,
        "internal error",
    )
}

/// An error answer axum made itself (plain text) rewritten as a JSON error with the same status
/// and `Retry-After`.
async fn json_error(resp: Response) -> Response {
    let status = resp.status();
    let retry_after = resp.headers().get(header::RETRY_AFTER).cloned();
    let text = match axum::body::to_bytes(resp.into_body(), 16 * 1024).await {
        Ok(b) => String::from_utf8_lossy(&b).trim().to_string(),
        Err(_) => String::new(),
    };
    let (code, message) = match status {
        StatusCode::NOT_FOUND => (ErrorCode::NotFound, "no such route".to_string()),
        StatusCode::METHOD_NOT_ALLOWED => (
            ErrorCode::InvalidRequest,
            "method not allowed on this route".to_string(),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            ErrorCode::PayloadTooLarge,
            "the body is too large".to_string(),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (ErrorCode::UnsupportedMediaType, text),
        s if s.is_server_error() => {
            tracing::error!(status = s.as_u16(), body = %text, "internal error");
            (ErrorCode::Internal, "internal error".to_string())
        }
        _ => (
            ErrorCode::InvalidRequest,
            if text.is_empty() {
                "invalid request".into()
            } else {
                text
            },
        ),
    };
    let mut out = error_body(status, code, &message);
    if let Some(v) = retry_after {
        out.headers_mut().insert(header::RETRY_AFTER, v);
    }
    out
}

fn error_body(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    fn app() -> Router {
        async fn boom() -> &'static str {
            panic!("the handler's own words")
        }
        async fn busy() -> Response {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "3")],
                "down for a moment",
            )
                .into_response()
        }
        Router::new()
            .route("/ok", get(|| async { "fine" }))
            .route("/boom", get(boom))
            .route("/busy", get(busy))
            .layer(EdgeLayer::new("test"))
    }

    async fn send(method: &str, uri: &str, headers: &[(&str, &str)]) -> (Response, String) {
        let mut req = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = app()
            .oneshot(req.body(axum::body::Body::empty()).unwrap())
            .await
            .unwrap();
        let (parts, body) = resp.into_parts();
        let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        let body = String::from_utf8(body.to_vec()).unwrap();
        (Response::from_parts(parts, axum::body::Body::empty()), body)
    }

    fn json(body: &str) -> serde_json::Value {
        serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_a_json_500_without_its_message() {
        let (resp, body) = send("GET", "/boom", &[]).await;
        assert_eq!(resp.status(), 500);
        assert_eq!(json(&body)["error"]["code"], "internal");
        assert!(!body.contains("own words"), "{body}");
        assert!(resp.headers().contains_key("x-trace-id"));
        // The router still answers after the panic.
        assert_eq!(send("GET", "/ok", &[]).await.1, "fine");
    }

    #[tokio::test]
    async fn axum_s_own_errors_become_json_with_their_status() {
        let (resp, body) = send("GET", "/nowhere", &[]).await;
        assert_eq!(resp.status(), 404);
        assert_eq!(json(&body)["error"]["code"], "not_found");
        let (resp, body) = send("DELETE", "/ok", &[]).await;
        assert_eq!(resp.status(), 405);
        assert_eq!(json(&body)["error"]["code"], "invalid_request");
        let (resp, body) = send("GET", "/busy", &[]).await;
        assert_eq!(resp.status(), 503);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "3");
        assert_eq!(json(&body)["error"]["message"], "internal error");
    }

    #[tokio::test]
    async fn successes_pass_untouched_with_a_trace_id() {
        let (resp, body) = send("GET", "/ok", &[]).await;
        assert_eq!((resp.status().as_u16(), body.as_str()), (200, "fine"));
        let made = resp.headers()["x-trace-id"].to_str().unwrap();
        assert_eq!(made.len(), 32);
        assert!(made.bytes().all(|b| b.is_ascii_hexdigit()));
        let (other, _) = send("GET", "/ok", &[]).await;
        assert_ne!(
            other.headers()["x-trace-id"],
            made,
            "a fresh id per request"
        );
    }

    #[tokio::test]
    async fn the_trace_id_comes_from_traceparent_then_x_request_id() {
        let tp = "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01";
        let (resp, _) = send("GET", "/ok", &[("traceparent", tp)]).await;
        assert_eq!(
            resp.headers()["x-trace-id"],
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        let (resp, _) = send("GET", "/ok", &[("x-request-id", "req_42-a")]).await;
        assert_eq!(resp.headers()["x-trace-id"], "req_42-a");
        // Malformed ones are ignored: a fresh id instead.
        for (name, value) in [
            ("traceparent", "00-xyz-00f067aa0ba902b7-01"),
            ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-01"),
            ("x-request-id", "has spaces"),
        ] {
            let (resp, _) = send("GET", "/ok", &[(name, value)]).await;
            let id = resp.headers()["x-trace-id"].to_str().unwrap();
            assert_eq!(id.len(), 32, "{name}: {value} gave {id}");
            assert_ne!(id, value);
        }
    }
}
