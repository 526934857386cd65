//! Carrying a hint through serde: custom deserialisers attach what the user should do to their
//! error, and the diagnostics layer splits it off again.

use serde::de::Error;

/// Separates the message from the hint inside a serde error string.
const SEPARATOR: char = '\u{1f}';

/// A serde error whose message carries a hint.
pub fn error<E: Error>(message: impl std::fmt::Display, hint: &str) -> E {
    E::custom(format!("{message}{SEPARATOR}{hint}"))
}

/// Splits a serde error message into the message and its hint (empty when there is none).
pub fn split(message: &str) -> (String, String) {
    match message.split_once(SEPARATOR) {
        Some((m, h)) => (m.to_string(), h.to_string()),
        None => (message.to_string(), String::new()),
    }
}

/// A short description of a JSON value's type, for messages.
pub fn describe(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "a mapping",
    }
}
