//! How a scalar is typed: the rules of go-yaml v2, which sigs.k8s.io/yaml (and so kubectl, the
//! API server and kOps) uses to turn YAML into JSON, followed by that JSON conversion.
//!
//! ```text
//! plain text ──resolve──► Typed (null, bool, int, uint, float, text) ──json──► serde_json::Value
//!                               └──key_text──► the string a mapping key becomes
//! ```
//!
//! Only plain (unquoted, untagged or core-tagged) scalars are typed; quoted and block scalars
//! are always text.

use serde_json::{Number, Value};

/// A plain scalar as go-yaml v2 reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Typed {
    Null,
    Bool(bool),
    Int(i64),
    /// An integer above `i64::MAX` that fits in 64 bits.
    Uint(u64),
    Float(f64),
    /// Not a null, boolean or number: the text as written (timestamps included).
    Text,
}

/// The name a core tag is known by, as go-yaml expects it on a scalar.
pub(super) fn type_name(typed: Typed) -> &'static str {
    match typed {
        Typed::Null => "null",
        Typed::Bool(_) => "bool",
        Typed::Int(_) | Typed::Uint(_) => "int",
        Typed::Float(_) => "float",
        Typed::Text => "str",
    }
}

/// Types a plain scalar with YAML 1.1 rules as go-yaml v2 implements them.
pub(super) fn resolve(text: &str) -> Typed {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Typed::Null,
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Typed::Bool(true);
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Typed::Bool(false);
        }
        ".nan" | ".NaN" | ".NAN" => return Typed::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Typed::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Typed::Float(f64::NEG_INFINITY),
        _ => {}
    }
    match text.as_bytes()[0] {
        b'.' => match text.parse::<f64>() {
            Ok(f) if f.is_finite() && !text[1..].starts_with(['+', '-']) => Typed::Float(f),
            _ => Typed::Text,
        },
        b'0'..=b'9' | b'+' | b'-' => number(&text.replace('_', "")),
        _ => Typed::Text,
    }
}

/// A scalar that starts with a digit or a sign, underscores removed.
fn number(plain: &str) -> Typed {
    let (negative, unsigned) = match plain.as_bytes()[0] {
        b'-' => (true, &plain[1..]),
        b'+' => (false, &plain[1..]),
        _ => (false, plain),
    };
    if let Some(magnitude) = go_integer(unsigned) {
        let wide = if negative { -i128::from(magnitude) } else { i128::from(magnitude) };
        if let Ok(i) = i64::try_from(wide) {
            return Typed::Int(i);
        }
        if !negative && plain.as_bytes()[0] != b'+' {
            return Typed::Uint(magnitude);
        }
    }
    if yaml_style_float(plain)
        && let Ok(f) = plain.parse::<f64>()
        && f.is_finite()
    {
        return Typed::Float(f);
    }
    Typed::Text
}

