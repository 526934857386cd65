//! Credentials for fetching: a token for https, a key (and known_hosts) or a password for ssh.
//! Secrets are read when needed and never appear in a message: URLs are shown redacted
//! ([`super::url`]).

use git2::{Cred, CredentialType, RemoteCallbacks};

use super::SourceError;
pub use super::creds::Auth;
use super::known_hosts;
use super::url::RepoUrl;

/// Splits credentials out of a URL: the URL to fetch, and the credentials it carried.
pub fn split_url(url: &str) -> (String, Option<Auth>) {
    super::url::split(url)
}

/// The URL with any password, token, query value or fragment masked, for messages and logs.
pub fn redact(url: &str) -> String {
    super::url::redact(url)
}

pub fn install(callbacks: &mut RemoteCallbacks<'_>, auth: &Auth) {
    let known = auth.known_hosts.clone();
    let auth = auth.clone();
    let mut tries = 0;
    callbacks.credentials(move |_url, user_from_url, allowed| {
        tries += 1;
        if tries > 3 {
            return Err(git2::Error::from_str("credentials refused"));
        }
        if allowed.contains(CredentialType::SSH_KEY)
            && let Some(key) = &auth.ssh_key
        {
            return Cred::ssh_key(user_from_url.unwrap_or("git"), None, key, None);
        }
        if allowed.contains(CredentialType::USER_PASS_PLAINTEXT)
            && let Some(token) = auth.token().map_err(|e| git2::Error::from_str(&e))?
        {
            return Cred::userpass_plaintext(auth.username.as_deref().unwrap_or("git"), &token);
        }
        Err(git2::Error::from_str("no credentials configured for this repository"))
    });
    callbacks.certificate_check(move |cert, host| known_hosts::check(cert, host, known.as_deref()));
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
