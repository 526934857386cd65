//! Field-level differences between JSON documents, and the three-way rules that keep a
//! concurrent edit: a change is applied only where the field still holds what it held when the
//! change was planned.
//!
//! Leaves are scalars, lists and empty maps; maps are compared key by key. Lists are compared
//! whole: kOps lists (subnets, taints) have no keys to merge by.

use std::fmt;

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

/// A field path: map keys from the document root.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Path(pub Vec<String>);

impl fmt::Display for Path {
    /// `spec.maxSize`, or `metadata.labels["kops.k8s.io/cluster"]` for keys with dots or slashes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, key) in self.0.iter().enumerate() {
            if key.contains(['.', '/', '"', ' ']) || key.is_empty() {
                write!(f, "[{}]", Value::String(key.clone()))?;
            } else if i == 0 {
                f.write_str(key)?;
            } else {
                write!(f, ".{key}")?;
            }
        }
        Ok(())
    }
}

impl Serialize for Path {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One field to set (`after: Some`) or remove (`after: None`), and what it held when planned.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    pub path: Path,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
    /// The field was last applied from Git with the wanted value and has since been changed in
    /// the store by someone else (`kops edit ig`): the change puts Git's value back.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub drift: bool,
}

/// A concurrent edit to a field this pass meant to change, to another value than ours.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Conflict {
    pub path: Path,
    /// What the field held when the change was planned.
    pub base: Option<Value>,
    pub ours: Option<Value>,
    pub theirs: Option<Value>,
}

pub fn get<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, k| v.as_object()?.get(k))
}

fn leaves(value: &Value, prefix: &mut Vec<String>, out: &mut Vec<(Path, Value)>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                prefix.push(k.clone());
                leaves(v, prefix, out);
                prefix.pop();
            }
        }
        other => out.push((Path(prefix.clone()), other.clone())),
    }
}

/// Every leaf of `value` with its path.
pub fn leaf_paths(value: &Value) -> Vec<(Path, Value)> {
    let mut out = Vec::new();
    leaves(value, &mut Vec::new(), &mut out);
    out
}

/// The changes that turn `current` (absent: a new object) into `desired` for the fields Git
/// manages: every leaf of `desired`, and the leaves of `last_applied` that `desired` no longer
/// has. Fields only the store has (set by kOps or by hand) are not Git's and stay as they are.
pub fn diff(desired: &Value, current: Option<&Value>, last_applied: Option<&Value>) -> Vec<FieldChange> {
    let mut changes = Vec::new();
    let wanted = leaf_paths(desired);
    for (path, after) in &wanted {
        let before = current.and_then(|c| get(c, &path.0));
        if before != Some(after) {
            let last = last_applied.and_then(|l| get(l, &path.0));
            let drift = before.is_some() && last == Some(after);
            changes.push(FieldChange {
                path: path.clone(),
                before: before.cloned(),
                after: Some(after.clone()),
                drift,
            });
        }
    }
    for (path, _) in last_applied.map(leaf_paths).unwrap_or_default() {
        let still_wanted = wanted.iter().any(|(w, _)| path.0.starts_with(&w.0) || w.0.starts_with(&path.0));
        if still_wanted {
            continue;
        }
        if let Some(before) = current.and_then(|c| get(c, &path.0)) {
            changes.push(FieldChange { path, before: Some(before.clone()), after: None, drift: false });
        }
    }
    changes
}

/// Applies changes to a document. A removal also drops the maps it leaves empty.
pub fn apply(document: &mut Value, changes: &[FieldChange]) {
    for change in changes {
        match &change.after {
            Some(v) => set(document, &change.path.0, v.clone()),
            None => remove(document, &change.path.0),
        }
    }
}

fn set(document: &mut Value, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        *document = value;
        return;
    };
    let mut at = document;
    for key in parents {
        if !at.is_object() {
            *at = Value::Object(Map::new());
        }
        at = at.as_object_mut().expect("made an object above").entry(key.clone()).or_insert(Value::Null);
    }
    if !at.is_object() {
        *at = Value::Object(Map::new());
    }
    at.as_object_mut().expect("made an object above").insert(last.clone(), value);
}

