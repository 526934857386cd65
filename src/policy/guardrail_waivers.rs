//! Guardrails loosened on record: a repository's relaxations of built-in rules
//! (`guardrails.yaml` `spec.relax`) and objects' exceptions from one rule (an annotation
//! `capstan.io/guardrail-exception.<rule>: "<reason>"`). Each needs a written reason; each one in
//! force is a [`Waiver`] that `validate` lists and `audit --guardrails` attributes to a commit.
//!
//! ```text
//! built-in rules ─relax(spec.relax)─► relaxed rules ─tighten─► rules in force
//! NodePool (or its InstanceGroup) annotations ─exceptions─► rules skipped for that object
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use super::capstan::{Guardrails, GuardrailsSpec, Relaxation};
use super::diag::{Diagnostic, Diagnostics, Severity};
use super::document::{Origin, steps};
use super::effective::{EffectivePolicy, Located};
use super::nodepool::NodePool;
use super::yaml::{Node, Step};

/// The annotation key of an exception, followed by the rule's name.
pub const EXCEPTION_PREFIX: &str = "capstan.io/guardrail-exception.";

/// A built-in guardrail, named as its field in `policies/guardrails.yaml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Rule {
    /// Every NodePool sets `spec.limits`.
    RequireNodePoolLimits,
    /// A NodePool that may launch spot allows at least so many instance types.
    MinSpotInstanceTypes,
    /// No NodePool names a retired family.
    ForbiddenInstanceFamilies,
}

impl Rule {
    pub const ALL: [Rule; 3] =
        [Rule::RequireNodePoolLimits, Rule::MinSpotInstanceTypes, Rule::ForbiddenInstanceFamilies];

    pub fn name(self) -> &'static str {
        match self {
            Rule::RequireNodePoolLimits => "requireNodePoolLimits",
            Rule::MinSpotInstanceTypes => "minSpotInstanceTypes",
            Rule::ForbiddenInstanceFamilies => "forbiddenInstanceFamilies",
        }
    }

    pub fn parse(name: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.name() == name)
    }

    /// The annotation that excepts one object from this rule.
    pub fn exception_key(self) -> String {
        format!("{EXCEPTION_PREFIX}{}", self.name())
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether a waiver loosens a rule for the whole repository or for one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WaiverKind {
    Relaxation,
    Exception,
}

/// A guardrail loosened on record, in force.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Waiver {
    pub kind: WaiverKind,
    pub rule: Rule,
    /// `Guardrails/<name>` for a relaxation; the excepted object (`NodePool/default`) for an
    /// exception.
    pub object: String,
    /// What the rule becomes: `not required`, `minimum 4`, `allows m1`, `skipped`.
    pub effect: String,
    pub reason: String,
    /// Where it is written, relative to the repository root.
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// The clusters whose effective policy holds an excepted object; empty for a relaxation,
    /// which holds for every cluster.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<String>,
}

impl Waiver {
    /// What makes two waivers the same decision, wherever it is written and in whichever
    /// clusters it holds.
    pub fn key(&self) -> (WaiverKind, Rule, &str, &str, &str) {
        (self.kind, self.rule, &self.object, &self.effect, &self.reason)
    }
}

impl fmt::Display for Waiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        match self.kind {
            WaiverKind::Relaxation => write!(f, "relaxation: {} {} for the repository", self.rule, self.effect)?,
            WaiverKind::Exception => write!(f, "exception: {} skipped for {}", self.rule, self.object)?,
        }
        if !self.clusters.is_empty() {
            write!(f, " (clusters {})", self.clusters.join(", "))?;
        }
        write!(f, "; reason: {}", self.reason)
    }
}

/// Adds `found` to `all`, joining the clusters of one waiver seen in several clusters.
pub fn gather(all: &mut Vec<Waiver>, found: Vec<Waiver>) {
    for w in found {
        let same = all.iter_mut().find(|a| a.key() == w.key() && (&a.file, a.line) == (&w.file, w.line));
        match same {
            Some(a) => {
                for c in w.clusters {
                    if !a.clusters.contains(&c) {
                        a.clusters.push(c);
                    }
                }
            }
            None => all.push(w),
        }
    }
    all.sort();
}

