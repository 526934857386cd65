//! Kubernetes resource quantities (`500m`, `4`, `16Gi`, `1e3`).
//!
//! Kept exact as thousandths of a unit, which covers cpu (millicores) and memory (bytes) alike.
//! The text the user wrote is kept for output.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::hint;

/// A parsed quantity: the text as written and its value in thousandths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quantity {
    text: String,
    milli: i128,
}

/// What a quantity looks like, for hints.
pub const QUANTITY_HINT: &str =
    "use a Kubernetes quantity such as 500m, 4, 1.5, 16Gi or 512Mi (suffixes n u m k M G T P E Ki Mi Gi Ti Pi Ei)";

impl Quantity {
    /// Parses Kubernetes quantity syntax; `None` when the text is not a quantity.
    pub fn parse(text: &str) -> Option<Quantity> {
        let milli = parse_milli(text.trim())?;
        Some(Quantity { text: text.trim().to_string(), milli })
    }

    /// Builds a quantity from thousandths of a unit.
    pub fn from_milli(milli: i128) -> Quantity {
        let text = if milli % 1000 == 0 { (milli / 1000).to_string() } else { format!("{milli}m") };
        Quantity { text, milli }
    }

    /// The value in thousandths (millicores for cpu).
    pub fn milli(&self) -> i128 {
        self.milli
    }

    /// The value in whole units, rounded up (bytes for memory).
    pub fn units(&self) -> i128 {
        (self.milli + 999).div_euclid(1000)
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Below zero. Kubernetes refuses negative resource quantities, and so does every quantity
    /// field of a policy document.
    pub fn is_negative(&self) -> bool {
        self.milli < 0
    }
}

fn parse_milli(text: &str) -> Option<i128> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-')).unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let (negative, digits) = match number.as_bytes().first()? {
        b'-' => (true, &number[1..]),
        b'+' => (false, &number[1..]),
        _ => (false, number),
    };
    if digits.is_empty() || digits.matches('.').count() > 1 || digits.contains(['+', '-']) {
        return None;
    }
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    // value = mantissa / 10^scale, kept exact.
    let mantissa: i128 = format!("{whole}{frac}").parse().ok()?;
    let scale = frac.len() as i32;
    let (base, exp) = suffix_factor(suffix)?;
    let mut value = mantissa.checked_mul(1000)?;
    let mut divisor: i128 = 10i128.checked_pow(scale as u32)?;
    if base == 2 {
        value = value.checked_mul(1i128.checked_shl(exp as u32)?)?;
    } else if exp >= 0 {
        value = value.checked_mul(10i128.checked_pow(exp as u32)?)?;
    } else {
        divisor = divisor.checked_mul(10i128.checked_pow((-exp) as u32)?)?;
    }
    // Kubernetes rounds fractions of the smallest unit up.
    let rounded = (value + divisor - 1) / divisor;
    Some(if negative { -rounded } else { rounded })
}

/// The base (2 or 10) and exponent a suffix stands for.
fn suffix_factor(suffix: &str) -> Option<(u8, i32)> {
    let binary = [("Ki", 10), ("Mi", 20), ("Gi", 30), ("Ti", 40), ("Pi", 50), ("Ei", 60)];
    if let Some((_, e)) = binary.iter().find(|(s, _)| *s == suffix) {
        return Some((2, *e));
    }
    let decimal =
        [("n", -9), ("u", -6), ("m", -3), ("", 0), ("k", 3), ("M", 6), ("G", 9), ("T", 12), ("P", 15), ("E", 18)];
    if let Some((_, e)) = decimal.iter().find(|(s, _)| *s == suffix) {
        return Some((10, *e));
    }
    let exp = suffix.strip_prefix(['e', 'E'])?;
    let valid = !exp.is_empty() && exp.trim_start_matches(['+', '-']).bytes().all(|b| b.is_ascii_digit());
    valid.then(|| exp.parse().ok().map(|e| (10, e)))?
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = serde_json::Value::deserialize(d)?;
        let text = match &raw {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            other => {
                return Err(hint::error(
                    format!("expected a quantity, found {}", hint::describe(other)),
                    QUANTITY_HINT,
                ));
            }
        };
        let q =
            Quantity::parse(&text).ok_or_else(|| hint::error(format!("invalid quantity `{text}`"), QUANTITY_HINT))?;
        if q.is_negative() {
            return Err(hint::error(
                format!("quantity `{text}` is negative"),
                "write a quantity of 0 or more; a negative limit or size would cancel out other values",
            ));
        }
        Ok(q)
    }
}

impl schemars::JsonSchema for Quantity {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Quantity".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A Kubernetes quantity such as 500m, 4 or 16Gi, never negative.",
            "anyOf": [
                {"type": "string", "pattern": "^\\+?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?[0-9]+))?$"},
                {"type": "number", "minimum": 0}
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn milli(text: &str) -> Option<i128> {
        Quantity::parse(text).map(|q| q.milli())
    }

    #[test]
    fn parses_cpu_and_memory_forms() {
        assert_eq!(milli("500m"), Some(500));
        assert_eq!(milli("4"), Some(4000));
        assert_eq!(milli("1.5"), Some(1500));
        assert_eq!(milli("1Ki"), Some(1_024_000));
        assert_eq!(milli("16Gi").map(|m| m / 1000), Some(16 << 30));
        assert_eq!(milli("1e3"), Some(1_000_000));
        assert_eq!(milli("2k"), Some(2_000_000));
        assert_eq!(milli(".5"), Some(500));
        assert_eq!(milli("1n"), Some(1), "fractions round up");
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["10x", "", "m", "1.2.3", "Gi", "--1", "1e", "1 Gi", "0x10"] {
            assert_eq!(milli(bad), None, "{bad}");
        }
    }

    #[test]
    fn units_round_up() {
        assert_eq!(Quantity::parse("1500m").unwrap().units(), 2);
        assert_eq!(Quantity::from_milli(2500).as_str(), "2500m");
        assert_eq!(Quantity::from_milli(3000).as_str(), "3");
    }
}
