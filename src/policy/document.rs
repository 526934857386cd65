//! Raw documents: parsed YAML with its origin, identified by kind, and typed on demand.
//!
//! ```text
//! bytes ──parse_file──► RawDoc (Node tree + JSON value) ──typed::<T>──► T
//!                                  │                                    │ error path
//!                                  └─────────── Origin::locate ◄────────┘
//! ```

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::diag::{Diagnostic, Severity};
use super::hint;
use super::yaml::{self, Node, Span, Step};

/// A typed object and where its fields came from.
#[derive(Debug, Clone)]
pub struct Located<T> {
    pub value: T,
    pub origin: Origin,
}

/// Largest policy file accepted.
pub const MAX_FILE_BYTES: usize = 4 << 20;

/// The kinds a config repository holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    NodePool,
    EC2NodeClass,
    InstanceGroup,
    Cluster,
    ClusterPolicy,
    Fleet,
    Guardrails,
    NodeOverlay,
    Commitment,
    CapacityBuffer,
    PodTemplate,
}

impl Kind {
    pub const ALL: [Kind; 11] = [
        Kind::NodePool,
        Kind::EC2NodeClass,
        Kind::InstanceGroup,
        Kind::Cluster,
        Kind::ClusterPolicy,
        Kind::Fleet,
        Kind::Guardrails,
        Kind::NodeOverlay,
        Kind::Commitment,
        Kind::CapacityBuffer,
        Kind::PodTemplate,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::NodePool => "NodePool",
            Kind::EC2NodeClass => "EC2NodeClass",
            Kind::InstanceGroup => "InstanceGroup",
            Kind::Cluster => "Cluster",
            Kind::ClusterPolicy => "ClusterPolicy",
            Kind::Fleet => "Fleet",
            Kind::Guardrails => "Guardrails",
            Kind::NodeOverlay => "NodeOverlay",
            Kind::Commitment => "Commitment",
            Kind::CapacityBuffer => "CapacityBuffer",
            Kind::PodTemplate => "PodTemplate",
        }
    }

    /// Whether objects of this kind live in a namespace, so that the namespace is part of
    /// their identity.
    pub fn namespaced(self) -> bool {
        matches!(self, Kind::CapacityBuffer | Kind::PodTemplate)
    }

    pub fn api_version(self) -> &'static str {
        match self {
            Kind::NodePool => super::nodepool::API_VERSION,
            Kind::EC2NodeClass => super::nodeclass::API_VERSION,
            Kind::InstanceGroup | Kind::Cluster => super::kops::API_VERSION,
            Kind::ClusterPolicy | Kind::Fleet | Kind::Guardrails => super::capstan::API_VERSION,
            Kind::NodeOverlay => super::nodeoverlay::API_VERSION,
            Kind::Commitment => super::commitment::API_VERSION,
            Kind::CapacityBuffer => super::capacitybuffer::API_VERSION,
            Kind::PodTemplate => super::capacitybuffer::POD_TEMPLATE_API_VERSION,
        }
    }
}

/// One YAML document of one file.
#[derive(Debug, Clone)]
pub struct RawDoc {
    pub file: Arc<str>,
    pub node: Node,
    pub value: Value,
}

impl RawDoc {
    pub fn name(&self) -> String {
        self.value["metadata"]["name"].as_str().unwrap_or_default().to_string()
    }

    /// What identifies the object among the documents of `kind`: its namespace (`default`
    /// when unset) for a namespaced kind, and its name.
    pub fn identity(&self, kind: Kind) -> (Option<String>, String) {
        let namespace =
            kind.namespaced().then(|| self.value["metadata"]["namespace"].as_str().unwrap_or("default").to_string());
        (namespace, self.name())
    }
}

/// How large a file of one sort may be.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: usize,
    /// Most YAML nodes, aliases expanded.
    pub max_nodes: usize,
    /// What the file is, for the message ("policy files", "traces").
    pub what: &'static str,
}

/// Policy files: small.
pub const POLICY_LIMITS: Limits =
    Limits { max_bytes: MAX_FILE_BYTES, max_nodes: yaml::MAX_NODES, what: "policy files" };

/// Reads one file into documents, or the diagnostic that says why it cannot be read.
pub fn parse_file(file: &str, bytes: &[u8]) -> Result<Vec<RawDoc>, Box<Diagnostic>> {
    parse_file_within(file, bytes, POLICY_LIMITS)
}

