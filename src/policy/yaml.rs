//! A YAML reader that remembers where every node came from.
//!
//! Policy errors must name `file:line:column`, so documents are first read into a [`Node`] tree
//! whose scalars, keys and collections carry their [`Span`]. The tree converts to a
//! `serde_json::Value` for typed deserialisation, and [`Node::locate`] maps a field path
//! reported by serde back to a position in the file.
//!
//! Limits keep hostile input cheap: aliases are expanded against a node budget (an alias bomb
//! fails at once instead of exhausting memory), nesting depth is capped, and duplicate keys are
//! refused.

use std::collections::HashMap;

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Most nodes one file may expand to, aliases included.
pub const MAX_NODES: usize = 200_000;
/// Deepest nesting accepted.
pub const MAX_DEPTH: usize = 64;

/// A 1-based line and column in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub line: usize,
    pub column: usize,
}

impl From<Marker> for Span {
    fn from(m: Marker) -> Self {
        Span { line: m.line(), column: m.col() + 1 }
    }
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
    /// A scalar and whether it was quoted or a block scalar (then it is always a string).
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    /// Entries in file order; each key keeps its own span.
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
    let mut reader = Reader { parser: Parser::new_from_str(text), anchors: HashMap::new(), nodes: 0, max_nodes };
    reader.stream()
}

struct Reader<'a> {
    parser: Parser<std::str::Chars<'a>>,
    /// Anchored nodes with their expanded size, so an alias is checked against the budget
    /// before it is copied.
    anchors: HashMap<usize, (Node, usize)>,
    nodes: usize,
    max_nodes: usize,
}

impl Reader<'_> {
    fn next(&mut self) -> Result<(Event, Span), YamlError> {
        self.parser.next_token().map(|(e, m)| (e, Span::from(m))).map_err(|e| {
            YamlError::new(
                Span::from(*e.marker()),
                format!("YAML syntax error: {}", e.info()),
                "check indentation, quoting and that `key: value` pairs line up",
            )
        })
    }

    fn stream(&mut self) -> Result<Vec<Node>, YamlError> {
        let mut docs = Vec::new();
        loop {
            match self.next()? {
                (Event::StreamStart | Event::DocumentEnd | Event::Nothing, _) => {}
                (Event::StreamEnd, _) => return Ok(docs),
                (Event::DocumentStart, _) => {
                    self.anchors.clear();
                    let (event, span) = self.next()?;
                    if matches!(event, Event::DocumentEnd) {
                        continue;
                    }
                    let node = self.node(event, span, 0)?;
                    if !node.is_null() {
                        docs.push(node);
                    }
                }
                (_, span) => return Err(YamlError::new(span, "unexpected YAML event", "")),
            }
        }
    }

    fn count(&mut self, n: usize, span: Span) -> Result<(), YamlError> {
        self.nodes += n;
        if self.nodes > self.max_nodes {
            return Err(YamlError::new(
                span,
                format!("document expands to more than {} nodes (alias bomb?)", self.max_nodes),
                "remove repeated aliases, or split the file",
            ));
        }
        Ok(())
    }

    fn node(&mut self, event: Event, span: Span, depth: usize) -> Result<Node, YamlError> {
        if depth > MAX_DEPTH {
            return Err(YamlError::new(
                span,
                format!("nesting deeper than {MAX_DEPTH} levels"),
                "flatten the document",
            ));
        }
        let before = self.nodes;
        let (node, anchor) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                self.count(1, span)?;
                let plain = style == TScalarStyle::Plain && tag.is_none_or(|t| t.suffix != "str");
                let kind = NodeKind::Scalar { text, plain };
                (Node { span, kind }, anchor)
            }
            Event::Alias(id) => {
                let (node, size) = self
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| YamlError::new(span, "alias to an unknown anchor", "define the anchor first"))?;
                self.count(size, span)?;
                return Ok(Node { span, ..node });
            }
            Event::SequenceStart(anchor, _) => {
                self.count(1, span)?;
                let mut items = Vec::new();
                loop {
                    let (event, at) = self.next()?;
                    if matches!(event, Event::SequenceEnd) {
                        break;
                    }
                    items.push(self.node(event, at, depth + 1)?);
                }
                let kind = NodeKind::Seq(items);
                (Node { span, kind }, anchor)
            }
            Event::MappingStart(anchor, _) => {
                self.count(1, span)?;
                (self.mapping(span, depth)?, anchor)
            }
            _ => return Err(YamlError::new(span, "unexpected YAML event", "")),
        };
        if anchor > 0 {
            self.anchors.insert(anchor, (node.clone(), self.nodes - before));
        }
        Ok(node)
    }

    fn mapping(&mut self, span: Span, depth: usize) -> Result<Node, YamlError> {
        let mut entries: Vec<(String, Span, Node)> = Vec::new();
        loop {
            let (event, at) = self.next()?;
            if matches!(event, Event::MappingEnd) {
                break;
            }
            let key = self.node(event, at, depth + 1)?;
            let NodeKind::Scalar { text, .. } = key.kind else {
                return Err(YamlError::new(
                    at,
                    "mapping keys must be plain strings",
                    "quote the key or restructure the mapping",
                ));
            };
            let (event, vat) = self.next()?;
            let value = self.node(event, vat, depth + 1)?;
            if text == "<<" {
                merge_key(&mut entries, value, at)?;
                continue;
            }
            if entries.iter().any(|(k, _, _)| *k == text) {
                return Err(YamlError::new(
                    at,
                    format!("duplicate key `{text}`"),
                    "each key may appear once in a mapping; remove one of them",
                ));
            }
            entries.push((text, at, value));
        }
        // A block mapping's start event sits a column past its first key; point at the key.
        let span = match entries.first() {
            Some((_, k, _)) if k.line == span.line && k.column < span.column => *k,
            _ => span,
        };
        Ok(Node { span, kind: NodeKind::Map(entries) })
    }
}

