//! Names and ranges: the syntax and limits Kubernetes, Karpenter and kOps put on names, label
//! keys and values, counts and sizes, for every kind in one table.
//!
//! Every document passes through [`admit`] on its way from JSON to a typed value: written
//! documents (with their overrides merged), the Fleet and Guardrails, and the NodePools and
//! EC2NodeClasses made from InstanceGroups. A new kind must list its rules in [`rules`] (the
//! match is exhaustive) and a new field is one row. Negative quantities are refused by
//! [`Quantity`](super::quantity::Quantity)'s own deserialiser, so no quantity field can forget it.
//!
//! ```text
//! JSON value ─admit─► typed_all (types, quantities ≥ 0) ─► T
//!            └──────► check (rows of the kind: names, labels, integer ranges, enums)
//! ```

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::bounds_rules::{Rule, Target, When};
use super::diag::{Diagnostic, Severity};
use super::document::{self, Kind, Origin};
use super::names;
use super::quantity::{QUANTITY_HINT, Quantity};
use super::yaml::Step;

/// A typed document and whether its names and ranges are all within bounds.
#[derive(Debug)]
pub struct Admitted<T> {
    /// `None` when the document does not fit its type.
    pub value: Option<T>,
    /// Findings: type errors and out-of-bounds values.
    pub diagnostics: Vec<Diagnostic>,
}

impl<T> Admitted<T> {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Types `value` as `T` and checks it against the rules of `kind`: the one gate every document
/// passes.
pub fn admit<T: DeserializeOwned>(kind: Kind, origin: &Origin, object: &str, value: &Value) -> Admitted<T> {
    let (value_t, mut diagnostics) = match document::typed_all::<T>(origin, object, value) {
        Ok(t) => (Some(t), Vec::new()),
        Err(errors) => (None, errors),
    };
    diagnostics.extend(check(kind, origin, object, value));
    Admitted { value: value_t, diagnostics }
}

/// Checks `value`, a document of `kind`, against every row of the kind.
pub fn check(kind: Kind, origin: &Origin, object: &str, value: &Value) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for row in super::bounds_rules::rules(kind) {
        if !applies(row.when, value) {
            continue;
        }
        let segments = parse(row.path);
        let mut found = Vec::new();
        select(value, &segments, &mut Vec::new(), &mut found);
        for (path, v) in found {
            match row.target {
                Target::Value => {
                    if let Some((message, hint)) = problem(row.rule, v) {
                        out.push(origin.diag(Severity::Error, object, &path, message, hint));
                    }
                }
                Target::Keys => {
                    for key in v.as_object().into_iter().flat_map(|m| m.keys()) {
                        let Some((message, hint)) = problem(row.rule, &Value::String(key.clone())) else { continue };
                        let mut at = path.clone();
                        at.push(Step::Key(key.clone()));
                        let mut d = origin.diag(Severity::Error, object, &at, message, hint);
                        if origin.translated_at.is_none()
                            && let Some((file, span)) = origin.locate_key(&at)
                        {
                            (d.file, d.line, d.column) = (file.to_string(), span.line, span.column);
                        }
                        out.push(d);
                    }
                }
            }
        }
    }
    out
}

fn applies(when: When, value: &Value) -> bool {
    let text = |path: &str| {
        let mut found = Vec::new();
        select(value, &parse(path), &mut Vec::new(), &mut found);
        found.first().and_then(|(_, v)| v.as_str().map(str::to_string))
    };
    match when {
        When::Always => true,
        When::Is(path, want) => text(path).as_deref() == Some(want),
        When::IsNot(path, want) => text(path).as_deref() != Some(want),
    }
}

#[derive(Debug, PartialEq)]
enum Segment<'a> {
    Key(&'a str),
    AnyIndex,
    AnyKey,
}

fn parse(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let key = part.trim_end_matches("[]");
        match key {
            "*" => out.push(Segment::AnyKey),
            k => out.push(Segment::Key(k)),
        }
        for _ in 0..(part.len() - key.len()) / 2 {
            out.push(Segment::AnyIndex);
        }
    }
    out
}

