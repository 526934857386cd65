//! Builds the [`Node`] tree from granit-parser's events, enforcing the limits that keep hostile
//! input cheap, and applying go-yaml's rules for tags, keys and merge keys as it goes.

use std::collections::HashMap;

use granit_parser::{ErrorKind, Event, Marker, Parser, ScalarStyle, Tag};

use super::yaml_scalar::{self, Typed};
use super::{MAX_DEPTH, Node, NodeKind, Span, YamlError};

/// Bytes of scalar text that cost one node of the budget on top of the scalar's own node, so
/// an alias of a long scalar is charged for the text it copies.
const BYTES_PER_NODE: usize = 64;

/// The namespace of the YAML tags (`!!str` is `tag:yaml.org,2002:str`).
const YAML_TAGS: &str = "tag:yaml.org,2002:";

fn span(m: Marker) -> Span {
    Span { line: m.line(), column: m.col() + 1 }
}

pub(super) struct Reader<'a> {
    parser: Parser<'a, granit_parser::StrInput<'a>>,
    /// Anchored nodes with their expanded size (nodes, and their text in [`BYTES_PER_NODE`]
    /// units), so an alias is checked against the budget before it is copied.
    anchors: HashMap<usize, (Node, usize)>,
    nodes: usize,
    max_nodes: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(text: &'a str, max_nodes: usize) -> Self {
        // Nesting is capped by MAX_DEPTH below; the parser's own caps sit just above it so its
        // message never hides ours. Comments are not needed.
        let options = granit_parser::options! {
            emit_comments: false,
            flow_nesting_limit: MAX_DEPTH + 2,
            block_nesting_limit: MAX_DEPTH + 2,
        };
        let parser = Parser::new_from_str_with_options(text, options);
        Reader { parser, anchors: HashMap::new(), nodes: 0, max_nodes }
    }

    fn next(&mut self) -> Result<(Event<'a>, Span), YamlError> {
        match self.parser.next_event() {
            Some(Ok((event, at))) => Ok((event, span(at.start))),
            Some(Err(e)) if matches!(e.kind(), ErrorKind::RecursionLimitExceeded) => Err(too_deep(span(*e.marker()))),
            Some(Err(e)) => Err(YamlError::new(
                span(*e.marker()),
                format!("YAML syntax error: {}", e.info()),
                "check indentation, quoting and that `key: value` pairs line up",
            )),
            None => Ok((Event::StreamEnd, Span::default())),
        }
    }

    pub(super) fn stream(&mut self) -> Result<Vec<Node>, YamlError> {
        let mut docs = Vec::new();
        loop {
            match self.next()? {
                (Event::StreamStart | Event::DocumentEnd, _) => {}
                (Event::StreamEnd, _) => return Ok(docs),
                (Event::DocumentStart(..), _) => {
                    self.anchors.clear();
                    let (event, at) = self.next()?;
                    if matches!(event, Event::DocumentEnd) {
                        continue;
                    }
                    let node = self.node(event, at, 0)?;
                    if !node.is_null() {
                        docs.push(node);
                    }
                }
                (_, at) => return Err(YamlError::new(at, "unexpected YAML event", "")),
            }
        }
    }

    fn count(&mut self, n: usize, at: Span) -> Result<(), YamlError> {
        self.nodes += n;
        if self.nodes > self.max_nodes {
            return Err(YamlError::new(
                at,
                format!(
                    "document expands to more than {} nodes, counting each {BYTES_PER_NODE} bytes of text as a node (alias bomb?)",
                    self.max_nodes
                ),
                "remove repeated aliases, especially of long values, or split the file",
            ));
        }
        Ok(())
    }

    fn node(&mut self, event: Event<'a>, at: Span, depth: usize) -> Result<Node, YamlError> {
        if depth > MAX_DEPTH {
            return Err(too_deep(at));
        }
        let before = self.nodes;
        let (node, anchor) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                self.count(1 + text.len() / BYTES_PER_NODE, at)?;
                (scalar(text.into_owned(), style, tag.as_deref(), at)?, anchor)
            }
            Event::Alias(id) => {
                let size = self
                    .anchors
                    .get(&id)
                    .map(|(_, size)| *size)
                    .ok_or_else(|| YamlError::new(at, "alias to an unknown anchor", "define the anchor first"))?;
                // Charged before the copy, so a refused expansion allocates nothing.
                self.count(size, at)?;
                let node = self.anchors[&id].0.clone();
                return Ok(Node { span: at, ..node });
            }
            Event::SequenceStart(_, anchor, _) => {
                self.count(1, at)?;
                let mut items = Vec::new();
                loop {
                    let (event, item_at) = self.next()?;
                    if matches!(event, Event::SequenceEnd) {
                        break;
                    }
                    items.push(self.node(event, item_at, depth + 1)?);
                }
                (Node { span: at, kind: NodeKind::Seq(items) }, anchor)
            }
            Event::MappingStart(_, anchor, _) => {
                self.count(1, at)?;
                (self.mapping(at, depth)?, anchor)
            }
            _ => return Err(YamlError::new(at, "unexpected YAML event", "")),
        };
        if anchor > 0 {
            self.anchors.insert(anchor, (node.clone(), self.nodes - before));
        }
        Ok(node)
    }

    /// A mapping, built as go-yaml v2 builds it: entries are set in document order, so a `<<`
    /// overwrites the keys written before it and the keys written after it overwrite the merge.
    /// A key written twice by the mapping itself is refused.
    fn mapping(&mut self, at: Span, depth: usize) -> Result<Node, YamlError> {
        let mut entries = Entries::default();
        // The mapping's own keys, for the duplicate check; merged keys may be overwritten.
        let mut own: HashMap<String, Span> = HashMap::new();
        loop {
            let (event, key_at) = self.next()?;
            if matches!(event, Event::MappingEnd) {
                break;
            }
            let is_merge = matches!(&event, Event::Scalar(t, ScalarStyle::Plain, _, tag)
                if t == "<<" && tag.as_deref().is_none_or(|t| tag_name(t).as_deref() == Some("merge")));
            let key = self.node(event, key_at, depth + 1)?;
            let (value_event, value_at) = self.next()?;
            let value = self.node(value_event, value_at, depth + 1)?;
            if is_merge {
                merge_key(&mut entries, value, key_at)?;
                continue;
            }
            let text = key_string(key)?;
            if let Some(first) = own.get(&text) {
                return Err(YamlError::new(
                    key_at,
                    format!("duplicate key `{text}` (first at line {}, column {})", first.line, first.column),
                    "each key may appear once in a mapping; remove one of them",
                ));
            }
            own.insert(text.clone(), key_at);
            entries.set(text, key_at, value);
        }
        Ok(Node { span: at, kind: NodeKind::Map(entries.list) })
    }
}

