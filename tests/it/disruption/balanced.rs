//! Balanced consolidation: the score (share of the pool's cost saved over share of its
//! disruption caused) computed by hand here from the definition, moves just above and just
//! below the threshold of 0.5, and the record of every scored move.

use capstan::disruption::balanced::{self, BALANCED_THRESHOLD, Source, Totals};
use capstan::scheduling::pod::pod;

use super::*;

fn price(case: &Case, t: &str) -> f64 {
    let it = case.catalog.get(t).unwrap();
    it.offerings.iter().find(|o| o.zone == "us-east-1a" && o.capacity_type == CapacityType::OnDemand).unwrap().price
}

#[test]
fn the_score_is_cost_share_over_disruption_share() {
    // A pool of $10/h and disruption 40 (say 4 nodes, 36 pods); a move saving $2/h that
    // evicts 5 pods from one node: (2/10) / ((1 + 5)/40) = 0.2 / 0.15 = 4/3.
    let totals = Totals { cost: 10.0, disruption: 40.0 };
    let s = balanced::score(2.0, balanced::node_cost([1.0; 5]), totals, BALANCED_THRESHOLD);
    assert!((s.savings_fraction - 0.2).abs() < 1e-12);
    assert!((s.disruption_fraction - 0.15).abs() < 1e-12);
    assert!((s.value() - 4.0 / 3.0).abs() < 1e-12);
    assert_eq!(s.threshold, 0.5);
    assert!(s.approved());
    // The same move evicting 15 pods: (0.2) / (16/40) = 0.5, on the threshold.
    let s = balanced::score(2.0, balanced::node_cost([1.0; 15]), totals, BALANCED_THRESHOLD);
    assert!((s.value() - 0.5).abs() < 1e-12 && s.approved());
    // 16 pods: 0.2 / (17/40) = 8/17 < 0.5.
    assert!(!balanced::score(2.0, balanced::node_cost([1.0; 16]), totals, BALANCED_THRESHOLD).approved());
}

#[test]
fn pod_priority_and_deletion_cost_weigh_on_disruption() {
    // Priority 2^25 doubles a pod's cost; a deletion cost of -2^27 × 2 makes it free.
    assert_eq!(balanced::eviction_cost(None, Some(1 << 25)), 2.0);
    assert_eq!(balanced::node_cost([balanced::eviction_cost(Some(-(2f64.powi(28))), None)]), 1.0);
    let totals = std::collections::BTreeMap::from([("p".to_string(), Totals { cost: 4.0, disruption: 8.0 })]);
    let cheap = [Source { pool: "p", price: 1.0, disruption: 2.0 }];
    let dear = [Source { pool: "p", price: 1.0, disruption: 5.0 }];
    // (1/4) / (2/8) = 1; (1/4) / (5/8) = 0.4.
    let s = balanced::evaluate(vec!["n".into()], 1.0, &cheap, |_| Some(BALANCED_THRESHOLD), &totals).unwrap();
    assert!((s.value() - 1.0).abs() < 1e-12 && s.approved);
    let s = balanced::evaluate(vec!["n".into()], 1.0, &dear, |_| Some(BALANCED_THRESHOLD), &totals).unwrap();
    assert!((s.value() - 0.4).abs() < 1e-12 && !s.approved);
}

/// Pool `default` Balanced: `a`, an m6i.large with one pod; `b`, an m6i.4xlarge that may not be
/// disrupted, with `on_b` pods; `room`, a kOps node the pods of `a` fit on. Deleting `a` scores
/// (price a / (price a + price b)) / (2 / (2 + 1 + on_b)).
fn delete_case(on_b: usize) -> (Case, f64) {
    let mut case = Case::new();
    case.pool().consolidation = ConsolidationPolicy::Balanced;
    case.node(node("a").of_type("m6i.large"));
    case.node(node("b").of_type("m6i.4xlarge").do_not_disrupt());
    case.node(node("room").unmanaged().of_type("m6i.4xlarge"));
    case.pod("a", pod().cpu("100m"));
    case.pods("b", on_b, pod().cpu("100m"));
    let (pa, pb) = (price(&case, "m6i.large"), price(&case, "m6i.4xlarge"));
    let expected = (pa / (pa + pb)) / (2.0 / (3.0 + on_b as f64));
    (case, expected)
}

