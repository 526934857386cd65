//! Repository URLs in every form Git accepts, and how each is shown. A [`RepoUrl`] prints without
//! its secrets (`Display` and `Debug` alike), so an error, a log line, `/status` or a metric label
//! built from it cannot carry them; only the fetch asks for them ([`RepoUrl::for_fetch`]).
//!
//! The forms: `scheme://[user[:password]@]host[:port]/path[?query][#fragment]` for any scheme,
//! the scp-like `[user[:password]@]host:path` (no `/` before the first `:`), `transport::address`,
//! and local paths (shown as written).
//!
//! Shown as: ssh keeps its user name and drops the password (`ssh://git@host/…`, `git@host:…`);
//! every other scheme drops the whole user-info, which is often a token alone
//! (`https://host/…`); every query value and any fragment become `***`
//! (`?access_token=***`). The user-info runs to the last `@`, so a password may hold any
//! character (`/`, `@`, `:`, `?`, `#`); an `@` in a path or query is written `%40`.

use super::creds::Auth;

/// The marker that stands in for a secret.
pub const MASK: &str = "***";

/// A repository URL whose secrets never print.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct RepoUrl(String);

impl RepoUrl {
    pub fn new(url: impl Into<String>) -> RepoUrl {
        RepoUrl(url.into())
    }

    /// The URL as written, secrets included: for the fetch and for local paths, never for a
    /// message.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL without its secrets.
    pub fn redacted(&self) -> String {
        redact(&self.0)
    }

    /// The URL to fetch (user-info out, except an ssh user name) and the credentials it carried,
    /// percent-decoded.
    pub fn for_fetch(&self) -> (String, Option<Auth>) {
        split(&self.0)
    }

    /// `text` (a libgit2 message, say) with this URL and each of its secrets replaced.
    pub fn scrub(&self, text: &str) -> String {
        let shown = self.redacted();
        let mut out = text.to_string();
        for written in [self.0.clone(), self.for_fetch().0] {
            if !written.is_empty() {
                out = out.replace(&written, &shown);
            }
        }
        let mut secrets = secrets(&self.0);
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        // Shorter values are no secret worth the name, and would mask ordinary words.
        for s in secrets.iter().filter(|s| s.chars().count() >= 3) {
            out = out.replace(s.as_str(), MASK);
        }
        out
    }
}

impl From<&str> for RepoUrl {
    fn from(url: &str) -> RepoUrl {
        RepoUrl::new(url)
    }
}

impl From<String> for RepoUrl {
    fn from(url: String) -> RepoUrl {
        RepoUrl(url)
    }
}

impl std::fmt::Display for RepoUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl std::fmt::Debug for RepoUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

/// A URL cut where redaction and the fetch need it; every piece borrowed from the text.
#[derive(Debug, Default)]
struct Parts<'a> {
    /// `transport::` prefixes and `scheme://`; empty for the scp-like form.
    head: &'a str,
    /// Up to the last `@`, when there is one.
    userinfo: Option<&'a str>,
    /// Host, port and path (scp-like: `host:path`).
    place: &'a str,
    query: Option<&'a str>,
    fragment: Option<&'a str>,
    /// The user name is a login (ssh), not a token, and stays.
    keeps_user: bool,
    /// A path on this machine: nothing to hide.
    local: bool,
}

/// The length of a leading URL scheme (`[A-Za-z][A-Za-z0-9+.-]*`), if any.
fn scheme_len(s: &str) -> Option<usize> {
    s.chars().next().filter(char::is_ascii_alphabetic)?;
    Some(s.find(|c: char| !(c.is_ascii_alphanumeric() || "+.-".contains(c))).unwrap_or(s.len()))
}

fn parts(url: &str) -> Parts<'_> {
    let mut start = 0;
    while let Some(n) = scheme_len(&url[start..]).filter(|&n| url[start + n..].starts_with("::")) {
        start += n + 2;
    }
    let rest = &url[start..];
    if let Some(n) = scheme_len(rest).filter(|&n| rest[n..].starts_with("://")) {
        let body = &rest[n + 3..];
        let (userinfo, after) = match body.rfind('@') {
            Some(i) => (Some(&body[..i]), &body[i + 1..]),
            None => (None, body),
        };
        let (before, fragment) = cut(after, '#');
        let (place, query) = cut(before, '?');
        let ssh = matches!(rest[..n].to_ascii_lowercase().as_str(), "ssh" | "git+ssh" | "ssh+git");
        let head = &url[..start + n + 3];
        return Parts { head, userinfo, place, query, fragment, keeps_user: ssh && start == 0, local: false };
    }
    let scp = rest.find(':').is_some_and(|c| !rest[..c].contains('/'));
    if !scp {
        return Parts { place: url, local: true, ..Parts::default() };
    }
    let (userinfo, place) = match rest.rfind('@') {
        Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
        None => (None, rest),
    };
    Parts { head: &url[..start], userinfo, place, keeps_user: start == 0, ..Parts::default() }
}

