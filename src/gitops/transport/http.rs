//! Git's smart HTTP protocol, stateless: the ref advertisement is one GET of
//! `info/refs?service=git-upload-pack`, each round of negotiation one POST of `git-upload-pack`.
//! The token goes as basic auth, and only to the repository's own scheme, host and port (or the
//! same host upgraded to https); the first request follows redirects (never from https to http),
//! and the POSTs go where they led.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use git2::transport::{Service, SmartSubtransport, SmartSubtransportStream};
use http::{HeaderValue, Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper::body::{Buf, Bytes, Incoming};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::{self, PemObject};

use super::{Rt, chain, io_error};
use crate::gitops::creds::Auth;

const ADVERTISE: &str = "/info/refs?service=git-upload-pack";
const UPLOAD: &str = "/git-upload-pack";
/// How long a connection, an answer or the next piece of a pack may take.
const QUIET: Duration = Duration::from_secs(120);
const MAX_REDIRECTS: usize = 5;

type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

pub struct Http {
    rt: Rt,
    client: HttpsClient,
    /// Basic auth with the token, read once for the whole fetch.
    authorization: Option<HeaderValue>,
    /// The repository URL after the advertisement's redirects.
    base: Arc<Mutex<Option<String>>>,
}

impl Http {
    /// `url`: the remote's; a plain http one does without trusted roots if there are none.
    pub fn new(auth: Auth, url: Option<&str>) -> Result<Http, git2::Error> {
        let fail = |what: &str, e: &dyn std::fmt::Display| git2::Error::from_str(&format!("{what}: {e}"));
        let rt = Rt::new().map_err(|e| fail("cannot start the HTTP client", &e))?;
        let https = url.and_then(scheme).is_none_or(|s| s == "https");
        let roots = match roots(auth.ca_file.as_deref()) {
            Ok(roots) => roots,
            Err(_) if !https => rustls::RootCertStore::empty(),
            Err(e) => return Err(git2::Error::from_str(&e)),
        };
        let tls = tls_config(roots).map_err(|e| git2::Error::from_str(&e))?;
        let connector =
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        let token = auth.token().map_err(|e| git2::Error::from_str(&e))?;
        let authorization = token.map(|t| basic(auth.username.as_deref().unwrap_or("git"), &t));
        Ok(Http { rt, client, authorization, base: Arc::new(Mutex::new(None)) })
    }
}

/// The system's trusted roots (`SSL_CERT_FILE` and `SSL_CERT_DIR` honoured) and those of
/// `ca_file`.
fn roots(ca_file: Option<&Path>) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Some(file) = ca_file {
        let (added, _) = roots.add_parsable_certificates(ca_certificates(file)?);
        if added == 0 {
            return Err(format!("repository.caFile {} holds no usable CA certificate", file.display()));
        }
    }
    if roots.is_empty() {
        return Err("no trusted CA certificates: install ca-certificates or set SSL_CERT_FILE".into());
    }
    Ok(roots)
}

/// The certificates of a PEM file; an error when it cannot be read or holds none it can read.
pub fn ca_certificates(file: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(file).and_then(|certs| certs.collect::<Result<Vec<_>, _>>());
    match certs {
        Err(pem::Error::Io(e)) => Err(format!("repository.caFile: cannot read {}: {e}", file.display())),
        Ok(certs) if !certs.is_empty() => Ok(certs),
        _ => Err(format!("repository.caFile: {} holds no certificate that reads as PEM", file.display())),
    }
}

fn tls_config(roots: rustls::RootCertStore) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

impl SmartSubtransport for Http {
    fn action(&self, url: &str, action: Service) -> Result<Box<dyn SmartSubtransportStream>, git2::Error> {
        let advertise = match action {
            Service::UploadPackLs => true,
            Service::UploadPack => false,
            Service::ReceivePackLs | Service::ReceivePack => {
                return Err(git2::Error::from_str("capstan only fetches; it never pushes"));
            }
        };
        let base = self.base.lock().unwrap_or_else(|p| p.into_inner()).clone();
        // A query or fragment is no part of the repository's path (libgit2 drops them too).
        let base =
            base.unwrap_or_else(|| url.split(['?', '#']).next().unwrap_or(url).trim_end_matches('/').to_string());
        Ok(Box::new(Exchange {
            rt: self.rt.clone(),
            client: self.client.clone(),
            origin: origin(url),
            authorization: self.authorization.clone(),
            base: self.base.clone(),
            url: format!("{base}{}", if advertise { ADVERTISE } else { UPLOAD }),
            advertise,
            request: Vec::new(),
            body: None,
            pending: Bytes::new(),
            finished: false,
        }))
    }

