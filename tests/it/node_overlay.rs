//! NodeOverlays and Commitments: what `validate` accepts and refuses (at `file:line:column`),
//! what `render` shows, and how their prices change the plan the scheduler makes.

use capstan::policy::{self, EffectivePolicy};
use capstan::rules::Rules;
use capstan::scheduling::builtin;
use capstan::scheduling::catalog::CapacityType;
use capstan::scheduling::overlay::{Usage, priced, settle};
use capstan::scheduling::pod::pod;
use capstan::scheduling::{Input, Strategy, solve};

use crate::common::{TempRepo, at, errors, expect_error};

/// An overlay named `name` whose `spec` lines are given (indented by two spaces).
fn overlay(name: &str, spec: &str) -> String {
    format!("apiVersion: karpenter.sh/v1alpha1\nkind: NodeOverlay\nmetadata:\n  name: {name}\nspec:\n{spec}")
}

const M5: &str =
    "  requirements:\n    - key: karpenter.k8s.aws/instance-family\n      operator: In\n      values: [m5]\n";

fn commitment(name: &str, spec: &str) -> String {
    format!("apiVersion: capstan.io/v1alpha1\nkind: Commitment\nmetadata:\n  name: {name}\nspec:\n{spec}")
}

#[test]
fn a_valid_overlay_and_commitment_are_accepted_and_rendered() {
    let repo = TempRepo::valid();
    repo.write(
        "base/nodeoverlays/m5.yaml",
        overlay("m5-discount", &format!("{M5}  priceAdjustment: \"-28%\"\n  weight: 10\n")),
    );
    repo.write(
        "commitments/ri.yaml",
        commitment(
            "ri-m5",
            "  type: ReservedInstances\n  region: us-east-1\n  instanceType: m5.large\n  count: 2\n  price: \"0.06\"\n",
        ),
    );
    let run = repo.validate();
    assert_eq!(run.code, 0, "{}", run.stdout);
    let out = repo.render("dev");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("kind: NodeOverlay") && out.stdout.contains("priceAdjustment: -28%"), "{}", out.stdout);
    assert!(out.stdout.contains("# commitment: ri-m5 in us-east-1"), "{}", out.stdout);
    assert!(out.stdout.contains("this cluster's share: 2 instance(s)"), "{}", out.stdout);
}

#[test]
fn a_cluster_override_changes_one_field_of_a_base_overlay() {
    let repo = TempRepo::valid();
    repo.write("base/nodeoverlays/m5.yaml", overlay("m5", &format!("{M5}  priceAdjustment: \"-28%\"\n")));
    repo.write("clusters/dev/nodeoverlays/m5.yaml", overlay("m5", "  priceAdjustment: \"-10%\"\n"));
    let out = repo.render("dev");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("priceAdjustment: -10%") && out.stdout.contains("- m5"), "{}", out.stdout);
}

#[test]
fn prices_that_do_not_match_the_crd_pattern_are_refused_at_their_field() {
    let repo = TempRepo::valid();
    let text = overlay("bad", &format!("{M5}  price: \"-1\"\n"));
    repo.write("base/nodeoverlays/bad.yaml", &text);
    let (line, column) = at(&text, "\"-1\"");
    expect_error(&repo.validate(), "base/nodeoverlays/bad.yaml", line, column, Some("spec.price"), "does not match");
    let text = overlay("bad", &format!("{M5}  priceAdjustment: \"-120%\"\n"));
    repo.write("base/nodeoverlays/bad.yaml", &text);
    let (line, column) = at(&text, "\"-120%\"");
    let run = repo.validate();
    expect_error(&run, "base/nodeoverlays/bad.yaml", line, column, Some("spec.priceAdjustment"), "not a price change");
}

#[test]
fn price_and_price_adjustment_are_exclusive() {
    let repo = TempRepo::valid();
    let text = overlay("both", &format!("{M5}  price: \"0.05\"\n  priceAdjustment: \"-10%\"\n"));
    repo.write("clusters/dev/nodeoverlays/both.yaml", &text);
    let (line, column) = at(&text, "\"-10%\"");
    let file = "clusters/dev/nodeoverlays/both.yaml";
    expect_error(&repo.validate(), file, line, column, Some("spec.priceAdjustment"), "cannot set both");
}

