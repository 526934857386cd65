//! A policy revision — which commit of the config repository — typed from the follower down
//! to the compiled rules and the decision log. It sits below every module that uses it.

use std::fmt;

/// A policy revision, shown the Flux way: `main@sha1:0123…`. It travels typed from the follower
/// to the compiled rules and the decision log, and is printed (and parsed back) only where it is
/// stored or shown.
///
/// A policy that does not come from a Git commit (`capstan demo` on a folder outside a Git
/// checkout labels it `local@digest:<digest>`) is a revision **with an empty `sha`**: its whole
/// label is the `reference`, printed as is, and it is caused by no commit
/// ([`Revision::is_commit`] is false). Printing then parsing gives back the same value for both
/// forms, so the decision log and `/status` read exactly as before.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Revision {
    /// The branch or tag followed (`commit` for a pinned commit); for a revision that is not a
    /// commit, its whole label.
    pub reference: String,
    /// The commit id; empty when the revision is not a Git commit.
    pub sha: String,
}

/// What separates the reference from the commit id in the printed form.
const SHA1: &str = "@sha1:";

impl Revision {
    /// The commit `sha` reached through `reference`.
    pub fn commit(reference: impl Into<String>, sha: impl Into<String>) -> Revision {
        Revision { reference: reference.into(), sha: sha.into() }
    }

    /// A revision that is no Git commit, known by its label alone (e.g. `local@digest:…`).
    pub fn local(label: impl Into<String>) -> Revision {
        Revision { reference: label.into(), sha: String::new() }
    }

    /// Whether this revision is a Git commit (it has a sha).
    pub fn is_commit(&self) -> bool {
        !self.sha.is_empty()
    }

    /// Reads the printed form back: `<reference>@sha1:<sha>` (both parts non-empty) is a
    /// commit; any other text is a [`Revision::local`] label. Never fails.
    pub fn parse(text: &str) -> Revision {
        match text.rsplit_once(SHA1) {
            Some((reference, sha)) if !reference.is_empty() && !sha.is_empty() => Revision::commit(reference, sha),
            _ => Revision::local(text),
        }
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_commit() { write!(f, "{}{SHA1}{}", self.reference, self.sha) } else { f.write_str(&self.reference) }
    }
}

impl std::str::FromStr for Revision {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Revision, Self::Err> {
        Ok(Revision::parse(s))
    }
}

/// For literals (`"main@sha1:abc".into()`): the same as [`Revision::parse`].
impl From<&str> for Revision {
    fn from(s: &str) -> Revision {
        Revision::parse(s)
    }
}

impl serde::Serialize for Revision {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Revision {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Revision, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(d)?;
        Ok(Revision::parse(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::Revision;

    #[test]
    fn a_commit_prints_the_flux_way_and_parses_back() {
        let r = Revision::commit("main", "0123abcd");
        assert_eq!(r.to_string(), "main@sha1:0123abcd");
        assert_eq!(Revision::parse("main@sha1:0123abcd"), r);
        assert!(r.is_commit());
        let tag = Revision::parse("release@v2@sha1:ff");
        assert_eq!((tag.reference.as_str(), tag.sha.as_str()), ("release@v2", "ff"));
        assert_eq!(tag.to_string(), "release@v2@sha1:ff");
    }

    #[test]
    fn a_revision_that_is_no_commit_keeps_its_label() {
        for label in ["local@digest:9f86d081884c7d65", "main@sha1:", "@sha1:abc", "bench@1", ""] {
            let r = Revision::parse(label);
            assert!(!r.is_commit(), "{label}");
            assert_eq!(r, Revision::local(label));
            assert_eq!(r.to_string(), label);
        }
    }

    #[test]
    fn serde_uses_the_printed_form() {
        for text in ["main@sha1:0123abcd", "local@digest:9f86d081884c7d65"] {
            let json = serde_json::to_string(&Revision::parse(text)).unwrap();
            assert_eq!(json, format!("\"{text}\""));
            let back: Revision = serde_json::from_str(&json).unwrap();
            assert_eq!(back.to_string(), text);
            assert_eq!(back, Revision::parse(text));
        }
    }
}
