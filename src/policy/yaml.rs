//! A YAML reader that remembers where every node came from, and reads YAML the way Kubernetes
//! does.
//!
//! Policy errors must name `file:line:column`, so documents are first read into a [`Node`] tree
//! whose scalars, keys and collections carry their [`Span`]. The tree converts to a
//! `serde_json::Value` for typed deserialisation, and [`Node::locate`] maps a field path
//! reported by serde back to a position in the file.
//!
//! ```text
//! text ──granit-parser events──► yaml_reader (limits, tags, keys, `<<`) ──► Node tree
//!                                                                            │ to_value
//!                                          yaml_scalar (go-yaml typing) ◄────┘──► JSON
//! ```
//!
//! # Which YAML
//!
//! Kubernetes tools (kubectl, the API server, kOps) read YAML through sigs.k8s.io/yaml: go-yaml
//! v2 decodes the document, and the result is converted to JSON. The syntax is YAML 1.2 as
//! granit-parser reads it by default, which is lenient where libyaml (and so go-yaml) is: a
//! flow collection may close left of its content, and quoted scalars may continue on less
//! indented lines. The typing is go-yaml v2's, which is YAML 1.1 where the versions disagree:
//!
//! - `y`, `yes`, `on`, `n`, `no`, `off` (in lower, Title and UPPER case) are booleans, as are
//!   `true` and `false`; `~`, `null` and an empty value are null.
//! - Integers use Go's syntax: `0755` is octal (493), as is `0o755`; `0x1F`, `0b101`, a sign
//!   and `_` separators are accepted. `08` and `1e3` are floats; a float JSON prints without a
//!   fraction stays an integer, as it does for Kubernetes.
//! - `.inf`, `-.inf` and `.nan` are refused: JSON cannot hold them, and kubectl fails on them.
//! - Timestamps (`2001-12-14`) and sexagesimal numbers (`1:20`) stay the text as written.
//! - Quoted and block scalars, `!!str` and `!!timestamp` are text; `!!int`, `!!float`,
//!   `!!bool` and `!!null` are checked and typed; other tags are ignored and the scalar is text.
//! - Mapping keys become strings as sigs.k8s.io/yaml prints them (`on:` is the key `true`,
//!   `0x10:` is `16`); a null key, or a list or mapping as a key, is refused, as there.
//! - Merge keys (`<<`, YAML 1.1) merge a mapping or a list of mappings, applied where they
//!   stand as go-yaml v2 does: a merge overwrites the mapping's keys written before the `<<`,
//!   keys written after it overwrite the merge, and in `<<: [*a, *b]` earlier sources win over
//!   later ones. A quoted `"<<"` is an ordinary key.
//!
//! A string field that receives a boolean or a number is refused, with the way the value was
//! read and a hint to quote it ([`Node::typing_note`]). kubectl converts without a target type,
//! so the API server refuses such a value too; sigs.k8s.io/yaml's typed `Unmarshal` would store
//! the printed value instead (`on` becomes `"true"`, `0755` becomes `"493"`), never the text as
//! written, so accepting it would hide a change of meaning.
//!
//! Deliberate differences from sigs.k8s.io/yaml: duplicate keys are refused (as go-yaml v3,
//! `UnmarshalStrict` and kubectl's strict field validation do, where `YAMLToJSON` keeps the
//! last one), and `!!binary` is refused (sigs.k8s.io/yaml does not support it either).
//!
//! Limits keep hostile input cheap: aliases are expanded against a node budget in which each
//! 64 bytes of scalar text also count as a node (an alias bomb, of many nodes or of one long
//! value, fails before it is copied instead of exhausting memory), and nesting depth is capped.

use serde_json::{Map, Value};

#[path = "yaml_reader.rs"]
mod reader;
#[path = "yaml_scalar.rs"]
mod yaml_scalar;

/// Most nodes one file may expand to, aliases included; each 64 bytes of scalar text count as
/// one more node.
pub const MAX_NODES: usize = 200_000;
/// Deepest nesting accepted.
pub const MAX_DEPTH: usize = 64;

/// A 1-based line and column in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub line: usize,
    pub column: usize,
}

/// A YAML node with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub span: Span,
    pub kind: NodeKind,
}

