//! The webhook endpoint: a push notification from the Git host makes the follower fetch at once.
//! Accepted proofs, all against one shared secret: GitHub's `X-Hub-Signature-256`
//! (HMAC-SHA256 of the body), GitLab's `X-Gitlab-Token`, and a generic
//! `X-Capstan-Signature-256: sha256=<hex>` HMAC for other hosts. Anything else gets 401 and
//! triggers nothing.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::Notify;

pub const PATH: &str = "/hooks/git";

#[derive(Clone)]
struct Hook {
    secret: Arc<Vec<u8>>,
    trigger: Arc<Notify>,
}

/// The router serving [`PATH`].
pub fn router(secret: Vec<u8>, trigger: Arc<Notify>) -> Router {
    Router::new().route(PATH, post(receive)).with_state(Hook { secret: Arc::new(secret), trigger })
}

async fn receive(State(hook): State<Hook>, headers: HeaderMap, body: Bytes) -> (StatusCode, &'static str) {
    match verify(&headers, &body, &hook.secret) {
        Ok(scheme) => {
            tracing::info!(scheme, "webhook accepted; fetching");
            hook.trigger.notify_one();
            (StatusCode::ACCEPTED, "fetching\n")
        }
        Err(why) => {
            tracing::warn!(why, "webhook refused");
            (StatusCode::UNAUTHORIZED, "signature missing or wrong\n")
        }
    }
}

fn hmac_matches(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.trim().strip_prefix("sha256=") else { return false };
    let Ok(sig) = hex::decode(hex_sig) else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// Which scheme proved the request, or why none did.
pub fn verify(headers: &HeaderMap, body: &[u8], secret: &[u8]) -> Result<&'static str, &'static str> {
    if secret.is_empty() {
        return Err("no webhook secret configured");
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(sig) = header("x-hub-signature-256") {
        return if hmac_matches(secret, body, sig) { Ok("github") } else { Err("X-Hub-Signature-256 does not match") };
    }
    if let Some(token) = header("x-gitlab-token") {
        // Compared through an HMAC so the comparison takes the same time whatever matches.
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(b"gitlab");
        let expected = mac.finalize().into_bytes();
        let mut mac = Hmac::<Sha256>::new_from_slice(token.as_bytes()).expect("HMAC takes any key length");
        mac.update(b"gitlab");
        return if mac.verify_slice(&expected).is_ok() { Ok("gitlab") } else { Err("X-Gitlab-Token does not match") };
    }
    if let Some(sig) = header("x-capstan-signature-256") {
        return if hmac_matches(secret, body, sig) {
            Ok("hmac")
        } else {
            Err("X-Capstan-Signature-256 does not match")
        };
    }
    Err("no signature header")
}

/// `sha256=<hex>` of `body` under `secret`, as a sender computes it.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}
