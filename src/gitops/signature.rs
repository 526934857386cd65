//! Signed-commit checks on the tip commit: an SSH signature (`gpg.format ssh`) verified against
//! an allowed-signers list (the format `ssh-keygen -Y verify` reads) in the `git` namespace, or
//! an OpenPGP signature verified against a keyring of armored public keys (rpgp).

use std::path::Path;

use git2::{Oid, Repository};
use pgp::composed::{Deserializable, DetachedSignature, SignedPublicKey};
use pgp::types::KeyDetails;
use ssh_key::{PublicKey, SshSig};

/// The keys whose signatures are trusted.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    pub signers: Vec<Signer>,
    /// OpenPGP public keys (primary keys with their subkeys).
    pub pgp_keys: Vec<SignedPublicKey>,
}

#[derive(Debug, Clone)]
pub struct Signer {
    pub principal: String,
    pub key: PublicKey,
}

/// What the signature check found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "verdict", rename_all = "lowercase")]
pub enum Verdict {
    /// Signed by a trusted key.
    Trusted {
        signer: String,
        fingerprint: String,
    },
    Unsigned,
    /// Signed, but not by a trusted key, or not validly.
    Untrusted {
        reason: String,
    },
}

impl Trust {
    /// Reads an allowed-signers file: `principal[,principal…] [options] key-type base64 [comment]`.
    pub fn from_allowed_signers(path: &Path) -> Result<Trust, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("allowed signers file {}: {e}", path.display()))?;
        let mut signers = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            // The key starts at the first field that parses as `type base64`; options come before.
            let key = (1..fields.len().saturating_sub(1))
                .find_map(|i| PublicKey::from_openssh(&format!("{} {}", fields[i], fields[i + 1])).ok());
            let Some(key) = key else {
                return Err(format!(
                    "{}:{}: no public key found; write `principal ssh-ed25519 AAAA…` as ssh-keygen's ALLOWED SIGNERS format",
                    path.display(),
                    n + 1
                ));
            };
            for principal in fields[0].split(',') {
                signers.push(Signer { principal: principal.to_string(), key: key.clone() });
            }
        }
        if signers.is_empty() {
            return Err(format!("allowed signers file {} lists no key", path.display()));
        }
        Ok(Trust { signers, pgp_keys: Vec::new() })
    }

    /// Adds the OpenPGP public keys of an armored keyring (`gpg --export --armor`).
    pub fn with_pgp_keyring(mut self, path: &Path) -> Result<Trust, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("OpenPGP keyring {}: {e}", path.display()))?;
        let (keys, _) = SignedPublicKey::from_string_many(&text)
            .map_err(|e| format!("OpenPGP keyring {}: {e}; export it with `gpg --export --armor`", path.display()))?;
        for key in keys {
            let key = key.map_err(|e| format!("OpenPGP keyring {}: {e}", path.display()))?;
            // A subkey counts only when the primary key really bound it.
            key.verify_bindings().map_err(|e| {
                format!("OpenPGP keyring {}: a key's self-signatures do not verify: {e}", path.display())
            })?;
            self.pgp_keys.push(key);
        }
        if self.pgp_keys.is_empty() {
            return Err(format!("OpenPGP keyring {} holds no public key", path.display()));
        }
        Ok(self)
    }
}

/// Checks an OpenPGP signature against the keyring: the primary key or any subkey may sign.
fn verify_pgp(armored: &str, signed: &[u8], trust: &Trust) -> Verdict {
    let sig = match DetachedSignature::from_string(armored) {
        Ok((s, _)) => s,
        Err(e) => return Verdict::Untrusted { reason: format!("the OpenPGP signature cannot be read: {e}") },
    };
    for key in &trust.pgp_keys {
        let by_primary = sig.verify(key, signed).is_ok();
        let by_subkey = key.public_subkeys.iter().any(|sub| sig.verify(sub, signed).is_ok());
        if by_primary || by_subkey {
            let user = key.details.users.first().map(|u| String::from_utf8_lossy(u.id.id()).into_owned());
            let fingerprint = format!("{:X}", key.fingerprint());
            return Verdict::Trusted { signer: user.unwrap_or_else(|| fingerprint.clone()), fingerprint };
        }
    }
    Verdict::Untrusted { reason: "signed with OpenPGP by a key that is not in the keyring".to_string() }
}

/// Checks the signature of `commit`.
pub fn verify(repo: &Repository, commit: Oid, trust: &Trust) -> Verdict {
    let Ok((signature, signed)) = repo.extract_signature(&commit, None) else {
        return Verdict::Unsigned;
    };
    let text = String::from_utf8_lossy(&signature);
    if text.contains("BEGIN PGP SIGNATURE") {
        return verify_pgp(&text, &signed, trust);
    }
    let sig = match SshSig::from_pem(text.as_bytes()) {
        Ok(s) => s,
        Err(e) => return Verdict::Untrusted { reason: format!("the signature cannot be read: {e}") },
    };
    let Some(signer) = trust.signers.iter().find(|s| s.key.key_data() == sig.public_key()) else {
        let fingerprint = PublicKey::from(sig.public_key().clone()).fingerprint(Default::default());
        return Verdict::Untrusted { reason: format!("signed by {fingerprint}, which is not an allowed signer") };
    };
    match signer.key.verify("git", &signed, &sig) {
        Ok(()) => Verdict::Trusted {
            signer: signer.principal.clone(),
            fingerprint: signer.key.fingerprint(Default::default()).to_string(),
        },
        Err(e) => Verdict::Untrusted { reason: format!("the signature of {} does not verify: {e}", signer.principal) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_trust_file_says_which_file_and_line() {
        let dir = std::env::temp_dir().join(format!("capstan-signers-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = Trust::from_allowed_signers(&dir.join("nope")).unwrap_err();
        assert!(missing.contains("allowed signers file") && missing.contains("nope"), "{missing}");
        let bad = dir.join("allowed_signers");
        std::fs::write(&bad, "# team keys\nalice@example.com ssh-ed25519 not-base64\n").unwrap();
        let e = Trust::from_allowed_signers(&bad).unwrap_err();
        assert!(e.contains(&format!("{}:2: no public key found", bad.display())), "{e}");
        let ok =
            "bob@example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIGHtj39k4fCmIJ22ewu1UueQsbQlCt7Uz3LnJgeBaLz bob\n";
        std::fs::write(&bad, ok).unwrap();
        let trust = Trust::from_allowed_signers(&bad).unwrap();
        assert_eq!(trust.signers[0].principal, "bob@example.com");
        std::fs::write(dir.join("keyring.asc"), "not a keyring").unwrap();
        let e = trust.with_pgp_keyring(&dir.join("keyring.asc")).unwrap_err();
        assert!(e.contains("keyring.asc"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