fn select<'a>(value: &'a Value, segments: &[Segment], path: &mut Vec<Step>, out: &mut Vec<(Vec<Step>, &'a Value)>) {
    let Some((first, rest)) = segments.split_first() else {
        out.push((path.clone(), value));
        return;
    };
    match (first, value) {
        (Segment::Key(k), Value::Object(m)) => {
            if let Some(v) = m.get(*k) {
                path.push(Step::Key(k.to_string()));
                select(v, rest, path, out);
                path.pop();
            }
        }
        (Segment::AnyKey, Value::Object(m)) => {
            for (k, v) in m {
                path.push(Step::Key(k.clone()));
                select(v, rest, path, out);
                path.pop();
            }
        }
        (Segment::AnyIndex, Value::Array(items)) => {
            for (i, v) in items.iter().enumerate() {
                path.push(Step::Index(i));
                select(v, rest, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// Text as it may be shown in a message: control characters escaped, long text cut.
fn show(text: &str) -> String {
    let cut: String = text.chars().take(64).collect();
    let more = if cut.len() < text.len() { "…" } else { "" };
    format!("{}{more}", cut.escape_debug())
}

const QUALIFIED_HINT: &str = "use [prefix/]name: an optional DNS-1123 subdomain prefix of at most 253 characters and `/`, then at most 63 letters, digits, `-`, `_` or `.`, starting and ending with a letter or digit";
const VALUE_HINT: &str = "use at most 63 letters, digits, `-`, `_` or `.`, starting and ending with a letter or digit (no spaces or control characters)";

/// What is wrong with `v` under `rule`, as a message and a hint; `None` when it is fine or of a
/// type the typed reading reports.
fn problem(rule: Rule, v: &Value) -> Option<(String, String)> {
    match (rule, v) {
        (Rule::Subdomain(max, why), Value::String(s)) => names::subdomain_problem(s, max).map(|p| {
            (
                format!("`{}` is not a valid name: it {p}", show(s)),
                format!("use a DNS-1123 subdomain of at most {max} characters, e.g. `spot-pool`; {why}"),
            )
        }),
        (Rule::Label(why), Value::String(s)) => (!names::is_dns1123_label(s)).then(|| {
            (
                format!("`{}` is not a DNS-1123 label", show(s)),
                format!("use at most 63 lowercase letters, digits and `-`, starting and ending with a letter or digit; {why}"),
            )
        }),
        (Rule::QualifiedName(what), Value::String(s)) => (!names::is_qualified_name(s))
            .then(|| (format!("`{}` is not a valid {what}", show(s)), QUALIFIED_HINT.to_string())),
        (Rule::LabelValue(what), Value::String(s)) => (!names::is_label_value(s))
            .then(|| (format!("`{}` is not a valid {what}", show(s)), VALUE_HINT.to_string())),
        (Rule::Int(min, max, hint), Value::Number(n)) => {
            let inside = n.as_i64().is_some_and(|i| (min..=max).contains(&i));
            let whole = n.is_i64() || n.is_u64();
            (whole && !inside).then(|| {
                let range = if max == i64::MAX { format!("{min} or more") } else { format!("from {min} to {max}") };
                (format!("{n} is out of range: it must be {range}"), hint.to_string())
            })
        }
        (Rule::OneOf(allowed), Value::String(s)) => (!allowed.contains(&s.as_str())).then(|| {
            (format!("`{}` is not one of {}", show(s), allowed.join(", ")), format!("use one of: {}", allowed.join(", ")))
        }),
        (Rule::Quantity, Value::String(s)) => match Quantity::parse(s) {
            None => Some((format!("invalid quantity `{}`", show(s)), QUANTITY_HINT.to_string())),
            Some(q) if q.is_negative() => {
                Some((format!("quantity `{}` is negative", show(s)), "write a quantity of 0 or more".to_string()))
            }
            Some(_) => None,
        },
        (Rule::VolumeSize, Value::String(s)) => (!volume_size_ok(s)).then(|| {
            (
                format!("volume size `{}` is not one Karpenter accepts", show(s)),
                "write a whole number of Gi (1–59000), G (1–64000), Ti (1–58, last digit 0–7 from 10 on) or T (1–64), e.g. 100Gi".to_string(),
            )
        }),
        (Rule::Matches(ok, rule, hint), Value::String(s)) => {
            (!ok(s)).then(|| (format!("`{}` is refused: Karpenter's CRD requires it to {rule}", show(s)), hint.to_string()))
        }
        (Rule::MaxLength(max, what), Value::String(s)) => (s.chars().count() > max).then(|| {
            (
                format!("the {what} is {} characters long; Karpenter accepts at most {max} (maxLength {max})", s.chars().count()),
                format!("shorten the {what} to {max} characters or fewer"),
            )
        }),
        (Rule::NotEmpty(rule), Value::String(s)) => {
            s.is_empty().then(|| (format!("the value is empty: {rule}"), "write a value or leave the field out".to_string()))
        }
        (Rule::MaxItems(max, hint), Value::Array(items)) => (items.len() > max)
            .then(|| (format!("{} items; Karpenter accepts at most {max} (maxItems {max})", items.len()), hint.to_string())),
        (Rule::MaxProperties(max, hint), Value::Object(m)) => (m.len() > max)
            .then(|| (format!("{} keys; Karpenter accepts at most {max} (maxProperties {max})", m.len()), hint.to_string())),
        (Rule::VolumeSize, Value::Number(n)) => Some((
            format!("volume size {n} has no unit"),
            "write a whole number of Gi, G, Ti or T, e.g. 100Gi".to_string(),
        )),
        _ => None,
    }
}

/// The sizes Karpenter's EC2NodeClass pattern accepts: a whole number without leading zeros and
/// one of the units Gi (1–59000), G (1–64000), Ti or T. The pattern's Ti branch
/// (`[1-9]||[1-5][0-7]|58`) admits 1–9, 58 and the two-digit numbers whose last digit is 0–7 up
/// to 57 (so 18Ti is refused); its T branch admits 1–64. Both branches also match the bare unit,
/// which is no quantity and is refused by the quantity type.
pub fn volume_size_ok(text: &str) -> bool {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    if number.starts_with('0') {
        return false;
    }
    let Ok(n) = number.parse::<u64>() else { return false };
    match unit {
        "Gi" => (1..=59_000).contains(&n),
        "G" => (1..=64_000).contains(&n),
        "Ti" => (1..=9).contains(&n) || n == 58 || ((10..=57).contains(&n) && n % 10 <= 7),
        "T" => (1..=64).contains(&n),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_into_segments() {
        assert_eq!(
            parse("spec.requirements[].values[]"),
            vec![
                Segment::Key("spec"),
                Segment::Key("requirements"),
                Segment::AnyIndex,
                Segment::Key("values"),
                Segment::AnyIndex
            ]
        );
        assert_eq!(parse("spec.limits.*"), vec![Segment::Key("spec"), Segment::Key("limits"), Segment::AnyKey]);
    }

    #[test]
    fn volume_sizes() {
        for ok in ["1Gi", "100Gi", "59000Gi", "64000G", "58Ti", "17Ti", "64T", "59T"] {
            assert!(volume_size_ok(ok), "{ok}");
        }
        for bad in
            ["0Gi", "-1Gi", "-64Gi", "59001Gi", "100", "100Mi", "1.5Gi", "059Gi", "Gi", "", "18Ti", "59Ti", "65T"]
        {
            assert!(!volume_size_ok(bad), "{bad}");
        }
    }

    #[test]
    fn integers_out_of_range() {
        let rule = Rule::Int(0, i32::MAX as i64, "h");
        assert!(problem(rule, &serde_json::json!(4_294_967_296_i64)).is_some());
        assert!(problem(rule, &serde_json::json!(-1)).is_some());
        assert!(problem(rule, &serde_json::json!(110)).is_none());
        assert!(problem(rule, &serde_json::json!(u64::MAX)).is_some());
    }

    #[test]
    fn shown_text_escapes_control_characters() {
        assert_eq!(show("a\u{7}b"), "a\\u{7}b");
        assert!(show(&"x".repeat(300)).ends_with('…'));
    }
}