/// Go's `strconv.ParseUint(s, 0, 64)` syntax: `0x`, `0o` and `0b` prefixes, and a leading `0`
/// for octal.
fn go_integer(digits: &str) -> Option<u64> {
    let lower = |p: &str| digits.get(..2).is_some_and(|h| h.eq_ignore_ascii_case(p));
    let (radix, body) = if lower("0x") {
        (16, &digits[2..])
    } else if lower("0o") {
        (8, &digits[2..])
    } else if lower("0b") {
        (2, &digits[2..])
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, &digits[1..])
    } else {
        (10, digits)
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(body, radix).ok()
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`, go-yaml's float pattern.
fn yaml_style_float(text: &str) -> bool {
    let digits = |s: &str| s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let s = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => !frac.is_empty() && digits(frac) == frac.len(),
        Some((int, frac)) => !int.is_empty() && digits(int) == int.len() && digits(frac) == frac.len(),
        None => !mantissa.is_empty() && digits(mantissa) == mantissa.len(),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e) == e.len()
    });
    mantissa_ok && exponent_ok
}

/// The JSON value sigs.k8s.io/yaml produces for a typed scalar. A float JSON prints without
/// a fraction (`1e3` is `1000`) stays an integer, so an integer field accepts it as Kubernetes
/// does. `None` for NaN and infinities, which JSON cannot hold.
pub(super) fn json(typed: Typed, text: &str) -> Option<Value> {
    Some(match typed {
        Typed::Null => Value::Null,
        Typed::Bool(b) => Value::Bool(b),
        Typed::Int(i) => Value::from(i),
        Typed::Uint(u) => Value::from(u),
        Typed::Float(f) if f.fract() == 0.0 && f.abs() < 1e21 => {
            if f >= i64::MIN as f64 && f < i64::MAX as f64 {
                Value::from(f as i64)
            } else if f >= 0.0 && f < u64::MAX as f64 {
                Value::from(f as u64)
            } else {
                Value::Number(Number::from_f64(f)?)
            }
        }
        Typed::Float(f) => Value::Number(Number::from_f64(f)?),
        Typed::Text => Value::String(text.to_string()),
    })
}

/// The string a plain mapping key becomes in JSON: booleans and numbers are printed as
/// sigs.k8s.io/yaml prints them (`on` is `true`, `0x10` is `16`, floats with 32-bit
/// precision). `None` for a null key, which JSON cannot hold.
pub(super) fn key_text(text: &str) -> Option<String> {
    Some(match resolve(text) {
        Typed::Null => return None,
        Typed::Bool(b) => b.to_string(),
        Typed::Int(i) => i.to_string(),
        Typed::Uint(u) => u.to_string(),
        Typed::Float(f) => go_float32(f),
        Typed::Text => text.to_string(),
    })
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 32)`, with YAML's names for the special values.
fn go_float32(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.into();
    }
    let single = f as f32;
    let sci = format!("{single:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        return format!("{single}");
    }
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

/// How a plain scalar was read, when that is not the text as written (`on` is the boolean
/// true), for a message about a field that wanted text.
pub(super) fn reading(text: &str) -> Option<String> {
    let typed = resolve(text);
    let shown = match typed {
        Typed::Text | Typed::Null => return None,
        Typed::Bool(b) => format!("the boolean {b}"),
        _ => format!("the number {}", json(typed, text)?),
    };
    Some(format!(
        "`{text}` is read as {shown} (YAML 1.1, as Kubernetes reads it); quote it (\"{text}\") to keep the text"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_1_1_booleans_and_nulls() {
        for t in ["y", "Yes", "ON", "true"] {
            assert_eq!(resolve(t), Typed::Bool(true), "{t}");
        }
        for t in ["n", "NO", "off", "False"] {
            assert_eq!(resolve(t), Typed::Bool(false), "{t}");
        }
        assert_eq!(resolve("~"), Typed::Null);
        assert_eq!(resolve("yES"), Typed::Text, "mixed case is text");
        assert_eq!(resolve("nil"), Typed::Text);
    }

    #[test]
    fn integers_follow_go_syntax() {
        assert_eq!(resolve("0755"), Typed::Int(0o755), "a leading zero is octal");
        assert_eq!(resolve("0o755"), Typed::Int(0o755));
        assert_eq!(resolve("0x1F"), Typed::Int(31));
        assert_eq!(resolve("-0b101"), Typed::Int(-5));
        assert_eq!(resolve("1_000"), Typed::Int(1000));
        assert_eq!(resolve("+12"), Typed::Int(12));
        assert_eq!(resolve("18446744073709551615"), Typed::Uint(u64::MAX));
        assert_eq!(resolve("-9223372036854775808"), Typed::Int(i64::MIN));
        assert_eq!(resolve("08"), Typed::Float(8.0), "not octal, but go-yaml's float pattern");
        assert_eq!(resolve("0x"), Typed::Text);
    }

    #[test]
    fn floats_and_text() {
        assert_eq!(resolve("1.5"), Typed::Float(1.5));
        assert_eq!(resolve(".5"), Typed::Float(0.5));
        assert_eq!(resolve("-.5e1"), Typed::Float(-5.0));
        assert_eq!(resolve("1e400"), Typed::Text, "out of range stays text");
        assert_eq!(resolve("1:20"), Typed::Text, "no sexagesimal numbers");
        assert_eq!(resolve("2001-12-14"), Typed::Text, "timestamps stay text");
        assert_eq!(resolve("10x"), Typed::Text);
        assert_eq!(resolve("."), Typed::Text);
        assert!(matches!(resolve(".inf"), Typed::Float(f) if f.is_infinite()));
    }

    #[test]
    fn json_prints_integral_floats_as_integers() {
        assert_eq!(json(resolve("1e3"), "1e3"), Some(Value::from(1000)));
        assert_eq!(json(resolve("1.25"), "1.25"), Some(Value::from(1.25)));
        assert_eq!(json(resolve(".nan"), ".nan"), None);
        assert_eq!(json(resolve("abc"), "abc"), Some(Value::from("abc")));
    }

    #[test]
    fn keys_print_like_sigs_yaml() {
        assert_eq!(key_text("on").as_deref(), Some("true"));
        assert_eq!(key_text("0x10").as_deref(), Some("16"));
        assert_eq!(key_text("1.5").as_deref(), Some("1.5"));
        assert_eq!(key_text("1e6").as_deref(), Some("1e+06"));
        assert_eq!(key_text("0.1").as_deref(), Some("0.1"));
        assert_eq!(key_text("~"), None);
        assert_eq!(key_text("zone").as_deref(), Some("zone"));
    }

    #[test]
    fn reading_explains_a_typed_scalar() {
        assert!(reading("on").unwrap().contains("the boolean true"));
        assert!(reading("0755").unwrap().contains("the number 493"));
        assert_eq!(reading("on-demand"), None);
    }
}
