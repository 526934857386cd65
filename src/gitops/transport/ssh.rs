//! Git over ssh through the OpenSSH client: `ssh HOST "git-upload-pack 'PATH'"`, its standard
//! input and output the stream (one connection for the advertisement and the pack). The host key
//! must already be known (`StrictHostKeyChecking=yes`, the configured known_hosts file or the
//! user's), nothing prompts (`BatchMode`), and a configured key is the only one offered.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use git2::transport::{Service, SmartSubtransport, SmartSubtransportStream};

use super::io_error;
use crate::gitops::creds::Auth;

pub struct Ssh {
    auth: Auth,
}

impl Ssh {
    pub fn new(auth: Auth) -> Ssh {
        Ssh { auth }
    }
}

/// Where an ssh URL leads.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    user: Option<String>,
    host: String,
    port: Option<u16>,
    path: String,
}

impl SmartSubtransport for Ssh {
    fn action(&self, url: &str, action: Service) -> Result<Box<dyn SmartSubtransportStream>, git2::Error> {
        if !matches!(action, Service::UploadPackLs | Service::UploadPack) {
            return Err(git2::Error::from_str("capstan only fetches; it never pushes"));
        }
        if self.auth.ssh_key.is_none() && self.auth.token.is_some() {
            return Err(git2::Error::from_str(
                "ssh password authentication is not supported; give an ssh key (repository.sshKeyFile) or use an https URL with a token",
            ));
        }
        let target = parse(url).map_err(|e| git2::Error::from_str(&e))?;
        let program = self.auth.ssh_program.clone().unwrap_or_else(|| PathBuf::from("ssh"));
        let mut child = Command::new(&program)
            .args(arguments(&target, &self.auth))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                git2::Error::from_str(&format!(
                    "cannot run {} (the OpenSSH client, package openssh-client): {e}",
                    program.display()
                ))
            })?;
        // Read aside, so a chatty client never blocks on a full pipe.
        let (send, stderr) = mpsc::channel();
        if let Some(mut pipe) = child.stderr.take() {
            std::thread::spawn(move || {
                let mut text = Vec::new();
                let _ = pipe.read_to_end(&mut text);
                let _ = send.send(text);
            });
        }
        let (stdin, stdout) = (child.stdin.take(), child.stdout.take());
        match (stdin, stdout) {
            (Some(stdin), Some(stdout)) => {
                Ok(Box::new(Connection { child, stdin: Some(stdin), stdout, stderr, got_any: false }))
            }
            _ => Err(git2::Error::from_str("the ssh client's pipes are missing")),
        }
    }

    fn close(&self) -> Result<(), git2::Error> {
        Ok(())
    }
}

/// The ssh command line: options, destination and the remote command, in that order.
fn arguments(target: &Target, auth: &Auth) -> Vec<String> {
    let mut args: Vec<String> =
        ["BatchMode=yes", "StrictHostKeyChecking=yes", "ConnectTimeout=30", "ServerAliveInterval=30"]
            .iter()
            .flat_map(|o| ["-o".to_string(), o.to_string()])
            .collect();
    if let Some(file) = &auth.known_hosts {
        // The configured file alone vouches for the host, not the system's as well.
        args.extend(["-o".into(), format!("UserKnownHostsFile={}", quoted(file))]);
        args.extend(["-o".into(), "GlobalKnownHostsFile=/dev/null".into()]);
    }
    if let Some(key) = &auth.ssh_key {
        args.extend(["-o".into(), "IdentitiesOnly=yes".into(), "-i".into(), literal(key)]);
    }
    if let Some(port) = target.port {
        args.extend(["-p".into(), port.to_string()]);
    }
    let destination = match &target.user {
        Some(user) => format!("{user}@{}", target.host),
        None => target.host.clone(),
    };
    args.push(destination);
    args.push(format!("git-upload-pack '{}'", target.path.replace('\'', r"'\''")));
    args
}

