//! Rules the types cannot express: operator/value consistency, references between objects,
//! exclusive fields, and the fields capstan accepts but does not act on. Names, label syntax and
//! single-field ranges are [`bounds`](super::bounds)' job.

use super::capstan::ClusterPolicy;
use super::diag::Diagnostics;
use super::effective::{EffectivePolicy, Located};
use super::labels;
use super::nodeclass::EC2NodeClass;
use super::nodepool::{BudgetNodes, NodePool, Operator, Requirement};
pub(super) use super::reporter::Reporter;

/// Checks every object of a cluster's effective policy.
pub fn check(policy: &EffectivePolicy, diags: &mut Diagnostics) {
    for pool in &policy.node_pools {
        let mut r = Reporter { origin: &pool.origin, object: format!("NodePool/{}", pool.value.metadata.name), diags };
        check_node_pool(&pool.value, policy, &mut r);
    }
    for class in &policy.node_classes {
        let mut r =
            Reporter { origin: &class.origin, object: format!("EC2NodeClass/{}", class.value.metadata.name), diags };
        check_node_class(&class.value, &mut r);
    }
    for ig in &policy.instance_groups {
        let mut r = Reporter { origin: &ig.origin, object: format!("InstanceGroup/{}", ig.value.metadata.name), diags };
        if let (Some(min), Some(max)) = (ig.value.spec.min_size, ig.value.spec.max_size)
            && max < min
        {
            r.error("spec.maxSize", format!("maxSize {max} is below minSize {min}"), "raise maxSize or lower minSize");
        }
        let rules = super::kops::KopsRules::for_cluster(policy.cluster_spec.as_ref().map(|c| &c.value)).0;
        if ig.value.spec.mixed_instances_policy.as_ref().is_some_and(|m| m.instance_requirements.is_some())
            && ig.value.is_karpenter()
            && !rules.translates_instance_requirements()
        {
            r.warning(
                "spec.mixedInstancesPolicy.instanceRequirements",
                "kOps 1.36 does not translate instanceRequirements, and this cluster follows the kOps 1.36 rules; the NodePool uses the listed instance types only",
                "set the Cluster annotation capstan.io/kops-version: \"1.37\", or list the instance types explicitly",
            );
        }
    }
    if let Some(p) = &policy.cluster_policy {
        check_cluster_policy(p, diags);
    }
    super::pricing_checks::check_overlays(policy, diags);
    if let Some(spec) = &policy.cluster_spec {
        let karpenter_igs = policy.instance_groups.iter().any(|ig| ig.value.is_karpenter());
        let mut r = Reporter { origin: &spec.origin, object: format!("Cluster/{}", spec.value.metadata.name), diags };
        if karpenter_igs && spec.value.karpenter_enabled() {
            r.warning(
                "spec.karpenter.enabled",
                "spec.karpenter.enabled: true makes kOps install its own Karpenter, which acts on the same pending pods as capstan (capstan waits while it runs)",
                "set spec.karpenter.enabled: false; capstan serves `manager: Karpenter` InstanceGroups without it",
            );
        }
        if karpenter_igs && !spec.value.irsa_enabled() {
            r.warning("spec", "Karpenter-managed InstanceGroups need IRSA on kOps 1.34+, and spec.serviceAccountIssuerDiscovery.enableAWSOIDCProvider is not true", "enable serviceAccountIssuerDiscovery with enableAWSOIDCProvider: true");
        }
    }
}