/// The built-in rules and their defaults, for hints.
fn rule_list(builtin: &GuardrailsSpec) -> String {
    let shown: Vec<String> = Rule::ALL
        .iter()
        .map(|r| match r {
            Rule::RequireNodePoolLimits => format!("{r} {}", builtin.require_node_pool_limits.unwrap_or(false)),
            Rule::MinSpotInstanceTypes => format!("{r} {}", builtin.min_spot_instance_types.unwrap_or(0)),
            Rule::ForbiddenInstanceFamilies => format!("{r} [{}]", builtin.forbidden_instance_families.join(", ")),
        })
        .collect();
    format!("the built-in rules and their defaults: {}", shown.join(", "))
}

/// One entry of `spec.relax`, checked: the loosening it asks for, or the errors that refuse it.
enum Loosening {
    Off,
    Minimum(u32),
    Allow(Vec<String>),
}

/// Applies the repository's relaxations to the built-in rules. A relaxation without a reason,
/// of an unknown rule, or that does not loosen its rule is an error and the built-in rule
/// stays; one that the repository's own tightening of the same rule overrides is a warning.
pub fn relax(
    builtin: &GuardrailsSpec,
    repo: &Guardrails,
    origin: &Origin,
    diags: &mut Diagnostics,
) -> (GuardrailsSpec, Vec<Waiver>) {
    let object = format!("Guardrails/{}", repo.metadata.name);
    let mut out = builtin.clone();
    out.relax.clear();
    let mut waivers = Vec::new();
    let mut seen: BTreeSet<(Rule, String)> = BTreeSet::new();
    for (i, r) in repo.spec.relax.iter().enumerate() {
        let at = format!("spec.relax[{i}]");
        let mut refuse = |field: &str, message: String, hint: String| {
            let path = if field.is_empty() { at.clone() } else { format!("{at}.{field}") };
            diags.push(origin.diag(Severity::Error, &object, &steps(&path), message, hint));
        };
        let Some(rule) = Rule::parse(&r.rule) else {
            refuse(
                "rule",
                format!("`{}` is not a built-in guardrail", r.rule),
                format!("name one: {}", rule_list(builtin)),
            );
            continue;
        };
        let reason = r.reason.as_deref().map(str::trim).unwrap_or("");
        let mut ok = true;
        if reason.is_empty() {
            ok = false;
            let what = if r.reason.is_none() { "has no reason" } else { "has an empty reason" };
            refuse(
                "reason",
                format!("the relaxation of {rule} {what}; the built-in rule stays"),
                format!("add `reason: \"…\"` saying why {rule} does not fit this repository, or remove the entry"),
            );
        }
        let Some(loosening) = loosening(rule, r, builtin, &mut refuse) else { continue };
        let keys: Vec<(Rule, String)> = match &loosening {
            Loosening::Allow(families) => families.iter().map(|f| (rule, f.clone())).collect(),
            _ => vec![(rule, String::new())],
        };
        if let Some(k) = keys.iter().find(|k| seen.contains(k)) {
            let what = if k.1.is_empty() { rule.to_string() } else { format!("{rule} `{}`", k.1) };
            refuse("", format!("{what} is relaxed twice"), "keep one entry, with one reason".to_string());
            continue;
        }
        seen.extend(keys);
        if !ok {
            continue;
        }
        let (file, span) = origin.locate(&steps(&format!("{at}.rule")));
        let waiver = |effect: String| Waiver {
            kind: WaiverKind::Relaxation,
            rule,
            object: object.clone(),
            effect,
            reason: reason.to_string(),
            file: file.to_string(),
            line: span.line,
            column: span.column,
            clusters: Vec::new(),
        };
        if let Some(field) = overridden(rule, &loosening, &repo.spec) {
            // A repository minimum below the built-in one still needs the relaxation to apply:
            // the relaxation stays in force, at the repository's minimum.
            let kept = match (&loosening, repo.spec.min_spot_instance_types) {
                (Loosening::Minimum(_), Some(m)) if builtin.min_spot_instance_types.is_some_and(|b| m < b) => Some(m),
                _ => None,
            };
            let (message, hint) = match (&loosening, kept) {
                (Loosening::Minimum(v), Some(m)) => (
                    format!(
                        "the relaxed value {v} of {rule} has no effect: spec.{field} is {m}, so the minimum is {m}"
                    ),
                    format!("write `value: {m}` in the relaxation, or remove spec.{field}"),
                ),
                _ => (
                    format!("the relaxation of {rule} has no effect: spec.{field} tightens the same rule"),
                    "remove the relaxation, or the tightening".to_string(),
                ),
            };
            diags.push(origin.diag(Severity::Warning, &object, &steps(&at), message, hint));
            if let Some(m) = kept {
                out.min_spot_instance_types = Some(m);
                waivers.push(waiver(format!("minimum {m}")));
            }
            continue;
        }
        match loosening {
            Loosening::Off => {
                out.require_node_pool_limits = Some(false);
                waivers.push(waiver("not required".to_string()));
            }
            Loosening::Minimum(v) => {
                out.min_spot_instance_types = Some(v);
                waivers.push(waiver(format!("minimum {v}")));
            }
            Loosening::Allow(families) => {
                out.forbidden_instance_families.retain(|f| !families.contains(f));
                waivers.extend(families.into_iter().map(|f| waiver(format!("allows {f}"))));
            }
        }
    }
    (out, waivers)
}