/// A path as ssh reads a file option: `%` doubled (ssh expands `%h` and the like in these).
fn literal(path: &Path) -> String {
    path.display().to_string().replace('%', "%%")
}

/// A path as an ssh option value: [`literal`], in double quotes when it holds a space.
fn quoted(path: &Path) -> String {
    let shown = literal(path);
    if shown.contains(char::is_whitespace) { format!("\"{shown}\"") } else { shown }
}

/// `ssh://[user@]host[:port]/path` (also `ssh+git://`, `git+ssh://`, in any case) or
/// `[user@]host:path`, read as Git reads them.
fn parse(url: &str) -> Result<Target, String> {
    let rest = ["ssh://", "ssh+git://", "git+ssh://"]
        .iter()
        .find(|s| url.get(..s.len()).is_some_and(|p| p.eq_ignore_ascii_case(s)))
        .map(|s| &url[s.len()..]);
    if rest.is_none() && url.contains("://") {
        return Err(format!("`{url}` is not an ssh URL"));
    }
    let (user_host, port, path) = match rest {
        Some(rest) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let (user_host, port) = split_port(authority)?;
            // `/~user/repo` is relative to a home directory, as Git reads it.
            let path = path.strip_prefix('/').filter(|p| p.starts_with('~')).unwrap_or(path);
            (user_host, port, path.to_string())
        }
        None => {
            let (user_host, path) = split_scp(url).ok_or_else(|| format!("`{url}` is not an ssh URL"))?;
            (user_host, None, path.to_string())
        }
    };
    let (user, host) = match user_host.rsplit_once('@') {
        Some((user, host)) => (Some(user.to_string()), host.to_string()),
        None => (None, user_host.to_string()),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
    if host.is_empty() || path.is_empty() {
        return Err("the ssh URL needs a host and a repository path".into());
    }
    // An argument starting with `-` would be read by ssh as an option, and a host or user name
    // is no place for spaces or shell characters.
    let odd = |s: &str| {
        s.starts_with('-') || s.chars().any(|c| c.is_whitespace() || c.is_control() || "'\"`$;&|<>()\\".contains(c))
    };
    if odd(&host) || user.as_deref().is_some_and(odd) {
        return Err(
            "the ssh URL's host or user name starts with `-` or holds spaces or shell characters; refused".into()
        );
    }
    if path.starts_with('-') {
        return Err("the ssh URL's path starts with `-`; refused".into());
    }
    Ok(Target { user, host, port, path })
}

fn split_port(authority: &str) -> Result<(&str, Option<u16>), String> {
    let after_host = authority.rfind(']').map_or(authority.rfind('@').map_or(0, |i| i + 1), |i| i + 1);
    match authority[after_host..].find(':') {
        Some(i) => {
            let at = after_host + i;
            let port = &authority[at + 1..];
            let port = port.parse().map_err(|_| format!("`{port}` is not a port number"))?;
            Ok((&authority[..at], Some(port)))
        }
        None => Ok((authority, None)),
    }
}

/// The scp-like form: the first `:` outside `[…]` ends the host (the path may hold `@` and `:`).
fn split_scp(url: &str) -> Option<(&str, &str)> {
    let mut inside = false;
    let (colon, _) = url.char_indices().find(|&(_, c)| {
        inside = (inside || c == '[') && c != ']';
        c == ':' && !inside
    })?;
    let (head, path) = (&url[..colon], &url[colon + 1..]);
    (!head.contains('/')).then_some((head, path))
}

/// The ssh client's pipes.
struct Connection {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: ChildStdout,
    stderr: Receiver<Vec<u8>>,
    got_any: bool,
}