    fn close(&self) -> Result<(), git2::Error> {
        Ok(())
    }
}

fn basic(user: &str, token: &str) -> HeaderValue {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{token}"));
    let mut value = HeaderValue::from_str(&format!("Basic {encoded}")).unwrap_or(HeaderValue::from_static(""));
    value.set_sensitive(true);
    value
}

/// `scheme://authority` of a URL, in lower case: where credentials may go.
fn origin(url: &str) -> Option<String> {
    let uri: Uri = url.parse().ok()?;
    Some(format!("{}://{}", uri.scheme_str()?, uri.authority()?).to_lowercase())
}

/// A URL's scheme, in lower case.
fn scheme(url: &str) -> Option<String> {
    let uri: Uri = url.parse().ok()?;
    uri.scheme_str().map(str::to_lowercase)
}

/// One request and its answer: libgit2 writes the request body, then reads the answer.
struct Exchange {
    rt: Rt,
    client: HttpsClient,
    /// The configured repository's origin, where the credentials go ([`may_send`]).
    origin: Option<String>,
    authorization: Option<HeaderValue>,
    base: Arc<Mutex<Option<String>>>,
    url: String,
    advertise: bool,
    request: Vec<u8>,
    body: Option<Incoming>,
    pending: Bytes,
    finished: bool,
}

impl Exchange {
    fn send(&mut self) -> std::io::Result<Incoming> {
        let mut url = self.url.clone();
        for _ in 0..=MAX_REDIRECTS {
            let request = self.build(&url)?;
            let response = match self.rt.within(QUIET, self.client.request(request)) {
                None => return Err(io_error(format!("no answer in {} s", QUIET.as_secs()))),
                Some(Err(e)) => return Err(io_error(chain(&e))),
                Some(Ok(r)) => r,
            };
            let status = response.status();
            if status.is_redirection() && self.advertise {
                url = redirect(&url, response.headers().get(header::LOCATION))?;
                continue;
            }
            if !status.is_success() {
                return Err(io_error(refused(status, self.sends_credentials(&url))));
            }
            if self.advertise {
                let kind = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
                let media = kind.and_then(|k| k.split(';').next()).map(str::trim);
                if !media.is_some_and(|m| m.eq_ignore_ascii_case("application/x-git-upload-pack-advertisement")) {
                    return Err(io_error(format!(
                        "the server is not a Git smart-HTTP server (content type {}); check the repository URL",
                        kind.unwrap_or("none")
                    )));
                }
                let Some(base) = url.strip_suffix(ADVERTISE) else {
                    return Err(io_error(
                        "the server redirected to a URL that does not end in /info/refs?service=git-upload-pack; use the repository's URL after the redirect",
                    ));
                };
                *self.base.lock().unwrap_or_else(|p| p.into_inner()) = Some(base.to_string());
            }
            return Ok(response.into_body());
        }
        Err(io_error(format!("more than {MAX_REDIRECTS} redirects")))
    }

    fn sends_credentials(&self, url: &str) -> bool {
        self.authorization.is_some() && may_send(self.origin.as_deref(), url)
    }

    fn build(&self, url: &str) -> std::io::Result<Request<Full<Bytes>>> {
        let (method, accept) =
            if self.advertise { (Method::GET, "*/*") } else { (Method::POST, "application/x-git-upload-pack-result") };
        let mut request = Request::builder()
            .method(method)
            .uri(url)
            .header(header::USER_AGENT, concat!("git/2.0 (capstan/", env!("CARGO_PKG_VERSION"), ")"))
            .header(header::ACCEPT, accept);
        if !self.advertise {
            request = request.header(header::CONTENT_TYPE, "application/x-git-upload-pack-request");
        }
        if let Some(value) = self.authorization.as_ref().filter(|_| self.sends_credentials(url)) {
            request = request.header(header::AUTHORIZATION, value.clone());
        }
        let body = if self.advertise { Bytes::new() } else { Bytes::from(self.request.clone()) };
        request.body(Full::new(body)).map_err(|e| io_error(format!("invalid request URL: {e}")))
    }
}

/// Where a redirect from `from` leads: an http(s) URL, never from https down to http.
fn redirect(from: &str, location: Option<&HeaderValue>) -> std::io::Result<String> {
    let location = location.and_then(|v| v.to_str().ok()).ok_or_else(|| io_error("a redirect without a location"))?;
    let to = if location.starts_with("//") {
        format!("{}:{location}", scheme(from).unwrap_or_default())
    } else if location.starts_with('/') {
        format!("{}{location}", origin(from).unwrap_or_default())
    } else if location.contains("://") {
        location.to_string()
    } else {
        let path = from.split('?').next().unwrap_or(from);
        format!("{}/{location}", &path[..path.rfind('/').unwrap_or(path.len())])
    };
    match (scheme(from).as_deref(), scheme(&to).as_deref()) {
        (Some("https"), Some("https")) | (Some("http"), Some("http" | "https")) => Ok(to),
        (Some("https"), Some("http")) => Err(io_error("the server redirects from https to plain http; refused")),
        _ => Err(io_error("the server redirects to a location that is not an http(s) URL")),
    }
}