#[test]
fn a_move_just_above_the_threshold_is_taken() {
    let (case, expected) = delete_case(7);
    assert!(expected > 0.5 && expected < 0.6, "{expected}");
    let plan = case.plan();
    let cmd = only(&plan);
    assert_eq!(targets(cmd), ["a"]);
    assert!(cmd.detail.contains(&format!("Balanced score {expected:.2} ≥ 0.50")), "{}", cmd.detail);
    let s = plan.scores.iter().find(|s| s.nodes == ["a"]).expect("the move is recorded");
    assert!(s.approved);
    assert!((s.value() - expected).abs() < 1e-9, "{} vs {expected}", s.value());
}

#[test]
fn a_move_just_below_the_threshold_is_not() {
    let (case, expected) = delete_case(5);
    assert!(expected < 0.5 && expected > 0.4, "{expected}");
    let plan = case.plan();
    assert!(plan.commands.is_empty(), "{plan:#?}");
    let s = plan.scores.iter().find(|s| s.nodes == ["a"]).expect("the rejected move is recorded");
    assert!(!s.approved);
    assert!((s.value() - expected).abs() < 1e-9);
    let why = kept(&plan, "a").expect("kept with its score");
    assert!(why.contains(&format!("Balanced score {expected:.2} < 0.50")), "{why}");
}

#[test]
fn a_pools_own_threshold_decides() {
    // The move scoring about 0.44 is taken by a pool asking 0.4, and the one scoring about
    // 0.56 is refused by a pool asking 0.6.
    let (mut case, expected) = delete_case(5);
    case.pool().balanced_threshold = 0.4;
    let plan = case.plan();
    let cmd = only(&plan);
    assert_eq!(targets(cmd), ["a"]);
    assert!(cmd.detail.contains(&format!("Balanced score {expected:.2} ≥ 0.40")), "{}", cmd.detail);
    let (mut case, expected) = delete_case(7);
    case.pool().balanced_threshold = 0.6;
    let plan = case.plan();
    assert!(plan.commands.is_empty(), "{plan:#?}");
    assert!(kept(&plan, "a").unwrap().contains(&format!("Balanced score {expected:.2} < 0.60")));
}

#[test]
fn a_pods_priority_weighs_on_the_move() {
    // As `delete_case(7)`, but the pod on `a` has priority 2^25, so it costs 2: the move's
    // disruption is 3 of a pool total of 11, and the score drops below 0.5.
    let mut case = Case::new();
    case.pool().consolidation = ConsolidationPolicy::Balanced;
    case.node(node("a").of_type("m6i.large"));
    case.node(node("b").of_type("m6i.4xlarge").do_not_disrupt());
    case.node(node("room").unmanaged().of_type("m6i.4xlarge"));
    case.pod("a", pod().cpu("100m")).eviction.priority = Some(1 << 25);
    case.pods("b", 7, pod().cpu("100m"));
    let (pa, pb) = (price(&case, "m6i.large"), price(&case, "m6i.4xlarge"));
    let expected = (pa / (pa + pb)) / (3.0 / 11.0);
    assert!(expected < 0.5, "{expected}");
    let plan = case.plan();
    assert!(plan.commands.is_empty(), "{plan:#?}");
    let s = plan.scores.iter().find(|s| s.nodes == ["a"]).expect("recorded");
    assert!((s.value() - expected).abs() < 1e-9, "{} vs {expected}", s.value());
}

#[test]
fn the_same_move_is_taken_by_a_pool_that_is_not_balanced() {
    let (mut case, _) = delete_case(5);
    case.pool().consolidation = ConsolidationPolicy::WhenEmptyOrUnderutilized;
    let plan = case.plan();
    assert_eq!(targets(only(&plan)), ["a"]);
    assert!(plan.scores.is_empty(), "only Balanced pools are scored");
}