fn remove(document: &mut Value, path: &[String]) {
    let Some((first, rest)) = path.split_first() else { return };
    let Some(map) = document.as_object_mut() else { return };
    if rest.is_empty() {
        map.shift_remove(first);
        return;
    }
    if let Some(child) = map.get_mut(first) {
        remove(child, rest);
        if child.as_object().is_some_and(Map::is_empty) {
            map.shift_remove(first);
        }
    }
}

/// Re-bases planned changes on a newer version of the document: a field that already holds our
/// value needs nothing; a field that still holds what it held when planned takes our value; a
/// field someone else changed to another value is a conflict, and nothing is applied.
pub fn rebase(changes: &[FieldChange], current: &Value) -> Result<Vec<FieldChange>, Vec<Conflict>> {
    let mut kept = Vec::new();
    let mut conflicts = Vec::new();
    for change in changes {
        let now = get(current, &change.path.0);
        if now == change.after.as_ref() {
            continue;
        }
        if now == change.before.as_ref() {
            kept.push(change.clone());
        } else {
            conflicts.push(Conflict {
                path: change.path.clone(),
                base: change.before.clone(),
                ours: change.after.clone(),
                theirs: now.cloned(),
            });
        }
    }
    if conflicts.is_empty() { Ok(kept) } else { Err(conflicts) }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn p(s: &str) -> Path {
        Path(s.split('.').map(String::from).collect())
    }

    #[test]
    fn diff_sets_changes_and_removes_only_what_git_managed() {
        let current = json!({"spec": {"maxSize": 3, "minSize": 1, "image": "by-kops", "kubelet": {"maxPods": 58}}});
        let last = json!({"spec": {"maxSize": 3, "minSize": 1, "kubelet": {"maxPods": 58}}});
        let desired = json!({"spec": {"maxSize": 5, "minSize": 1}});
        let changes = diff(&desired, Some(&current), Some(&last));
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert_eq!(changes[0].path, p("spec.maxSize"));
        assert_eq!(changes[1].path, p("spec.kubelet.maxPods"));
        assert_eq!(changes[1].after, None);
        let mut next = current.clone();
        apply(&mut next, &changes);
        assert_eq!(next, json!({"spec": {"maxSize": 5, "minSize": 1, "image": "by-kops"}}));
        assert!(diff(&desired, Some(&next), Some(&desired)).is_empty());
    }

    #[test]
    fn drift_is_flagged() {
        let desired = json!({"spec": {"maxSize": 5}});
        let changes = diff(&desired, Some(&json!({"spec": {"maxSize": 9}})), Some(&desired));
        assert!(changes[0].drift);
        let changes = diff(&desired, Some(&json!({"spec": {"maxSize": 9}})), None);
        assert!(!changes[0].drift);
    }

    #[test]
    fn rebase_keeps_theirs_and_reports_same_field_conflicts() {
        let base = json!({"spec": {"maxSize": 3, "minSize": 1}});
        let changes = diff(&json!({"spec": {"maxSize": 5, "minSize": 1}}), Some(&base), None);
        let theirs_other = json!({"spec": {"maxSize": 3, "minSize": 2}});
        let kept = rebase(&changes, &theirs_other).unwrap();
        let mut merged = theirs_other.clone();
        apply(&mut merged, &kept);
        assert_eq!(merged, json!({"spec": {"maxSize": 5, "minSize": 2}}));
        assert!(rebase(&changes, &json!({"spec": {"maxSize": 5, "minSize": 1}})).unwrap().is_empty());
        let conflict = rebase(&changes, &json!({"spec": {"maxSize": 7, "minSize": 1}})).unwrap_err();
        assert_eq!(conflict[0].theirs, Some(json!(7)));
        assert_eq!(conflict[0].ours, Some(json!(5)));
    }

    #[test]
    fn paths_display_like_field_selectors() {
        let path = Path(vec!["metadata".into(), "labels".into(), "kops.k8s.io/cluster".into()]);
        assert_eq!(path.to_string(), "metadata.labels[\"kops.k8s.io/cluster\"]");
        assert_eq!(p("spec.maxSize").to_string(), "spec.maxSize");
    }
}
