//! Cluster documents merge onto base documents of the same kind and name (RFC 7386).

use crate::common::{TempRepo, errors};

fn rendered(repo: &TempRepo) -> serde_yaml::Value {
    let run = repo.render("dev");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc = run.stdout.split("\n---\n").nth(1).unwrap();
    serde_yaml::from_str(doc).unwrap()
}

#[test]
fn an_override_changes_one_field() {
    let repo = TempRepo::valid();
    repo.write(
        "clusters/dev/nodepools/default.yaml",
        "apiVersion: karpenter.sh/v1\nkind: NodePool\nmetadata:\n  name: default\nspec:\n  weight: 7\n",
    );
    let pool = rendered(&repo);
    assert_eq!(pool["spec"]["weight"].as_i64(), Some(7));
    assert_eq!(pool["spec"]["limits"]["cpu"].as_str(), Some("100"), "the rest of the base stays");
}

#[test]
fn null_removes_a_field_and_lists_are_replaced() {
    let repo = TempRepo::valid();
    let patch = "apiVersion: karpenter.sh/v1\nkind: NodePool\nmetadata:\n  name: default\nspec:\n  limits:\n    cpu: null\n    memory: 64Gi\n  template:\n    spec:\n      requirements:\n        - key: kubernetes.io/arch\n          operator: In\n          values: [arm64]\n";
    repo.write("clusters/dev/nodepools/default.yaml", patch);
    let pool = rendered(&repo);
    assert!(pool["spec"]["limits"].get("cpu").is_none());
    assert_eq!(pool["spec"]["limits"]["memory"].as_str(), Some("64Gi"));
    let reqs = pool["spec"]["template"]["spec"]["requirements"].as_sequence().unwrap();
    assert_eq!(reqs.len(), 1);
    assert_eq!(pool["spec"]["template"]["spec"]["nodeClassRef"]["name"].as_str(), Some("default"));
}

#[test]
fn an_error_introduced_by_an_override_points_at_the_override() {
    let repo = TempRepo::valid();
    let patch =
        "apiVersion: karpenter.sh/v1\nkind: NodePool\nmetadata:\n  name: default\nspec:\n  limits:\n    cpu: lots\n";
    repo.write("clusters/dev/nodepools/default.yaml", patch);
    let run = repo.validate();
    crate::common::expect_error(
        &run,
        "clusters/dev/nodepools/default.yaml",
        7,
        10,
        Some("spec.limits.cpu"),
        "invalid quantity `lots`",
    );
    assert_eq!(errors(&run).len(), 1);
}

#[test]
fn a_cluster_only_document_is_an_addition() {
    let repo = TempRepo::valid();
    repo.write(
        "clusters/dev/nodepools/extra.yaml",
        crate::common::NODE_POOL.replace("name: default\nspec", "name: extra\nspec"),
    );
    let run = repo.render("dev");
    assert!(run.stdout.contains("name: extra"));
    assert_eq!(repo.validate().code, 0);
}

#[test]
fn cluster_policy_overrides_merge_by_name() {
    let repo = TempRepo::valid();
    repo.write(
        "base/policy.yaml",
        "apiVersion: capstan.io/v1alpha1\nkind: ClusterPolicy\nmetadata:\n  name: default\nspec:\n  dryRun: true\n",
    );
    repo.write(
        "clusters/dev/policy.yaml",
        "apiVersion: capstan.io/v1alpha1\nkind: ClusterPolicy\nmetadata:\n  name: other\nspec:\n  dryRun: false\n",
    );
    let run = repo.validate();
    assert_eq!(run.code, 1);
    assert!(errors(&run).iter().any(|e| e["message"].as_str().unwrap().contains("a second ClusterPolicy")));
    repo.write(
        "clusters/dev/policy.yaml",
        "apiVersion: capstan.io/v1alpha1\nkind: ClusterPolicy\nmetadata:\n  name: default\nspec:\n  dryRun: false\n",
    );
    assert_eq!(repo.validate().code, 0);
}
