//! Guardrails: organisation-wide rules over every cluster's effective policy.
//!
//! The built-in set (`policies/guardrails.yaml`) ships inside the binary. A repository's own
//! `guardrails.yaml` is merged rule by rule keeping the stricter value, so it can tighten the
//! built-in rules; it loosens one only under `spec.relax`, with a reason, and an object is
//! excepted from one rule only by an annotation with a reason ([`guardrail_waivers`]).
//!
//! [`guardrail_waivers`]: super::guardrail_waivers

use std::collections::BTreeMap;

use super::capstan::{Guardrails, GuardrailsSpec, SimulationGuardrails};
use super::diag::{Diagnostics, Severity};
use super::document::{self, Origin, steps};
use super::effective::{EffectivePolicy, Located};
use super::guardrail_waivers::{self, Rule, Waiver};
use super::nodepool::{NodePool, Operator};
use super::quantity::Quantity;
use super::translate::{LABEL_CAPACITY_TYPE, LABEL_INSTANCE_TYPE};

/// The built-in rules, as shipped.
pub const BUILTIN_YAML: &str = include_str!("../../policies/guardrails.yaml");

/// Parses the built-in rules. They are part of the binary, so failure is a build defect.
pub fn builtin() -> GuardrailsSpec {
    let docs =
        document::parse_file("policies/guardrails.yaml", BUILTIN_YAML.as_bytes()).expect("built-in guardrails parse");
    let origin = Origin::of(&docs[0]);
    let g: Guardrails =
        document::typed(&origin, "Guardrails/builtin", &docs[0].value).expect("built-in guardrails are valid");
    g.spec
}

/// The built-in rules loosened by the repository's relaxations, then the stricter of those and
/// the repository's rules, with a warning for each attempt to loosen a rule outside
/// `spec.relax`. Also the relaxations in force.
pub fn tighten(
    builtin: GuardrailsSpec,
    repo: Option<&(Guardrails, Origin)>,
    diags: &mut Diagnostics,
) -> (GuardrailsSpec, Vec<Waiver>) {
    let Some((g, origin)) = repo else { return (builtin, Vec::new()) };
    let (base, relaxed) = guardrail_waivers::relax(&builtin, g, origin, diags);
    let object = format!("Guardrails/{}", g.metadata.name);
    let mut loosen = |field: &str, what: String| {
        diags.push(origin.diag(
            Severity::Warning,
            &object,
            &steps(field),
            format!("cannot loosen a built-in guardrail: {what}; the built-in value stays"),
            "to loosen a built-in rule, list it under spec.relax with a reason",
        ));
    };
    let r = &g.spec;
    let mut out = base.clone();
    if let Some(v) = r.require_node_pool_limits {
        if !v && base.require_node_pool_limits == Some(true) {
            loosen("spec.requireNodePoolLimits", "NodePool limits are required".to_string());
        }
        out.require_node_pool_limits = Some(v || base.require_node_pool_limits.unwrap_or(false));
    }
    if let Some(v) = r.min_spot_instance_types {
        let b = base.min_spot_instance_types.unwrap_or(0);
        // Below a relaxed minimum, the relaxation already says what applies: no warning.
        let relaxed_here = relaxed.iter().any(|w| w.rule == Rule::MinSpotInstanceTypes);
        if v < b && !relaxed_here {
            loosen("spec.minSpotInstanceTypes", format!("the minimum is {b}"));
        }
        out.min_spot_instance_types = Some(v.max(b));
    }
    for f in &r.forbidden_instance_families {
        if !out.forbidden_instance_families.contains(f) {
            out.forbidden_instance_families.push(f.clone());
        }
    }
    out.max_cluster_cpu = stricter(base.max_cluster_cpu, r.max_cluster_cpu.clone());
    let mut per: BTreeMap<String, Quantity> = base.cluster_cpu;
    for (c, q) in &r.cluster_cpu {
        let merged = stricter(per.get(c).cloned(), Some(q.clone()));
        per.insert(c.clone(), merged.expect("one side is set"));
    }
    out.cluster_cpu = per;
    if let Some(sim) = &r.simulation {
        let numbers = [
            ("maxCostIncreasePercent", sim.max_cost_increase_percent, f64::NEG_INFINITY),
            ("maxDisruptionsPerHour", sim.max_disruptions_per_hour, 0.0),
        ];
        for (field, value, least) in numbers {
            if let Some(v) = value.filter(|v| !v.is_finite() || *v < least) {
                diags.push(origin.diag(
                    Severity::Error,
                    &object,
                    &steps(&format!("spec.simulation.{field}")),
                    format!("{v} is not a usable limit"),
                    "give a finite number (a rate per hour may not be negative)",
                ));
            }
        }
    }
    out.simulation = stricter_outcomes(base.simulation, r.simulation.clone());
    (out, relaxed)
}