/// YAML 1.1 merge keys (`<<: *base`): entries of the merged mapping that are not already set.
fn merge_key(entries: &mut Vec<(String, Span, Node)>, value: Node, at: Span) -> Result<(), YamlError> {
    let sources = match value.kind {
        NodeKind::Map(_) => vec![value],
        NodeKind::Seq(items) => items,
        NodeKind::Scalar { .. } => {
            return Err(YamlError::new(at, "`<<` must merge a mapping", "use `<<: *anchor`"));
        }
    };
    for source in sources {
        if let NodeKind::Map(more) = source.kind {
            for (k, s, v) in more {
                if !entries.iter().any(|(e, _, _)| *e == k) {
                    entries.push((k, s, v));
                }
            }
        }
    }
    Ok(())
}

impl Node {
    /// True for an empty or `null`/`~` scalar.
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar { text, plain: true } if is_null_text(text))
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

    /// Converts to JSON with YAML 1.2 core-schema typing of plain scalars.
    pub fn to_value(&self) -> Value {
        match &self.kind {
            NodeKind::Scalar { text, plain } => {
                if *plain {
                    plain_scalar(text)
                } else {
                    Value::String(text.clone())
                }
            }
            NodeKind::Seq(items) => Value::Array(items.iter().map(Node::to_value).collect()),
            NodeKind::Map(entries) => {
                let map: Map<String, Value> = entries.iter().map(|(k, _, v)| (k.clone(), v.to_value())).collect();
                Value::Object(map)
            }
        }
    }
}

