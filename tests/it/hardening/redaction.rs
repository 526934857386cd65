//! Credentials in a repository URL never leave it: not in a message, a log line, `/status` or
//! `/metrics`, whatever the URL's form — and the fetch still gets them.

use std::process::{Command, Stdio};
use std::time::Duration;

use capstan::gitops::RepoUrl;
use capstan::gitops::url::{decode, redact, split};
use proptest::prelude::*;

use crate::daemon::{Daemon, request, status, wait};

/// The user name and secret a URL sends.
type Sent = Option<(&'static str, &'static str)>;

/// (written, shown, fetched, sent)
const CASES: &[(&str, &str, &str, Sent)] = &[
    (
        "https://bot:s3cr3t@h.example/o/r.git",
        "https://h.example/o/r.git",
        "https://h.example/o/r.git",
        Some(("bot", "s3cr3t")),
    ),
    ("https://ghp_tok@github.com/o/r", "https://github.com/o/r", "https://github.com/o/r", Some(("git", "ghp_tok"))),
    ("https://u:p/w@host/repo", "https://host/repo", "https://host/repo", Some(("u", "p/w"))),
    ("https://u:a@b:c?d#e@host:8443/r", "https://host:8443/r", "https://host:8443/r", Some(("u", "a@b:c?d#e"))),
    ("https://bot:p%40ss%2Fw@host/r", "https://host/r", "https://host/r", Some(("bot", "p@ss/w"))),
    (
        "ssh://git:pw-ssh@host:2222/o/r.git",
        "ssh://git@host:2222/o/r.git",
        "ssh://git@host:2222/o/r.git",
        Some(("git", "pw-ssh")),
    ),
    ("ssh://git@host/r.git", "ssh://git@host/r.git", "ssh://git@host/r.git", None),
    ("ssh://git:pw@[::1]:22/r", "ssh://git@[::1]:22/r", "ssh://git@[::1]:22/r", Some(("git", "pw"))),
    ("git:pw/x@host:o/r.git", "git@host:o/r.git", "git@host:o/r.git", Some(("git", "pw/x"))),
    ("git@github.com:o/r.git", "git@github.com:o/r.git", "git@github.com:o/r.git", None),
    ("https::https://bot:tk@host/r", "https::https://host/r", "https::https://host/r", Some(("bot", "tk"))),
    ("git://u:pw@host/r", "git://host/r", "git://host/r", Some(("u", "pw"))),
    ("https://h/r.git?access_token=tk", "https://h/r.git?access_token=***", "https://h/r.git?access_token=tk", None),
    (
        "https://h/r?X-Amz-Signature=ab&sig=cd&bare#frag",
        "https://h/r?X-Amz-Signature=***&sig=***&***#***",
        "https://h/r?X-Amz-Signature=ab&sig=cd&bare#frag",
        None,
    ),
    ("/srv/git/policy", "/srv/git/policy", "/srv/git/policy", None),
    ("./a:b@c", "./a:b@c", "./a:b@c", None),
    ("file:///srv/git/policy", "file:///srv/git/policy", "file:///srv/git/policy", None),
    ("https://[::1]:8443/r", "https://[::1]:8443/r", "https://[::1]:8443/r", None),
];

#[test]
fn every_form_is_shown_without_its_secret_and_fetched_with_it() {
    for &(written, shown, fetched, creds) in CASES {
        assert_eq!(redact(written), shown, "shown: {written}");
        let (url, auth) = split(written);
        assert_eq!(url, fetched, "fetched: {written}");
        let sent = auth.as_ref().map(|a| (a.username.as_deref().unwrap(), a.token.as_deref().unwrap()));
        assert_eq!(sent, creds, "credentials: {written}");
        let typed = RepoUrl::new(written);
        assert_eq!((typed.to_string(), format!("{typed:?}")), (shown.to_string(), format!("{shown:?}")));
    }
}

#[test]
fn messages_are_scrubbed_of_the_url_and_its_secrets() {
    let url = RepoUrl::new("https://bot:p%40ssw0rd@host/r?access_token=tok-123#frag-9");
    let message = "GET https://host/r?access_token=tok-123#frag-9 as bot:p@ssw0rd (p%40ssw0rd) failed";
    let out = url.scrub(message);
    for secret in ["p@ssw0rd", "p%40ssw0rd", "tok-123", "frag-9"] {
        assert!(!out.contains(secret), "{out}");
    }
    assert!(out.contains("https://host/r?access_token=***#***"), "{out}");
}