fn check_node_pool(pool: &NodePool, policy: &EffectivePolicy, r: &mut Reporter) {
    check_balanced_threshold(pool, r);
    let spec = &pool.spec;
    let tspec = &spec.template.spec;
    if tspec.requirements.len() > 100 {
        r.error("spec.template.spec.requirements", "more than 100 requirements", "Karpenter accepts at most 100");
    }
    for (i, req) in tspec.requirements.iter().enumerate() {
        check_requirement(req, &format!("spec.template.spec.requirements[{i}]"), r);
    }
    if let Some(meta) = &spec.template.metadata {
        for k in meta.labels.keys() {
            let field = format!("spec.template.metadata.labels.{k}");
            if let Some(why) = labels::restricted_reason(k) {
                r.error(
                    &field,
                    format!("label `{k}` is not allowed: {why}"),
                    "remove the label or use your own domain, e.g. example.com/team",
                );
            }
        }
    }
    check_taints(pool, r);
    let reference = &tspec.node_class_ref;
    for (value, name) in [(&reference.group, "group"), (&reference.kind, "kind"), (&reference.name, "name")] {
        if value.is_empty() {
            r.error(
                &format!("spec.template.spec.nodeClassRef.{name}"),
                format!("nodeClassRef.{name} is empty; Karpenter's rule: {name} may not be empty"),
                "reference the EC2NodeClass with group: karpenter.k8s.aws, kind: EC2NodeClass and its name",
            );
        }
    }
    if reference.group.is_empty() || reference.kind.is_empty() || reference.name.is_empty() {
        // Reported above; the reference names no class to look for.
    } else if reference.group != "karpenter.k8s.aws" || reference.kind != "EC2NodeClass" {
        r.error(
            "spec.template.spec.nodeClassRef",
            format!(
                "nodeClassRef points at {}/{}; capstan launches EC2NodeClasses only",
                reference.group, reference.kind
            ),
            "set group: karpenter.k8s.aws and kind: EC2NodeClass",
        );
    } else if policy.node_class(&reference.name).is_none() {
        let names: Vec<&str> = policy.node_classes.iter().map(|c| c.value.metadata.name.as_str()).collect();
        r.error(
            "spec.template.spec.nodeClassRef.name",
            format!("EC2NodeClass `{}` does not exist for cluster `{}`", reference.name, policy.cluster),
            format!(
                "define it in base/nodeclasses/ or clusters/{}/nodeclasses/, or reference one of: {}",
                policy.cluster,
                if names.is_empty() { "(none defined)".to_string() } else { names.join(", ") }
            ),
        );
    }
    if spec.replicas.is_some() {
        if spec.weight.is_some() {
            r.error(
                "spec.weight",
                "a static NodePool (replicas set) cannot have a weight",
                "remove weight or replicas",
            );
        }
        if spec.limits.as_ref().is_some_and(|l| l.keys().any(|k| k != "nodes")) {
            r.error(
                "spec.limits",
                "a static NodePool (replicas set) may only limit `nodes`",
                "remove the other limits or replicas",
            );
        }
    }
    if let Some(d) = &spec.disruption {
        if d.consolidate_after.is_none() {
            r.error(
                "spec.disruption",
                "consolidateAfter is required when disruption is set",
                "add consolidateAfter, e.g. 30s, 5m or Never",
            );
        }
        if d.budgets.len() > 50 {
            r.error("spec.disruption.budgets", "more than 50 budgets", "Karpenter accepts at most 50");
        }
        for (i, b) in d.budgets.iter().enumerate() {
            let at = format!("spec.disruption.budgets[{i}]");
            if BudgetNodes::parse(&b.nodes).is_none() {
                r.error(
                    &format!("{at}.nodes"),
                    format!("invalid budget `{}`", b.nodes),
                    "write a node count such as \"5\" or a percentage from \"0%\" to \"100%\"",
                );
            }
            if b.schedule.is_some() != b.duration.is_some() {
                r.error(
                    &at,
                    "schedule and duration must be set together (Karpenter's rule: 'schedule' must be set with 'duration')",
                    "add the missing one, e.g. schedule: \"0 9 * * mon-fri\" with duration: 8h",
                );
            }
            // The duration's pattern is a row of bounds_rules.
            let reasons = b.reasons.as_deref().unwrap_or_default();
            if let Some(twice) = reasons.iter().enumerate().find(|(j, x)| reasons[..*j].contains(x)).map(|(_, x)| x) {
                r.error(
                    &format!("{at}.reasons"),
                    format!(
                        "reason {twice:?} is listed twice; Karpenter's reasons are a set (x-kubernetes-list-type: set)"
                    ),
                    "list each of Underutilized, Empty and Drifted at most once",
                );
            }
        }
    }
    if r.written("status") {
        r.warning("status", "status is written by a controller and is ignored", "remove it from the config repository");
    }
}

