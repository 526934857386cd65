//! NodePool template: labels, taints, nodeClassRef and the node lifetimes.

use serde_json::{Value, json};

use super::Base::Pool;
use super::{Case, accept, reject, run};

const LABELS: &str = "spec.template.metadata.labels";
const TAINTS: &str = "spec.template.spec.taints";

fn labels(n: usize) -> Value {
    Value::Object((0..n).map(|i| (format!("l{i}"), json!("v"))).collect())
}

fn cases() -> Vec<Case> {
    let domain_sh = "label domain \"karpenter.sh\" is restricted";
    let domain_aws = "label domain \"karpenter.k8s.aws\" is restricted";
    vec![
        // labels
        accept(Pool, "100 labels", "labels maxProperties: 100", LABELS, labels(100)),
        reject(Pool, "101 labels", "labels maxProperties: 100", LABELS, labels(101), (LABELS, "maxProperties 100")),
        accept(
            Pool,
            "empty label value",
            "label value pattern ^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$",
            LABELS,
            json!({"team": ""}),
        ),
        reject(
            Pool,
            "label value with space",
            "label value pattern ^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$",
            LABELS,
            json!({"team": "a b"}),
            (LABELS, "not a valid label value"),
        ),
        reject(
            Pool,
            "label value of 64",
            "label value maxLength: 63",
            LABELS,
            json!({"team": "a".repeat(64)}),
            (LABELS, "not a valid label value"),
        ),
        accept(Pool, "capacity-type label", domain_sh, LABELS, json!({"karpenter.sh/capacity-type": "spot"})),
        reject(
            Pool,
            "karpenter.sh label",
            domain_sh,
            LABELS,
            json!({"karpenter.sh/team": "a"}),
            (LABELS, "karpenter.sh"),
        ),
        reject(
            Pool,
            "sub-domain of karpenter.sh",
            domain_sh,
            LABELS,
            json!({"x.karpenter.sh/team": "a"}),
            (LABELS, "karpenter.sh"),
        ),
        reject(
            Pool,
            "nodepool label",
            "label \"karpenter.sh/nodepool\" is restricted",
            LABELS,
            json!({"karpenter.sh/nodepool": "a"}),
            (LABELS, "karpenter.sh/nodepool"),
        ),
        reject(
            Pool,
            "hostname label",
            "label \"kubernetes.io/hostname\" is restricted",
            LABELS,
            json!({"kubernetes.io/hostname": "a"}),
            (LABELS, "kubernetes.io/hostname"),
        ),
        accept(
            Pool,
            "placement group label",
            domain_aws,
            LABELS,
            json!({"karpenter.k8s.aws/placement-group-id": "pg-1"}),
        ),
        reject(
            Pool,
            "unknown aws label",
            domain_aws,
            LABELS,
            json!({"karpenter.k8s.aws/team": "a"}),
            (LABELS, "karpenter.k8s.aws"),
        ),
        // taints
        accept(
            Pool,
            "taint with prefixed value",
            "taint value pattern allows [prefix/]name",
            TAINTS,
            json!([{"key": "dedicated", "value": "example.com/gpu", "effect": "NoSchedule"}]),
        ),
        accept(
            Pool,
            "taint without value",
            "taint value is optional",
            TAINTS,
            json!([{"key": "dedicated", "effect": "NoSchedule"}]),
        ),
        reject(
            Pool,
            "taint empty value",
            "taint value pattern ...[A-Za-z0-9]$ refuses empty text",
            TAINTS,
            json!([{"key": "dedicated", "value": "", "effect": "NoSchedule"}]),
            (TAINTS, "requires it to be [prefix/]name"),
        ),
        reject(
            Pool,
            "taint empty key",
            "taint key minLength: 1",
            TAINTS,
            json!([{"key": "", "effect": "NoSchedule"}]),
            (TAINTS, "not a valid taint key"),
        ),
        reject(
            Pool,
            "taint key with space",
            "taint key pattern",
            TAINTS,
            json!([{"key": "a b", "effect": "NoSchedule"}]),
            (TAINTS, "not a valid taint key"),
        ),
        reject(
            Pool,
            "taint without effect",
            "taint required: effect, key",
            TAINTS,
            json!([{"key": "dedicated"}]),
            (TAINTS, "effect"),
        ),
        reject(
            Pool,
            "taint effect Never",
            "effect enum: NoSchedule, PreferNoSchedule, NoExecute",
            TAINTS,
            json!([{"key": "a", "effect": "Never"}]),
            (TAINTS, ""),
        ),
        accept(
            Pool,
            "taint timeAdded",
            "timeAdded format: date-time",
            TAINTS,
            json!([{"key": "a", "effect": "NoSchedule", "timeAdded": "2024-05-01T10:00:00Z"}]),
        ),
        reject(
            Pool,
            "taint timeAdded yesterday",
            "timeAdded format: date-time",
            TAINTS,
            json!([{"key": "a", "effect": "NoSchedule", "timeAdded": "yesterday"}]),
            (TAINTS, "RFC 3339"),
        ),
        accept(
            Pool,
            "same key, two effects",
            "Karpenter runtime: duplicate taint Key/Effect pair",
            TAINTS,
            json!([{"key": "a", "effect": "NoSchedule"}, {"key": "a", "effect": "NoExecute"}]),
        ),
        reject(
            Pool,
            "duplicate taint",
            "Karpenter runtime: duplicate taint Key/Effect pair",
            TAINTS,
            json!([{"key": "a", "effect": "NoSchedule"}, {"key": "a", "value": "x", "effect": "NoSchedule"}]),
            ("spec.template.spec.taints[1]", "duplicate taint"),
        ),
        reject(
            Pool,
            "taint repeated as startup taint",
            "Karpenter runtime: duplicate taint Key/Effect pair",
            "spec.template.spec.startupTaints",
            json!([{"key": "a", "effect": "NoSchedule"}]),
            ("spec.template.spec.startupTaints[0]", "duplicate taint"),
        )
        .and(TAINTS, json!([{"key": "a", "effect": "NoSchedule"}])),
        // nodeClassRef
        reject(
            Pool,
            "empty group",
            "group may not be empty",
            "spec.template.spec.nodeClassRef.group",
            json!(""),
            ("spec.template.spec.nodeClassRef.group", "group may not be empty"),
        ),
        reject(
            Pool,
            "empty kind",
            "kind may not be empty",
            "spec.template.spec.nodeClassRef.kind",
            json!(""),
            ("spec.template.spec.nodeClassRef.kind", "kind may not be empty"),
        ),
        reject(
            Pool,
            "empty name",
            "name may not be empty",
            "spec.template.spec.nodeClassRef.name",
            json!(""),
            ("spec.template.spec.nodeClassRef.name", "name may not be empty"),
        ),
        reject(
            Pool,
            "no name",
            "nodeClassRef required: group, kind, name",
            "spec.template.spec.nodeClassRef.name",
            json!(null),
            ("spec.template.spec.nodeClassRef", "name"),
        ),
        // lifetimes
        accept(
            Pool,
            "expireAfter Never",
            "expireAfter pattern ^(([0-9]+(s|m|h))+|Never)$",
            "spec.template.spec.expireAfter",
            json!("Never"),
        ),
        reject(
            Pool,
            "expireAfter 30d",
            "expireAfter pattern ^(([0-9]+(s|m|h))+|Never)$",
            "spec.template.spec.expireAfter",
            json!("30d"),
            ("spec.template.spec.expireAfter", ""),
        ),
        accept(
            Pool,
            "terminationGracePeriod 1h30m",
            "terminationGracePeriod pattern ^([0-9]+(s|m|h))+$",
            "spec.template.spec.terminationGracePeriod",
            json!("1h30m"),
        ),
        reject(
            Pool,
            "terminationGracePeriod Never",
            "terminationGracePeriod pattern ^([0-9]+(s|m|h))+$",
            "spec.template.spec.terminationGracePeriod",
            json!("Never"),
            ("spec.template.spec.terminationGracePeriod", ""),
        ),
    ]
}

#[test]
fn nodepool_template_follows_the_crd() {
    run(&cases());
}