impl Connection {
    /// Why the connection closed before the server said anything, from ssh's own words.
    fn failure(&mut self) -> std::io::Error {
        self.stdin = None;
        let status = self.exit_within(Duration::from_secs(5));
        let text = self.stderr.recv_timeout(Duration::from_secs(1)).unwrap_or_default();
        let text = String::from_utf8_lossy(&text).into_owned();
        let said = text.lines().map(str::trim).rfind(|l| !l.is_empty()).unwrap_or("no message").to_string();
        let lower = text.to_lowercase();
        let exit = status.map_or_else(|| "still running, stopped".to_string(), |s| s.to_string());
        if lower.contains("host key verification failed") || lower.contains("no matching host key") {
            io_error(format!("the server's host key is not known ({said})"))
        } else if lower.contains("permission denied") {
            io_error(format!("authentication failed ({said})"))
        } else {
            io_error(format!("ssh closed the connection ({exit}): {said}"))
        }
    }
}

impl Connection {
    /// The client's exit status once it ends, or None (and the client killed) after `limit`.
    fn exit_within(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(_) => break,
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Read for Connection {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.stdout.read(buf)?;
        if n == 0 && !self.got_any {
            return Err(self.failure());
        }
        self.got_any |= n > 0;
        Ok(n)
    }
}

impl Write for Connection {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        match &mut self.stdin {
            Some(stdin) => stdin.write(data),
            None => Err(io_error("the ssh connection is closed")),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.stdin.as_mut().map_or(Ok(()), |s| s.flush())
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(user: Option<&str>, host: &str, port: Option<u16>, path: &str) -> Target {
        Target { user: user.map(String::from), host: host.into(), port, path: path.into() }
    }

    #[test]
    fn every_ssh_form_git_accepts() {
        assert_eq!(parse("ssh://git@host/org/r.git"), Ok(target(Some("git"), "host", None, "/org/r.git")));
        assert_eq!(parse("ssh://host:2222/r"), Ok(target(None, "host", Some(2222), "/r")));
        assert_eq!(parse("git+ssh://u@[::1]:22/r"), Ok(target(Some("u"), "::1", Some(22), "/r")));
        assert_eq!(parse("ssh://h/~alice/r"), Ok(target(None, "h", None, "~alice/r")));
        assert_eq!(parse("git@github.com:org/r.git"), Ok(target(Some("git"), "github.com", None, "org/r.git")));
        assert_eq!(parse("[::1]:r"), Ok(target(None, "::1", None, "r")));
        assert_eq!(parse("SSH://h/r"), Ok(target(None, "h", None, "/r")));
        assert_eq!(parse("git@h:org/repo@v2.git"), Ok(target(Some("git"), "h", None, "org/repo@v2.git")));
        assert_eq!(parse("git@h:x@evil.example:r"), Ok(target(Some("git"), "h", None, "x@evil.example:r")));
        assert_eq!(parse("u@[fe80::1]:r"), Ok(target(Some("u"), "fe80::1", None, "r")));
        let refused = [
            "ftp://h/r",
            "h:-oProxyCommand=x",
            "ssh://a$(touch%20x)@h/r",
            "ssh://h;id/r",
            "ssh://-oProxyCommand=x/r",
            "ssh://h:port/r",
            "ssh://h",
        ];
        for url in refused {
            assert!(parse(url).is_err(), "{url}");
        }
    }

    #[test]
    fn the_command_checks_the_host_and_offers_only_the_key() {
        let auth = Auth {
            ssh_key: Some("/keys/deploy".into()),
            known_hosts: Some("/etc/capstan/known hosts".into()),
            ..Auth::default()
        };
        let args = arguments(&target(Some("git"), "h", Some(2222), "/o/it's.git"), &auth);
        let line = args.join(" ");
        assert!(line.contains("-o BatchMode=yes -o StrictHostKeyChecking=yes"), "{line}");
        assert!(
            line.contains("-o UserKnownHostsFile=\"/etc/capstan/known hosts\" -o GlobalKnownHostsFile=/dev/null"),
            "{line}"
        );
        assert!(line.contains("-o IdentitiesOnly=yes -i /keys/deploy -p 2222 git@h"), "{line}");
        assert_eq!(args.last().unwrap(), r"git-upload-pack '/o/it'\''s.git'");
    }
}
