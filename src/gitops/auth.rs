//! Credentials for fetching: a token for https, a key and known_hosts for ssh (their use is in
//! [`super::transport`]). Secrets are read when needed and never appear in a message: URLs are
//! shown redacted ([`super::url`]).

use super::SourceError;
pub use super::creds::Auth;
use super::url::RepoUrl;

/// Splits credentials out of a URL: the URL to fetch, and the credentials it carried.
pub fn split_url(url: &str) -> (String, Option<Auth>) {
    super::url::split(url)
}

/// The URL with any password, token, query value or fragment masked, for messages and logs.
pub fn redact(url: &str) -> String {
    super::url::redact(url)
}

/// A fetch failure in words that say what to check, without secrets (libgit2's message is
/// scrubbed of the URL's).
pub fn fetch_error(url: &RepoUrl, auth: &Auth, e: &git2::Error) -> SourceError {
    let message = url.scrub(e.message());
    let lower = message.to_lowercase();
    if e.code() == git2::ErrorCode::Auth || lower.contains("authentication") || lower.contains("credentials") {
        return SourceError::Auth { url: url.clone(), message: format!("{message}; check {}", auth.describe()) };
    }
    if e.code() == git2::ErrorCode::Certificate || lower.contains("host key") || lower.contains("known_hosts") {
        return SourceError::Auth {
            url: url.clone(),
            message: format!("{message}; check the known_hosts file (repository.knownHostsFile)"),
        };
    }
    if lower.contains("certificate") {
        let hint =
            "check that a CA this host trusts signed the server's certificate, or give its CA in repository.caFile";
        return SourceError::Url { url: url.clone(), message: format!("{message}; {hint}") };
    }
    SourceError::Url { url: url.clone(), message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_leave_the_url() {
        let (url, auth) = split_url("https://bot:s3cr3t@git.example.com/org/repo.git");
        assert_eq!(url, "https://git.example.com/org/repo.git");
        assert_eq!(auth.unwrap().token.as_deref(), Some("s3cr3t"));
        assert_eq!(redact("https://ghp_abc@github.com/o/r"), "https://github.com/o/r");
        assert_eq!(redact("/srv/git/policy"), "/srv/git/policy");
        assert_eq!(split_url("ssh://git@host/r.git").0, "ssh://git@host/r.git");
        let auth = split_url("https://bot:s3cr3t@h/r").1.unwrap();
        assert!(!format!("{auth:?}").contains("s3cr3t"));
    }
}