#[test]
fn weight_capacity_and_requirement_limits_are_enforced() {
    let repo = TempRepo::valid();
    let text = overlay("w", &format!("{M5}  price: \"0.05\"\n  weight: 10001\n"));
    repo.write("base/nodeoverlays/w.yaml", &text);
    let (line, column) = at(&text, "10001");
    expect_error(&repo.validate(), "base/nodeoverlays/w.yaml", line, column, Some("spec.weight"), "out of range");

    let text = overlay("w", &format!("{M5}  price: \"0.05\"\n  capacity:\n    cpu: \"2\"\n"));
    repo.write("base/nodeoverlays/w.yaml", &text);
    let (line, column) = at(&text, "\"2\"");
    let run = repo.validate();
    expect_error(&run, "base/nodeoverlays/w.yaml", line, column, Some("spec.capacity.cpu"), "extended resources only");

    let many: String =
        (0..101).map(|i| format!("    - key: example.com/k{i}\n      operator: Exists\n")).collect::<Vec<_>>().concat();
    let text = overlay("w", &format!("  requirements:\n{many}  price: \"0.05\"\n"));
    repo.write("base/nodeoverlays/w.yaml", &text);
    let (line, column) = at(&text, "requirements");
    let run = repo.validate();
    expect_error(&run, "base/nodeoverlays/w.yaml", line, column, Some("spec.requirements"), "at most 100");
}

#[test]
fn unknown_fields_and_misplaced_overlays_are_errors() {
    let repo = TempRepo::valid();
    let text = overlay("u", &format!("{M5}  prices: \"0.05\"\n"));
    repo.write("base/nodeoverlays/u.yaml", &text);
    let (line, column) = at(&text, "prices");
    expect_error(&repo.validate(), "base/nodeoverlays/u.yaml", line, column, Some("spec.prices"), "unknown field");
    repo.remove("base/nodeoverlays/u.yaml");
    repo.write("base/nodepools/o.yaml", overlay("o", &format!("{M5}  price: \"0.05\"\n")));
    let run = repo.validate();
    expect_error(&run, "base/nodepools/o.yaml", 2, 7, Some("kind"), "does not belong in this file");
}

#[test]
fn overlays_of_one_weight_that_overlap_with_different_effects_name_each_other() {
    let repo = TempRepo::valid();
    let a = overlay("a", &format!("{M5}  priceAdjustment: \"-10%\"\n  weight: 5\n"));
    let b = overlay(
        "b",
        "  requirements:\n    - key: karpenter.sh/capacity-type\n      operator: In\n      values: [on-demand]\n  priceAdjustment: \"-20%\"\n  weight: 5\n",
    );
    repo.write("base/nodeoverlays/a.yaml", &a);
    repo.write("base/nodeoverlays/b.yaml", &b);
    let (line, column) = at(&b, "5\n");
    let run = repo.validate();
    let d = expect_error(&run, "base/nodeoverlays/b.yaml", line, column, Some("spec.weight"), "both have weight 5");
    let message = d["message"].as_str().unwrap();
    assert!(message.contains("NodeOverlay/a") && message.contains("a.yaml:4:9"), "{message}");
    // Disjoint requirements, another weight, or the same effect: no conflict.
    repo.write("base/nodeoverlays/b.yaml", b.replace("weight: 5", "weight: 6"));
    assert_eq!(repo.validate().code, 0);
    repo.write(
        "base/nodeoverlays/b.yaml",
        b.replace("[on-demand]", "[spot]").replace("karpenter.sh/capacity-type", "karpenter.k8s.aws/instance-family"),
    );
    assert_eq!(repo.validate().code, 0);
    repo.write("base/nodeoverlays/b.yaml", b.replace("-20%", "-10%"));
    assert_eq!(repo.validate().code, 0);
    let fuse = |n: u32| format!("  capacity:\n    example.com/fuse: \"{n}\"\n");
    repo.write("base/nodeoverlays/b.yaml", b.replace("  priceAdjustment: \"-20%\"\n", &fuse(1)));
    assert_eq!(repo.validate().code, 0, "a capacity-only overlay does not contradict a price");
    repo.write("base/nodeoverlays/a.yaml", a.replace("  priceAdjustment: \"-10%\"\n", &fuse(2)));
    assert_eq!(repo.validate().code, 1, "two amounts of one resource do");
}

