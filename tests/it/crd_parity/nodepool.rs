//! NodePool spec: weight, replicas and static pools, limits, disruption and its budgets.

use serde_json::json;

use super::Base::Pool;
use super::{Case, accept, reject, run};

fn cases() -> Vec<Case> {
    vec![
        // weight: format int32, minimum 1, maximum 100
        accept(Pool, "weight 1", "weight minimum: 1", "spec.weight", json!(1)),
        accept(Pool, "weight 100", "weight maximum: 100", "spec.weight", json!(100)),
        reject(Pool, "weight 0", "weight minimum: 1", "spec.weight", json!(0), ("spec.weight", "out of range")),
        reject(Pool, "weight 101", "weight maximum: 100", "spec.weight", json!(101), ("spec.weight", "out of range")),
        reject(Pool, "weight text", "weight type: integer", "spec.weight", json!("5"), ("spec.weight", "")),
        // replicas: format int64, minimum 0
        accept(Pool, "replicas 0", "replicas minimum: 0", "spec.replicas", json!(0)).and("spec.limits", json!(null)),
        reject(
            Pool,
            "replicas -1",
            "replicas minimum: 0",
            "spec.replicas",
            json!(-1),
            ("spec.replicas", "out of range"),
        )
        .and("spec.limits", json!(null)),
        // static NodePools
        accept(
            Pool,
            "static pool limits nodes",
            "only 'limits.nodes' is supported on static NodePools",
            "spec.replicas",
            json!(2),
        )
        .and("spec.limits", json!({"nodes": "5"})),
        reject(
            Pool,
            "static pool limits cpu",
            "only 'limits.nodes' is supported on static NodePools",
            "spec.replicas",
            json!(2),
            ("spec.limits", "may only limit `nodes`"),
        ),
        reject(
            Pool,
            "static pool with weight",
            "'weight' is not supported on static NodePools",
            "spec.replicas",
            json!(2),
            ("spec.weight", "cannot have a weight"),
        )
        .and("spec.limits", json!(null))
        .and("spec.weight", json!(10)),
        // limits: additionalProperties int-or-string with the quantity pattern
        accept(Pool, "limit as integer", "limits x-kubernetes-int-or-string", "spec.limits", json!({"cpu": 100})),
        accept(Pool, "limit with suffix", "limits quantity pattern", "spec.limits", json!({"memory": "100Gi"})),
        reject(
            Pool,
            "limit not a quantity",
            "limits quantity pattern",
            "spec.limits",
            json!({"cpu": "lots"}),
            ("spec.limits", ""),
        ),
        // disruption
        reject(
            Pool,
            "disruption without consolidateAfter",
            "disruption required: consolidateAfter",
            "spec.disruption.consolidateAfter",
            json!(null),
            ("spec.disruption", "consolidateAfter is required"),
        ),
        accept(
            Pool,
            "consolidateAfter Never",
            "consolidateAfter pattern ^(([0-9]+(s|m|h))+|Never)$",
            "spec.disruption.consolidateAfter",
            json!("Never"),
        ),
        accept(
            Pool,
            "consolidateAfter 1h30m",
            "consolidateAfter pattern ^(([0-9]+(s|m|h))+|Never)$",
            "spec.disruption.consolidateAfter",
            json!("1h30m"),
        ),
        reject(
            Pool,
            "consolidateAfter 1.5h",
            "consolidateAfter pattern ^(([0-9]+(s|m|h))+|Never)$",
            "spec.disruption.consolidateAfter",
            json!("1.5h"),
            ("spec.disruption.consolidateAfter", ""),
        ),
        reject(
            Pool,
            "consolidateAfter in ms",
            "consolidateAfter pattern ^(([0-9]+(s|m|h))+|Never)$",
            "spec.disruption.consolidateAfter",
            json!("300ms"),
            ("spec.disruption.consolidateAfter", ""),
        ),
        accept(
            Pool,
            "policy Balanced",
            "consolidationPolicy enum: WhenEmpty, WhenEmptyOrUnderutilized, Balanced",
            "spec.disruption.consolidationPolicy",
            json!("Balanced"),
        ),
        reject(
            Pool,
            "policy Always",
            "consolidationPolicy enum: WhenEmpty, WhenEmptyOrUnderutilized, Balanced",
            "spec.disruption.consolidationPolicy",
            json!("Always"),
            ("spec.disruption.consolidationPolicy", ""),
        ),
        // budgets
        accept(
            Pool,
            "budget 100%",
            "nodes pattern ^((100|[0-9]{1,2})%|[0-9]+)$",
            "spec.disruption.budgets",
            json!([{"nodes": "100%"}]),
        ),
        accept(
            Pool,
            "budget 05%",
            "nodes pattern ^((100|[0-9]{1,2})%|[0-9]+)$",
            "spec.disruption.budgets",
            json!([{"nodes": "05%"}]),
        ),
        accept(
            Pool,
            "budget count",
            "nodes pattern ^((100|[0-9]{1,2})%|[0-9]+)$",
            "spec.disruption.budgets",
            json!([{"nodes": "250"}]),
        ),
        reject(
            Pool,
            "budget 101%",
            "nodes pattern ^((100|[0-9]{1,2})%|[0-9]+)$",
            "spec.disruption.budgets",
            json!([{"nodes": "101%"}]),
            ("spec.disruption.budgets[0].nodes", "invalid budget"),
        ),
        reject(
            Pool,
            "budget 000%",
            "nodes pattern ^((100|[0-9]{1,2})%|[0-9]+)$",
            "spec.disruption.budgets",
            json!([{"nodes": "000%"}]),
            ("spec.disruption.budgets[0].nodes", "invalid budget"),
        ),
        reject(
            Pool,
            "budget without nodes",
            "budgets items required: nodes",
            "spec.disruption.budgets",
            json!([{"reasons": ["Empty"]}]),
            ("spec.disruption.budgets[0]", "nodes"),
        ),
        accept(
            Pool,
            "50 budgets",
            "budgets maxItems: 50",
            "spec.disruption.budgets",
            json!(vec![json!({"nodes": "1"}); 50]),
        ),
        reject(
            Pool,
            "51 budgets",
            "budgets maxItems: 50",
            "spec.disruption.budgets",
            json!(vec![json!({"nodes": "1"}); 51]),
            ("spec.disruption.budgets", "more than 50"),
        ),
        accept(
            Pool,
            "schedule with duration",
            "'schedule' must be set with 'duration'",
            "spec.disruption.budgets",
            json!([{"nodes": "0", "schedule": "0 9 * * mon-fri", "duration": "8h"}]),
        ),
        reject(
            Pool,
            "schedule without duration",
            "'schedule' must be set with 'duration'",
            "spec.disruption.budgets",
            json!([{"nodes": "0", "schedule": "@daily"}]),
            ("spec.disruption.budgets[0]", "'schedule' must be set with 'duration'"),
        ),
        reject(
            Pool,
            "duration without schedule",
            "'schedule' must be set with 'duration'",
            "spec.disruption.budgets",
            json!([{"nodes": "0", "duration": "8h"}]),
            ("spec.disruption.budgets[0]", "'schedule' must be set with 'duration'"),
        ),
        accept(
            Pool,
            "duration 1h30m0s",
            "duration pattern ^((([0-9]+(h|m))|([0-9]+h[0-9]+m))(0s)?)$",
            "spec.disruption.budgets",
            json!([{"nodes": "0", "schedule": "@daily", "duration": "1h30m0s"}]),
        ),
        accept(
            Pool,
            "duration 90m",
            "duration pattern ^((([0-9]+(h|m))|([0-9]+h[0-9]+m))(0s)?)$",
            "spec.disruption.budgets",
            json!([{"nodes": "0", "schedule": "@daily", "duration": "90m"}]),
        ),
        reject(
            Pool,
            "duration 60s",
            "duration pattern ^((([0-9]+(h|m))|([0-9]+h[0-9]+m))(0s)?)$",
            "spec.disruption.budgets",
            json!([{"nodes": "0", "schedule": "@daily", "duration": "60s"}]),
            ("spec.disruption.budgets[0].duration", "requires it to match"),
        ),
        reject(
            Pool,
            "duration 1m30s",
            "duration pattern ^((([0-9]+(h|m))|([0-9]+h[0-9]+m))(0s)?)$",
            "spec.disruption.budgets",
            json!([{"nodes": "0", "schedule": "@daily", "duration": "1m30s"}]),
            ("spec.disruption.budgets[0].duration", "requires it to match"),
        ),
        reject(
            Pool,
            "duration minutes then hours",
            "duration pattern ^((([0-9]+(h|m))|([0-9]+h[0-9]+m))(0s)?)$",
            "spec.disruption.budgets",
            json!([{"nodes": "0", "schedule": "@daily", "duration": "30m1h"}]),
            ("spec.disruption.budgets[0].duration", "requires it to match"),
        ),
        accept(
            Pool,
            "reasons",
            "reasons items enum: Underutilized, Empty, Drifted",
            "spec.disruption.budgets",
            json!([{"nodes": "1", "reasons": ["Underutilized", "Empty", "Drifted"]}]),
        ),
        reject(
            Pool,
            "reason Expired",
            "reasons items enum: Underutilized, Empty, Drifted",
            "spec.disruption.budgets",
            json!([{"nodes": "1", "reasons": ["Expired"]}]),
            ("spec.disruption.budgets[0].reasons", ""),
        ),
        reject(
            Pool,
            "reason twice",
            "reasons x-kubernetes-list-type: set",
            "spec.disruption.budgets",
            json!([{"nodes": "1", "reasons": ["Empty", "Empty"]}]),
            ("spec.disruption.budgets[0].reasons", "listed twice"),
        ),
        // spec required: template; template required: spec
        reject(Pool, "no template", "spec required: template", "spec.template", json!(null), ("spec", "template")),
    ]
}

#[test]
fn nodepool_spec_follows_the_crd() {
    run(&cases());
}
