//! Kubernetes name syntax, as apimachinery's validation defines it: DNS-1123 labels and
//! subdomains (object names, kOps cluster names), qualified names (label keys, taint keys) and
//! label values. Each function accepts exactly its regular expression within its length limit.

/// Longest DNS-1123 label (and label value, and name part of a qualified name).
pub const MAX_LABEL: usize = 63;
/// Longest DNS-1123 subdomain (and prefix of a qualified name).
pub const MAX_SUBDOMAIN: usize = 253;

fn lower_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
pub fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_LABEL
        && lower_alnum(b[0])
        && lower_alnum(b[b.len() - 1])
        && b.iter().all(|&c| lower_alnum(c) || c == b'-')
}

/// DNS-1123 labels joined by `.`, at most 253 characters.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= MAX_SUBDOMAIN && s.split('.').all(|part| label_shape(part.as_bytes()))
}

/// A DNS-1123 label without the length limit (a subdomain limits only its total length).
fn label_shape(b: &[u8]) -> bool {
    !b.is_empty() && lower_alnum(b[0]) && lower_alnum(b[b.len() - 1]) && b.iter().all(|&c| lower_alnum(c) || c == b'-')
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`: a non-empty name of a qualified name.
fn name_shape(b: &[u8]) -> bool {
    let edge = |c: u8| c.is_ascii_alphanumeric();
    !b.is_empty()
        && edge(b[0])
        && edge(b[b.len() - 1])
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// A label key, taint key or requirement key: `[prefix/]name`, the prefix a DNS-1123
/// subdomain, the name at most 63 characters of `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`.
pub fn is_qualified_name(key: &str) -> bool {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let prefix_ok = prefix.is_none_or(|p| !p.is_empty() && is_dns1123_subdomain(p));
    prefix_ok && name.len() <= MAX_LABEL && name_shape(name.as_bytes())
}

/// A label value: empty, or at most 63 characters of `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`.
pub fn is_label_value(value: &str) -> bool {
    value.is_empty() || (value.len() <= MAX_LABEL && name_shape(value.as_bytes()))
}

/// Why `s` is not a DNS-1123 subdomain of at most `max` characters, in words.
pub fn subdomain_problem(s: &str, max: usize) -> Option<String> {
    if s.len() > max {
        return Some(format!("is {} characters long; at most {max} are allowed", s.len()));
    }
    (!is_dns1123_subdomain(s)).then(|| {
        "must be lowercase letters, digits, `-` and `.`, each dot-separated part starting and ending with a letter or digit".to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subdomains_and_labels() {
        for ok in ["a", "dev", "dev.example.com", "a-b.c", "0"] {
            assert!(is_dns1123_subdomain(ok), "{ok}");
        }
        for bad in ["", "..", "a/b", "../escape", "Spot_Pool", "a.", ".a", "-a", "a-", "a..b", "A"] {
            assert!(!is_dns1123_subdomain(bad), "{bad}");
        }
        assert!(is_dns1123_label("spot-1"));
        assert!(!is_dns1123_label("a.b"));
        assert!(!is_dns1123_label(&"a".repeat(64)));
        assert!(is_dns1123_subdomain(&"a".repeat(253)) && !is_dns1123_subdomain(&"a".repeat(254)));
    }

    #[test]
    fn qualified_names_and_values() {
        assert!(is_qualified_name("example.com/special-taint"));
        assert!(is_qualified_name("Billing_Team.x"));
        assert!(!is_qualified_name("a/b/c"));
        assert!(!is_qualified_name("/a"));
        assert!(!is_qualified_name("a/"));
        assert!(is_qualified_name("billing-team") && !is_qualified_name("Bad_Prefix/x") && !is_qualified_name(""));
        assert!(!is_label_value("-bad"));
        assert!(is_label_value("") && is_label_value("A.b-c_d"));
        assert!(!is_label_value("a b") && !is_label_value("a\u{7}") && !is_label_value(&"a".repeat(64)));
    }
}