/// Karpenter's runtime validation refuses a key/effect pair that appears twice among the taints
/// and startup taints together.
fn check_taints(pool: &NodePool, r: &mut Reporter) {
    let spec = &pool.spec.template.spec;
    let all = spec.taints.iter().enumerate().map(|(i, t)| (format!("spec.template.spec.taints[{i}]"), t));
    let startup =
        spec.startup_taints.iter().enumerate().map(|(i, t)| (format!("spec.template.spec.startupTaints[{i}]"), t));
    let mut seen = std::collections::HashSet::new();
    for (at, t) in all.chain(startup) {
        if !seen.insert((t.key.as_str(), t.effect)) {
            r.error(
                &at,
                format!("duplicate taint key/effect pair {}={:?}: Karpenter refuses the NodePool", t.key, t.effect),
                "keep one taint per key and effect across taints and startupTaints",
            );
        }
    }
}

/// The pool's own Balanced threshold: a decimal in range, and only where it is read.
fn check_balanced_threshold(pool: &NodePool, r: &mut Reporter) {
    use super::nodepool::{BALANCED_THRESHOLD_ANNOTATION as KEY, MAX_BALANCED_THRESHOLD, parse_balanced_threshold};
    let Some(text) = pool.metadata.annotations.get(KEY) else { return };
    let field = format!("metadata.annotations.{KEY}");
    if parse_balanced_threshold(text).is_none() {
        r.error(
            &field,
            format!("`{text}` is not a Balanced threshold"),
            format!("write the least score a move needs as a decimal above 0 and at most {MAX_BALANCED_THRESHOLD}, e.g. \"0.5\" (Karpenter's default)"),
        );
    } else if pool.spec.disruption.as_ref().and_then(|d| d.consolidation_policy)
        != Some(super::nodepool::ConsolidationPolicy::Balanced)
    {
        r.warning(
            &field,
            "the threshold is read only for consolidationPolicy: Balanced",
            "set consolidationPolicy: Balanced or remove the annotation",
        );
    }
}

fn check_requirement(req: &Requirement, at: &str, r: &mut Reporter) {
    if let Some(why) = labels::restricted_reason(&req.key) {
        r.error(
            &format!("{at}.key"),
            format!("requirement key `{}` is not allowed: {why}", req.key),
            "use a well-known label such as karpenter.k8s.aws/instance-family or your own domain",
        );
    }
    let n = req.values.len();
    match req.operator {
        // CRD: "requirements with operator 'In' must have a value defined". NotIn with no values
        // is accepted and excludes nothing.
        Operator::In if n == 0 => {
            r.error(
                &format!("{at}.values"),
                "operator In needs at least one value (Karpenter: requirements with operator 'In' must have a value defined)",
                "list the values, or use Exists / DoesNotExist",
            );
        }
        // Accepted by the CRD and by Karpenter, which ignore the values.
        Operator::Exists | Operator::DoesNotExist if n > 0 => {
            r.warning(
                &format!("{at}.values"),
                format!("operator {:?} ignores its values {:?}", req.operator, req.values),
                "remove the values, or use In / NotIn",
            );
        }
        // CRD: values.size() == 1 && int(values[0]) >= 0, `int` being a 64-bit signed integer.
        op if op.is_numeric() => {
            let ok = n == 1 && req.values[0].parse::<i64>().is_ok_and(|v| v >= 0);
            if !ok {
                r.error(
                    &format!("{at}.values"),
                    format!(
                        "operator {op:?} needs exactly one non-negative integer value, at most 9223372036854775807 (int64), got {:?}",
                        req.values
                    ),
                    "write one whole number, e.g. values: [\"2\"]",
                );
            }
        }
        _ => {}
    }
    if let Some(min) = req.min_values
        && (1..=50).contains(&min)
        && req.operator == Operator::In
        && (min as usize) > n
    {
        r.error(
            &format!("{at}.minValues"),
            format!("minValues {min} is larger than the {n} values listed"),
            "list at least minValues values, or lower minValues",
        );
    }
}