/// The stricter of two sets of outcome guardrails, rule by rule.
pub fn stricter_outcomes(
    a: Option<SimulationGuardrails>,
    b: Option<SimulationGuardrails>,
) -> Option<SimulationGuardrails> {
    let (a, b) = match (a, b) {
        (Some(a), Some(b)) => (a, b),
        (a, b) => return a.or(b),
    };
    fn min<T: PartialOrd>(x: Option<T>, y: Option<T>) -> Option<T> {
        match (x, y) {
            (Some(x), Some(y)) => Some(if y < x { y } else { x }),
            (x, y) => x.or(y),
        }
    }
    let p99 = match (a.max_pending_p99, b.max_pending_p99) {
        (Some(x), Some(y)) => Some(if y.duration() < x.duration() { y } else { x }),
        (x, y) => x.or(y),
    };
    Some(SimulationGuardrails {
        max_cost_increase_percent: min(a.max_cost_increase_percent, b.max_cost_increase_percent),
        max_pending_p99: p99,
        max_disruptions_per_hour: min(a.max_disruptions_per_hour, b.max_disruptions_per_hour),
        max_pods_never_scheduled: min(a.max_pods_never_scheduled, b.max_pods_never_scheduled),
    })
}

fn stricter(a: Option<Quantity>, b: Option<Quantity>) -> Option<Quantity> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.milli() < a.milli() { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// Applies the rules to one cluster, skipping each rule an object is excepted from; returns the
/// exceptions in force.
pub fn check(rules: &GuardrailsSpec, policy: &EffectivePolicy, diags: &mut Diagnostics) -> Vec<Waiver> {
    let mut used = Vec::new();
    for pool in &policy.node_pools {
        let excepted = guardrail_waivers::exceptions(pool, policy, diags);
        let skip: Vec<Rule> = excepted.iter().map(|w| w.rule).collect();
        check_pool(rules, pool, &skip, diags);
        used.extend(excepted);
    }
    guardrail_waivers::unchecked(policy, diags);
    check_cluster_cpu(rules, policy, diags);
    used
}

fn error(pool: &Located<NodePool>, field: &str, message: String, hint: &str, diags: &mut Diagnostics) {
    let object = format!("NodePool/{}", pool.value.metadata.name);
    diags.push(pool.origin.diag(Severity::Error, &object, &steps(field), format!("guardrail: {message}"), hint));
}

fn values_of<'a>(pool: &'a NodePool, key: &str) -> Option<&'a [String]> {
    let reqs = &pool.spec.template.spec.requirements;
    reqs.iter().find(|r| r.key == key && r.operator == Operator::In).map(|r| r.values.as_slice())
}

/// True when the pool may launch spot: a capacity-type requirement allowing it. Without one,
/// Karpenter launches on-demand only.
fn allows_spot(pool: &NodePool) -> bool {
    let reqs = &pool.spec.template.spec.requirements;
    reqs.iter().filter(|r| r.key == LABEL_CAPACITY_TYPE).any(|r| match r.operator {
        Operator::In => r.values.iter().any(|v| v == "spot"),
        Operator::NotIn => !r.values.iter().any(|v| v == "spot"),
        Operator::Exists => true,
        _ => false,
    })
}