#[test]
fn commitments_are_checked_against_their_type_and_the_fleet() {
    let repo = TempRepo::valid();
    let text = commitment(
        "ri",
        "  type: ReservedInstances\n  region: us-east-1\n  count: 2\n  discount: \"-40%\"\n  shares:\n    prod: 2\n",
    );
    repo.write("commitments/ri.yaml", &text);
    let run = repo.validate();
    let all = errors(&run);
    assert!(all.iter().any(|e| e["message"].as_str().unwrap().contains("need instanceType")), "{all:#?}");
    let (line, column) = at(&text, "prod: 2");
    expect_error(&run, "commitments/ri.yaml", line, column + 6, Some("spec.shares.prod"), "not a cluster of the fleet");

    let text = commitment(
        "sp",
        "  type: SavingsPlan\n  region: us-east-1\n  hourlyCommitment: \"1.5\"\n  discount: \"28%\"\n  shares:\n    dev: 2\n",
    );
    repo.write("commitments/ri.yaml", &text);
    let run = repo.validate();
    let (line, column) = at(&text, "\"28%\"");
    expect_error(&run, "commitments/ri.yaml", line, column, Some("spec.discount"), "not a decrease");
    let (line, column) = at(&text, "dev: 2");
    expect_error(&run, "commitments/ri.yaml", line - 1, column - 2, Some("spec.shares"), "more than the 1.5 bought");

    repo.remove("commitments/ri.yaml");
    let run = repo.validate();
    assert_eq!(run.code, 0, "{}", run.stdout);
    repo.write("base/nodepools/sp.yaml", &text);
    let d = expect_error(&repo.validate(), "base/nodepools/sp.yaml", 2, 7, Some("kind"), "does not belong");
    assert!(d["hint"].as_str().unwrap().contains("commitments/ at the repository root"), "{d}");
}

#[test]
fn overlays_on_labels_capstan_does_not_price_by_are_not_applied() {
    let by_pool = "  requirements:\n    - key: karpenter.sh/nodepool\n      operator: In\n      values: [default]\n  price: \"0.001\"\n";
    let repo = TempRepo::valid();
    let text = overlay("pool", by_pool);
    repo.write("base/nodeoverlays/pool.yaml", &text);
    let run = repo.validate();
    assert_eq!(run.code, 0, "a warning, not an error: {}", run.stdout);
    assert!(run.stdout.contains("this overlay is not applied"), "{}", run.stdout);
    assert_eq!(launches(&policy(&[("base/nodeoverlays/pool.yaml", text)]), 1), ["c5.large"]);
    let reserved = overlay("r", &by_pool.replace("karpenter.sh/nodepool", "karpenter.sh/anything"));
    repo.write("base/nodeoverlays/pool.yaml", &reserved);
    let (line, column) = at(&reserved, "karpenter.sh/anything");
    let run = repo.validate();
    expect_error(&run, "base/nodeoverlays/pool.yaml", line, column, Some("spec.requirements[0].key"), "not allowed");
}

/// The policy of cluster `test` in a fleet of `test` and `other` (both in us-east-1): one NodePool
/// of m5.large and c5.large, on-demand, plus `files`.
fn policy(files: &[(&str, String)]) -> EffectivePolicy {
    let fleet = "apiVersion: capstan.io/v1alpha1\nkind: Fleet\nmetadata: {name: t}\nspec:\n  clusters:\n    - {name: test, kopsName: test.example.com, stateStore: \"file:///state\", region: us-east-1}\n    - {name: other, kopsName: other.example.com, stateStore: \"file:///state\", region: us-east-1}\n";
    let pool = "apiVersion: karpenter.sh/v1\nkind: NodePool\nmetadata: {name: default}\nspec:\n  template:\n    spec:\n      nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}\n      requirements:\n        - {key: node.kubernetes.io/instance-type, operator: In, values: [m5.large, c5.large]}\n        - {key: karpenter.sh/capacity-type, operator: In, values: [on-demand]}\n  limits: {cpu: \"100\"}\n";
    let mut snap = policy::Snapshot::default();
    snap.insert("fleet.yaml", fleet.as_bytes().to_vec());
    snap.insert("base/nodepools/default.yaml", pool.as_bytes().to_vec());
    snap.insert("base/nodeclasses/default.yaml", crate::capacity::CLASS.as_bytes().to_vec());
    for (path, text) in files {
        snap.insert(*path, text.as_bytes().to_vec());
    }
    let v = policy::validate(&snap, Some("test")).expect("validates");
    assert!(!v.diagnostics.has_errors(), "{:?}", v.diagnostics.sorted());
    v.policies.into_iter().next().unwrap()
}

