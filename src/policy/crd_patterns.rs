//! The string patterns of Karpenter's v1 CRDs that no type of ours expresses, each a plain
//! function so a row of [`bounds_rules`](super::bounds_rules) can name it. OpenAPI patterns are
//! searched, not anchored: `sg-[0-9a-z]+` holds for any text that contains such an id, and the
//! functions below follow the CRD exactly, anchors included or not.

/// Whether `text` contains `prefix` followed by at least one lowercase letter or digit (an
/// unanchored `prefix[0-9a-z]+`).
fn contains_id(text: &str, prefix: &str) -> bool {
    text.match_indices(prefix).any(|(i, _)| {
        text[i + prefix.len()..].bytes().next().is_some_and(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
    })
}

/// Whether `text` is exactly `prefix` and one or more lowercase letters or digits.
fn is_id(text: &str, prefix: &str) -> bool {
    text.strip_prefix(prefix)
        .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()))
}

/// `amiSelectorTerms[].id`: `ami-[0-9a-z]+`.
pub fn ami_id(text: &str) -> bool {
    contains_id(text, "ami-")
}

/// `securityGroupSelectorTerms[].id`: `sg-[0-9a-z]+`.
pub fn security_group_id(text: &str) -> bool {
    contains_id(text, "sg-")
}

/// `subnetSelectorTerms[].id`: `subnet-[0-9a-z]+`.
pub fn subnet_id(text: &str) -> bool {
    contains_id(text, "subnet-")
}

/// `placementGroupSelector.id`: `^pg-[0-9a-z]+$`.
pub fn placement_group_id(text: &str) -> bool {
    is_id(text, "pg-")
}

/// A NodePool budget's `duration`: `^((([0-9]+(h|m))|([0-9]+h[0-9]+m))(0s)?)$`, so hours,
/// minutes or hours then minutes, optionally followed by `0s`.
pub fn budget_duration(text: &str) -> bool {
    let text = text.strip_suffix("0s").unwrap_or(text);
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(minutes) = text.strip_suffix('m') {
        return match minutes.split_once('h') {
            Some((h, m)) => digits(h) && digits(m),
            None => digits(minutes),
        };
    }
    text.strip_suffix('h').is_some_and(digits)
}

/// An AMI alias: `^[a-zA-Z0-9]+@.+$`.
pub fn alias_format(text: &str) -> bool {
    match text.split_once('@') {
        Some((family, version)) => {
            !family.is_empty()
                && family.bytes().all(|b| b.is_ascii_alphanumeric())
                && !version.is_empty()
                && !version.contains('\n')
        }
        None => false,
    }
}

/// A taint value: the CRD's pattern refuses the empty text, and Karpenter's runtime validation
/// reads a value as a qualified name (`[prefix/]name`).
pub fn taint_value(text: &str) -> bool {
    super::names::is_qualified_name(text)
}

/// An RFC 3339 time (`format: date-time`), e.g. `2024-05-01T10:00:00Z`, checked as the API
/// server's strfmt does: a calendar date (`time.Parse` of the full date: month 1-12, a day of
/// that month, leap years counted), `T` or `t`, hour 0-23, minute and second 0-59 (no leap
/// second), an optional fraction, and `Z`, `z` or a `±hh:mm` offset.
pub fn date_time(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    let shape = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && matches!(b[10], b'T' | b't')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !shape {
        return false;
    }
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let n = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        rest = &fraction[n..];
    }
    let zone = rest.as_bytes();
    let in_range = |r: std::ops::Range<usize>, max: u32| text[r].parse::<u32>().is_ok_and(|v| v <= max);
    let offset_ok = match zone {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()),
        _ => false,
    };
    let number = |r: std::ops::Range<usize>| text[r].parse::<u32>().ok();
    let date = match (text[0..4].parse::<i32>().ok(), number(5..7), number(8..10)) {
        (Some(y), Some(m), Some(d)) => chrono::NaiveDate::from_ymd_opt(y, m, d).is_some(),
        _ => false,
    };
    offset_ok && date && in_range(11..13, 23) && in_range(14..16, 59) && in_range(17..19, 59)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_searched_like_the_crd_patterns() {
        assert!(security_group_id("sg-0123abc"));
        assert!(security_group_id("my-sg-1"));
        assert!(!security_group_id("sg-ABC"));
        assert!(!security_group_id("sg-"));
        assert!(subnet_id("subnet-0a1b"));
        assert!(!subnet_id("sn-0a1b"));
        assert!(ami_id("ami-0abc"));
        assert!(!ami_id("AMI-0abc"));
        assert!(placement_group_id("pg-0abc"));
        assert!(!placement_group_id("x-pg-0abc"));
        assert!(!placement_group_id("pg-0ABC"));
    }

    #[test]
    fn budget_durations() {
        for ok in ["8h", "90m", "1h30m", "1h30m0s", "10m0s", "0h"] {
            assert!(budget_duration(ok), "{ok}");
        }
        for bad in ["30s", "1m30s", "30m1h", "1h1h", "0s", "", "h", "1.5h", "1d"] {
            assert!(!budget_duration(bad), "{bad}");
        }
    }

    #[test]
    fn aliases_and_times() {
        assert!(alias_format("al2023@latest"));
        assert!(!alias_format("al2023@"));
        assert!(!alias_format("al-2023@latest"));
        assert!(!alias_format("al2023"));
        assert!(date_time("2024-05-01T10:00:00Z"));
        assert!(date_time("2024-05-01T10:00:00.5+02:00"));
        assert!(!date_time("2024-05-01 10:00:00"));
        assert!(!date_time("yesterday"));
        assert!(date_time("2024-02-29t23:59:59.999z"), "lower case, a leap day");
        assert!(date_time("2024-12-31T00:00:00-08:00"));
        for bad in [
            "2024-00-01T10:00:00Z",
            "2024-13-01T10:00:00Z",
            "2024-05-00T10:00:00Z",
            "2024-02-30T10:00:00Z",
            "2023-02-29T10:00:00Z",
            "2024-04-31T10:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T10:60:00Z",
            "2024-05-01T10:00:60Z",
            "2024-05-01T10:00:99Z",
        ] {
            assert!(!date_time(bad), "{bad}");
        }
    }
}
