//! NodePool template requirements: operators and values, minValues, keys and restricted domains.

use serde_json::json;

use super::Base::Pool;
use super::{Case, accept, reject, req, run};

const REQS: &str = "spec.template.spec.requirements";

fn cases() -> Vec<Case> {
    let domain_sh = "label domain \"karpenter.sh\" is restricted";
    let domain_aws = "label domain \"karpenter.k8s.aws\" is restricted";
    vec![
        // requirements
        accept(Pool, "no requirements", "requirements is required, may be empty", REQS, json!([])),
        reject(
            Pool,
            "requirements left out",
            "spec required: nodeClassRef, requirements",
            REQS,
            json!(null),
            ("spec.template.spec", "requirements"),
        ),
        reject(
            Pool,
            "101 requirements",
            "requirements maxItems: 100",
            REQS,
            json!(vec![json!({"key": "team", "operator": "Exists"}); 101]),
            (REQS, "more than 100"),
        ),
        accept(
            Pool,
            "In with values",
            "requirements with operator 'In' must have a value defined",
            REQS,
            req("team", "In", &["a"]),
        ),
        reject(
            Pool,
            "In without values",
            "requirements with operator 'In' must have a value defined",
            REQS,
            req("team", "In", &[]),
            (REQS, "operator 'In' must have a value defined"),
        ),
        accept(
            Pool,
            "NotIn without values",
            "only In needs values in the NodePool CRD",
            REQS,
            req("team", "NotIn", &[]),
        ),
        accept(Pool, "Exists with values", "no CEL rule on Exists values", REQS, req("team", "Exists", &["a"]))
            .warns("ignores its values"),
        accept(
            Pool,
            "DoesNotExist with values",
            "no CEL rule on DoesNotExist values",
            REQS,
            req("team", "DoesNotExist", &["a"]),
        )
        .warns("ignores its values"),
        accept(
            Pool,
            "Gte 0",
            "requirements operator 'Gt', 'Lt', 'Gte', or 'Lte' must have a single positive integer value",
            REQS,
            req("karpenter.k8s.aws/instance-cpu", "Gte", &["0"]),
        ),
        reject(
            Pool,
            "Gt two values",
            "requirements operator 'Gt', 'Lt', 'Gte', or 'Lte' must have a single positive integer value",
            REQS,
            req("karpenter.k8s.aws/instance-cpu", "Gt", &["1", "2"]),
            (REQS, "exactly one non-negative integer"),
        ),
        reject(
            Pool,
            "Lt negative",
            "requirements operator 'Gt', 'Lt', 'Gte', or 'Lte' must have a single positive integer value",
            REQS,
            req("karpenter.k8s.aws/instance-cpu", "Lt", &["-1"]),
            (REQS, "exactly one non-negative integer"),
        ),
        reject(
            Pool,
            "Lte above int64",
            "int(x.values[0]) >= 0",
            REQS,
            req("karpenter.k8s.aws/instance-cpu", "Lte", &["9223372036854775808"]),
            (REQS, "exactly one non-negative integer"),
        ),
        reject(
            Pool,
            "operator Equals",
            "operator enum: Gte, Lte, In, NotIn, Exists, DoesNotExist, Gt, Lt",
            REQS,
            req("team", "Equals", &["a"]),
            (REQS, ""),
        ),
        accept(
            Pool,
            "minValues 2 of 2",
            "requirements with 'minValues' must have at least that many values specified in the 'values' field",
            REQS,
            json!([{"key": "team", "operator": "In", "values": ["a", "b"], "minValues": 2}]),
        ),
        reject(
            Pool,
            "minValues 3 of 2",
            "requirements with 'minValues' must have at least that many values specified in the 'values' field",
            REQS,
            json!([{"key": "team", "operator": "In", "values": ["a", "b"], "minValues": 3}]),
            (REQS, "minValues 3 is larger"),
        ),
        accept(
            Pool,
            "minValues on NotIn",
            "the minValues rule applies to In only",
            REQS,
            json!([{"key": "team", "operator": "NotIn", "values": ["a"], "minValues": 3}]),
        ),
        reject(
            Pool,
            "minValues 0",
            "minValues minimum: 1",
            REQS,
            json!([{"key": "team", "operator": "Exists", "minValues": 0}]),
            (REQS, "out of range"),
        ),
        reject(
            Pool,
            "minValues 51",
            "minValues maximum: 50",
            REQS,
            json!([{"key": "team", "operator": "Exists", "minValues": 51}]),
            (REQS, "out of range"),
        ),
        reject(
            Pool,
            "key with space",
            "key pattern ^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*(\\/))?([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$",
            REQS,
            req("my team", "Exists", &[]),
            (REQS, "not a valid requirement key"),
        ),
        reject(
            Pool,
            "key of 317",
            "key maxLength: 316",
            REQS,
            req(&format!("{}.io/{}", "a".repeat(250), "b".repeat(63)), "Exists", &[]),
            (REQS, "maxLength 316"),
        ),
        reject(
            Pool,
            "key karpenter.sh",
            domain_sh,
            REQS,
            req("karpenter.sh/team", "Exists", &[]),
            (REQS, "karpenter.sh"),
        ),
        reject(
            Pool,
            "key nodepool",
            "label \"karpenter.sh/nodepool\" is restricted",
            REQS,
            req("karpenter.sh/nodepool", "Exists", &[]),
            (REQS, "karpenter.sh/nodepool"),
        ),
        reject(
            Pool,
            "key hostname",
            "label \"kubernetes.io/hostname\" is restricted",
            REQS,
            req("kubernetes.io/hostname", "Exists", &[]),
            (REQS, "kubernetes.io/hostname"),
        ),
        accept(
            Pool,
            "key instance-tenancy",
            domain_aws,
            REQS,
            req("karpenter.k8s.aws/instance-tenancy", "In", &["default"]),
        ),
        reject(
            Pool,
            "key unknown aws",
            domain_aws,
            REQS,
            req("karpenter.k8s.aws/made-up", "Exists", &[]),
            (REQS, "karpenter.k8s.aws"),
        ),
        reject(
            Pool,
            "value with slash",
            "values items pattern ^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$",
            REQS,
            req("team", "In", &["a/b"]),
            (REQS, "not a valid requirement value"),
        ),
    ]
}

#[test]
fn nodepool_requirements_follow_the_crd() {
    run(&cases());
}
