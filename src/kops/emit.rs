//! YAML the way kOps writes it to the state store (JSON → YAML through go-yaml v2): map keys
//! sorted at every level, block style, sequences at their key's indentation, and a string
//! double-quoted whenever a YAML 1.1 reader could take it for something else (`"0"`, `"yes"`,
//! `"2016-12-10T22:42:28Z"`). Multi-line strings are literal blocks.

use serde_json::Value;

/// The document as kOps would write it.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(m) if !m.is_empty() => map(value, 0, &mut out),
        Value::Array(a) if !a.is_empty() => seq(a, 0, &mut out),
        other => {
            out.push_str(&scalar(other, 0));
            out.push('\n');
        }
    }
    out
}

fn pad(n: usize, out: &mut String) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn map(value: &Value, indent: usize, out: &mut String) {
    let m = value.as_object().expect("callers pass maps");
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort();
    for (i, k) in keys.into_iter().enumerate() {
        // The first key of a map inside a sequence item shares the `- ` line.
        if i > 0 || !out.ends_with("- ") {
            pad(indent, out);
        }
        out.push_str(&string(k, indent));
        out.push(':');
        nested(&m[k], indent, indent + 2, out);
    }
}

/// What follows `key:` or `- `: a nested block on the next lines, or a scalar on this one.
fn nested(v: &Value, seq_indent: usize, map_indent: usize, out: &mut String) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            map(v, map_indent, out);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            seq(a, seq_indent, out);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other, map_indent));
            out.push('\n');
        }
    }
}

fn seq(items: &[Value], indent: usize, out: &mut String) {
    for item in items {
        pad(indent, out);
        out.push_str("- ");
        match item {
            Value::Object(m) if !m.is_empty() => map(item, indent + 2, out),
            Value::Array(a) if !a.is_empty() => {
                out.pop();
                nested(item, indent + 2, indent + 2, out);
            }
            other => {
                out.push_str(&scalar(other, indent + 2));
                out.push('\n');
            }
        }
    }
}

fn scalar(v: &Value, indent: usize) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s, indent),
        Value::Array(_) => "[]".to_string(),
        Value::Object(_) => "{}".to_string(),
    }
}

fn string(s: &str, indent: usize) -> String {
    if s.contains('\n') && literal_ok(s) {
        let chomp = if s.ends_with('\n') { "|" } else { "|-" };
        let mut out = chomp.to_string();
        for line in s.strip_suffix('\n').unwrap_or(s).split('\n') {
            out.push('\n');
            if !line.is_empty() {
                out.push_str(&" ".repeat(indent));
                out.push_str(line);
            }
        }
        return out;
    }
    if plain_ok(s) { s.to_string() } else { Value::String(s.to_string()).to_string() }
}

/// A literal block keeps the text exactly when no line has trailing blanks or tabs, the first
/// line does not start with a space, and at most one newline ends it.
fn literal_ok(s: &str) -> bool {
    !s.starts_with(' ')
        && !s.ends_with("\n\n")
        && !s.contains(['\t', '\r'])
        && s.split('\n').all(|l| !l.ends_with(' '))
        && !s.chars().any(|c| c.is_control() && c != '\n')
}

/// Whether `s` can be written unquoted and read back as the same string by YAML 1.1 and 1.2.
fn plain_ok(s: &str) -> bool {
    let Some(first) = s.chars().next() else { return false };
    if s.starts_with(' ') || s.ends_with(' ') || s.ends_with(':') {
        return false;
    }
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.chars().any(|c| c.is_control()) {
        return false;
    }
    !resolves_to_non_string(s)
}

fn resolves_to_non_string(s: &str) -> bool {
    const WORDS: [&str; 26] = [
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false", "False", "FALSE",
        "on", "On", "ON", "off", "Off", "OFF", "~", "null", "Null", "NULL",
    ];
    if WORDS.contains(&s)
        || [".inf", ".Inf", ".INF", ".nan", ".NaN", ".NAN"].contains(&s.trim_start_matches(['+', '-']))
    {
        return true;
    }
    let first = s.chars().next().expect("callers pass non-empty strings");
    if !(first.is_ascii_digit() || "+-.".contains(first)) {
        return false;
    }
    let bare = s.replace('_', "");
    let digits = bare.trim_start_matches(['+', '-']);
    bare.parse::<f64>().is_ok()
        || digits.strip_prefix("0x").is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
        || digits.strip_prefix("0o").is_some_and(|o| !o.is_empty() && o.chars().all(|c| c.is_digit(8)))
        || digits.strip_prefix("0b").is_some_and(|b| !b.is_empty() && b.chars().all(|c| c == '0' || c == '1'))
        || looks_like_timestamp(s)
        || (s.contains(':') && s.split(':').all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit() || c == '.')))
}

/// `YYYY-MM-DD`, optionally followed by a time: YAML 1.1's timestamp.
fn looks_like_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 8 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[5].is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn quotes_what_yaml_would_misread() {
        for s in ["0", "1.5", "yes", "on", "", "2016-12-10T22:42:28Z", "0x1f", "- x", "a: b", "12:30", "null", ".inf"] {
            assert!(string(s, 0).starts_with('"'), "{s:?} must be quoted");
        }
        for s in ["m5.large", "1.32.4", "48h20m", "ubuntu/images/x-20220404", "key=value:NoSchedule", "us-east-1a"] {
            assert_eq!(string(s, 0), s, "{s:?} is plain");
        }
    }

    #[test]
    fn lays_out_like_go_yaml() {
        let v = json!({"spec": {"taints": ["a=b:NoSchedule"], "kubelet": {"maxPods": 58}, "empty": {},
            "items": [{"name": "x", "size": 1}], "script": "#!/bin/sh\necho hi\n"}, "apiVersion": "v"});
        let expected = "apiVersion: v\nspec:\n  empty: {}\n  items:\n  - name: x\n    size: 1\n  kubelet:\n    maxPods: 58\n  script: |\n    #!/bin/sh\n    echo hi\n  taints:\n  - a=b:NoSchedule\n";
        assert_eq!(to_yaml(&v), expected);
    }
}