/// The instance types of the nodes launched for `pods` one-node pods, one solve each, each
/// priced after the on-demand nodes launched before it.
fn launches(policy: &EffectivePolicy, pods: usize) -> Vec<String> {
    let rules = Rules::from_policy(policy, "main@sha1:test".into());
    let published = builtin::catalog();
    let mut usage = Usage::default();
    let mut out = Vec::new();
    for i in 0..pods {
        let catalog = priced(&published, &rules.pricing, &usage);
        let input = Input {
            pods: vec![pod().name(&format!("p{i}")).cpu("1500m").memory("1Gi").build()],
            nodes: Vec::new(),
            daemonsets: Vec::new(),
            pools: rules.pools.clone(),
            catalog: &catalog,
            cluster_limits: rules.cluster.limits.clone(),
            strategy: Strategy::CostOptimal,
        };
        let plan = solve(&input);
        let claim = &plan.claims[0];
        if claim.capacity_type == CapacityType::OnDemand {
            usage.add(&claim.instance_type);
        }
        out.push(claim.instance_type.clone());
    }
    out
}

#[test]
fn a_discount_on_a_family_makes_the_packer_choose_it() {
    assert_eq!(launches(&policy(&[]), 1), ["c5.large"], "on-demand prices pick c5.large");
    let half = overlay("m5", &format!("{M5}  priceAdjustment: \"-50%\"\n"));
    assert_eq!(launches(&policy(&[("base/nodeoverlays/m5.yaml", half)]), 1), ["m5.large"]);
}

#[test]
fn the_heavier_overlay_wins() {
    let cheap = |w: u32| overlay("cheap", &format!("{M5}  price: \"0.01\"\n  weight: {w}\n"));
    let dear = |w: u32| overlay("dear", &format!("{M5}  price: \"0.5\"\n  weight: {w}\n"));
    let files =
        |c: u32, d: u32| vec![("base/nodeoverlays/cheap.yaml", cheap(c)), ("base/nodeoverlays/dear.yaml", dear(d))];
    assert_eq!(launches(&policy(&files(100, 10)), 1), ["m5.large"]);
    assert_eq!(launches(&policy(&files(10, 100)), 1), ["c5.large"]);
}

const RI: &str =
    "  type: ReservedInstances\n  region: us-east-1\n  instanceType: m5.large\n  count: 2\n  price: \"0.05\"\n";

#[test]
fn reserved_instances_serve_the_first_nodes_then_on_demand_prices_rule() {
    let shares = format!("{RI}  shares:\n    test: 2\n");
    let p = policy(&[("commitments/ri.yaml", commitment("ri", &shares))]);
    assert_eq!(launches(&p, 3), ["m5.large", "m5.large", "c5.large"]);
    // Without shares the two clusters of the region split it evenly.
    let p = policy(&[("commitments/ri.yaml", commitment("ri", RI))]);
    assert_eq!(launches(&p, 2), ["m5.large", "c5.large"]);
}

#[test]
fn a_commitment_another_cluster_uses_leaves_on_demand_prices() {
    let shares = format!("{RI}  shares:\n    other: 2\n");
    let p = policy(&[("commitments/ri.yaml", commitment("ri", &shares))]);
    assert_eq!(launches(&p, 2), ["c5.large", "c5.large"]);
    let eu = RI.replace("us-east-1", "eu-west-1");
    let p = policy(&[("commitments/ri.yaml", commitment("ri", &eu))]);
    assert_eq!(launches(&p, 1), ["c5.large"], "a commitment in another region covers nothing here");
}

#[test]
fn a_savings_plan_covers_its_family_up_to_the_hourly_commitment() {
    let sp = "  type: SavingsPlan\n  region: us-east-1\n  instanceFamily: m5\n  hourlyCommitment: \"0.2\"\n  discount: \"-30%\"\n  shares:\n    test: 0.14\n";
    let p = policy(&[("commitments/sp.yaml", commitment("sp", sp))]);
    // m5.large at 70 %: 0.0672 $/h, so 0.14 $/h covers two and a bit; the third is mostly on-demand.
    assert_eq!(launches(&p, 3), ["m5.large", "m5.large", "c5.large"]);
}

/// The capacity loop on the simulated world with one pool of m5 and c5 and `files` added.
fn harness(files: &[(&str, String)]) -> crate::capacity::Harness {
    crate::capacity::Harness::new(&loop_policy(&["m5", "c5"], files))
}

