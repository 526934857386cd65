//! Credentials for fetching: a token for https, a key (and known_hosts) for ssh. Secrets are
//! read when needed and never appear in a message: URLs are shown without their user-info.

use std::path::PathBuf;

use git2::{Cred, CredentialType, RemoteCallbacks};

use super::SourceError;
use super::known_hosts;

#[derive(Clone, Default, PartialEq, Eq)]
pub struct Auth {
    /// https: user name sent with the token (`git` when unset; GitHub and GitLab accept any).
    pub username: Option<String>,
    /// https: the environment variable holding the token.
    pub token_env: Option<String>,
    /// https: a file holding the token (e.g. a mounted Secret).
    pub token_file: Option<PathBuf>,
    /// https: a token given inline (from credentials written in the URL).
    pub token: Option<String>,
    /// ssh: the private key file.
    pub ssh_key: Option<PathBuf>,
    /// ssh: the known_hosts file the server's host key must be in.
    pub known_hosts: Option<PathBuf>,
}

impl std::fmt::Debug for Auth {
    /// Names where secrets come from; never the secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("username", &self.username)
            .field("token_env", &self.token_env)
            .field("token_file", &self.token_file)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("ssh_key", &self.ssh_key)
            .field("known_hosts", &self.known_hosts)
            .finish()
    }
}

impl Auth {
    /// This, or else `other` when this sets nothing.
    pub fn or(self, other: Option<Auth>) -> Auth {
        if self == Auth::default() { other.unwrap_or_default() } else { self }
    }

    fn token(&self) -> Result<Option<String>, String> {
        if let Some(t) = &self.token {
            return Ok(Some(t.clone()));
        }
        if let Some(var) = &self.token_env {
            return std::env::var(var)
                .map(Some)
                .map_err(|_| format!("environment variable {var} (the token) is not set"));
        }
        if let Some(file) = &self.token_file {
            return std::fs::read_to_string(file)
                .map(|t| Some(t.trim().to_string()))
                .map_err(|e| format!("token file {}: {e}", file.display()));
        }
        Ok(None)
    }

    /// Where the credentials come from, for messages (never the secret itself).
    pub fn describe(&self) -> String {
        match (&self.token_env, &self.token_file, &self.token, &self.ssh_key) {
            (Some(v), ..) => format!("the token in ${v}"),
            (_, Some(f), ..) => format!("the token in {}", f.display()),
            (_, _, Some(_), _) => "the credentials in the URL".to_string(),
            (.., Some(k)) => format!("the ssh key {}", k.display()),
            _ => "no credentials (none configured)".to_string(),
        }
    }
}

/// Splits credentials out of a URL: the URL to fetch, and the credentials it carried.
pub fn split_url(url: &str) -> (String, Option<Auth>) {
    let Some((scheme, rest)) = url.split_once("://") else { return (url.to_string(), None) };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let Some((userinfo, host)) = authority.rsplit_once('@') else { return (url.to_string(), None) };
    let clean = format!("{scheme}://{host}/{path}");
    if scheme == "ssh" {
        let user = userinfo.split(':').next().unwrap_or_default();
        return (format!("{scheme}://{user}@{host}/{path}"), None);
    }
    let (user, token) = userinfo.split_once(':').unwrap_or(("git", userinfo));
    let auth = Auth { username: Some(user.to_string()), token: Some(token.to_string()), ..Auth::default() };
    (clean, Some(auth))
}

/// The URL with any password or token removed, for messages and logs.
pub fn redact(url: &str) -> String {
    let (clean, creds) = split_url(url);
    if creds.is_some() { clean } else { url.to_string() }
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

/// A fetch failure in words that say what to check, without secrets.
pub fn fetch_error(url: &str, auth: &Auth, e: &git2::Error) -> SourceError {
    let message = e.message().to_string();
    let lower = message.to_lowercase();
    if e.code() == git2::ErrorCode::Auth || lower.contains("authentication") || lower.contains("credentials") {
        return SourceError::Auth { url: url.to_string(), message: format!("{message}; check {}", auth.describe()) };
    }
    if e.code() == git2::ErrorCode::Certificate || lower.contains("host key") || lower.contains("known_hosts") {
        return SourceError::Auth {
            url: url.to_string(),
            message: format!("{message}; check the known_hosts file (repository.knownHostsFile)"),
        };
    }
    SourceError::Url { url: url.to_string(), message }
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
