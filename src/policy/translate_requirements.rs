//! NodePool requirements: os, the IG's instance types, (kOps 1.37) its `instanceRequirements`,
//! then capacity type.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{
    LABEL_CAPACITY_TYPE, LABEL_INSTANCE_CPU, LABEL_INSTANCE_FAMILY, LABEL_INSTANCE_MEMORY, LABEL_INSTANCE_TYPE,
    LABEL_OS, TranslateError, err,
};
use crate::policy::kops::{InstanceGroup, InstanceRequirements, KopsRules, MinMax, quantity_text};
use crate::policy::nodepool::{Operator, Requirement};
use crate::policy::quantity::Quantity;

const IR_FIELD: &str = "spec.mixedInstancesPolicy.instanceRequirements";
const MIB: i128 = 1024 * 1024;

/// os; instance types when named; under 1.37 the `instanceRequirements` bounds and exclusions;
/// capacity type — in that order.
pub fn requirements(ig: &InstanceGroup, rules: KopsRules) -> Result<Vec<Requirement>, TranslateError> {
    let mut out = vec![Requirement::new(LABEL_OS, Operator::In, &["linux"])];
    let types = instance_types(ig);
    if !types.is_empty() {
        let refs: Vec<&str> = types.iter().map(String::as_str).collect();
        out.push(Requirement::new(LABEL_INSTANCE_TYPE, Operator::In, &refs));
    }
    let wanted = ig.spec.mixed_instances_policy.as_ref().and_then(|m| m.instance_requirements.as_ref());
    if let Some(wanted) = wanted.filter(|_| rules.translates_instance_requirements()) {
        out.extend(instance_requirements(wanted)?);
    }
    out.push(Requirement::new(LABEL_CAPACITY_TYPE, Operator::In, capacity_types(ig)));
    Ok(out)
}

/// The union of `mixedInstancesPolicy.instances` and the comma-separated `machineType`,
/// trimmed, de-duplicated and sorted.
pub fn instance_types(ig: &InstanceGroup) -> Vec<String> {
    let mut types = BTreeSet::new();
    let mixed = ig.spec.mixed_instances_policy.as_ref().and_then(|m| m.instances.as_ref());
    for t in mixed.into_iter().flatten() {
        types.insert(t.trim().to_string());
    }
    for t in ig.spec.machine_type.iter().flat_map(|m| m.split(',')) {
        types.insert(t.trim().to_string());
    }
    types.remove("");
    types.into_iter().collect()
}

/// `[spot]` with a max price or spot duration; both with on-demand above base below 100;
/// otherwise on-demand.
pub fn capacity_types(ig: &InstanceGroup) -> &'static [&'static str] {
    if ig.spec.max_price.is_some() || ig.spec.spot_duration_in_minutes.is_some() {
        return &["spot"];
    }
    let above = ig.spec.mixed_instances_policy.as_ref().and_then(|m| m.on_demand_above_base);
    match above {
        Some(pct) if pct < 100 => &["on-demand", "spot"],
        _ => &["on-demand"],
    }
}

/// vCPU bounds → `instance-cpu Gte/Lte`; memory bounds → `instance-memory Gte/Lte` in MiB, the
/// lower bound rounded up and the upper one down so no instance outside the range is admitted;
/// `<family>.*` exclusions → `instance-family NotIn`; other exclusions → `instance-type NotIn`.
pub fn instance_requirements(wanted: &InstanceRequirements) -> Result<Vec<Requirement>, TranslateError> {
    let mut out = Vec::new();
    let bound = |key: &str, op: Operator, n: i128| Requirement::new(key, op, &[n.to_string().as_str()]);
    if let Some(cpu) = &wanted.cpu {
        let (min, max) = range(cpu, "cpu")?;
        let count = |q: &Quantity, which: &str| {
            if q.milli() % 1000 != 0 {
                return Err(bad(&format!("cpu.{which}"), format!("`{}` is not a whole number of vCPUs", q.as_str())));
            }
            Ok(q.milli() / 1000)
        };
        if let Some(q) = &min {
            out.push(bound(LABEL_INSTANCE_CPU, Operator::Gte, count(q, "min")?));
        }
        if let Some(q) = &max {
            out.push(bound(LABEL_INSTANCE_CPU, Operator::Lte, count(q, "max")?));
        }
    }
    if let Some(memory) = &wanted.memory {
        let (min, max) = range(memory, "memory")?;
        if let Some(q) = &min {
            out.push(bound(LABEL_INSTANCE_MEMORY, Operator::Gte, (q.units() + MIB - 1).div_euclid(MIB)));
        }
        if let Some(q) = &max {
            out.push(bound(LABEL_INSTANCE_MEMORY, Operator::Lte, q.units().div_euclid(MIB)));
        }
    }
    let (mut families, mut types) = (BTreeSet::new(), BTreeSet::new());
    for (i, entry) in wanted.excluded_instance_types.iter().flatten().enumerate() {
        let entry = entry.trim();
        let field = format!("excludedInstanceTypes[{i}]");
        if entry.is_empty() {
            continue;
        }
        if let Some(family) = entry.strip_suffix(".*") {
            if !is_family(family) {
                return Err(bad(&field, format!("`{entry}` does not name an instance family before `.*`")));
            }
            families.insert(family);
        } else if entry.contains('*') {
            return Err(bad(
                &field,
                format!(
                    "`{entry}`: a NodePool can exclude an instance type or a whole family (`<family>.*`), not other wildcards"
                ),
            ));
        } else if !is_label_value(entry) {
            return Err(bad(&field, format!("`{entry}` is not an instance type name")));
        } else {
            types.insert(entry);
        }
    }
    if !families.is_empty() {
        out.push(Requirement::new(LABEL_INSTANCE_FAMILY, Operator::NotIn, &families.into_iter().collect::<Vec<_>>()));
    }
    if !types.is_empty() {
        out.push(Requirement::new(LABEL_INSTANCE_TYPE, Operator::NotIn, &types.into_iter().collect::<Vec<_>>()));
    }
    Ok(out)
}

