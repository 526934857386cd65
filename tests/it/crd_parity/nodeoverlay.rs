//! NodeOverlay (karpenter.sh/v1alpha1): requirements, price, priceAdjustment, capacity, weight.

use serde_json::json;

use super::Base::Overlay;
use super::{Case, accept, reject, req, run};

const REQS: &str = "spec.requirements";

fn cases() -> Vec<Case> {
    let numeric = "requirements operator 'Gt', 'Lt', 'Gte' or 'Lte' must have a single positive integer value";
    let domain_aws = "label domain \"karpenter.k8s.aws\" is restricted";
    let adjustment =
        "priceAdjustment pattern ^(([+-]{1}(\\d*\\.?\\d+))|(\\+{1}\\d*\\.?\\d+%)|(^(-\\d{1,2}(\\.\\d+)?%)$)|(-100%))$";
    vec![
        reject(
            Overlay,
            "In without values",
            "requirements with operator 'In' must have a value defined",
            REQS,
            req("karpenter.k8s.aws/instance-family", "In", &[]),
            (REQS, "operator 'In' must have a value defined"),
        ),
        reject(
            Overlay,
            "NotIn without values",
            "requirements with operator 'NotIn' must have a value defined",
            REQS,
            req("karpenter.k8s.aws/instance-family", "NotIn", &[]),
            (REQS, "operator 'NotIn' must have a value defined"),
        ),
        accept(
            Overlay,
            "Exists with values",
            "no CEL rule on Exists values",
            REQS,
            req("karpenter.k8s.aws/instance-family", "Exists", &["m5"]),
        )
        .warns("ignores its values"),
        accept(
            Overlay,
            "DoesNotExist with values",
            "no CEL rule on DoesNotExist values",
            REQS,
            req("karpenter.k8s.aws/instance-family", "DoesNotExist", &["m5"]),
        )
        .warns("ignores its values"),
        accept(Overlay, "Gt 4", numeric, REQS, req("karpenter.k8s.aws/instance-cpu", "Gt", &["4"])),
        reject(
            Overlay,
            "Gt without value",
            numeric,
            REQS,
            req("karpenter.k8s.aws/instance-cpu", "Gt", &[]),
            (REQS, "single positive integer value"),
        ),
        reject(
            Overlay,
            "Lte above int64",
            "int(x.values[0]) >= 0",
            REQS,
            req("karpenter.k8s.aws/instance-cpu", "Lte", &["9223372036854775808"]),
            (REQS, "single positive integer value"),
        ),
        reject(
            Overlay,
            "Gte text",
            numeric,
            REQS,
            req("karpenter.k8s.aws/instance-cpu", "Gte", &["four"]),
            (REQS, "single positive integer value"),
        ),
        accept(
            Overlay,
            "nodepool key",
            "self in [\"karpenter.sh/capacity-type\", \"karpenter.sh/nodepool\"] || ...",
            REQS,
            req("karpenter.sh/nodepool", "In", &["default"]),
        ),
        reject(
            Overlay,
            "karpenter.sh key",
            "label domain \"karpenter.sh\" is restricted",
            REQS,
            req("karpenter.sh/team", "Exists", &[]),
            (REQS, "karpenter.sh"),
        ),
        reject(
            Overlay,
            "hostname key",
            "label \"kubernetes.io/hostname\" is restricted",
            REQS,
            req("kubernetes.io/hostname", "Exists", &[]),
            (REQS, "kubernetes.io/hostname"),
        ),
        accept(Overlay, "instance-cpu key", domain_aws, REQS, req("karpenter.k8s.aws/instance-cpu", "Exists", &[])),
        reject(
            Overlay,
            "instance-tenancy key",
            domain_aws,
            REQS,
            req("karpenter.k8s.aws/instance-tenancy", "Exists", &[]),
            (REQS, "karpenter.k8s.aws"),
        ),
        reject(
            Overlay,
            "placement-group key",
            domain_aws,
            REQS,
            req("karpenter.k8s.aws/placement-group-id", "Exists", &[]),
            (REQS, "karpenter.k8s.aws"),
        ),
        reject(
            Overlay,
            "key with space",
            "key pattern",
            REQS,
            req("a b", "Exists", &[]),
            (REQS, "not a valid requirement key"),
        ),
        reject(
            Overlay,
            "key of 317",
            "key maxLength: 316",
            REQS,
            req(&format!("{}.io/{}", "a".repeat(250), "b".repeat(63)), "Exists", &[]),
            (REQS, "maxLength 316"),
        ),
        reject(
            Overlay,
            "value with space",
            "values items pattern",
            REQS,
            req("karpenter.k8s.aws/instance-family", "In", &["m 5"]),
            (REQS, "not a valid requirement value"),
        ),
        reject(
            Overlay,
            "101 requirements",
            "requirements maxItems: 100",
            REQS,
            json!(vec![json!({"key": "karpenter.k8s.aws/instance-cpu", "operator": "Exists"}); 101]),
            (REQS, "at most 100"),
        ),
        reject(
            Overlay,
            "no requirements field",
            "spec required: requirements",
            REQS,
            json!(null),
            ("spec", "requirements"),
        ),
        accept(Overlay, "price", "price pattern ^\\d+(\\.\\d+)?$", "spec.price", json!("0.052"))
            .and("spec.priceAdjustment", json!(null)),
        reject(
            Overlay,
            "price with sign",
            "price pattern ^\\d+(\\.\\d+)?$",
            "spec.price",
            json!("+0.05"),
            ("spec.price", "does not match"),
        )
        .and("spec.priceAdjustment", json!(null)),
        reject(
            Overlay,
            "price and adjustment",
            "cannot set both 'price' and 'priceAdjustment'",
            "spec.price",
            json!("1"),
            ("spec.priceAdjustment", "cannot set both 'price' and 'priceAdjustment'"),
        ),
        accept(Overlay, "adjustment -100%", adjustment, "spec.priceAdjustment", json!("-100%")),
        accept(Overlay, "adjustment +150%", adjustment, "spec.priceAdjustment", json!("+150%")),
        accept(Overlay, "adjustment -.5", adjustment, "spec.priceAdjustment", json!("-.5")),
        reject(
            Overlay,
            "adjustment -101%",
            adjustment,
            "spec.priceAdjustment",
            json!("-101%"),
            ("spec.priceAdjustment", "not a price change"),
        ),
        reject(
            Overlay,
            "adjustment without sign",
            adjustment,
            "spec.priceAdjustment",
            json!("10%"),
            ("spec.priceAdjustment", "not a price change"),
        ),
        reject(
            Overlay,
            "capacity pods",
            "invalid resource restricted: cpu, memory, ephemeral-storage, pods",
            "spec.capacity",
            json!({"pods": "10"}),
            ("spec.capacity", "may not name `pods`"),
        ),
        accept(
            Overlay,
            "capacity extended",
            "capacity additionalProperties quantity",
            "spec.capacity",
            json!({"example.com/fpga": "1"}),
        )
        .warns("not acted on"),
        reject(
            Overlay,
            "weight 10001",
            "weight maximum: 10000",
            "spec.weight",
            json!(10_001),
            ("spec.weight", "out of range"),
        ),
        reject(Overlay, "weight 0", "weight minimum: 1", "spec.weight", json!(0), ("spec.weight", "out of range")),
        accept(Overlay, "weight 10000", "weight maximum: 10000", "spec.weight", json!(10_000)),
    ]
}

#[test]
fn nodeoverlay_follows_the_crd() {
    run(&cases());
}