/// What `r` loosens `rule` to, when it does.
fn loosening(
    rule: Rule,
    r: &Relaxation,
    builtin: &GuardrailsSpec,
    refuse: &mut impl FnMut(&str, String, String),
) -> Option<Loosening> {
    let not_loosened = |what: String| (format!("{what} does not loosen the built-in {rule}"), rule_list(builtin));
    match rule {
        Rule::RequireNodePoolLimits => {
            if r.value.is_some() || !r.values.is_empty() {
                let field = if r.value.is_some() { "value" } else { "values" };
                refuse(field, format!("{rule} takes no {field}"), "relaxing it turns it off; remove the field".into());
                return None;
            }
            if builtin.require_node_pool_limits != Some(true) {
                let (m, h) = not_loosened("the relaxation".into());
                refuse("rule", m, h);
                return None;
            }
            Some(Loosening::Off)
        }
        Rule::MinSpotInstanceTypes => {
            if !r.values.is_empty() {
                refuse("values", format!("{rule} takes one number as value"), "write `value: N`".into());
                return None;
            }
            let built = builtin.min_spot_instance_types.unwrap_or(0);
            let Some(v) = r.value else {
                refuse(
                    "value",
                    format!("the relaxation of {rule} has no value"),
                    format!("write `value: N` with N below {built}"),
                );
                return None;
            };
            if v >= built {
                let (m, h) = not_loosened(format!("value {v}"));
                refuse("value", m, format!("give a value below {built}; {h}"));
                return None;
            }
            Some(Loosening::Minimum(v))
        }
        Rule::ForbiddenInstanceFamilies => {
            if r.value.is_some() {
                refuse("value", format!("{rule} takes families as values"), "write `values: [m1]`".into());
                return None;
            }
            if r.values.is_empty() {
                refuse(
                    "values",
                    format!("the relaxation of {rule} names no family"),
                    format!(
                        "list the built-in families to allow: [{}]",
                        builtin.forbidden_instance_families.join(", ")
                    ),
                );
                return None;
            }
            let forbidden = &builtin.forbidden_instance_families;
            if let Some((j, f)) = r.values.iter().enumerate().find(|(_, f)| !forbidden.contains(f)) {
                let (m, h) = not_loosened(format!("family `{f}`"));
                refuse(&format!("values[{j}]"), m, format!("it is not forbidden by default; {h}"));
                return None;
            }
            let mut named = BTreeSet::new();
            if let Some((j, f)) = r.values.iter().enumerate().find(|(_, f)| !named.insert(f.as_str())) {
                refuse(
                    &format!("values[{j}]"),
                    format!("{rule} `{f}` is relaxed twice"),
                    "name each family once".to_string(),
                );
                return None;
            }
            Some(Loosening::Allow(r.values.clone()))
        }
    }
}