#[test]
fn a_url_with_its_colon_missing_reads_as_a_path_but_its_token_never_shows() {
    for written in ["https//bot:TOKEN-77@host/r", "https//TOKEN-77@github.com/o/r"] {
        let url = RepoUrl::new(written);
        assert!(!url.to_string().contains("TOKEN-77"), "{url}");
        assert!(!url.scrub(&format!("could not find repository at '{written}'")).contains("TOKEN-77"));
    }
    // A plain path with an `@` stays as it is.
    assert_eq!(redact("/srv/team@x/policy"), "/srv/team@x/policy");
}

#[test]
fn credentials_in_the_url_complete_the_configs_settings() {
    use capstan::gitops::auth::Auth;
    let config = Auth { known_hosts: Some("/etc/ssh/known_hosts".into()), ..Auth::default() };
    let (_, from_url) = split("ssh://git:pw-9@host/r.git");
    let auth = config.or(from_url);
    assert_eq!(auth.known_hosts.as_deref(), Some(std::path::Path::new("/etc/ssh/known_hosts")));
    assert_eq!((auth.username.as_deref(), auth.token.as_deref()), (Some("git"), Some("pw-9")));
    // A token source in the config wins over one in the URL.
    let config = Auth { token_env: Some("GIT_TOKEN".into()), username: Some("ci".into()), ..Auth::default() };
    let auth = config.or(split("https://bot:tk@host/r").1);
    assert_eq!((auth.username.as_deref(), auth.token.as_deref()), (Some("ci"), None));
}

/// A secret of any characters a password may hold, escapes included.
fn password() -> impl Strategy<Value = String> {
    "([A-Za-z0-9/@:?#&=._~!$*+,;-]|%[0-9A-F]{2}){6,24}"
}

/// A token as query strings and bare user-infos carry them.
fn token() -> impl Strategy<Value = String> {
    "([A-Za-z0-9._~-]|%[0-9A-F]{2}){6,24}"
}

/// (template, shown): the secret goes where `{}` is.
const PASSWORD_FORMS: &[(&str, &str)] = &[
    ("https://bot:{}@git.example.com/o/r.git", "https://git.example.com/o/r.git"),
    ("ssh://git:{}@git.example.com:2222/o/r.git", "ssh://git@git.example.com:2222/o/r.git"),
    ("git:{}@git.example.com:o/r.git", "git@git.example.com:o/r.git"),
    ("ext::ssh://git:{}@h/r", "ext::ssh://h/r"),
];

const TOKEN_FORMS: &[(&str, &str)] = &[
    ("https://{}@github.com/o/r", "https://github.com/o/r"),
    ("https://h/r.git?access_token={}", "https://h/r.git?access_token=***"),
    ("https://h/r.git?ref=main&private_token={}&x=1", "https://h/r.git?ref=***&private_token=***&x=***"),
    ("https://h/r.git?{}", "https://h/r.git?***"),
    ("https://h/r.git#{}", "https://h/r.git#***"),
];

fn check(template: &str, shown: &str, secret: &str, sent: bool) -> Result<(), TestCaseError> {
    // Git reads `git::…` as a transport helper's address and `git://…` as a git:// URL, not as
    // user `git` and a password.
    prop_assume!(!(template.starts_with("git:{}") && (secret.starts_with(':') || secret.starts_with("//"))));
    let written = template.replace("{}", secret);
    let url = RepoUrl::new(written.clone());
    prop_assert_eq!(url.to_string(), shown);
    let decoded = decode(secret);
    for s in [secret, decoded.as_str()] {
        prop_assume!(!shown.contains(s));
        let debug = format!("{url:?}");
        prop_assert!(!debug.contains(s));
        let scrubbed = url.scrub(&format!("{written} {decoded}"));
        prop_assert!(!scrubbed.contains(s), "{}", scrubbed);
    }
    if sent {
        prop_assert_eq!(url.for_fetch().1.and_then(|a| a.token), Some(decoded));
    }
    Ok(())
}

