//! Where the credentials for fetching come from: a token (inline from the URL, an environment
//! variable or a file) and a user name for https, a key and known_hosts for ssh. Plain data; the
//! secrets themselves are read only when a fetch asks ([`super::auth`]).

use std::path::PathBuf;

#[derive(Clone, Default, PartialEq, Eq)]
pub struct Auth {
    /// https: user name sent with the token (`git` when unset; GitHub and GitLab accept any).
    pub username: Option<String>,
    /// https: the environment variable holding the token.
    pub token_env: Option<String>,
    /// https: a file holding the token (e.g. a mounted Secret).
    pub token_file: Option<PathBuf>,
    /// https: a PEM file of CA certificates trusted besides the system's (a private CA).
    pub ca_file: Option<PathBuf>,
    /// A token or password given inline (from credentials written in the URL).
    pub token: Option<String>,
    /// ssh: the private key file.
    pub ssh_key: Option<PathBuf>,
    /// ssh: the known_hosts file the server's host key must be in.
    pub known_hosts: Option<PathBuf>,
    /// ssh: the OpenSSH client to run (`ssh` on the PATH when unset).
    pub ssh_program: Option<PathBuf>,
}

impl std::fmt::Debug for Auth {
    /// Names where secrets come from; never the secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("username", &self.username)
            .field("token_env", &self.token_env)
            .field("token_file", &self.token_file)
            .field("ca_file", &self.ca_file)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("ssh_key", &self.ssh_key)
            .field("known_hosts", &self.known_hosts)
            .field("ssh_program", &self.ssh_program)
            .finish()
    }
}

impl Auth {
    /// This (the daemon config's settings), completed with what the URL carried (`from_url`): the
    /// URL's token counts only when the config names no token source, and its user name only
    /// when the config names none; key and known_hosts files come from the config.
    pub fn or(self, from_url: Option<Auth>) -> Auth {
        let Some(url) = from_url else { return self };
        let names_token = self.token.is_some() || self.token_env.is_some() || self.token_file.is_some();
        Auth {
            username: self.username.or(url.username),
            token: if names_token { self.token } else { url.token },
            ssh_key: self.ssh_key.or(url.ssh_key),
            known_hosts: self.known_hosts.or(url.known_hosts),
            ..self
        }
    }

    pub(super) fn token(&self) -> Result<Option<String>, String> {
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
