//! SSH host-key checking against a known_hosts file (plain and hashed host entries), so a
//! repository fetched over ssh is the server it claims to be.

use std::path::{Path, PathBuf};

use base64::Engine;
use git2::CertificateCheckStatus;
use git2::cert::Cert;
use hmac::{Hmac, Mac};

/// Accepts an ssh host key listed for `host` in `known_hosts` (default `~/.ssh/known_hosts`);
/// leaves TLS certificates to libgit2's own checks.
pub fn check(cert: &Cert<'_>, host: &str, known_hosts: Option<&Path>) -> Result<CertificateCheckStatus, git2::Error> {
    let Some(key) = cert.as_hostkey().and_then(|k| k.hostkey()) else {
        return Ok(CertificateCheckStatus::CertificatePassthrough);
    };
    let file = known_hosts.map(Path::to_path_buf).or_else(default_file);
    let Some(file) = file else {
        return Err(git2::Error::from_str(&format!(
            "the host key of {host} cannot be verified: no known_hosts file; set repository.knownHostsFile (ssh-keyscan {host} > known_hosts, then check it)"
        )));
    };
    let text = std::fs::read_to_string(&file)
        .map_err(|e| git2::Error::from_str(&format!("known_hosts {}: {e}", file.display())))?;
    if listed(&text, host, key) {
        Ok(CertificateCheckStatus::CertificateOk)
    } else {
        Err(git2::Error::from_str(&format!(
            "the host key of {host} is not in the known_hosts file {}; check that the server is the one you expect, then add its key",
            file.display()
        )))
    }
}

fn default_file() -> Option<PathBuf> {
    let path = PathBuf::from(std::env::var_os("HOME")?).join(".ssh/known_hosts");
    path.exists().then_some(path)
}

/// Whether `known_hosts` lists `key` (the raw key blob) for `host`.
pub fn listed(known_hosts: &str, host: &str, key: &[u8]) -> bool {
    known_hosts.lines().any(|line| {
        let mut parts = line.split_whitespace();
        let (Some(hosts), Some(_kind), Some(blob)) = (parts.next(), parts.next(), parts.next()) else {
            return false;
        };
        if hosts.starts_with('#') || hosts.starts_with('@') {
            return false;
        }
        let key_matches = base64::engine::general_purpose::STANDARD.decode(blob).is_ok_and(|b| b == key);
        key_matches && hosts.split(',').any(|pattern| host_matches(pattern, host))
    })
}

fn host_matches(pattern: &str, host: &str) -> bool {
    if let Some(hashed) = pattern.strip_prefix("|1|") {
        let Some((salt, hash)) = hashed.split_once('|') else { return false };
        let b64 = &base64::engine::general_purpose::STANDARD;
        let (Ok(salt), Ok(hash)) = (b64.decode(salt), b64.decode(hash)) else { return false };
        let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(&salt) else { return false };
        mac.update(host.as_bytes());
        return mac.verify_slice(&hash).is_ok();
    }
    pattern == host || pattern.strip_prefix('[').and_then(|p| p.split_once("]:")).is_some_and(|(h, _)| h == host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_hashed_entries() {
        let key = b"\x00\x00\x00\x0bssh-ed25519 key-bytes";
        let b64 = base64::engine::general_purpose::STANDARD.encode(key);
        let plain = format!("git.example.com,10.0.0.1 ssh-ed25519 {b64}\n");
        assert!(listed(&plain, "git.example.com", key));
        assert!(!listed(&plain, "evil.example.com", key));
        assert!(!listed(&plain, "git.example.com", b"other"));
        let salt = b"0123456789abcdef0123";
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(salt).unwrap();
        mac.update(b"git.example.com");
        let hash = mac.finalize().into_bytes();
        let e = &base64::engine::general_purpose::STANDARD;
        let hashed = format!("|1|{}|{} ssh-ed25519 {b64}\n", e.encode(salt), e.encode(hash));
        assert!(listed(&hashed, "git.example.com", key));
        assert!(!listed(&hashed, "other.example.com", key));
    }
}