/// The shape of a node.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// A scalar and whether it is typed when converted to JSON (go-yaml's implicit typing:
    /// plain, or with a core `!!int`/`!!float`/`!!bool`/`!!null` tag); otherwise it is text.
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    /// Entries in the order their keys were first set (a key a `<<` overwrites keeps its
    /// place); each key keeps the span of the entry that set it and is the string JSON will
    /// hold.
    Map(Vec<(String, Span, Node)>),
}

/// One step of a field path: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// Why a file could not be read as YAML.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct YamlError {
    pub span: Span,
    pub message: String,
    pub hint: String,
}

impl YamlError {
    fn new(span: Span, message: impl Into<String>, hint: impl Into<String>) -> Self {
        YamlError { span, message: message.into(), hint: hint.into() }
    }
}

/// Reads every document of a multi-document YAML text. Empty documents are skipped.
pub fn parse_documents(text: &str) -> Result<Vec<Node>, YamlError> {
    parse_documents_within(text, MAX_NODES)
}

/// [`parse_documents`] with a node budget of `max_nodes` (aliases expanded).
pub fn parse_documents_within(text: &str, max_nodes: usize) -> Result<Vec<Node>, YamlError> {
    reader::Reader::new(text, max_nodes).stream()
}

impl Node {
    /// True for an empty or `null`/`~` scalar.
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar { text, plain: true } if yaml_scalar::resolve(text) == yaml_scalar::Typed::Null)
    }

    /// The node at `path`, or the deepest node on the way there when the path goes further than
    /// the document (so a missing field is reported at its parent).
    pub fn locate(&self, path: &[Step]) -> Span {
        self.locate_key(path).unwrap_or(self.span)
    }

    fn locate_key(&self, path: &[Step]) -> Option<Span> {
        let Some((first, rest)) = path.split_first() else {
            return Some(self.span);
        };
        match (&self.kind, first) {
            (NodeKind::Map(entries), Step::Key(key)) => {
                let (_, kspan, value) = entries.iter().find(|(k, _, _)| k == key)?;
                if rest.is_empty() && !matches!(value.kind, NodeKind::Scalar { .. }) {
                    return Some(*kspan);
                }
                Some(value.locate_key(rest).unwrap_or(*kspan))
            }
            (NodeKind::Seq(items), Step::Index(i)) => {
                let item = items.get(*i)?;
                Some(item.locate_key(rest).unwrap_or(item.span))
            }
            _ => None,
        }
    }

    /// The span of the last key of `path` (for a field that should not be there).
    pub fn key_span(&self, path: &[Step]) -> Option<Span> {
        let (Step::Key(last), parent) = path.split_last()? else {
            return None;
        };
        match &self.get(parent)?.kind {
            NodeKind::Map(entries) => entries.iter().find(|(k, _, _)| k == last).map(|(_, s, _)| *s),
            _ => None,
        }
    }

    /// The node at `path`, when it exists.
    pub fn get(&self, path: &[Step]) -> Option<&Node> {
        let Some((first, rest)) = path.split_first() else {
            return Some(self);
        };
        match (&self.kind, first) {
            (NodeKind::Map(entries), Step::Key(key)) => entries.iter().find(|(k, _, _)| k == key)?.2.get(rest),
            (NodeKind::Seq(items), Step::Index(i)) => items.get(*i)?.get(rest),
            _ => None,
        }
    }

    /// Converts to JSON as sigs.k8s.io/yaml does (see the module documentation).
    pub fn to_value(&self) -> Value {
        match &self.kind {
            NodeKind::Scalar { text, plain: true } => {
                // The reader refused the scalars JSON cannot hold.
                yaml_scalar::json(yaml_scalar::resolve(text), text).unwrap_or(Value::Null)
            }
            NodeKind::Scalar { text, plain: false } => Value::String(text.clone()),
            NodeKind::Seq(items) => Value::Array(items.iter().map(Node::to_value).collect()),
            NodeKind::Map(entries) => {
                let map: Map<String, Value> = entries.iter().map(|(k, _, v)| (k.clone(), v.to_value())).collect();
                Value::Object(map)
            }
        }
    }

    /// For a plain scalar read as a boolean or number, how it was read and how to keep the
    /// text (`on` is the boolean true; quote it), for a field that wanted a string.
    pub fn typing_note(&self) -> Option<String> {
        match &self.kind {
            NodeKind::Scalar { text, plain: true } => yaml_scalar::reading(text),
            _ => None,
        }
    }
}

/// Renders a path as `spec.template.spec.requirements[0].key`.
pub fn path_string(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

#[cfg(test)]
#[path = "yaml_tests.rs"]
mod tests;