fn check_pool(rules: &GuardrailsSpec, pool: &Located<NodePool>, skip: &[Rule], diags: &mut Diagnostics) {
    let p = &pool.value;
    let applies = |r: Rule| !skip.contains(&r);
    if applies(Rule::RequireNodePoolLimits)
        && rules.require_node_pool_limits == Some(true)
        && p.spec.limits.as_ref().is_none_or(BTreeMap::is_empty)
    {
        error(
            pool,
            "spec.limits",
            "the NodePool has no limits".to_string(),
            "add spec.limits (cpu, memory or nodes) so the pool cannot grow without bound; for a kOps IG set maxSize; or except this pool with the annotation capstan.io/guardrail-exception.requireNodePoolLimits: \"<reason>\"",
            diags,
        );
    }
    if let Some(min) = rules.min_spot_instance_types
        && applies(Rule::MinSpotInstanceTypes)
        && allows_spot(p)
        && let Some(types) = values_of(p, LABEL_INSTANCE_TYPE)
        && types.len() < min as usize
    {
        error(
            pool,
            "spec.template.spec.requirements",
            format!("a spot NodePool allows {} instance types; at least {min} are required", types.len()),
            "allow more instance types (or select by instance-family / instance-category) so spot interruptions and shortages have somewhere to go",
            diags,
        );
    }
    if !applies(Rule::ForbiddenInstanceFamilies) {
        return;
    }
    let forbidden = &rules.forbidden_instance_families;
    let named_families = values_of(p, "karpenter.k8s.aws/instance-family").into_iter().flatten().map(String::as_str);
    let named_types = values_of(p, LABEL_INSTANCE_TYPE).into_iter().flatten().map(|t| t.split('.').next().unwrap_or(t));
    for family in named_families.chain(named_types) {
        if forbidden.iter().any(|f| f == family) {
            error(
                pool,
                "spec.template.spec.requirements",
                format!("instance family `{family}` is forbidden"),
                "remove it; the forbidden families are listed in the guardrails",
                diags,
            );
        }
    }
}

