//! Log lines on standard error: text for people, or JSON for log pipelines (`capstan run
//! --log-format json`, or `logFormat: json` in the config): one object per line with
//! `timestamp`, `level`, `target`, `message`, the event's fields beside them, and the fields of
//! the span it happened in (`span`) and of every span around it (`spans`):
//!
//! ```text
//! {"timestamp":"…","level":"INFO","message":"launch …","event":"launch","revision":"main@sha1:…",
//!  "target":"capstan::capacity","span":{"cluster":"dev","revision":"main@sha1:…","name":"capacity_pass"},
//!  "spans":[…]}
//! ```
//!
//! Colour (ANSI escapes) only in text, only when standard error is a terminal and `NO_COLOR` is
//! unset: a pipe (`kubectl logs`, a log shipper) gets plain text. `RUST_LOG` filters either.

use std::io::IsTerminal;

use serde::Deserialize;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One line of text per event, for people.
    #[default]
    Text,
    /// One JSON object per line, for log pipelines.
    Json,
}

/// Colour in text logs: standard error is a terminal and `NO_COLOR` is unset.
pub fn colour() -> bool {
    colour_for(std::io::stderr().is_terminal(), std::env::var_os("NO_COLOR").is_some())
}

fn colour_for(terminal: bool, no_color: bool) -> bool {
    terminal && !no_color
}

/// The filter: `RUST_LOG`, else `default` (`info`, `warn`).
fn filter(default: &str) -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into())
}

/// Sends `tracing` events to standard error in `format`, filtered by `RUST_LOG` (else
/// `default`). A second call does nothing.
pub fn init(format: LogFormat, default: &str) {
    match format {
        LogFormat::Text => {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter(default))
                .with_ansi(colour())
                .with_writer(std::io::stderr)
                .try_init();
        }
        LogFormat::Json => {
            let _ = json(filter(default), std::io::stderr).try_init();
        }
    }
}

/// The JSON subscriber, writing to `writer` (standard error, or a buffer in tests).
pub fn json<W>(filter: EnvFilter, writer: W) -> impl tracing::Subscriber + Send + Sync + 'static
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(true)
        .with_ansi(false)
        .with_env_filter(filter)
        .with_writer(writer)
        .finish()
}

/// A line the daemon always writes, whatever `RUST_LOG` says (its address; the error it
/// stops on), in `format`: as written in text, as an object shaped like the others in JSON.
pub fn always(format: LogFormat, level: &str, message: &str) {
    eprintln!("{}", always_line(format, level, message));
}

fn always_line(format: LogFormat, level: &str, message: &str) -> String {
    match format {
        LogFormat::Text => message.to_string(),
        LogFormat::Json => serde_json::json!({
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "level": level,
            "message": message,
            "target": "capstan",
        })
        .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use serde_json::Value;

    use super::*;
    use crate::gitops::RepoUrl;

    /// A writer into a shared buffer.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'w self) -> Buffer {
            self.clone()
        }
    }

    /// The lines `log` writes through the JSON subscriber, each parsed.
    fn logged(log: impl FnOnce()) -> Vec<Value> {
        let buffer = Buffer::default();
        tracing::subscriber::with_default(json(EnvFilter::new("debug"), buffer.clone()), log);
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert!(text.ends_with('\n'), "{text}");
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
    }

    #[test]
    fn a_json_line_is_one_object_with_level_message_target_and_the_fields_of_event_and_span() {
        let lines = logged(|| {
            let span = tracing::info_span!("capacity_pass", cluster = "dev", revision = "main@sha1:abc");
            let _in = span.enter();
            tracing::info!(event = "launch", pods = 3, "launched a c6g.large\nfor 3 pods");
            tracing::warn!(error = "throttled", "backing off");
        });
        assert_eq!(lines.len(), 2, "{lines:?}");
        let first = &lines[0];
        assert_eq!(first["level"], "INFO");
        assert_eq!(first["message"], "launched a c6g.large\nfor 3 pods", "a newline stays inside the line");
        assert_eq!(first["target"], "capstan::app::logs::tests");
        assert_eq!(first["event"], "launch");
        assert_eq!(first["pods"], 3);
        assert_eq!(first["span"]["cluster"], "dev");
        assert_eq!(first["span"]["revision"], "main@sha1:abc");
        assert_eq!(first["spans"][0]["name"], "capacity_pass");
        let at = first["timestamp"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok(), "{at}");
        assert_eq!(lines[1]["level"], "WARN");
        assert_eq!(lines[1]["error"], "throttled");
    }

    #[test]
    fn a_line_written_outside_tracing_has_the_same_shape() {
        let line: Value = serde_json::from_str(&always_line(LogFormat::Json, "INFO", "listening")).unwrap();
        assert_eq!((line["level"].as_str(), line["message"].as_str()), (Some("INFO"), Some("listening")));
        assert!(chrono::DateTime::parse_from_rfc3339(line["timestamp"].as_str().unwrap()).is_ok());
        assert_eq!(always_line(LogFormat::Text, "INFO", "listening"), "listening");
    }

    #[test]
    fn a_repository_url_is_logged_without_its_credentials() {
        let url = RepoUrl::new("https://capstan-bot:ghp_s3cr3tT0ken@github.com/example/fleet.git");
        let lines = logged(|| {
            tracing::warn!(url = %url, "cannot fetch the repository");
            tracing::warn!(url = ?url, "cannot fetch the repository");
            tracing::warn!("cannot fetch {url}");
        });
        for line in &lines {
            let text = line.to_string();
            assert!(!text.contains("ghp_s3cr3tT0ken") && !text.contains("capstan-bot"), "{text}");
            assert!(text.contains("https://github.com/example/fleet.git"), "{text}");
        }
        let shown = crate::gitops::auth::redact("https://user:token@host/repo.git");
        assert_eq!(shown, "https://host/repo.git");
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour_for(true, false));
        assert!(!colour_for(false, false), "a pipe gets no escapes");
        assert!(!colour_for(true, true), "NO_COLOR turns them off");
    }
}
