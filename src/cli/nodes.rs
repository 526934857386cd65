//! `capstan nodes`: the daemon's status board (`GET /status/board`) as a table in the terminal
//! ([`crate::view::table`]), or its JSON for scripts. Plain `http://` only, as the daemon serves
//! it; a daemon in a cluster is reached through `kubectl port-forward`.
//!
//! ```text
//! --url ─► board_uri ─► fetch (10 s timeout; 503 retried for 5 s) ─► body + daemon's clock
//!                                                   ├─ --json ──► the body as received
//!                                                   └─ else ────► table::render(board, clock)
//! ```
//!
//! Exit codes: 0 shown, 1 the daemon cannot be reached or its answer cannot be shown, 3 usage.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, Uri, header};
use clap::{Args, ValueEnum};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

use super::Output;
use super::exit::{fail, usage};
use super::out::out;
use crate::app::http::CLOCK_HEADER;
use crate::view::{Board, table};

/// How long one request may take, connection to last byte.
const TIMEOUT: Duration = Duration::from_secs(10);
/// How long a daemon that has not built its first board is waited for.
const NOT_BUILT_WAIT: Duration = Duration::from_secs(5);
/// Time between redraws with `--watch`.
const EVERY: Duration = Duration::from_secs(2);
/// The largest body read: a board of 150,000 pods is a few megabytes.
const BODY_LIMIT: usize = 64 << 20;
/// At most this much of an error body is shown.
const SHOWN: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Colour {
    /// On a terminal, unless `NO_COLOR` is set.
    Auto,
    Always,
    Never,
}

#[derive(Debug, Args)]
pub struct NodesArgs {
    /// The daemon, as its `listen` setting (or `kubectl port-forward deploy/capstan 8080`) serves it.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Output format: the table (text), or the board's JSON as the daemon sent it (json), for
    /// scripts; yaml is refused, as the board is passed on unchanged.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
    output: Output,
    /// The same as `-o json` (the older flag).
    #[arg(long, hide = true, conflicts_with = "watch")]
    json: bool,
    /// Redraw every 2 seconds until interrupted.
    #[arg(long)]
    watch: bool,
    /// Colour the table: auto (on a terminal, unless NO_COLOR is set), always or never.
    #[arg(long, value_enum, default_value_t = Colour::Auto)]
    color: Colour,
}

/// Why the board cannot be shown; each is exit 1.
#[derive(Debug, thiserror::Error)]
enum Failure {
    /// No connection: nothing listens there, or the host is unknown.
    #[error(
        "cannot reach capstan at {0}: {1} (is `capstan run` listening there? its `listen` setting, or `kubectl port-forward deploy/capstan 8080`)"
    )]
    Unreachable(String, String),
    /// Connected, but the exchange broke off.
    #[error("the connection to capstan at {0} failed: {1}")]
    Broken(String, String),
    #[error("capstan at {0} did not answer within {secs} s", secs = TIMEOUT.as_secs())]
    Timeout(String),
    /// Still 503 after [`NOT_BUILT_WAIT`].
    #[error("capstan at {0} has not built its status board yet (it has just started?); try again in a few seconds")]
    NotBuilt(String),
    /// Any other status: the status and the body's first line, cut short.
    #[error("capstan at {0} answered {1}{2}")]
    Status(String, StatusCode, String),
    #[error("the board from {0} is not valid: {1}")]
    BadJson(String, String),
}

/// The body of `/status/board`; its `status` is not needed here.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Served {
    built_at: f64,
    board: Board,
}

type Http = Client<HttpConnector, Empty<Bytes>>;