fn check_node_class(class: &EC2NodeClass, r: &mut Reporter) {
    let s = &class.spec;
    // Karpenter's CRD does not require spec, but without it the class has none of the selector
    // terms its spec requires, so no node can launch from it.
    if r.origin.translated_at.is_none() && !r.written("spec") {
        r.error(
            "metadata",
            format!(
                "EC2NodeClass `{}` has no spec, so it cannot launch nodes: subnetSelectorTerms, securityGroupSelectorTerms and amiSelectorTerms are missing, and so are role and instanceProfile",
                class.metadata.name
            ),
            "add a spec with role, amiSelectorTerms, subnetSelectorTerms and securityGroupSelectorTerms",
        );
        if r.written("status") {
            r.warning(
                "status",
                "status is written by a controller and is ignored",
                "remove it from the config repository",
            );
        }
        return;
    }
    match (&s.role, &s.instance_profile) {
        (Some(_), Some(_)) => r.error(
            "spec.instanceProfile",
            "role and instanceProfile are both set",
            "set exactly one: role (an IAM role) or instanceProfile (an existing profile)",
        ),
        (None, None) => r.error(
            "spec",
            "neither role nor instanceProfile is set",
            "set role (an IAM role; capstan creates, tags and deletes its instance profile) or instanceProfile (an existing instance profile)",
        ),
        // A warning, not an error: Karpenter's own examples carry `${CLUSTER_NAME}` placeholders.
        // An empty role is refused by a row of bounds_rules.
        (Some(role), None) if !role.is_empty() && !valid_role(role) => r.warning(
            "spec.role",
            format!("`{role}` is not an IAM role name or role ARN; IAM will refuse it at launch"),
            "write the role's name (up to 64 of letters, digits and _+=,.@-) or arn:aws:iam::<account>:role/<name>",
        ),
        _ => {}
    }
    super::crd_nodeclass::check(s, r);
    // The CRD refuses an id combined with other fields only when every term combines (its rule
    // reads `!self.all(...)`); crd_nodeclass reports that case.
    for p in super::reservation_terms::problems(&s.capacity_reservation_selector_terms) {
        if p.message != "id cannot be combined with tags or ownerID" {
            r.error(&p.field, p.message, p.hint);
        }
    }
    if let Some(k) = &s.kubelet {
        // The CRD keeps every kubelet field (x-kubernetes-preserve-unknown-fields); Karpenter
        // checks them at run time, and sets registerWithTaints itself.
        for key in k.extra.keys() {
            let field = format!("spec.kubelet.{key}");
            if key == "registerWithTaints" {
                r.error(
                    &field,
                    "registerWithTaints cannot be set: Karpenter sets it from the NodePool's taints",
                    "remove it; write the taints in the NodePool's template",
                );
            } else {
                r.warning(
                    &field,
                    format!("kubelet setting `{key}` is accepted but not acted on by capstan"),
                    "it is kept in rendered output; capstan's bootstrap does not pass it",
                );
            }
        }
    }
    if let Some(k) = &s.kubelet
        && let (Some(high), Some(low)) = (k.image_gc_high_threshold_percent, k.image_gc_low_threshold_percent)
        && high <= low
    {
        r.error(
            "spec.kubelet.imageGCHighThresholdPercent",
            format!("imageGCHighThresholdPercent {high} must be above imageGCLowThresholdPercent {low}"),
            "raise the high threshold or lower the low one",
        );
    }
    for (field, why) in IGNORED_NODE_CLASS_FIELDS {
        if r.written(field) {
            r.warning(
                field,
                format!("accepted but not acted on by capstan yet: {why}"),
                "the field is kept in rendered output; launches do not use it",
            );
        }
    }
    if r.written("status") {
        r.warning("status", "status is written by a controller and is ignored", "remove it from the config repository");
    }
}

