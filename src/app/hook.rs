//! The webhook route as the daemon serves it: [`crate::gitops::webhook`] behind a body limit of
//! its own ([`MAX_BODY`], what GitHub may send; the other routes keep a small one) and a check of
//! the headers before the body is read. A request that carries no signature header, a malformed
//! one, a wrong GitLab token (which needs no body), or announces a body above the limit is
//! answered at once, so an unauthenticated sender costs no buffer; a signed body is read, up to
//! the limit, and its HMAC checked by the webhook handler. At most [`AT_ONCE`] bodies are read at
//! a time (a well-formed signature header is easy to forge), so webhooks can never hold more
//! than `AT_ONCE × MAX_BODY` of memory; one more gets 503 (the poll picks the change up anyway).

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::{Notify, Semaphore};

use crate::gitops::webhook;

/// The largest webhook body accepted: GitHub caps its payloads at 25 MB.
pub const MAX_BODY: usize = 25 * 1024 * 1024;

/// How many webhook bodies are read at once.
pub const AT_ONCE: usize = 4;

struct Gate {
    secret: Vec<u8>,
    reading: Semaphore,
}

/// `/hooks/git`, with its own body limit and the header check in front.
pub fn router(secret: Vec<u8>, trigger: Arc<Notify>) -> Router {
    let checked = Arc::new(Gate { secret: secret.clone(), reading: Semaphore::new(AT_ONCE) });
    webhook::router(secret, trigger)
        .layer(axum::middleware::from_fn_with_state(checked, before_body))
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

async fn before_body(State(gate): State<Arc<Gate>>, request: Request, next: Next) -> Response {
    match check_headers(request.headers(), &gate.secret) {
        Ok(()) => {
            let Ok(_reading) = gate.reading.try_acquire() else {
                tracing::warn!("webhook refused: {AT_ONCE} bodies are being read already");
                return (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "5")], "busy, retry\n")
                    .into_response();
            };
            next.run(request).await
        }
        Err((status, why)) => {
            tracing::warn!(why, "webhook refused before reading its body");
            let text = if status == StatusCode::PAYLOAD_TOO_LARGE { "body too large\n" } else { REFUSED };
            (status, text).into_response()
        }
    }
}

/// The same answer the webhook handler gives a wrong signature.
const REFUSED: &str = "signature missing or wrong\n";

/// What can be refused from the headers alone.
fn check_headers(headers: &HeaderMap, secret: &[u8]) -> Result<(), (StatusCode, &'static str)> {
    let length = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if length.is_some_and(|n| n > MAX_BODY as u64) {
        return Err((StatusCode::PAYLOAD_TOO_LARGE, "body above the webhook limit"));
    }
    let signature = ["x-hub-signature-256", "x-capstan-signature-256"].iter().find_map(|h| headers.get(*h));
    if let Some(value) = signature {
        // Only a well-formed HMAC is worth reading the body for.
        let hmac = value.to_str().ok().and_then(|v| v.trim().strip_prefix("sha256="));
        return match hmac {
            Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(()),
            _ => Err((StatusCode::UNAUTHORIZED, "the signature header is not sha256=<64 hex digits>")),
        };
    }
    if headers.contains_key("x-gitlab-token") {
        // The token proves the sender without the body.
        return webhook::verify(headers, &[], secret).map(|_| ()).map_err(|why| (StatusCode::UNAUTHORIZED, why));
    }
    Err((StatusCode::UNAUTHORIZED, "no signature header"))
}