/// The field of the repository's own rules that tightens what the relaxation loosens.
fn overridden(rule: Rule, loosening: &Loosening, spec: &GuardrailsSpec) -> Option<String> {
    match (rule, loosening) {
        (Rule::RequireNodePoolLimits, _) => (spec.require_node_pool_limits == Some(true)).then(|| rule.to_string()),
        (Rule::MinSpotInstanceTypes, Loosening::Minimum(v)) => {
            spec.min_spot_instance_types.is_some_and(|m| m >= *v).then(|| rule.to_string())
        }
        (Rule::ForbiddenInstanceFamilies, Loosening::Allow(families)) => {
            families.iter().any(|f| spec.forbidden_instance_families.contains(f)).then(|| rule.to_string())
        }
        _ => None,
    }
}

/// The annotations written on a NodePool; for one made from an InstanceGroup, the group's,
/// where a value that is not text is kept as `Err` with the JSON it was read as.
fn written_annotations(
    pool: &Located<NodePool>,
    policy: &EffectivePolicy,
) -> BTreeMap<String, Result<String, serde_json::Value>> {
    if pool.origin.translated_at.is_none() {
        return pool.value.metadata.annotations.iter().map(|(k, v)| (k.clone(), Ok(v.clone()))).collect();
    }
    let ig = policy.instance_groups.iter().find(|ig| ig.value.metadata.name == pool.value.metadata.name);
    let map = ig.and_then(|ig| ig.value.metadata.extra.get("annotations")?.as_object().cloned()).unwrap_or_default();
    map.into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => (k, Ok(s)),
            other => (k, Err(other)),
        })
        .collect()
}

/// How a non-text annotation value was read, and how to write it as text.
fn not_text(pool: &Located<NodePool>, key: &str, value: &serde_json::Value) -> (String, String) {
    let node = pool.origin.layers.iter().find_map(|d| d.node.get(&annotation_path(key)));
    if let Some(note) = node.and_then(Node::typing_note) {
        let message = format!("the value of `{key}` is not text, so nothing is excepted: {note}");
        return (message, "annotation values are text; quote the reason".into());
    }
    let shown = match value {
        serde_json::Value::Null => "null (empty)".to_string(),
        serde_json::Value::Array(_) => "a list".to_string(),
        serde_json::Value::Object(_) => "a mapping".to_string(),
        other => other.to_string(),
    };
    (
        format!("the value of `{key}` is read as {shown}, not text; nothing is excepted"),
        "annotation values are text: write the reason as a quoted string".into(),
    )
}

fn annotation_path(key: &str) -> Vec<Step> {
    vec![Step::Key("metadata".into()), Step::Key("annotations".into()), Step::Key(key.into())]
}

/// A diagnostic at an annotation, in whichever written document holds it.
fn at_annotation(
    origin: &Origin,
    object: &str,
    key: &str,
    severity: Severity,
    message: String,
    hint: String,
) -> Diagnostic {
    let path = annotation_path(key);
    let (file, span) = origin.locate_key(&path).unwrap_or_else(|| origin.locate(&path));
    Diagnostic {
        severity,
        file: file.to_string(),
        line: span.line,
        column: span.column,
        object: Some(object.to_string()),
        field: Some(format!("metadata.annotations.{key}")),
        message,
        hint,
    }
}

/// True for a key that means to be an exception annotation.
fn looks_like_exception(key: &str) -> bool {
    key.starts_with(EXCEPTION_PREFIX.trim_end_matches('.'))
}

fn exception_names() -> String {
    Rule::ALL.iter().map(|r| r.exception_key()).collect::<Vec<_>>().join(", ")
}

/// The rules `pool` is excepted from in `cluster`. An exception without a reason, or naming no
/// rule, is an error and excepts nothing.
pub fn exceptions(pool: &Located<NodePool>, policy: &EffectivePolicy, diags: &mut Diagnostics) -> Vec<Waiver> {
    let object = format!("NodePool/{}", pool.value.metadata.name);
    let mut out = Vec::new();
    for (key, reason) in written_annotations(pool, policy) {
        if !looks_like_exception(&key) {
            continue;
        }
        let reason = match reason {
            Ok(reason) => reason,
            Err(value) => {
                let (message, hint) = not_text(pool, &key, &value);
                diags.push(at_annotation(&pool.origin, &object, &key, Severity::Error, message, hint));
                continue;
            }
        };
        let rule = key.strip_prefix(EXCEPTION_PREFIX).and_then(Rule::parse);
        let Some(rule) = rule else {
            diags.push(at_annotation(
                &pool.origin,
                &object,
                &key,
                Severity::Error,
                format!("`{key}` names no guardrail; nothing is excepted"),
                format!("use one of {}", exception_names()),
            ));
            continue;
        };
        if reason.trim().is_empty() {
            diags.push(at_annotation(
                &pool.origin,
                &object,
                &key,
                Severity::Error,
                format!("the exception from {rule} has an empty reason; the rule still applies"),
                "write why this object is excepted as the annotation's value".to_string(),
            ));
            continue;
        }
        let path = annotation_path(&key);
        let (file, span) = pool.origin.locate_key(&path).unwrap_or_else(|| pool.origin.locate(&path));
        out.push(Waiver {
            kind: WaiverKind::Exception,
            rule,
            object: object.clone(),
            effect: "skipped".to_string(),
            reason: reason.trim().to_string(),
            file: file.to_string(),
            line: span.line,
            column: span.column,
            clusters: vec![policy.cluster.clone()],
        });
    }
    out
}