#[test]
fn a_replace_is_scored_on_its_net_savings() {
    // `a`, an m6i.2xlarge with a three-cpu pod and no room elsewhere: replaced by a cheaper
    // node. `b` (m6i.large, do-not-disrupt, one pod) is in the pool's totals.
    let mut case = Case::new();
    case.pool().consolidation = ConsolidationPolicy::Balanced;
    case.node(node("a").of_type("m6i.2xlarge")).node(node("b").of_type("m6i.large").do_not_disrupt());
    case.pod("a", pod().cpu("3"));
    case.pod("b", pod().cpu("1500m"));
    let plan = case.plan();
    let cmd = only(&plan);
    let (pa, pb) = (price(&case, "m6i.2xlarge"), price(&case, "m6i.large"));
    let pr = cmd.replacements[0].plan.price;
    // ((pa − pr) / (pa + pb)) / ((1 + 1) / ((1 + 1) + (1 + 1))).
    let expected = ((pa - pr) / (pa + pb)) / (2.0 / 4.0);
    let s = plan.scores.iter().find(|s| s.nodes == ["a"] && s.approved).expect("recorded");
    assert!((s.value() - expected).abs() < 1e-9, "{} vs {expected}", s.value());
    assert!((s.savings - (pa - pr)).abs() < 1e-9);
}

#[tokio::test]
async fn the_loop_records_the_score_of_the_move_it_takes() {
    use crate::capacity::{Harness, base, deployment, one_per_node, pool};
    // Two c6i.large nodes with a 1.2-cpu pod each; a 0.6-cpu pod joins one; one 1.2-cpu pod
    // goes. The node left with the small pod is deleted: savings 1/2 of the pool's cost,
    // disruption (1 + 1) / ((1 + 1) + (1 + 1)) = 1/2, score 1.
    let balanced = "    consolidationPolicy: Balanced\n    consolidateAfter: 30s";
    let mut h = Harness::new(&base(&[pool("general", &["c6i"], balanced, "")], "  dryRun: false"));
    h.apply(&deployment("a", 2, "1200m", &one_per_node("a"), ""));
    assert!(h.until(600, |w| w.cluster.running("default", "a") == 2).await, "{}", h.timeline());
    h.apply(&deployment("s", 1, "600m", "", ""));
    assert!(h.until(300, |w| w.cluster.running("default", "s") == 1).await, "{}", h.timeline());
    h.scale("a", 1);
    assert!(h.until(900, |w| w.nodes() == 1).await, "{}", h.timeline());
    let decided = h.of("disruption-decision");
    assert_eq!(decided.len(), 1, "{}", h.timeline());
    let scored = &decided[0].detail["balanced"];
    assert_eq!(scored["approved"], true, "{scored}");
    assert!((scored["pools"]["general"]["savingsFraction"].as_f64().unwrap() - 0.5).abs() < 1e-9, "{scored}");
    assert!((scored["pools"]["general"]["disruptionFraction"].as_f64().unwrap() - 0.5).abs() < 1e-9, "{scored}");
    let disrupt = h.lp.status().recent_decisions.iter().find(|d| d.action == "disrupt").expect("a decision");
    let text = disrupt.detail["detail"].as_str().unwrap();
    assert!(text.contains("Balanced score 1.00 ≥ 0.50"), "{text}");
}

#[test]
fn validate_checks_the_threshold_annotation() {
    use crate::common::{NODE_POOL, TempRepo, errors};
    let with = |value: &str, policy: &str| {
        let text = NODE_POOL.replacen(
            "metadata:\n  name: default\n",
            &format!("metadata:\n  name: default\n  annotations:\n    capstan.io/balanced-threshold: \"{value}\"\n"),
            1,
        );
        let text = text.replacen(
            "spec:\n",
            &format!("spec:\n  disruption:\n    consolidationPolicy: {policy}\n    consolidateAfter: 30s\n"),
            1,
        );
        let repo = TempRepo::valid();
        repo.write("base/nodepools/default.yaml", text);
        repo.validate()
    };
    let run = with("0.3", "Balanced");
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let run = with("zero", "Balanced");
    let errs = errors(&run);
    assert!(
        errs.iter().any(|e| e["message"].as_str().unwrap().contains("not a Balanced threshold")
            && e["file"].as_str().unwrap().ends_with("nodepools/default.yaml")),
        "{errs:#?}"
    );
    let run = with("0.3", "WhenEmpty");
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("only for consolidationPolicy: Balanced"), "{}", run.stdout);
}
