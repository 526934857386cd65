//! The daemon's HTTP surface: the status page at `/` (its files under `/assets/`, the board it
//! draws at `/status/board`), `/metrics` (Prometheus), `/healthz`, `/readyz`, `/status` (JSON),
//! the Git webhook ([`super::hook`]), and, with the simulated cluster, `/sim/scale` to drive
//! workloads ([`super::scale`]). None of these routes reads a body: they keep a small limit.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;

pub use super::shared::Shared;

/// The body limit of the routes here (they read none).
const BODY_LIMIT: usize = 64 * 1024;

/// The routes, answering only to the hosts [`super::host`] allows (`extra` from the config).
pub fn router(shared: Arc<Shared>, extra: &[String]) -> Router {
    let hosts: Arc<[String]> = extra.iter().map(|h| h.to_ascii_lowercase()).collect();
    Router::new()
        .route("/", get(index))
        .route("/assets/{name}", get(asset))
        .route("/status/board", get(board))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .route("/sim/scale", post(super::scale::handler))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(hosts, super::host::check))
        .with_state(shared)
}

/// 503 once a task has failed.
async fn healthz(State(s): State<Arc<Shared>>) -> (StatusCode, String) {
    match s.failure.get() {
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("failed: {why}\n")),
        None => (StatusCode::OK, "ok\n".into()),
    }
}

async fn readyz(State(s): State<Arc<Shared>>) -> (StatusCode, String) {
    let blocked = s.blocked_by.lock().expect("status").join("\n");
    if let Some(why) = s.failure.get() {
        (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n"))
    } else if s.ready.load(Ordering::Relaxed) && !blocked.is_empty() {
        // Ready, and waiting on purpose: the body says for what.
        (StatusCode::OK, format!("ready, and waiting: {blocked}\n"))
    } else if s.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n".into())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no policy in force yet, or the last capacity pass failed\n".into(),
        )
    }
}

async fn metrics(State(s): State<Arc<Shared>>) -> Response {
    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &s.registry) {
        return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response()
}

async fn status(State(s): State<Arc<Shared>>) -> axum::Json<Value> {
    axum::Json(super::status::document(&s))
}

/// The headers of every page file: its type, the page's security policy, no sniffing, and
/// revalidation on each load (the files change with the binary).
fn page_headers(content_type: &'static str) -> [(header::HeaderName, &'static str); 5] {
    [
        (header::CONTENT_TYPE, content_type),
        (header::CONTENT_SECURITY_POLICY, crate::view::page::CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-cache"),
    ]
}

async fn index() -> Response {
    (page_headers("text/html; charset=utf-8"), crate::view::page::INDEX).into_response()
}

async fn asset(Path(name): Path<String>) -> Response {
    match crate::view::page::asset(&name) {
        Some((content_type, body)) => (page_headers(content_type), body).into_response(),
        None => (StatusCode::NOT_FOUND, "no such file\n").into_response(),
    }
}

/// The header carrying the daemon's clock (seconds since the Unix epoch) when it answered, so
/// ages can be counted on the page without the board being sent again.
pub const CLOCK_HEADER: &str = "x-capstan-clock";

/// The board, or 304 when the client holds the current one (`If-None-Match`); 503 until the
/// first is built.
async fn board(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let now =
        HeaderValue::from_str(&format!("{:.3}", s.clock.now().as_secs_f64())).expect("a number is a header value");
    let Some(b) = s.board.lock().expect("board").clone() else {
        let mut r = (StatusCode::SERVICE_UNAVAILABLE, "the status board is not built yet\n").into_response();
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    };
    let etag = HeaderValue::from_str(&b.etag).expect("a digest is a header value");
    let fresh = headers.get(header::IF_NONE_MATCH).is_some_and(|v| v.as_bytes() == etag.as_bytes());
    let mut r = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, "application/json")], b.body.clone()).into_response()
    };
    let h = r.headers_mut();
    h.insert(header::ETAG, etag);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(CLOCK_HEADER, now);
    r
}