/// An IAM role name (`[\w+=,.@-]{1,64}`), or a role ARN whose last part is one.
fn valid_role(role: &str) -> bool {
    let name =
        |n: &str| (1..=64).contains(&n.len()) && n.chars().all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
    match role.strip_prefix("arn:") {
        Some(rest) => {
            let parts: Vec<&str> = rest.splitn(5, ':').collect();
            parts.len() == 5
                && parts[1] == "iam"
                && parts[3].len() == 12
                && parts[3].bytes().all(|b| b.is_ascii_digit())
                && parts[4].strip_prefix("role/").is_some_and(|r| name(r.rsplit('/').next().unwrap_or_default()))
        }
        None => name(role),
    }
}

/// EC2NodeClass fields capstan accepts and keeps but does not use when launching.
const IGNORED_NODE_CLASS_FIELDS: &[(&str, &str)] = &[
    ("spec.instanceStorePolicy", "instance-store RAID0 is not configured"),
    ("spec.context", "EC2 Fleet context is not passed"),
    ("spec.ipPrefixCount", "IPv4 prefixes are not assigned"),
    ("spec.connectionTracking", "connection-tracking timeouts are not set"),
    ("spec.networkInterfaces", "custom network interfaces are not created"),
    ("spec.cpuOptions", "nested virtualization is not requested and instance types are not filtered by it"),
    ("spec.placementGroupSelector", "placement groups are not used"),
    ("spec.kubelet.evictionSoft", "soft eviction is not modelled"),
    ("spec.kubelet.evictionSoftGracePeriod", "soft eviction is not modelled"),
    ("spec.kubelet.evictionMaxPodGracePeriod", "soft eviction is not modelled"),
    ("spec.kubelet.imageGCHighThresholdPercent", "image GC settings are passed to no bootstrap"),
    ("spec.kubelet.imageGCLowThresholdPercent", "image GC settings are passed to no bootstrap"),
    ("spec.kubelet.cpuCFSQuota", "CFS quota is passed to no bootstrap"),
    ("spec.kubelet.clusterDNS", "cluster DNS is passed to no bootstrap"),
];

fn check_cluster_policy(p: &Located<ClusterPolicy>, diags: &mut Diagnostics) {
    let mut r = Reporter { origin: &p.origin, object: format!("ClusterPolicy/{}", p.value.metadata.name), diags };
    let spec = &p.value.spec;
    if let Some(t) = spec.consolidation.as_ref().and_then(|c| c.utilization_threshold)
        && !(0.0..=1.0).contains(&t)
    {
        r.error(
            "spec.consolidation.utilizationThreshold",
            format!("{t} is not a fraction"),
            "use a number from 0 to 1, e.g. 0.5 like Cluster Autoscaler",
        );
    }
    if let Some(b) = &spec.batching
        && let (Some(idle), Some(max)) = (&b.idle_duration, &b.max_duration)
        && idle.duration() > max.duration()
    {
        r.error(
            "spec.batching.idleDuration",
            format!("idleDuration {idle} is longer than maxDuration {max}"),
            "keep idleDuration at or below maxDuration (defaults 1s and 10s)",
        );
    }
}

#[cfg(test)]
mod role_tests {
    use super::valid_role;

    #[test]
    fn a_role_is_a_name_or_a_role_arn() {
        for ok in ["nodes.dev.example.com", "KarpenterNodeRole-x", "arn:aws:iam::111122223333:role/team/nodes"] {
            assert!(valid_role(ok), "{ok}");
        }
        for bad in ["", "has space", "arn:aws:iam::111122223333:user/x", "arn:aws:iam::1:role/x", &"r".repeat(65)] {
            assert!(!valid_role(bad), "{bad}");
        }
    }
}