/// Exception annotations on objects no guardrail checks: each a warning, since it excepts
/// nothing.
pub fn unchecked(policy: &EffectivePolicy, diags: &mut Diagnostics) {
    let classes = policy.node_classes.iter().filter(|c| c.origin.translated_at.is_none());
    let classes = classes.map(|c| (format!("EC2NodeClass/{}", c.value.metadata.name), &c.value.metadata, &c.origin));
    let policy_doc = policy
        .cluster_policy
        .iter()
        .map(|p| (format!("ClusterPolicy/{}", p.value.metadata.name), &p.value.metadata, &p.origin));
    for (object, meta, origin) in classes.chain(policy_doc) {
        for key in meta.annotations.keys().filter(|k| looks_like_exception(k)) {
            diags.push(at_annotation(
                origin,
                &object,
                key,
                Severity::Warning,
                format!("no guardrail checks {object}; the exception has no effect"),
                "guardrail exceptions go on NodePools (or Karpenter-managed InstanceGroups)".to_string(),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::document::{self, Origin};
    use crate::policy::guardrails::builtin;
    use crate::policy::names;

    fn guardrails(spec: &str) -> (Guardrails, Origin) {
        let text = format!("apiVersion: capstan.io/v1alpha1\nkind: Guardrails\nmetadata:\n  name: org\nspec:\n{spec}");
        let docs = document::parse_file("guardrails.yaml", text.as_bytes()).unwrap();
        let origin = Origin::of(&docs[0]);
        (document::typed(&origin, "Guardrails/org", &docs[0].value).unwrap(), origin)
    }

    fn run(spec: &str) -> (GuardrailsSpec, Vec<Waiver>, Vec<Diagnostic>) {
        let (g, origin) = guardrails(spec);
        let mut diags = Diagnostics::default();
        let (rules, waivers) = relax(&builtin(), &g, &origin, &mut diags);
        (rules, waivers, diags.sorted())
    }

    #[test]
    fn exception_keys_are_valid_annotation_keys() {
        for r in Rule::ALL {
            assert!(names::is_qualified_name(&r.exception_key()), "{}", r.exception_key());
            assert_eq!(Rule::parse(r.name()), Some(r));
        }
    }

    #[test]
    fn each_rule_relaxes_with_a_reason() {
        let (rules, waivers, diags) = run(concat!(
            "  relax:\n",
            "    - rule: requireNodePoolLimits\n      reason: quotas bound dev\n",
            "    - rule: minSpotInstanceTypes\n      value: 4\n      reason: a small region\n",
            "    - rule: forbiddenInstanceFamilies\n      values: [m1, t1]\n      reason: a legacy AMI\n",
        ));
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(rules.require_node_pool_limits, Some(false));
        assert_eq!(rules.min_spot_instance_types, Some(4));
        assert!(!rules.forbidden_instance_families.iter().any(|f| f == "m1" || f == "t1"));
        assert!(rules.forbidden_instance_families.iter().any(|f| f == "c1"), "the others stay");
        let effects: Vec<&str> = waivers.iter().map(|w| w.effect.as_str()).collect();
        assert_eq!(effects, ["not required", "minimum 4", "allows m1", "allows t1"]);
        assert_eq!((waivers[0].line, waivers[0].column), (7, 13));
        assert_eq!(waivers[1].reason, "a small region");
    }

    #[test]
    fn without_a_reason_the_built_in_rule_stays() {
        for reason in ["", "      reason: \"  \"\n"] {
            let (rules, waivers, diags) = run(&format!("  relax:\n    - rule: requireNodePoolLimits\n{reason}"));
            assert_eq!(rules.require_node_pool_limits, Some(true));
            assert!(waivers.is_empty());
            assert_eq!(diags.len(), 1, "{diags:?}");
            assert!(diags[0].is_error() && diags[0].message.contains("reason"), "{diags:?}");
            assert_eq!(diags[0].field.as_deref(), Some("spec.relax[0].reason"));
        }
    }

    #[test]
    fn an_unknown_rule_lists_the_rules() {
        let (_, waivers, diags) = run("  relax:\n    - rule: maxClusterCpu\n      reason: x\n");
        assert!(waivers.is_empty());
        assert!(diags[0].message.contains("`maxClusterCpu` is not a built-in guardrail"), "{diags:?}");
        for r in Rule::ALL {
            assert!(diags[0].hint.contains(r.name()), "{}", diags[0].hint);
        }
    }

    #[test]
    fn a_relaxation_that_loosens_nothing_is_refused() {
        for (entry, field) in [
            ("minSpotInstanceTypes\n      value: 15", "spec.relax[0].value"),
            ("minSpotInstanceTypes", "spec.relax[0].value"),
            ("forbiddenInstanceFamilies\n      values: [m1, t2]", "spec.relax[0].values[1]"),
            ("forbiddenInstanceFamilies", "spec.relax[0].values"),
            ("requireNodePoolLimits\n      value: 1", "spec.relax[0].value"),
        ] {
            let (rules, waivers, diags) = run(&format!("  relax:\n    - rule: {entry}\n      reason: x\n"));
            assert_eq!(rules, { builtin() }, "{entry}");
            assert!(waivers.is_empty(), "{entry}");
            assert_eq!(diags.len(), 1, "{entry}: {diags:?}");
            assert_eq!(diags[0].field.as_deref(), Some(field), "{entry}");
        }
    }

    #[test]
    fn twice_is_refused_and_a_tightening_of_the_same_rule_wins() {
        let (_, waivers, diags) = run(
            "  relax:\n    - rule: forbiddenInstanceFamilies\n      values: [m1]\n      reason: a\n    - rule: forbiddenInstanceFamilies\n      values: [m1]\n      reason: b\n",
        );
        assert_eq!(waivers.len(), 1);
        assert!(diags[0].message.contains("relaxed twice"), "{diags:?}");
        let (rules, waivers, diags) = run(
            "  minSpotInstanceTypes: 20\n  relax:\n    - rule: minSpotInstanceTypes\n      value: 2\n      reason: a\n",
        );
        assert!(waivers.is_empty());
        assert_eq!(rules.min_spot_instance_types, Some(15));
        assert_eq!(diags[0].severity, Severity::Warning, "{diags:?}");
    }

    #[test]
    fn a_family_named_twice_is_refused_where_it_repeats() {
        let (rules, waivers, diags) =
            run("  relax:\n    - rule: forbiddenInstanceFamilies\n      values: [m1, t1, m1]\n      reason: x\n");
        assert_eq!(rules, { builtin() });
        assert!(waivers.is_empty());
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert_eq!(diags[0].field.as_deref(), Some("spec.relax[0].values[2]"), "{diags:?}");
        assert!(diags[0].message.contains("relaxed twice"), "{diags:?}");
    }

    #[test]
    fn gather_joins_clusters_of_one_exception() {
        let w = |c: &str| Waiver {
            kind: WaiverKind::Exception,
            rule: Rule::RequireNodePoolLimits,
            object: "NodePool/a".into(),
            effect: "skipped".into(),
            reason: "r".into(),
            file: "base/nodepools/a.yaml".into(),
            line: 5,
            column: 5,
            clusters: vec![c.into()],
        };
        let mut all = Vec::new();
        gather(&mut all, vec![w("dev")]);
        gather(&mut all, vec![w("prod")]);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].clusters, ["dev", "prod"]);
        assert!(
            all[0].to_string().contains("exception: requireNodePoolLimits skipped for NodePool/a (clusters dev, prod)")
        );
    }
}