proptest! {
    #[test]
    fn a_password_never_shows(secret in password(), form in 0..PASSWORD_FORMS.len()) {
        let (template, shown) = PASSWORD_FORMS[form];
        check(template, shown, &secret, true)?;
    }

    #[test]
    fn a_token_never_shows(secret in token(), form in 0..TOKEN_FORMS.len()) {
        let (template, shown) = TOKEN_FORMS[form];
        check(template, shown, &secret, form == 0)?;
    }
}

/// Runs the daemon following `url` until the failed fetch is on record, and asserts that
/// none of `secrets` (as written or percent-decoded) is in its log, `/status` or `/metrics`.
fn daemon_keeps_secret(url: &str, secrets: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("capstan.yaml");
    let (state, data) = (dir.path().join("state"), dir.path().join("data"));
    let yaml = format!(
        "cluster: dev\nrepository:\n  url: '{url}'\n  poll: 1m\nstateStore: file://{}\nbackends: {{cloud: sim, cluster: sim}}\ndataDir: {}\n",
        state.display(),
        data.display()
    );
    std::fs::write(&config, yaml).unwrap();
    let log_path = dir.path().join("stderr.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_capstan"))
        .args(["run", "--config", config.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "debug")
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let mut d = Daemon { child, addr: String::new() };
    let listening = |log: &str| {
        let line =
            log.lines().find(|l| l.starts_with("capstan: listening on http://") && log.contains(&format!("{l}\n")));
        line.map(|l| l["capstan: listening on http://".len()..].to_string())
    };
    wait("the daemon's address", Duration::from_secs(10), || {
        d.addr = listening(&std::fs::read_to_string(&log_path).unwrap_or_default()).unwrap_or_default();
        !d.addr.is_empty()
    });
    let failed = |s: &serde_json::Value| s["rollout"]["error"].is_string() || s["policyError"].is_string();
    wait("the failed fetch", Duration::from_secs(10), || failed(&status(&d.addr)));
    let shown = status(&d.addr).to_string();
    let metrics = request(&d.addr, "GET", "/metrics").1;
    let _ = d.child.kill();
    let _ = d.child.wait();
    let logged = std::fs::read_to_string(&log_path).unwrap();
    let decoded: Vec<String> = secrets.iter().map(|s| decode(s)).collect();
    for (place, text) in [("/status", &shown), ("/metrics", &metrics), ("the log", &logged)] {
        for s in secrets.iter().copied().chain(decoded.iter().map(String::as_str)) {
            assert!(!text.contains(s), "{s} shows in {place}:\n{text}");
        }
    }
    assert!(shown.contains("127.0.0.1"), "the error names the repository: {shown}");
}

/// A port nothing listens on: the fetch is refused at once.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn an_ssh_password_stays_out_of_logs_status_and_metrics() {
    let port = closed_port();
    daemon_keeps_secret(&format!("ssh://git:SSHPW-4d1f9c@127.0.0.1:{port}/org/policy.git"), &["SSHPW-4d1f9c"]);
}

#[test]
fn an_access_token_in_the_query_stays_out_of_logs_status_and_metrics() {
    let port = closed_port();
    let url = format!("https://127.0.0.1:{port}/org/policy.git?access_token=QTOKEN-77ab02");
    daemon_keeps_secret(&url, &["QTOKEN-77ab02"]);
}

#[test]
fn a_password_holding_a_slash_stays_out_of_logs_status_and_metrics() {
    let port = closed_port();
    let url = format!("https://bot:SLASH/PW-9e3c@127.0.0.1:{port}/org/policy.git");
    daemon_keeps_secret(&url, &["SLASH/PW-9e3c", "PW-9e3c"]);
}

#[test]
fn an_scp_like_password_stays_out_of_logs_status_and_metrics() {
    daemon_keeps_secret("git:SCPPW-51e0aa@127.0.0.1:org/policy.git", &["SCPPW-51e0aa"]);
}

#[test]
fn an_escaped_password_stays_out_of_logs_status_and_metrics() {
    let port = closed_port();
    let url = format!("https://bot:ESC%40PW-0c7d@127.0.0.1:{port}/org/policy.git#FRAG-55e1");
    daemon_keeps_secret(&url, &["ESC%40PW-0c7d", "FRAG-55e1"]);
}