/// `s` split at the first `c`, the second part without it.
fn cut(s: &str, c: char) -> (&str, Option<&str>) {
    match s.split_once(c) {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    }
}

/// The URL without its secrets, for messages and logs.
pub fn redact(url: &str) -> String {
    let p = parts(url);
    if p.local {
        return match mistyped_userinfo(url) {
            Some(info) => format!("{MASK}{}", &url[info.len()..]),
            None => url.to_string(),
        };
    }
    let mut out = p.head.to_string();
    if let Some(info) = p.userinfo.filter(|_| p.keeps_user) {
        let user = info.split(':').next().unwrap_or_default();
        if !user.is_empty() {
            out.push_str(user);
            out.push('@');
        }
    }
    out.push_str(p.place);
    if let Some(q) = p.query {
        let items: Vec<String> = q
            .split('&')
            .map(|item| match item.split_once('=') {
                Some((key, _)) => format!("{key}={MASK}"),
                None if item.is_empty() => String::new(),
                None => MASK.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&items.join("&"));
    }
    if let Some(f) = p.fragment {
        out.push('#');
        if !f.is_empty() {
            out.push_str(MASK);
        }
    }
    out
}

/// The URL to fetch and the credentials it carried: ssh keeps its user name in the URL and sends
/// the password as user/password authentication; elsewhere a lone user-info is a token
/// (`https://<token>@github.com/…`, sent as user `git`).
pub fn split(url: &str) -> (String, Option<Auth>) {
    let p = parts(url);
    let Some(info) = p.userinfo.filter(|_| !p.local) else { return (url.to_string(), None) };
    let rest = &url[p.head.len() + info.len() + 1..];
    let (user, password) = cut(info, ':');
    let auth =
        |user: &str, token: &str| Auth { username: Some(decode(user)), token: Some(decode(token)), ..Auth::default() };
    if p.keeps_user {
        let login = if user.is_empty() { String::new() } else { format!("{user}@") };
        let user = if user.is_empty() { "git" } else { user };
        return (format!("{}{login}{rest}", p.head), password.map(|pw| auth(user, pw)));
    }
    let creds = match password {
        Some(pw) => auth(user, pw),
        None => auth("git", info),
    };
    (format!("{}{rest}", p.head), Some(creds))
}

/// What in the URL is secret, as written and percent-decoded.
fn secrets(url: &str) -> Vec<String> {
    let p = parts(url);
    let mut raw: Vec<&str> = Vec::new();
    raw.extend(mistyped_userinfo(url).filter(|_| p.local));
    if let Some(info) = p.userinfo {
        match info.split_once(':') {
            Some((_, pw)) => raw.push(pw),
            None if !p.keeps_user => raw.push(info),
            None => {}
        }
    }
    for item in p.query.into_iter().flat_map(|q| q.split('&')) {
        raw.push(item.split_once('=').map_or(item, |(_, v)| v));
    }
    raw.extend(p.fragment);
    let mut out: Vec<String> = raw.iter().filter(|s| !s.is_empty()).map(|s| s.to_string()).collect();
    out.extend(raw.iter().map(|s| decode(s)).filter(|s| !s.is_empty()));
    out
}

/// What reads as a path but carries user-info (`https//bot:TOKEN@host/r`, a URL with its colon
/// missing): the text up to the last `@`, when it holds a `:` or `//` and the whole does not
/// start as a path does (`/`, `.`, `~`). Never shown.
fn mistyped_userinfo(url: &str) -> Option<&str> {
    if url.starts_with(['/', '.', '~']) {
        return None;
    }
    let info = &url[..url.rfind('@')?];
    (info.contains(':') || info.contains("//")).then_some(info)
}

/// `%XX` escapes decoded; anything else (a stray `%`) kept as it is.
pub fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).filter(|h| bytes[i] == b'%' && h.iter().all(u8::is_ascii_hexdigit));
        match hex.and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()) {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