/// [`parse_file`] within `limits`.
pub fn parse_file_within(file: &str, bytes: &[u8], limits: Limits) -> Result<Vec<RawDoc>, Box<Diagnostic>> {
    let at = |span: Span, message: String, hint: &str| {
        Box::new(Diagnostic {
            severity: Severity::Error,
            file: file.to_string(),
            line: span.line,
            column: span.column,
            object: None,
            field: None,
            message,
            hint: hint.to_string(),
        })
    };
    if bytes.len() > limits.max_bytes {
        let msg = format!("file is {} bytes; {} may be at most {}", bytes.len(), limits.what, limits.max_bytes);
        return Err(at(Span { line: 1, column: 1 }, msg, "split it into smaller files"));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let good = &bytes[..e.valid_up_to()];
        let line = good.iter().filter(|b| **b == b'\n').count() + 1;
        let column = good.iter().rev().take_while(|b| **b != b'\n').count() + 1;
        let msg = format!("file is not valid UTF-8 (invalid byte at offset {})", e.valid_up_to());
        at(Span { line, column }, msg, "save the file as UTF-8")
    })?;
    // Editors on Windows often start a file with a byte-order mark; Kubernetes tools ignore it.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let nodes = yaml::parse_documents_within(text, limits.max_nodes).map_err(|e| at(e.span, e.message, &e.hint))?;
    let file: Arc<str> = Arc::from(file);
    Ok(nodes.into_iter().map(|node| RawDoc { file: file.clone(), value: node.to_value(), node }).collect())
}

/// Where an object's fields came from: its own document, optionally with override documents
/// merged on top (top-most first), or an InstanceGroup it was translated from.
#[derive(Debug, Clone)]
pub struct Origin {
    /// Documents in the order they are searched for a path: overrides before the base.
    pub layers: Vec<RawDoc>,
    /// When the object was made from another (a translated InstanceGroup), the path prefix in
    /// that document that every finding points to.
    pub translated_at: Option<Vec<Step>>,
}

impl Origin {
    pub fn of(doc: &RawDoc) -> Origin {
        Origin { layers: vec![doc.clone()], translated_at: None }
    }

    /// The file and position that best explain `path`.
    pub fn locate(&self, path: &[Step]) -> (Arc<str>, Span) {
        if let Some(prefix) = &self.translated_at {
            let doc = &self.layers[0];
            return (doc.file.clone(), doc.node.locate(prefix));
        }
        for doc in &self.layers {
            if doc.node.get(path).is_some() {
                return (doc.file.clone(), doc.node.locate(path));
            }
        }
        let top = &self.layers[0];
        (top.file.clone(), top.node.locate(path))
    }

    /// The file and span of the key that ends `path`, in the first layer that has it.
    pub fn locate_key(&self, path: &[Step]) -> Option<(Arc<str>, Span)> {
        self.layers.iter().find_map(|d| d.node.key_span(path).map(|s| (d.file.clone(), s)))
    }

    /// A diagnostic about `object` at `path`.
    pub fn diag(
        &self,
        severity: Severity,
        object: &str,
        path: &[Step],
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Diagnostic {
        let (file, span) = self.locate(path);
        Diagnostic {
            severity,
            file: file.to_string(),
            line: span.line,
            column: span.column,
            object: Some(object.to_string()),
            field: (!path.is_empty()).then(|| yaml::path_string(path)),
            message: message.into(),
            hint: hint.into(),
        }
    }
}

/// Turns a dotted path (`spec.limits.cpu`, `a.b[2].c`) into steps.
pub fn steps(path: &str) -> Vec<Step> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, rest) = part.split_once('[').unwrap_or((part, ""));
        if !key.is_empty() {
            out.push(Step::Key(key.to_string()));
        }
        for index in rest.split('[') {
            if let Ok(i) = index.trim_end_matches(']').parse() {
                out.push(Step::Index(i));
            }
        }
    }
    out
}

/// Identifies a document's kind from `apiVersion` and `kind`.
pub fn identify(doc: &RawDoc) -> Result<Kind, Box<Diagnostic>> {
    let origin = Origin::of(doc);
    let object = doc.value["kind"].as_str().unwrap_or("document").to_string();
    let object = format!("{object}/{}", doc.name());
    let Some(kind_text) = doc.value["kind"].as_str() else {
        return Err(Box::new(origin.diag(
            Severity::Error,
            &object,
            &[],
            "document has no `kind`",
            supported_kinds_hint(),
        )));
    };
    let Some(kind) = Kind::ALL.into_iter().find(|k| k.name() == kind_text) else {
        return Err(Box::new(origin.diag(
            Severity::Error,
            &object,
            &steps("kind"),
            format!("unknown kind `{kind_text}`"),
            supported_kinds_hint(),
        )));
    };
    let api = doc.value["apiVersion"].as_str().unwrap_or_default();
    // Accepted; buffer_checks warns that only Cluster Autoscaler still serves it.
    let older = kind == Kind::CapacityBuffer && api == super::capacitybuffer::ALPHA_API_VERSION;
    if api != kind.api_version() && !older {
        return Err(Box::new(origin.diag(
            Severity::Error,
            &object,
            &steps("apiVersion"),
            format!("{kind_text} must have apiVersion {}, found `{api}`", kind.api_version()),
            "capstan reads Karpenter v1 (NodeOverlay: v1alpha1), kOps v1alpha2 and capstan.io/v1alpha1 documents",
        )));
    }
    if doc.name().is_empty() {
        return Err(Box::new(origin.diag(
            Severity::Error,
            &object,
            &steps("metadata.name"),
            "document has no metadata.name",
            "every document needs a name; it is how overrides and references find it",
        )));
    }
    Ok(kind)
}

