//! `-o/--output`: one flag and one set of names for every command that prints objects.
//! `text` is for people; `json` and `yaml` carry the same fields for scripts. The older
//! spellings (`--format`, `--json`) still work, hidden from the help.

use clap::{Args, ValueEnum};
use serde::Serialize;

use super::out::{out, outln};

/// How a command prints what it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Lines and tables for a terminal.
    Text,
    /// JSON, for scripts.
    Json,
    /// YAML, the same fields as JSON.
    Yaml,
}

impl Output {
    /// Prints `value` as JSON (indented) or YAML; `text` has no generic form, so it prints JSON.
    pub(crate) fn print(self, value: &impl Serialize) {
        match self {
            Output::Yaml => out!("{}", serde_yaml::to_string(value).expect("outputs serialise")),
            Output::Json | Output::Text => {
                outln!("{}", serde_json::to_string_pretty(value).expect("outputs serialise"))
            }
        }
    }

    /// `--json` (the older flag) wins when given.
    pub(crate) fn or_json(self, json: bool) -> Output {
        if json { Output::Json } else { self }
    }
}

/// `-o text|json|yaml`, text by default; `--format` is the older name.
#[derive(Debug, Clone, Copy, Args)]
pub struct OutputArg {
    /// Output format: text for people, json or yaml for scripts.
    #[arg(short = 'o', long = "output", alias = "format", value_enum, default_value_t = Output::Text)]
    output: Output,
}

impl OutputArg {
    pub(crate) fn get(self) -> Output {
        self.output
    }
}

/// YAML documents (`---` between them) as a Kubernetes `List`, for `-o json`.
pub(crate) fn yaml_list(text: &str) -> Result<serde_json::Value, serde_yaml::Error> {
    use serde::Deserialize;
    let mut items = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let value = serde_json::Value::deserialize(doc)?;
        if !value.is_null() {
            items.push(value);
        }
    }
    Ok(serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_documents_become_the_items_of_a_list() {
        let list = yaml_list("# a comment\n---\nkind: NodePool\n---\nkind: EC2NodeClass\n").unwrap();
        assert_eq!(list["kind"], "List");
        assert_eq!(list["items"][0]["kind"], "NodePool");
        assert_eq!(list["items"][1]["kind"], "EC2NodeClass");
        assert_eq!(list["items"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn json_flag_wins() {
        assert_eq!(Output::Text.or_json(true), Output::Json);
        assert_eq!(Output::Yaml.or_json(false), Output::Yaml);
    }
}