/// A mapping's entries in the order their keys were first set, with an index by key.
#[derive(Default)]
struct Entries {
    list: Vec<(String, Span, Node)>,
    index: HashMap<String, usize>,
}

impl Entries {
    /// Sets `key`, replacing the value (and span) of an earlier entry with the same key.
    fn set(&mut self, key: String, at: Span, value: Node) {
        match self.index.get(&key) {
            Some(&i) => self.list[i] = (key, at, value),
            None => {
                self.index.insert(key.clone(), self.list.len());
                self.list.push((key, at, value));
            }
        }
    }
}

fn too_deep(at: Span) -> YamlError {
    YamlError::new(at, format!("nesting deeper than {MAX_DEPTH} levels"), "flatten the document")
}

/// The local name of a tag in the YAML namespace (`str` for `!!str`), or `None` for another tag.
fn tag_name(tag: &Tag) -> Option<String> {
    tag.suffix_in_namespace(YAML_TAGS).map(|s| s.into_owned())
}

/// A scalar node. `plain` marks text that JSON conversion types (go-yaml's implicit typing);
/// an explicit core tag is checked here and typed the same way, any other tag reads as text.
fn scalar(text: String, style: ScalarStyle, tag: Option<&Tag>, at: Span) -> Result<Node, YamlError> {
    let name = tag.and_then(tag_name);
    let plain = match name.as_deref() {
        None if tag.is_some() => false,
        None => style == ScalarStyle::Plain,
        Some("str" | "timestamp") => false,
        Some("binary") => {
            return Err(YamlError::new(
                at,
                "`!!binary` values are not supported",
                "write the text itself, or keep the base64 text without the `!!binary` tag",
            ));
        }
        Some(wanted @ ("int" | "float" | "bool" | "null")) => {
            let typed = yaml_scalar::resolve(&text);
            let ok = yaml_scalar::type_name(typed) == wanted || (wanted == "float" && matches!(typed, Typed::Int(_)));
            if !ok {
                return Err(YamlError::new(
                    at,
                    format!("`{text}` cannot be read as !!{wanted}"),
                    format!("remove the !!{wanted} tag or write a {wanted} value"),
                ));
            }
            true
        }
        Some(_) => false,
    };
    if plain && yaml_scalar::json(yaml_scalar::resolve(&text), &text).is_none() {
        return Err(YamlError::new(
            at,
            format!("`{text}` is not a number JSON can hold, so Kubernetes refuses it too"),
            format!("quote it (\"{text}\") if you mean the text"),
        ));
    }
    Ok(Node { span: at, kind: NodeKind::Scalar { text, plain } })
}

/// The JSON key a scalar key becomes.
fn key_string(key: Node) -> Result<String, YamlError> {
    match key.kind {
        NodeKind::Scalar { text, plain: false } => Ok(text),
        NodeKind::Scalar { text, plain: true } => yaml_scalar::key_text(&text).ok_or_else(|| {
            YamlError::new(key.span, "a mapping key may not be null", "write a key before the `:`, or quote it")
        }),
        _ => Err(YamlError::new(
            key.span,
            "mapping keys must be scalars",
            "a list or mapping cannot be a key; quote the key or restructure the mapping",
        )),
    }
}

/// YAML 1.1 merge keys (`<<: *base`, `<<: [*a, *b]`), as go-yaml v2 applies them: each merged
/// mapping's entries are set into the mapping, overwriting what is there; a list is applied
/// from its last mapping to its first, so earlier sources win.
fn merge_key(entries: &mut Entries, value: Node, at: Span) -> Result<(), YamlError> {
    let refused =
        || YamlError::new(at, "`<<` must merge a mapping or a list of mappings", "use `<<: *anchor` or `<<: [*a, *b]`");
    let sources = match value.kind {
        NodeKind::Map(_) => vec![value],
        NodeKind::Seq(items) => items,
        NodeKind::Scalar { .. } => return Err(refused()),
    };
    if sources.iter().any(|s| !matches!(s.kind, NodeKind::Map(_))) {
        return Err(refused());
    }
    for source in sources.into_iter().rev() {
        let NodeKind::Map(more) = source.kind else { continue };
        for (key, span, node) in more {
            entries.set(key, span, node);
        }
    }
    Ok(())
}