pub fn run(args: &NodesArgs) -> ExitCode {
    let uri = match board_uri(&args.url) {
        Ok(u) => u,
        Err(e) => return usage(e),
    };
    let json = match args.output.or_json(args.json) {
        Output::Text => false,
        Output::Json if args.watch => return usage("-o json cannot be used with --watch"),
        Output::Json => true,
        Output::Yaml => return usage("capstan nodes prints text or json (the board as the daemon sent it), not yaml"),
    };
    let colour = match args.color {
        Colour::Always => true,
        Colour::Never => false,
        Colour::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let client: Http = Client::builder(TokioExecutor::new()).build_http();
    runtime.block_on(async {
        let mut cache = None;
        if !args.watch {
            return match show(&client, &uri, &args.url, json, colour, &mut cache).await {
                Ok(text) => {
                    out!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            };
        }
        let terminal = std::io::stdout().is_terminal();
        loop {
            let shown = show(&client, &uri, &args.url, json, colour, &mut cache).await;
            let text = shown.unwrap_or_else(|e| format!("error: {e}\n"));
            let mut stdout = std::io::stdout().lock();
            let clear = if terminal { "\x1b[H\x1b[2J" } else { "\n" };
            if let Err(e) = write!(stdout, "{clear}{text}").and_then(|()| stdout.flush()) {
                // The reader went away (`| head`): done.
                return if e.kind() == std::io::ErrorKind::BrokenPipe { ExitCode::SUCCESS } else { fail(e) };
            }
            drop(stdout);
            tokio::time::sleep(EVERY).await;
        }
    })
}

/// The address of the board under `url` (`http://HOST:PORT`, maybe with a path prefix), or why
/// `url` cannot be used.
fn board_uri(url: &str) -> Result<Uri, String> {
    let uri: Uri = url.parse().map_err(|e| format!("--url `{url}` is not a URL ({e}); give http://HOST:PORT"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(format!(
                "--url `{url}`: capstan nodes speaks plain http://, as the daemon serves; for a daemon in a \
                 cluster, run `kubectl port-forward deploy/capstan 8080` and use --url http://127.0.0.1:8080"
            ));
        }
        _ => return Err(format!("--url `{url}` is not an http:// URL; give http://HOST:PORT")),
    }
    let Some(authority) = uri.authority().filter(|a| !a.host().is_empty()) else {
        return Err(format!("--url `{url}` has no host; give http://HOST:PORT"));
    };
    if authority.as_str().contains('@') {
        // Not echoed: it holds credentials, which the daemon does not take anyway.
        return Err("--url holds a user name or password; the daemon takes none: give http://HOST:PORT".into());
    }
    if uri.query().is_some() {
        return Err(format!("--url `{url}` has a query; give http://HOST:PORT"));
    }
    let path = format!("{}/status/board", uri.path().trim_end_matches('/'));
    Uri::builder()
        .scheme("http")
        .authority(authority.clone())
        .path_and_query(path)
        .build()
        .map_err(|e| format!("--url `{url}` is not a URL ({e}); give http://HOST:PORT"))
}

/// The last board received and its entity tag: `--watch` asks with `If-None-Match`, and a
/// `304 Not Modified` redraws it at the daemon's new clock.
type Cache = Option<(HeaderValue, Bytes)>;

/// The text to print: the JSON as received, or the table.
async fn show(
    client: &Http,
    uri: &Uri,
    url: &str,
    json: bool,
    colour: bool,
    cache: &mut Cache,
) -> Result<String, Failure> {
    let (headers, fresh) = fetch(client, uri, url, cache.as_ref().map(|(tag, _)| tag)).await?;
    if let Some(body) = fresh {
        *cache = headers.get(header::ETAG).map(|tag| (tag.clone(), body.clone()));
        if cache.is_none() {
            return render(&headers, &body, url, json, colour);
        }
    }
    let (_, body) = cache.as_ref().expect("a 304 answers a request that had a board");
    render(&headers, body, url, json, colour)
}

fn render(headers: &HeaderMap, body: &[u8], url: &str, json: bool, colour: bool) -> Result<String, Failure> {
    let bad = |e: serde_json::Error| Failure::BadJson(url.to_string(), e.to_string());
    if json {
        serde_json::from_slice::<serde::de::IgnoredAny>(body).map_err(bad)?;
        let text = String::from_utf8_lossy(body);
        let text = if std::io::stdout().is_terminal() { escape_controls(&text) } else { text.into_owned() };
        return Ok(if text.ends_with('\n') { text } else { format!("{text}\n") });
    }
    let served: Served = serde_json::from_slice(body).map_err(bad)?;
    // The daemon's clock when it answered, else when the board last changed.
    let clock = headers.get(CLOCK_HEADER).and_then(|v| v.to_str().ok()?.trim().parse::<f64>().ok());
    Ok(table::render(&served.board, clock.unwrap_or(served.built_at), colour))
}

/// JSON with the C1 controls and bidirectional overrides that valid JSON may carry raw in its
/// strings written as `\uXXXX` escapes instead: still the same JSON, and no terminal acts on them.
fn escape_controls(json: &str) -> String {
    let risky = |c: char| matches!(c, '\u{80}'..='\u{9f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if risky(c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// The board's headers and body, or no body when `etag` is still current (304); a 503 (the
/// first board not built yet) is asked again for up to [`NOT_BUILT_WAIT`].
async fn fetch(
    client: &Http,
    uri: &Uri,
    url: &str,
    etag: Option<&HeaderValue>,
) -> Result<(HeaderMap, Option<Bytes>), Failure> {
    let until = Instant::now() + NOT_BUILT_WAIT;
    loop {
        let (status, headers, body) = tokio::time::timeout(TIMEOUT, get(client, uri, url, etag))
            .await
            .map_err(|_| Failure::Timeout(url.to_string()))??;
        match status {
            StatusCode::OK => return Ok((headers, Some(body))),
            StatusCode::NOT_MODIFIED if etag.is_some() => return Ok((headers, None)),
            _ => {}
        }
        let left = until.saturating_duration_since(Instant::now());
        if status == StatusCode::SERVICE_UNAVAILABLE {
            if left.is_zero() {
                return Err(Failure::NotBuilt(url.to_string()));
            }
            let asked = headers.get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()?.parse::<f64>().ok());
            let wait = Duration::from_secs_f64(asked.unwrap_or(1.0).clamp(0.1, 1.0)).min(left);
            tokio::time::sleep(wait).await;
            continue;
        }
        let first = String::from_utf8_lossy(&body).lines().next().unwrap_or("").trim().to_string();
        let mut said: String = table::clean(&first).chars().take(SHOWN).collect();
        if !said.is_empty() {
            said.insert_str(0, ": ");
        }
        if status == StatusCode::NOT_FOUND {
            said.push_str(" (a capstan older than `capstan nodes`, or another server?)");
        }
        return Err(Failure::Status(url.to_string(), status, said));
    }
}

async fn get(
    client: &Http,
    uri: &Uri,
    url: &str,
    etag: Option<&HeaderValue>,
) -> Result<(StatusCode, HeaderMap, Bytes), Failure> {
    let mut request = Request::get(uri.clone());
    if let Some(tag) = etag {
        request = request.header(header::IF_NONE_MATCH, tag);
    }
    let request = request.body(Empty::new()).expect("a GET of a checked URI is a request");
    let answer = client.request(request).await.map_err(|e| {
        let why = innermost(&e);
        if e.is_connect() { Failure::Unreachable(url.to_string(), why) } else { Failure::Broken(url.to_string(), why) }
    })?;
    let (parts, body) = answer.into_parts();
    let body = Limited::new(body, BODY_LIMIT)
        .collect()
        .await
        .map_err(|e| Failure::Broken(url.to_string(), innermost(e.as_ref())))?
        .to_bytes();
    Ok((parts.status, parts.headers, body))
}

/// The root cause's message (`Connection refused (os error 111)`), not hyper's wrappers.
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut e = e;
    while let Some(source) = e.source() {
        e = source;
    }
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::board_uri;

    #[test]
    fn json_for_a_terminal_carries_no_raw_c1_control() {
        let raw = "{\"name\":\"a\u{9b}31mred\u{202e}\"}";
        let safe = super::escape_controls(raw);
        assert_eq!(safe, "{\"name\":\"a\\u009b31mred\\u202e\"}");
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back["name"], "a\u{9b}31mred\u{202e}", "the same JSON");
    }

    #[test]
    fn only_plain_http_urls_are_taken() {
        assert_eq!(board_uri("http://127.0.0.1:8080").unwrap().to_string(), "http://127.0.0.1:8080/status/board");
        assert_eq!(board_uri("http://h:1/capstan/").unwrap().to_string(), "http://h:1/capstan/status/board");
        assert!(board_uri("https://h:1").unwrap_err().contains("plain http://"));
        assert!(board_uri("127.0.0.1:8080").unwrap_err().contains("not an http:// URL"));
        assert!(board_uri("http://a b").unwrap_err().contains("not a URL"));
        assert!(!board_uri("http://me:secret@h:1").unwrap_err().contains("secret"));
    }
}