fn bad(sub: &str, message: String) -> TranslateError {
    err(
        &format!("{IR_FIELD}.{sub}"),
        message,
        "use whole vCPU counts, memory quantities such as 2Gi, min not above max, and exclusions written as an instance type (t2.nano) or a family (m3.*)",
    )
}

/// Both bounds parsed, non-negative, within Karpenter's 32-bit values, and min not above max.
fn range(bounds: &MinMax, what: &str) -> Result<(Option<Quantity>, Option<Quantity>), TranslateError> {
    let parse = |v: &Option<Value>, which: &str| -> Result<Option<Quantity>, TranslateError> {
        let Some(v) = v else { return Ok(None) };
        let field = format!("{what}.{which}");
        let q = quantity_text(v)
            .and_then(|t| Quantity::parse(&t))
            .ok_or_else(|| bad(&field, format!("`{v}` is not a quantity")))?;
        if q.is_negative() {
            return Err(bad(&field, format!("`{}` is negative", q.as_str())));
        }
        let limit = if what == "memory" { i128::from(i32::MAX) * MIB } else { i128::from(i32::MAX) };
        if q.units() > limit {
            return Err(bad(&field, format!("`{}` is too large", q.as_str())));
        }
        Ok(Some(q))
    };
    let (min, max) = (parse(&bounds.min, "min")?, parse(&bounds.max, "max")?);
    if let (Some(lo), Some(hi)) = (&min, &max)
        && lo.milli() > hi.milli()
    {
        return Err(bad(&format!("{what}.min"), format!("min {} is above max {}", lo.as_str(), hi.as_str())));
    }
    Ok((min, max))
}

/// An instance family as it appears before the `.`: lower-case letters, digits and `-`.
fn is_family(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A Kubernetes label value: at most 63 characters of alphanumerics, `-`, `_` and `.`, starting
/// and ending with an alphanumeric.
fn is_label_value(text: &str) -> bool {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    text.len() <= 63
        && text.starts_with(alnum)
        && text.ends_with(alnum)
        && text.chars().all(|c| alnum(c) || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(yaml: &str) -> InstanceRequirements {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn rendered(yaml: &str) -> Vec<String> {
        let reqs = instance_requirements(&wanted(yaml)).unwrap();
        reqs.iter().map(|r| format!("{} {:?} {}", r.key, r.operator, r.values.join(","))).collect()
    }

    #[test]
    fn memory_is_rounded_inwards_to_mebibytes() {
        // 2G is 1907.3 MiB: a lower bound rounds up, an upper bound down.
        let r = rendered("memory: {min: 2G, max: 2G}");
        assert_eq!(r, ["karpenter.k8s.aws/instance-memory Gte 1908", "karpenter.k8s.aws/instance-memory Lte 1907"]);
        let r = rendered("memory: {min: 2Gi, max: 64Gi}");
        assert_eq!(r, ["karpenter.k8s.aws/instance-memory Gte 2048", "karpenter.k8s.aws/instance-memory Lte 65536"]);
        assert_eq!(rendered("memory: {min: 1000Mi}"), ["karpenter.k8s.aws/instance-memory Gte 1000"]);
    }

    #[test]
    fn cpu_bounds_are_whole_counts_written_as_numbers_or_strings() {
        assert_eq!(
            rendered("cpu: {min: 2, max: \"16\"}"),
            ["karpenter.k8s.aws/instance-cpu Gte 2", "karpenter.k8s.aws/instance-cpu Lte 16"]
        );
        let e = instance_requirements(&wanted("cpu: {min: 500m}")).unwrap_err();
        assert_eq!(e.field, "spec.mixedInstancesPolicy.instanceRequirements.cpu.min");
    }

    #[test]
    fn bad_bounds_are_refused_at_their_field() {
        let field = |yaml: &str| instance_requirements(&wanted(yaml)).unwrap_err().field;
        assert!(field("cpu: {min: \"-1\"}").ends_with("cpu.min"));
        assert!(field("cpu: {max: \"5000000000\"}").ends_with("cpu.max"));
        assert!(field("cpu: {min: 8, max: 4}").ends_with("cpu.min"));
        assert!(field("memory: {max: lots}").ends_with("memory.max"));
        assert!(field("memory: {min: \"-1Gi\"}").ends_with("memory.min"));
    }

    #[test]
    fn exclusions_split_into_families_and_types() {
        assert_eq!(
            rendered("excludedInstanceTypes: [m3.*, t2.nano, c3.*, t2.micro, \"\"]"),
            [
                "karpenter.k8s.aws/instance-family NotIn c3,m3",
                "node.kubernetes.io/instance-type NotIn t2.micro,t2.nano"
            ]
        );
        let e = instance_requirements(&wanted("excludedInstanceTypes: [ok.large, m5.*large]")).unwrap_err();
        assert_eq!(e.field, "spec.mixedInstancesPolicy.instanceRequirements.excludedInstanceTypes[1]");
        assert!(instance_requirements(&wanted("excludedInstanceTypes: [\"M5.*\"]")).is_err());
        assert!(instance_requirements(&wanted("excludedInstanceTypes: [\"bad type\"]")).is_err());
    }
}
