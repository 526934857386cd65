//! Durations on the command line, as Go writes them (`500ms`, `30s`, `1m30s`, `1.5h`), each
//! flag with its bounds. Policy documents keep Karpenter's stricter grammar
//! ([`crate::policy::duration`]); a flag is read by people at a prompt, so it takes what Go's
//! `time.ParseDuration` takes, without a sign.

use std::time::Duration;

/// The forms a duration flag takes, for error messages.
const FORMS: &str = "a number and a unit (ns, us, ms, s, m, h), several in a row: 500ms, 30s, 1m30s, 1.5h";

/// Parses a Go duration: `0`, or one or more `<number><unit>` with units ns, us (µs), ms, s, m, h.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not a duration: write {FORMS}");
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = text;
    let mut nanos: u128 = 0;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let (number, tail) = rest.split_at(number_len);
        let unit_len = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let per: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(bad()),
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
            return Err(bad());
        }
        let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| bad())? };
        let mut part = whole.checked_mul(per).ok_or_else(bad)?;
        // Each digit of the fraction, as Go does; digits below a nanosecond are dropped.
        let mut scale = per;
        for digit in fraction.bytes() {
            scale /= 10;
            part += u128::from(digit - b'0') * scale;
        }
        nanos = nanos.checked_add(part).ok_or_else(bad)?;
        rest = tail;
    }
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| bad())?;
    Ok(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

/// `text` parsed and within `min..=max`; the error names the bounds.
fn bounded(text: &str, min: Duration, max: Duration, bounds: &str) -> Result<Duration, String> {
    let d = parse(text)?;
    if d < min || d > max {
        return Err(format!("`{text}` is out of range: give {bounds}"));
    }
    Ok(d)
}

/// `reconcile --interval`: from 100ms to 24h.
pub(crate) fn interval(text: &str) -> Result<Duration, String> {
    bounded(text, Duration::from_millis(100), Duration::from_secs(24 * 3600), "from 100ms to 24h")
}

/// `--lock-timeout`: from 0s (do not wait) to 1h.
pub(crate) fn lock_timeout(text: &str) -> Result<Duration, String> {
    bounded(text, Duration::ZERO, Duration::from_secs(3600), "from 0s (do not wait) to 1h")
}

/// `trace record --duration`: from 1s to 744h (31 days).
pub(crate) fn record(text: &str) -> Result<Duration, String> {
    let max = Duration::from_secs(crate::trace::MAX_DURATION_SECS);
    bounded(text, Duration::from_secs(1), max, "from 1s to 744h")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> u128 {
        parse(text).unwrap_or_else(|e| panic!("{e}")).as_millis()
    }

    #[test]
    fn parses_what_go_parses() {
        assert_eq!(ms("500ms"), 500);
        assert_eq!(ms("30s"), 30_000);
        assert_eq!(ms("1m30s"), 90_000);
        assert_eq!(ms("2h"), 7_200_000);
        assert_eq!(ms("1.5h"), 5_400_000);
        assert_eq!(ms(".5s"), 500);
        assert_eq!(ms("1h0m0.25s"), 3_600_250);
        assert_eq!(ms("0"), 0);
        assert_eq!(parse("1500us").unwrap(), Duration::from_micros(1500));
        assert_eq!(parse("1µs").unwrap(), Duration::from_micros(1));
        assert_eq!(parse("7ns").unwrap(), Duration::from_nanos(7));
    }

    #[test]
    fn refuses_other_forms() {
        for bad in ["", "10", "s", "1d", "5 m", "-5m", "1..5s", ".s", "1h30", "Never", "99999999999999999999999h"] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains("ns, us, ms, s, m, h"), "{bad}: {e}");
        }
    }

    #[test]
    fn each_flag_keeps_its_bounds() {
        assert_eq!(interval("500ms").unwrap(), Duration::from_millis(500));
        assert!(interval("10ms").unwrap_err().contains("from 100ms to 24h"));
        assert!(interval("25h").is_err());
        assert_eq!(lock_timeout("0s").unwrap(), Duration::ZERO);
        assert!(lock_timeout("2h").is_err());
        assert!(record("500ms").unwrap_err().contains("from 1s to 744h"));
        assert!(record("745h").is_err());
        assert!(record("30m").is_ok());
    }
}