/// Credentials go to the repository's own origin (`home`), or to the same host and port over
/// https when the repository was written with http (an upgrade redirect).
fn may_send(home: Option<&str>, url: &str) -> bool {
    let (Some(home), Some(there)) = (home, origin(url)) else { return false };
    let upgrade = home.strip_prefix("http://").is_some_and(|a| there.strip_prefix("https://") == Some(a));
    home == there || upgrade
}

/// What a refusal means, in words that say what to check.
fn refused(status: StatusCode, sent_credentials: bool) -> String {
    match status {
        StatusCode::UNAUTHORIZED if sent_credentials => {
            "authentication failed: the server refused the credentials (401)".into()
        }
        StatusCode::UNAUTHORIZED => "authentication required: the server asks for credentials (401)".into(),
        StatusCode::FORBIDDEN => "authentication failed: the credentials lack access to the repository (403)".into(),
        StatusCode::NOT_FOUND => "repository not found (404)".into(),
        s => format!("the server answered {s}"),
    }
}

impl Write for Exchange {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.request.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Read for Exchange {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if !self.pending.is_empty() {
                let n = buf.len().min(self.pending.len());
                buf[..n].copy_from_slice(&self.pending[..n]);
                self.pending.advance(n);
                return Ok(n);
            }
            if self.finished {
                return Ok(0);
            }
            if self.body.is_none() {
                self.body = Some(self.send()?);
            }
            let Some(body) = self.body.as_mut() else { return Ok(0) };
            match self.rt.within(QUIET, body.frame()) {
                None => return Err(io_error(format!("the server sent nothing for {} s", QUIET.as_secs()))),
                Some(None) => self.finished = true,
                Some(Some(Err(e))) => return Err(io_error(chain(&e))),
                Some(Some(Ok(frame))) => self.pending = frame.into_data().unwrap_or_default(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_stay_with_the_repository_origin() {
        assert_eq!(
            origin("https://git.example.com:8443/org/repo.git").as_deref(),
            Some("https://git.example.com:8443")
        );
        assert_eq!(origin("http://h/r").as_deref(), Some("http://h"));
        assert_eq!(origin("HTTPS://Git.Example.com/r").as_deref(), Some("https://git.example.com"));
        assert_eq!(scheme("HTTPS://h/r").as_deref(), Some("https"));
        let value = basic("bot", "s3cr3t");
        assert!(value.is_sensitive());
        assert_eq!(value.to_str().unwrap(), "Basic Ym90OnMzY3IzdA==");
        assert!(refused(StatusCode::UNAUTHORIZED, true).contains("authentication failed"));
        assert!(refused(StatusCode::UNAUTHORIZED, false).contains("asks for credentials"));
        assert!(refused(StatusCode::NOT_FOUND, false).contains("not found"));
        let home = origin("http://git.example.com/r.git");
        assert!(may_send(home.as_deref(), "http://git.example.com/other"));
        assert!(may_send(home.as_deref(), "https://git.example.com/r.git"));
        assert!(!may_send(home.as_deref(), "http://git.example.com:8080/r.git"));
        assert!(!may_send(home.as_deref(), "https://evil.example/r.git"));
        let https = origin("https://git.example.com/r.git");
        assert!(!may_send(https.as_deref(), "http://git.example.com/r.git"));
    }

    #[test]
    fn redirects_resolve_and_never_go_down_to_http() {
        let to = |from: &str, location: &str| redirect(from, Some(&HeaderValue::from_str(location).unwrap()));
        let from = "https://h/org/r.git/info/refs?service=git-upload-pack";
        assert_eq!(to(from, "/new/r.git/info/refs").unwrap(), "https://h/new/r.git/info/refs");
        assert_eq!(to(from, "//m.example/r/info/refs").unwrap(), "https://m.example/r/info/refs");
        assert_eq!(to(from, "refs2").unwrap(), "https://h/org/r.git/info/refs2");
        assert_eq!(to("http://h/r", "https://h/r").unwrap(), "https://h/r");
        assert!(to(from, "http://h/r").unwrap_err().to_string().contains("plain http"));
        assert!(to(from, "HTTP://h/r").is_err());
        assert!(to(from, "file:///etc/passwd").is_err());
        assert!(redirect(from, None).is_err());
    }
}
