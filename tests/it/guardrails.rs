//! Built-in guardrails and a repository's tightening of them.

use crate::common::{TempRepo, errors};

fn messages(repo: &TempRepo) -> (i32, Vec<String>, Vec<String>) {
    let run = repo.validate();
    let v = run.json();
    let all = v["diagnostics"].as_array().unwrap();
    let pick = |sev: &str| {
        all.iter().filter(|d| d["severity"] == sev).map(|d| d["message"].as_str().unwrap().to_string()).collect()
    };
    (run.code, pick("error"), pick("warning"))
}

const SPOT_POOL: &str = "apiVersion: karpenter.sh/v1
kind: NodePool
metadata:
  name: spot
spec:
  template:
    spec:
      nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}
      requirements:
        - key: karpenter.sh/capacity-type
          operator: In
          values: [spot]
        - key: node.kubernetes.io/instance-type
          operator: In
          values: [m5.large, m5.xlarge, c5.large]
  limits:
    cpu: \"10\"
";

#[test]
fn every_node_pool_needs_limits() {
    let repo = TempRepo::valid();
    repo.write("base/nodepools/default.yaml", crate::common::NODE_POOL.replace("  limits:\n    cpu: \"100\"\n", ""));
    let run = repo.validate();
    let d = crate::common::expect_error(
        &run,
        "base/nodepools/default.yaml",
        5,
        1,
        Some("spec.limits"),
        "guardrail: the NodePool has no limits",
    );
    assert_eq!(d["object"], "NodePool/default");
}

#[test]
fn a_translated_ig_without_max_size_has_no_limits() {
    let repo = TempRepo::valid();
    repo.write(
        "clusters/dev/instancegroups/k.yaml",
        crate::common::karpenter_ig("k", "  image: ami-1\n  subnets: [us-east-1a]\n"),
    );
    let (code, errs, _) = messages(&repo);
    assert_eq!(code, 1);
    assert!(errs.iter().any(|m| m.contains("no limits")), "{errs:?}");
    let e =
        errors(&repo.validate()).into_iter().find(|e| e["message"].as_str().unwrap().contains("no limits")).unwrap();
    assert!(e["file"].as_str().unwrap().ends_with("clusters/dev/instancegroups/k.yaml"), "points at the IG: {e}");
}

#[test]
fn spot_pools_need_enough_instance_types() {
    let repo = TempRepo::valid();
    repo.write("base/nodepools/spot.yaml", SPOT_POOL);
    let (code, errs, _) = messages(&repo);
    assert_eq!(code, 1);
    assert!(errs.iter().any(|m| m.contains("allows 3 instance types; at least 15")), "{errs:?}");
    // The same list on on-demand is fine.
    repo.write("base/nodepools/spot.yaml", SPOT_POOL.replace("values: [spot]", "values: [on-demand]"));
    assert_eq!(messages(&repo).0, 0);
}

#[test]
fn forbidden_families_built_in_and_added_by_the_repository() {
    let repo = TempRepo::valid();
    repo.write(
        "base/nodepools/spot.yaml",
        SPOT_POOL.replace("values: [spot]", "values: [on-demand]").replace("c5.large", "m1.large"),
    );
    let (_, errs, _) = messages(&repo);
    assert!(errs.iter().any(|m| m.contains("instance family `m1` is forbidden")), "{errs:?}");
    repo.write("base/nodepools/spot.yaml", SPOT_POOL.replace("values: [spot]", "values: [on-demand]"));
    assert_eq!(messages(&repo).0, 0);
    repo.write("guardrails.yaml", "apiVersion: capstan.io/v1alpha1\nkind: Guardrails\nmetadata:\n  name: org\nspec:\n  forbiddenInstanceFamilies: [c5]\n");
    let (_, errs, _) = messages(&repo);
    assert!(errs.iter().any(|m| m.contains("instance family `c5` is forbidden")), "{errs:?}");
}

#[test]
fn per_cluster_cpu_ceiling() {
    let repo = TempRepo::valid();
    repo.write("guardrails.yaml", "apiVersion: capstan.io/v1alpha1\nkind: Guardrails\nmetadata:\n  name: org\nspec:\n  clusterCpu:\n    dev: \"50\"\n");
    let (code, errs, _) = messages(&repo);
    assert_eq!(code, 1);
    assert!(errs.iter().any(|m| m.contains("can reach 100 cpu; the ceiling for cluster `dev` is 50")), "{errs:?}");
    repo.write("base/policy.yaml", "apiVersion: capstan.io/v1alpha1\nkind: ClusterPolicy\nmetadata:\n  name: default\nspec:\n  limits:\n    cpu: \"40\"\n");
    assert_eq!(messages(&repo).0, 0, "a ClusterPolicy limit under the ceiling satisfies it");
}

#[test]
fn a_repository_cannot_loosen_built_in_rules() {
    let repo = TempRepo::valid();
    repo.write("guardrails.yaml", "apiVersion: capstan.io/v1alpha1\nkind: Guardrails\nmetadata:\n  name: org\nspec:\n  requireNodePoolLimits: false\n  minSpotInstanceTypes: 2\n");
    repo.write("base/nodepools/spot.yaml", SPOT_POOL);
    let (code, errs, warnings) = messages(&repo);
    assert_eq!(code, 1, "the built-in minimum of 15 still applies");
    assert!(errs.iter().any(|m| m.contains("at least 15")), "{errs:?}");
    assert_eq!(warnings.iter().filter(|w| w.contains("cannot loosen")).count(), 2, "{warnings:?}");
}

#[test]
fn a_repository_can_tighten_the_spot_minimum() {
    let repo = TempRepo::valid();
    let many: Vec<String> = ["m5", "m6i", "c5", "c6i", "r5", "r6i"]
        .iter()
        .flat_map(|f| ["large", "xlarge", "2xlarge"].map(|s| format!("{f}.{s}")))
        .collect();
    repo.write(
        "base/nodepools/spot.yaml",
        SPOT_POOL.replace("[m5.large, m5.xlarge, c5.large]", &format!("[{}]", many.join(", "))),
    );
    assert_eq!(messages(&repo).0, 0, "18 types satisfy the built-in 15");
    repo.write("guardrails.yaml", "apiVersion: capstan.io/v1alpha1\nkind: Guardrails\nmetadata:\n  name: org\nspec:\n  minSpotInstanceTypes: 20\n");
    let (_, errs, _) = messages(&repo);
    assert!(errs.iter().any(|m| m.contains("allows 18 instance types; at least 20")), "{errs:?}");
}
