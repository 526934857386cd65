//! Kubernetes object metadata and the small shared types of policy documents.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::hint;

pub type Labels = BTreeMap<String, String>;

/// `metadata` of a Kubernetes-style document. Fields a server adds (`uid`, `resourceVersion`, …)
/// are accepted so that `kubectl get -o yaml` output loads, and are ignored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectMeta {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: Labels,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: Labels,
    #[serde(default, skip_serializing)]
    pub uid: Option<serde_json::Value>,
    #[serde(default, skip_serializing)]
    pub resource_version: Option<serde_json::Value>,
    #[serde(default, skip_serializing)]
    pub generation: Option<serde_json::Value>,
    #[serde(default, skip_serializing)]
    pub creation_timestamp: Option<serde_json::Value>,
    #[serde(default, skip_serializing)]
    pub deletion_timestamp: Option<serde_json::Value>,
    #[serde(default, skip_serializing)]
    pub generate_name: Option<serde_json::Value>,
    #[serde(default, skip_serializing)]
    pub finalizers: Option<serde_json::Value>,
    #[serde(default, skip_serializing)]
    pub owner_references: Option<serde_json::Value>,
    #[serde(default, skip_serializing)]
    pub managed_fields: Option<serde_json::Value>,
}

impl ObjectMeta {
    pub fn named(name: &str) -> ObjectMeta {
        ObjectMeta { name: name.to_string(), ..ObjectMeta::default() }
    }
}

/// A taint effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
pub enum TaintEffect {
    NoSchedule,
    PreferNoSchedule,
    NoExecute,
}

impl TaintEffect {
    pub fn parse(text: &str) -> Option<TaintEffect> {
        match text {
            "NoSchedule" => Some(TaintEffect::NoSchedule),
            "PreferNoSchedule" => Some(TaintEffect::PreferNoSchedule),
            "NoExecute" => Some(TaintEffect::NoExecute),
            _ => None,
        }
    }
}

/// A node taint (`key=value:Effect`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Taint {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub effect: TaintEffect,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_added: Option<String>,
}

/// A cron schedule in the standard five-field form or a macro (`@daily`), as Karpenter's
/// disruption budgets take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronSchedule(String);

pub const CRON_HINT: &str = "use five cron fields `minute hour day-of-month month day-of-week` (e.g. `0 9 * * mon-fri`) or a macro such as @daily";

impl CronSchedule {
    pub fn parse(text: &str) -> Result<CronSchedule, String> {
        use croner::parser::{CronParser, Seconds, Year};
        let parser = CronParser::builder().seconds(Seconds::Disallowed).year(Year::Disallowed).build();
        parser.parse(text).map(|_| CronSchedule(text.to_string())).map_err(|e| e.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for CronSchedule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        CronSchedule::parse(&text).map_err(|e| hint::error(format!("invalid cron schedule `{text}`: {e}"), CRON_HINT))
    }
}

impl Serialize for CronSchedule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl JsonSchema for CronSchedule {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "CronSchedule".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "description": "Five-field cron schedule or @macro."})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_accepts_standard_forms() {
        for ok in ["0 9 * * mon-fri", "@daily", "*/5 * * * *", "0 0 1 1 *"] {
            assert!(CronSchedule::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["0 25 * * *", "every day", "0 0 * * * *", ""] {
            assert!(CronSchedule::parse(bad).is_err(), "{bad}");
        }
    }
}