fn supported_kinds_hint() -> String {
    let kinds: Vec<String> = Kind::ALL.iter().map(|k| format!("{} ({})", k.name(), k.api_version())).collect();
    format!("supported kinds: {}", kinds.join(", "))
}

/// Most errors reported for one document.
const MAX_ERRORS_PER_DOCUMENT: usize = 25;

/// Deserialises `value` into `T`, reporting every error it can find: after each error the
/// offending field (or, when that field is required, the list item holding it) is set aside
/// and the document is read again, so one typo does not hide the next. Paths are mapped back
/// to the document as written.
pub fn typed_all<T: DeserializeOwned>(origin: &Origin, object: &str, value: &Value) -> Result<T, Vec<Diagnostic>> {
    let mut value = value.clone();
    let mut errors: Vec<Diagnostic> = Vec::new();
    let mut removed_items: Vec<(Vec<Step>, usize)> = Vec::new();
    let mut last_removed: Option<(Vec<Step>, String)> = None;
    while errors.len() < MAX_ERRORS_PER_DOCUMENT {
        let failure = match typed_at::<T>(&value) {
            Ok(t) if errors.is_empty() => return Ok(t),
            Ok(_) => break,
            Err(f) => f,
        };
        let original = to_original(&failure.path, &removed_items);
        // Removing a required field shows up as that field missing: drop the list item instead.
        let caused_by_us =
            failure.missing.as_ref().is_some_and(|m| last_removed.as_ref() == Some(&(failure.path.clone(), m.clone())));
        if !caused_by_us {
            let diag = failure.diagnostic(origin, object, &original);
            if errors.contains(&diag) {
                break;
            }
            errors.push(diag);
        }
        last_removed = None;
        if failure.missing.is_some() {
            match remove_item(&mut value, &failure.path) {
                Some((array, index)) => removed_items
                    .push((to_original(&array, &removed_items), to_original_index(&array, index, &removed_items))),
                None => break,
            }
        } else {
            match failure.path.split_last() {
                Some((Step::Key(key), parent)) if remove_key(&mut value, parent, key) => {
                    last_removed = Some((parent.to_vec(), key.clone()))
                }
                _ => match remove_item(&mut value, &failure.path) {
                    Some((array, index)) => removed_items
                        .push((to_original(&array, &removed_items), to_original_index(&array, index, &removed_items))),
                    None => break,
                },
            }
        }
    }
    Err(errors)
}

fn node_mut<'a>(value: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    path.iter().try_fold(value, |v, step| match (v, step) {
        (Value::Object(m), Step::Key(k)) => m.get_mut(k),
        (Value::Array(a), Step::Index(i)) => a.get_mut(*i),
        _ => None,
    })
}

fn remove_key(value: &mut Value, parent: &[Step], key: &str) -> bool {
    match node_mut(value, parent) {
        Some(Value::Object(m)) => m.shift_remove(key).is_some(),
        _ => false,
    }
}

/// Removes the innermost list item on `path`; returns the list's path and the item's index.
fn remove_item(value: &mut Value, path: &[Step]) -> Option<(Vec<Step>, usize)> {
    let pos = path.iter().rposition(|s| matches!(s, Step::Index(_)))?;
    let Step::Index(index) = path[pos] else { return None };
    let array = path[..pos].to_vec();
    match node_mut(value, &array)? {
        Value::Array(items) if index < items.len() => {
            items.remove(index);
            Some((array, index))
        }
        _ => None,
    }
}

/// Maps an index in the current list at `array` (current coordinates) to the written document.
fn to_original_index(array: &[Step], index: usize, removed: &[(Vec<Step>, usize)]) -> usize {
    let original_array = to_original(array, removed);
    let mut gone: Vec<usize> = removed.iter().filter(|(a, _)| *a == original_array).map(|(_, i)| *i).collect();
    gone.sort_unstable();
    gone.into_iter().fold(index, |i, r| if r <= i { i + 1 } else { i })
}