fn check_cluster_cpu(rules: &GuardrailsSpec, policy: &EffectivePolicy, diags: &mut Diagnostics) {
    let ceiling = stricter(rules.max_cluster_cpu.clone(), rules.cluster_cpu.get(&policy.cluster).cloned());
    let Some(ceiling) = ceiling else { return };
    let policy_cap = policy.cluster_policy.as_ref().and_then(|p| p.value.spec.limits.as_ref()?.get("cpu").cloned());
    let pools_cap: Option<i128> =
        policy.node_pools.iter().map(|p| p.value.spec.limits.as_ref()?.get("cpu").map(Quantity::milli)).sum();
    let cap = match (policy_cap.as_ref().map(Quantity::milli), pools_cap) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    if cap.is_some_and(|c| c <= ceiling.milli()) {
        return;
    }
    let what = match cap {
        Some(c) => format!("the cluster can reach {} cpu", Quantity::from_milli(c)),
        None => "the cluster's cpu is unbounded (no ClusterPolicy spec.limits.cpu and not every NodePool limits cpu)"
            .to_string(),
    };
    let message = format!("guardrail: {what}; the ceiling for cluster `{}` is {ceiling}", policy.cluster);
    let hint = format!("set ClusterPolicy spec.limits.cpu to at most {ceiling}");
    match &policy.cluster_policy {
        Some(p) => diags.push(p.origin.diag(
            Severity::Error,
            &format!("ClusterPolicy/{}", p.value.metadata.name),
            &steps("spec.limits.cpu"),
            message,
            hint,
        )),
        None => diags.push(super::diag::Diagnostic {
            severity: Severity::Error,
            file: "base/policy.yaml".to_string(),
            line: 1,
            column: 1,
            object: None,
            field: None,
            message,
            hint: format!("add a ClusterPolicy with spec.limits.cpu at most {ceiling}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Snapshot, validate};

    const HEAD: &str = "apiVersion: capstan.io/v1alpha1\nkind: Guardrails\nmetadata:\n  name: org\nspec:\n";

    fn repo_rules(spec: &str) -> (Guardrails, Origin) {
        let text = format!("{HEAD}{spec}");
        let docs = document::parse_file("guardrails.yaml", text.as_bytes()).unwrap();
        let origin = Origin::of(&docs[0]);
        (document::typed(&origin, "Guardrails/org", &docs[0].value).unwrap(), origin)
    }

    #[test]
    fn a_relaxation_loosens_the_base_and_the_repository_still_tightens() {
        let repo = repo_rules(
            "  minSpotInstanceTypes: 20\n  relax:\n    - rule: requireNodePoolLimits\n      reason: quotas\n",
        );
        let mut diags = Diagnostics::default();
        let (rules, waivers) = tighten(builtin(), Some(&repo), &mut diags);
        assert_eq!(diags.iter().count(), 0, "{:?}", diags.sorted());
        assert_eq!(rules.require_node_pool_limits, Some(false));
        assert_eq!(rules.min_spot_instance_types, Some(20));
        assert!(rules.relax.is_empty(), "the rules in force carry no relaxations");
        assert_eq!(waivers.len(), 1);
    }

    #[test]
    fn loosening_by_the_field_alone_stays_a_warning() {
        let repo = repo_rules("  requireNodePoolLimits: false\n");
        let mut diags = Diagnostics::default();
        let (rules, waivers) = tighten(builtin(), Some(&repo), &mut diags);
        assert_eq!(rules.require_node_pool_limits, Some(true));
        assert!(waivers.is_empty());
        let d = diags.sorted();
        assert!(d[0].message.contains("cannot loosen") && d[0].hint.contains("spec.relax"), "{d:?}");
    }

    #[test]
    fn a_repository_minimum_and_a_relaxed_minimum_give_the_higher() {
        let relax = |m: u32| {
            format!(
                "  minSpotInstanceTypes: {m}\n  relax:\n    - rule: minSpotInstanceTypes\n      value: 4\n      reason: few types\n"
            )
        };
        for (repo_min, effective, warnings) in [(2, 4, 0), (4, 4, 1), (6, 6, 1), (20, 20, 1)] {
            let repo = repo_rules(&relax(repo_min));
            let mut diags = Diagnostics::default();
            let (rules, waivers) = tighten(builtin(), Some(&repo), &mut diags);
            let d = diags.sorted();
            assert_eq!(rules.min_spot_instance_types, Some(effective), "{repo_min}: {d:?}");
            assert_eq!(d.len(), warnings, "{repo_min}: {d:?}");
            assert!(d.iter().all(|d| d.severity == Severity::Warning && d.message.contains("no effect")), "{d:?}");
            assert_eq!(waivers.len(), usize::from(effective < 15), "{repo_min}: {waivers:?}");
        }
    }

    fn pool(name: &str, annotations: &str) -> String {
        format!(
            "apiVersion: karpenter.sh/v1\nkind: NodePool\nmetadata:\n  name: {name}\n{annotations}spec:\n  template:\n    spec:\n      nodeClassRef: {{group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}}\n      requirements:\n        - key: node.kubernetes.io/instance-type\n          operator: In\n          values: [m1.large]\n"
        )
    }

    #[test]
    fn an_exception_skips_one_rule_for_one_pool() {
        let mut s = Snapshot::default();
        let except = "  annotations:\n    capstan.io/guardrail-exception.requireNodePoolLimits: a fixed-size pool\n";
        s.insert("base/nodepools/a.yaml", pool("a", except));
        s.insert("base/nodepools/b.yaml", pool("b", ""));
        let v = validate(&s, Some("dev")).unwrap();
        let found: Vec<(String, String)> = v
            .diagnostics
            .iter()
            .filter(|d| d.message.starts_with("guardrail:"))
            .map(|d| (d.object.clone().unwrap(), d.message.clone()))
            .collect();
        let has = |o: &str, m: &str| found.iter().any(|(fo, fm)| fo == o && fm.contains(m));
        assert!(!has("NodePool/a", "no limits"), "{found:?}");
        assert!(has("NodePool/a", "`m1` is forbidden"), "the other rules still hold: {found:?}");
        assert!(has("NodePool/b", "no limits"), "{found:?}");
        assert_eq!(v.waivers.len(), 1);
        assert_eq!((v.waivers[0].object.as_str(), v.waivers[0].line), ("NodePool/a", 6));
    }
}