fn is_null_text(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

fn plain_scalar(text: &str) -> Value {
    if is_null_text(text) {
        return Value::Null;
    }
    match text {
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Some(n) = parse_int(text) {
        return Value::Number(n);
    }
    if looks_like_float(text)
        && let Ok(f) = text.parse::<f64>()
        && let Some(n) = Number::from_f64(f)
    {
        return Value::Number(n);
    }
    Value::String(text.to_string())
}

fn parse_int(text: &str) -> Option<Number> {
    let (neg, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let parsed = if let Some(hex) = digits.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()
    } else if let Some(oct) = digits.strip_prefix("0o") {
        i64::from_str_radix(oct, 8).ok()
    } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse::<i64>().ok()
    } else {
        None
    }?;
    Some(Number::from(if neg { -parsed } else { parsed }))
}

fn looks_like_float(text: &str) -> bool {
    let body = text.trim_start_matches(['-', '+']);
    let mut chars = body.chars();
    let starts_ok = matches!(chars.next(), Some(c) if c.is_ascii_digit() || c == '.');
    starts_ok
        && body.chars().any(|c| c.is_ascii_digit())
        && body.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
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
mod tests {
    use super::*;

    fn one(text: &str) -> Node {
        parse_documents(text).unwrap().remove(0)
    }

    #[test]
    fn spans_point_at_values_and_keys() {
        let doc = one("a:\n  b: 1\n  c:\n    - x\n    - y\n");
        let path = [Step::Key("a".into()), Step::Key("c".into()), Step::Index(1)];
        assert_eq!(doc.locate(&path), Span { line: 5, column: 7 });
        let path = [Step::Key("a".into()), Step::Key("b".into())];
        assert_eq!(doc.locate(&path), Span { line: 2, column: 6 });
    }

    #[test]
    fn missing_path_falls_back_to_parent() {
        let doc = one("a:\n  b: 1\n");
        let path = [Step::Key("a".into()), Step::Key("zz".into())];
        assert_eq!(doc.locate(&path), Span { line: 1, column: 1 }, "the key of the deepest existing field");
    }

    #[test]
    fn scalars_are_typed_like_yaml_1_2() {
        let v = one("a: 1\nb: '1'\nc: true\nd: ~\ne: 1.5\nf: 10x\ng: 0x10\nh: \"true\"\n").to_value();
        assert_eq!(v["a"], Value::from(1));
        assert_eq!(v["b"], Value::from("1"));
        assert_eq!(v["c"], Value::from(true));
        assert_eq!(v["d"], Value::Null);
        assert_eq!(v["e"], Value::from(1.5));
        assert_eq!(v["f"], Value::from("10x"));
        assert_eq!(v["g"], Value::from(16));
        assert_eq!(v["h"], Value::from("true"));
    }

    #[test]
    fn multi_document_skips_empty_documents() {
        let docs = parse_documents("---\na: 1\n---\n---\nb: 2\n...\n").unwrap();
        assert_eq!(docs.len(), 2);
    }

    #[test]
    fn alias_bomb_fails_fast() {
        let mut text =
            String::from("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
        for (prev, name) in
            ["a", "b", "c", "d", "e", "f", "g", "h"].iter().zip(["b", "c", "d", "e", "f", "g", "h", "i"])
        {
            let refs = vec![format!("*{prev}"); 9].join(",");
            text.push_str(&format!("{name}: &{name} [{refs}]\n"));
        }
        let started = std::time::Instant::now();
        let err = parse_documents(&text).unwrap_err();
        assert!(err.message.contains("alias bomb"), "{err:?}");
        assert!(started.elapsed().as_secs() < 2);
    }

    #[test]
    fn aliases_and_merge_keys_expand() {
        let v = one("base: &b {x: 1}\nuse: *b\nmerged:\n  <<: *b\n  y: 2\n").to_value();
        assert_eq!(v["use"]["x"], Value::from(1));
        assert_eq!(v["merged"]["x"], Value::from(1));
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let err = parse_documents("a: 1\na: 2\n").unwrap_err();
        assert_eq!(err.span.line, 2);
        assert!(err.message.contains("duplicate key"));
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let err = parse_documents("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.message.starts_with("YAML syntax error"));
        assert!(err.span.line >= 1);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = "[".repeat(200) + &"]".repeat(200);
        assert!(parse_documents(&text).unwrap_err().message.contains("nesting"));
    }
}
