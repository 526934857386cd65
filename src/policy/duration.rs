//! Durations as Karpenter writes them (`30s`, `5m`, `1h30m`, `720h`) and the word `Never`.
//!
//! Karpenter's CRDs accept only whole `h`/`m`/`s` components; a general duration parser would
//! accept forms (`1 day`, `1.5h`) that Karpenter itself rejects, so the grammar is kept here.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::hint;

pub const DURATION_HINT: &str = "write a duration as whole hours, minutes and seconds, e.g. 30s, 5m, 1h30m or 720h";

/// A duration with the text it was written as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoDuration {
    text: String,
    value: Duration,
}

impl GoDuration {
    pub fn parse(text: &str) -> Option<GoDuration> {
        let mut total: u64 = 0;
        let mut digits = String::new();
        let mut parts = 0;
        for c in text.chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let unit = match c {
                'h' => 3600,
                'm' => 60,
                's' => 1,
                _ => return None,
            };
            let n: u64 = digits.parse().ok()?;
            total = total.checked_add(n.checked_mul(unit)?)?;
            digits.clear();
            parts += 1;
        }
        (digits.is_empty() && parts > 0)
            .then(|| GoDuration { text: text.to_string(), value: Duration::from_secs(total) })
    }

    pub fn from_secs(secs: u64) -> GoDuration {
        let text = if secs.is_multiple_of(3600) && secs > 0 {
            format!("{}h", secs / 3600)
        } else if secs.is_multiple_of(60) && secs > 0 {
            format!("{}m", secs / 60)
        } else {
            format!("{secs}s")
        };
        GoDuration { text, value: Duration::from_secs(secs) }
    }

    pub fn duration(&self) -> Duration {
        self.value
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// A duration that may be `Never` (Karpenter's `NillableDuration`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NillableDuration {
    Never,
    After(GoDuration),
}

impl NillableDuration {
    pub fn duration(&self) -> Option<Duration> {
        match self {
            NillableDuration::Never => None,
            NillableDuration::After(d) => Some(d.duration()),
        }
    }
}

fn text_of<'de, D: Deserializer<'de>>(d: D, hint_text: &str) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Ok(s),
        other => Err(hint::error(format!("expected a duration string, found {}", hint::describe(&other)), hint_text)),
    }
}

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = text_of(d, DURATION_HINT)?;
        GoDuration::parse(&text).ok_or_else(|| hint::error(format!("invalid duration `{text}`"), DURATION_HINT))
    }
}

impl<'de> Deserialize<'de> for NillableDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let hint_text = "write a duration such as 30s, 5m or 720h, or Never";
        let text = text_of(d, hint_text)?;
        if text == "Never" {
            return Ok(NillableDuration::Never);
        }
        GoDuration::parse(&text)
            .map(NillableDuration::After)
            .ok_or_else(|| hint::error(format!("invalid duration `{text}`"), hint_text))
    }
}

impl Serialize for GoDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl Serialize for NillableDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            NillableDuration::Never => s.serialize_str("Never"),
            NillableDuration::After(d) => d.serialize(s),
        }
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl schemars::JsonSchema for GoDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "pattern": "^([0-9]+(s|m|h))+$"})
    }
}

impl schemars::JsonSchema for NillableDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "NillableDuration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "pattern": "^(([0-9]+(s|m|h))+|Never)$"})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_karpenter_forms() {
        assert_eq!(GoDuration::parse("30s").unwrap().duration().as_secs(), 30);
        assert_eq!(GoDuration::parse("1h30m").unwrap().duration().as_secs(), 5400);
        assert_eq!(GoDuration::parse("720h").unwrap().duration().as_secs(), 2_592_000);
        assert_eq!(GoDuration::parse("0s").unwrap().duration().as_secs(), 0);
    }

    #[test]
    fn rejects_other_forms() {
        for bad in ["", "10", "1.5h", "1d", "5 m", "m", "-5m", "Never"] {
            assert!(GoDuration::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn never_is_nillable() {
        let never: NillableDuration = serde_json::from_str("\"Never\"").unwrap();
        assert_eq!(never.duration(), None);
        let after: NillableDuration = serde_json::from_str("\"5m\"").unwrap();
        assert_eq!(after.duration(), Some(Duration::from_secs(300)));
    }
}
