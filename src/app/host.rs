//! Which `Host` the daemon's own routes answer to. A web page elsewhere can point a name it
//! owns at 127.0.0.1 (DNS rebinding) and then read `/status` from the operator's browser as
//! its own origin; the browser still sends that name as `Host`, so such a request is refused:
//! only IP addresses, `localhost`, single-label names, cluster service names (`*.svc`,
//! `*.svc.cluster.local`) and the names in the config's `allowedHosts` are answered. The Git
//! webhook is not behind this check: its deliveries carry a signature instead.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The host part of a `Host` header: without the port, brackets kept off IPv6 literals, lower case.
fn hostname(host: &str) -> String {
    let host = host.trim();
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit())).map_or(host, |(h, _)| h)
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether a request with this `Host` is answered.
pub fn allowed(host: &str, extra: &[String]) -> bool {
    let name = hostname(host);
    name.parse::<std::net::IpAddr>().is_ok()
        || name == "localhost"
        || name.ends_with(".localhost")
        || !name.contains('.')
        || name.ends_with(".svc")
        || name.ends_with(".svc.cluster.local")
        || extra.iter().any(|e| e.eq_ignore_ascii_case(&name))
}

/// The middleware: 421 for a `Host` that is not answered; a request without one (HTTP/1.0)
/// passes.
pub async fn check(State(extra): State<Arc<[String]>>, request: Request, next: Next) -> Response {
    let host = request.headers().get(header::HOST).map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned());
    match host {
        Some(h) if !allowed(&h, &extra) => {
            let name: String = hostname(&h).chars().filter(|c| !c.is_control()).take(100).collect();
            let why = format!(
                "this daemon does not answer to the host `{name}`; add it to `allowedHosts` in the config if it is yours\n"
            );
            (StatusCode::MISDIRECTED_REQUEST, why).into_response()
        }
        _ => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::allowed;

    #[test]
    fn local_and_cluster_names_are_answered_and_others_only_when_listed() {
        for ok in [
            "127.0.0.1:8080",
            "[::1]:8080",
            "10.0.3.7",
            "localhost:8080",
            "capstan",
            "capstan.kube-system.svc:8080",
            "capstan.kube-system.svc.cluster.local",
        ] {
            assert!(allowed(ok, &[]), "{ok}");
        }
        for refused in ["attacker.example.com", "127.0.0.1.nip.io:8080", "localhost.evil.com", "svc.evil.com"] {
            assert!(!allowed(refused, &[]), "{refused}");
        }
        assert!(allowed("Capstan.Example.com:443", &["capstan.example.com".into()]));
    }
}
