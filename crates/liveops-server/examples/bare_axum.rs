//! The baseline for ingest benchmarks: a bare axum handler that reads the body and answers 202
//! with the same JSON shape as `POST /events`, with no signature, validation or storage. The
//! ratio of liveops' throughput to this one, measured in the same run by the same load
//! generator, is what the closing notes quote.
//!
//! `PORT=18090 cargo run --release -p liveops-server --example bare_axum`

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};

async fn accept(body: Bytes) -> (StatusCode, Json<serde_json::Value>) {
    let _ = body.len();
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"eventId": "baseline", "status": "accepted"})),
    )
}

async fn accept_batch(body: Bytes) -> (StatusCode, Json<serde_json::Value>) {
    let _ = body.len();
    (StatusCode::OK, Json(serde_json::json!({"results": []})))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(18090);
    let app = Router::new()
        .route("/events", post(accept))
        .route("/events/batch", post(accept_batch))
        .route("/healthz", axum::routing::get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("bare axum baseline on http://127.0.0.1:{port}");
    axum::serve(listener, app).await?;
    Ok(())
}