/// Maps a path in the current value to the document as written.
fn to_original(path: &[Step], removed: &[(Vec<Step>, usize)]) -> Vec<Step> {
    let mut out: Vec<Step> = Vec::with_capacity(path.len());
    for (k, step) in path.iter().enumerate() {
        match step {
            Step::Index(i) => {
                let i = to_original_index(&path[..k], *i, removed);
                out.push(Step::Index(i));
            }
            key => out.push(key.clone()),
        }
    }
    out
}

/// One serde failure, with its path in the value that was read.
struct Failure {
    path: Vec<Step>,
    message: String,
    hint: String,
    /// The field name, for a missing required field (then `path` is its parent).
    missing: Option<String>,
    unknown: bool,
}

impl Failure {
    fn diagnostic(&self, origin: &Origin, object: &str, path: &[Step]) -> Diagnostic {
        let mut diag = origin.diag(Severity::Error, object, path, self.message.clone(), self.hint.clone());
        if self.unknown
            && let Some((file, span)) = origin.locate_key(path)
        {
            (diag.file, diag.line, diag.column) = (file.to_string(), span.line, span.column);
        }
        // `on` or `0755` where text was wanted: say how YAML read it and how to keep the text.
        if self.message.starts_with("invalid type")
            && origin.translated_at.is_none()
            && let Some(note) = origin.layers.iter().find_map(|d| d.node.get(path)).and_then(Node::typing_note)
        {
            diag.hint = note;
        }
        diag
    }
}

/// Deserialises `value` into `T`, reporting the first error at its field.
pub fn typed<T: DeserializeOwned>(origin: &Origin, object: &str, value: &Value) -> Result<T, Box<Diagnostic>> {
    typed_at(value).map_err(|f| Box::new(f.diagnostic(origin, object, &f.path)))
}

fn value_at<'a>(value: &'a Value, path: &[Step]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, step| match step {
        Step::Key(k) => v.get(k),
        Step::Index(i) => v.get(*i),
    })
}

fn typed_at<T: DeserializeOwned>(value: &Value) -> Result<T, Failure> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let mut path: Vec<Step> = err
            .path()
            .iter()
            .filter_map(|seg| match seg {
                serde_path_to_error::Segment::Map { key } => Some(Step::Key(key.clone())),
                serde_path_to_error::Segment::Seq { index } => Some(Step::Index(*index)),
                _ => None,
            })
            .collect();
        let (message, mut hint_text) = hint::split(&err.inner().to_string());
        let unknown = unknown_field(&message);
        if let Some(field) = &unknown {
            if path.last() != Some(&Step::Key(field.clone())) {
                path.push(Step::Key(field.clone()));
            }
            hint_text = format!("remove the field or fix its spelling; {}", expected_list(&message));
        } else if message.starts_with("unknown variant") {
            hint_text = format!("use one of the allowed values; {}", expected_list(&message));
        } else if message.starts_with("missing field `requirements`")
            && path.ends_with(&[Step::Key("template".into()), Step::Key("spec".into())])
        {
            hint_text = "add requirements; Karpenter's NodePool CRD requires them, e.g. requirements: [{key: karpenter.sh/capacity-type, operator: In, values: [on-demand]}]".to_string();
        } else if message.starts_with("missing field") {
            hint_text = "add the field; it is required".to_string();
        } else if message.starts_with("invalid type") && hint_text.is_empty() {
            hint_text = "check the value's type (quote strings, unquote numbers and booleans)".to_string();
        }
        if let Some(Value::String(text)) = value_at(value, &path)
            && text.contains(" | ")
        {
            hint_text = format!("`{text}` lists alternatives, as documentation writes them; keep exactly one");
        }
        let message = match message.split_once(", expected ") {
            Some((m, _)) if unknown.is_some() || m.starts_with("unknown variant") => m.to_string(),
            _ => message,
        };
        let missing = message.strip_prefix("missing field `").and_then(|r| r.split('`').next()).map(str::to_string);
        Failure { path, message, hint: hint_text, missing, unknown: unknown.is_some() }
    })
}

fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest.split('`').next()?.to_string())
}

fn expected_list(message: &str) -> String {
    match message.split_once(", expected ") {
        Some((_, expected)) => format!("expected {expected}"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_parse_dotted_paths() {
        assert_eq!(
            steps("spec.a[2].b"),
            vec![Step::Key("spec".into()), Step::Key("a".into()), Step::Index(2), Step::Key("b".into())]
        );
    }

    #[test]
    fn non_utf8_is_located() {
        let err = parse_file("x.yaml", b"a: 1\nb: \xff\n").unwrap_err();
        assert_eq!((err.line, err.column), (2, 4));
        assert!(err.message.contains("UTF-8"));
    }
}
