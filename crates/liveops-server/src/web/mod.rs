//! The web role (`docs/api.md`): the operator dashboard at `/`, the demo game at `/play`, the
//! API reference at `/docs` and their static assets under `/assets/`, all from files embedded
//! in the binary.
//!
//! The pages are plain HTML, CSS and ES modules in `crates/liveops-server/web/` with no build
//! step: release builds embed them (`rust-embed`), debug builds read them from that folder at
//! run time, so editing a page needs no recompile. Nothing is fetched from elsewhere at build or
//! run time: the libraries are vendored (uPlot for the dashboard's charts, Redoc for `/docs`;
//! see `web/vendor/*/README.md`). Everything the pages show comes from the JSON API (`/docs`
//! renders `/openapi.json`); this module only serves files.
//!
//! Responses carry a strong `ETag` (the file's SHA-256, computed at build time) with
//! `Cache-Control: no-cache`: a browser revalidates and gets `304` until the binary changes,
//! so a reload after an upgrade never mixes old and new scripts. The pages get a strict
//! Content-Security-Policy: scripts, styles and connections only from this origin.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use rust_embed::RustEmbed;

use crate::error::ApiError;

#[derive(RustEmbed)]
#[folder = "web/"]
struct Assets;

/// Scripts, styles, images and API calls only from this origin; no inline script or style
/// (the pages set styles through the CSSOM, which the policy allows), no framing.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The API reference's policy: as [`CSP`], except that Redoc injects its styles as `<style>`
/// elements and runs its search index in a worker made from a `blob:` URL. Scripts still come
/// only from this origin, and the page reads nothing but `/openapi.json`.
const DOCS_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; \
object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub fn router() -> Router {
    Router::new()
        .route(
            "/",
            get(|headers: HeaderMap| async move { page("index.html", CSP, &headers) }),
        )
        .route(
            "/play",
            get(|headers: HeaderMap| async move { page("play.html", CSP, &headers) }),
        )
        .route(
            "/docs",
            get(|headers: HeaderMap| async move { page("docs.html", DOCS_CSP, &headers) }),
        )
        .route("/assets/{*path}", get(asset))
}

fn page(name: &str, csp: &'static str, headers: &HeaderMap) -> Response {
    let mut resp = file(name, headers);
    if resp.status().is_success() || resp.status() == StatusCode::NOT_MODIFIED {
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(csp),
        );
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    resp
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    // The pages are served at their routes only, so each has one URL (and its CSP).
    if path.ends_with(".html") {
        return ApiError::not_found(format!("no asset {path:?}")).into_response();
    }
    file(&path, &headers)
}

/// The embedded file at `path`, or `304` if the client's `If-None-Match` names its hash.
fn file(path: &str, headers: &HeaderMap) -> Response {
    // `..` cannot escape: rust-embed looks names up in its own table (release) or checks that
    // the resolved path stays inside the folder (debug).
    let Some(f) = Assets::get(path) else {
        return ApiError::not_found(format!("no asset {path:?}")).into_response();
    };
    let etag = format!("\"{}\"", hex::encode(f.metadata.sha256_hash()));
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                content_type(path, f.metadata.mimetype()),
            )],
            f.data,
        )
            .into_response()
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// The guessed type with a charset for text: browsers refuse ES modules served with a wrong
/// type, and text without a charset may be decoded wrongly.
fn content_type(path: &str, guessed: &str) -> String {
    let guessed = if path.ends_with(".mjs") {
        "text/javascript"
    } else {
        guessed
    };
    if guessed.starts_with("text/") || guessed == "application/javascript" {
        format!("{guessed}; charset=utf-8")
    } else {
        guessed.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pages_and_the_vendored_library_are_embedded() {
        for name in [
            "index.html",
            "play.html",
            "docs.html",
            "vendor/uplot/uPlot.iife.min.js",
            "vendor/uplot/LICENSE",
            "vendor/redoc/redoc.standalone.js",
            "vendor/redoc/LICENSE",
        ] {
            assert!(Assets::get(name).is_some(), "{name} is not embedded");
        }
    }

    #[test]
    fn scripts_get_a_javascript_type_with_a_charset() {
        assert_eq!(
            content_type("js/app.js", "text/javascript"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("x.png", "image/png"), "image/png");
    }
}