/// The policy [`harness`] runs: one pool of `families`, on-demand, plus `files`.
fn loop_policy(families: &[&str], files: &[(&str, String)]) -> EffectivePolicy {
    use crate::capacity::{CLASS, cluster_policy, pool};
    let mut all = vec![
        ("base/nodeclasses/default.yaml", CLASS.to_string()),
        (
            "base/nodepools/default.yaml",
            pool("default", families, "    consolidationPolicy: WhenEmpty\n    consolidateAfter: 30s", ""),
        ),
        ("base/policy.yaml", cluster_policy("  dryRun: false")),
    ];
    all.extend(files.iter().cloned());
    crate::capacity::policy(&all)
}

#[tokio::test]
async fn the_loop_decides_and_records_at_the_overlay_price() {
    let half = overlay("m5", &format!("{M5}  priceAdjustment: \"-50%\"\n"));
    let mut h = harness(&[("base/nodeoverlays/m5.yaml", half)]);
    h.apply(&crate::capacity::deployment("web", 1, "1500m", "", ""));
    assert!(h.until(300, |w| w.cluster.running("default", "web") == 1).await, "{}", h.timeline());
    let d = h.of("scale-up-decision")[0];
    let claim = &d.detail["claims"][0];
    assert_eq!(claim["instanceType"], "m5.large", "{}", h.timeline());
    let price = claim["pricePerHour"].as_f64().unwrap();
    assert!((price - 0.048).abs() < 1e-9, "the decision carries the effective price: {price}");
}

#[tokio::test]
async fn the_loop_counts_its_own_instances_against_its_share() {
    let ri = commitment("ri", RI);
    let mut h = harness(&[("commitments/ri.yaml", ri)]);
    h.apply(&crate::capacity::deployment("web", 0, "1500m", &crate::capacity::one_per_node("web"), ""));
    for n in 1..=3 {
        h.scale("web", n);
        assert!(h.until(300, |w| w.cluster.running("default", "web") == n as usize).await, "{}", h.timeline());
    }
    let mut types = h.live_types();
    types.sort();
    assert_eq!(types, ["c5.large", "m5.large", "m5.large"], "{}", h.timeline());
}

#[test]
fn settling_a_batch_spends_the_share_once() {
    let shares = format!("{RI}  shares:\n    test: 2\n");
    let p = policy(&[("commitments/ri.yaml", commitment("ri", &shares))]);
    let rules = Rules::from_policy(&p, "main@sha1:test".into());
    let published = builtin::catalog();
    let catalog = priced(&published, &rules.pricing, &Usage::default());
    let pods = (0..3).map(|i| pod().name(&format!("p{i}")).cpu("1500m").memory("1Gi").build()).collect();
    let input = Input {
        pods,
        nodes: Vec::new(),
        daemonsets: Vec::new(),
        pools: rules.pools.clone(),
        catalog: &catalog,
        cluster_limits: rules.cluster.limits.clone(),
        strategy: Strategy::CostOptimal,
    };
    let mut plan = solve(&input);
    let types = |plan: &capstan::scheduling::Plan| {
        let mut t: Vec<String> = plan.claims.iter().map(|c| c.instance_type.clone()).collect();
        t.sort();
        t
    };
    assert_eq!(types(&plan), ["m5.large"; 3], "one solve prices every node as the next one");
    settle(&mut plan, &published, &rules.pricing, &Usage::default());
    assert_eq!(types(&plan), ["c5.large", "m5.large", "m5.large"]);
    let cost = plan.cost_per_hour();
    assert!((cost - (0.05 * 2.0 + 0.085)).abs() < 1e-9, "{cost}");
}

#[tokio::test]
async fn running_nodes_are_shown_at_what_they_cost_once_a_commitment_lands() {
    let mut h = crate::capacity::Harness::new(&loop_policy(&["m5"], &[]));
    h.apply(&crate::capacity::deployment("web", 2, "1500m", &crate::capacity::one_per_node("web"), ""));
    assert!(h.until(300, |w| w.cluster.running("default", "web") == 2).await, "{}", h.timeline());
    let prices = |h: &crate::capacity::Harness| {
        let mut p: Vec<f64> = h.lp.status().seen.instances.iter().map(|i| i.price).collect();
        p.sort_by(f64::total_cmp);
        p
    };
    assert_eq!(prices(&h), [0.096, 0.096], "{}", h.timeline());
    let one = RI.replace("count: 2", "count: 1");
    let with_ri = loop_policy(&["m5"], &[("commitments/ri.yaml", commitment("ri", &one))]);
    h.lp.set_rules(crate::capacity::rules(&with_ri, "main@sha1:0000000000000000000000000000000000000002"));
    h.until(2, |_| false).await;
    assert_eq!(prices(&h), [0.05, 0.096], "the older node uses the one reserved instance");
}
