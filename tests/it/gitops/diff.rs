//! `capstan diff` between two revisions of a real Git history, and `capstan audit` across a
//! revision that does not load.

use super::{Repos, git};
use crate::common::{CLUSTER_SPEC, FLEET, NODE_CLASS, NODE_POOL, capstan, karpenter_ig};

/// Repos with a second cluster, `prod`, committed.
fn two_clusters() -> Repos {
    let repos = Repos::new();
    let prod = "    - name: prod\n      kopsName: prod.example.com\n      stateStore: file:///tmp/capstan-test-store\n      region: us-east-1\n      wave: 0\n  waves:";
    repos.write("fleet.yaml", &FLEET.replacen("  waves:", prod, 1));
    repos.write("clusters/prod/cluster.yaml", &CLUSTER_SPEC.replace("dev.example.com", "prod.example.com"));
    repos.commit("Add prod");
    repos
}

fn diff(repos: &Repos, extra: &[&str]) -> crate::common::Run {
    let work = repos.work();
    let mut args = vec!["diff", work.to_str().unwrap()];
    args.extend(extra);
    capstan(&args)
}

#[test]
fn an_override_changes_only_its_cluster() {
    let repos = two_clusters();
    repos.write(
        "clusters/prod/nodepools/default.yaml",
        "apiVersion: karpenter.sh/v1\nkind: NodePool\nmetadata:\n  name: default\nspec:\n  limits:\n    cpu: \"50\"\n",
    );
    repos.commit("Tighter prod");
    let run = diff(&repos, &["--base", "HEAD~1"]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    let out = &run.stdout;
    assert!(out.contains("cluster prod\n  NodePool/default spec.limits.cpu: 100 → 50"), "{out}");
    assert!(out.contains("NodePool/default spec.limits.cpu: limit tightens"), "{out}");
    assert!(!out.contains("cluster dev"), "dev is untouched:\n{out}");
    assert!(!out.contains("drift"), "a limit is not part of the template:\n{out}");

    let one = diff(&repos, &["--base", "HEAD~1", "--cluster", "dev"]);
    assert_eq!(one.code, 0, "{}{}", one.stdout, one.stderr);
    assert!(one.stdout.contains("no change"), "{}", one.stdout);
}

#[test]
fn a_translated_instance_group_change_shows_in_its_nodepool() {
    let repos = Repos::new();
    let ig = karpenter_ig("gpu", "  image: ami-0123456789abcdef0\n  maxSize: 4\n  subnets: [us-east-1a]\n");
    repos.write("clusters/dev/instancegroups/gpu.yaml", &ig);
    let base = repos.commit("Add a GPU instance group");
    repos.write("clusters/dev/instancegroups/gpu.yaml", &ig.replace("maxSize: 4", "maxSize: 2"));
    repos.commit("Fewer GPU nodes");
    let run = diff(&repos, &["--base", &base, "--format", "json"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let json = run.json();
    assert_eq!(json["base"]["sha"], base.as_str());
    assert_eq!(json["head"]["rev"], "HEAD");
    let dev = &json["clusters"][0];
    assert_eq!(dev["cluster"], "dev");
    let objects: Vec<&str> = dev["objects"].as_array().unwrap().iter().map(|o| o["object"].as_str().unwrap()).collect();
    assert_eq!(objects, ["InstanceGroup/gpu", "NodePool/gpu"], "{json}");
    let consequences = dev["consequences"].to_string();
    assert!(consequences.contains("NodePool/gpu spec.limits.nodes: limit tightens"), "{json}");
}

#[test]
fn a_cluster_policy_change_is_listed() {
    let repos = Repos::new();
    repos.write(
        "base/policy.yaml",
        "apiVersion: capstan.io/v1alpha1\nkind: ClusterPolicy\nmetadata:\n  name: default\nspec:\n  dryRun: true\n",
    );
    repos.commit("Dry run");
    repos.write(
        "base/policy.yaml",
        "apiVersion: capstan.io/v1alpha1\nkind: ClusterPolicy\nmetadata:\n  name: default\nspec:\n  dryRun: false\n",
    );
    repos.commit("Act");
    let run = diff(&repos, &["--base", "main~1", "--head", "main"]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("ClusterPolicy/default spec.dryRun: true → false"), "{}", run.stdout);
}

#[test]
fn a_template_change_drifts_the_nodes_and_markdown_has_the_marker_and_a_table() {
    let repos = Repos::new();
    let base = git(&repos.work(), &["rev-parse", "HEAD"]);
    repos.write("base/nodepools/default.yaml", &NODE_POOL.replace("values: [on-demand]", "values: [on-demand, spot]"));
    repos.write(
        "base/nodeclasses/default.yaml",
        &NODE_CLASS.replace("team: a\n  securityGroup", "team: b\n  securityGroup"),
    );
    repos.commit("Spot and another subnet");
    let run = diff(&repos, &["--base", &base[..10]]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    let out = &run.stdout;
    assert!(out.contains("→ nodes of NodePool/default will drift and be replaced"), "{out}");
    assert!(out.contains("NodePool/default requirement karpenter.sh/capacity-type In: +spot"), "{out}");
    assert!(out.contains("EC2NodeClass/default"), "{out}");

    let md = diff(&repos, &["--base", "HEAD~1", "--format", "markdown"]).stdout;
    assert!(md.starts_with("<!-- capstan-diff -->\n"), "{md}");
    assert!(md.contains("#### cluster `dev`"), "{md}");
    assert!(md.contains("| object | change | field | base → head |\n|---|---|---|---|\n"), "{md}");
    assert!(md.contains("| `NodePool/default` | changed | `spec.template.spec.requirements` |"), "{md}");
    assert!(md.contains("- nodes of NodePool/default will drift and be replaced"), "{md}");
}

#[test]
fn no_change_exits_zero() {
    let repos = Repos::new();
    repos.write("README.md", "not policy\n");
    repos.commit("Docs only");
    let run = diff(&repos, &["--base", "HEAD~1"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("no change to any cluster's effective policy"), "{}", run.stdout);
    let md = diff(&repos, &["--base", "HEAD~1", "--format", "markdown"]);
    assert_eq!(md.code, 0);
    assert!(md.stdout.starts_with("<!-- capstan-diff -->"), "{}", md.stdout);
}

#[test]
fn a_revision_that_does_not_load_is_named_with_its_error() {
    let repos = Repos::new();
    repos.set_cpu_limit("200");
    repos.commit("Raise the cpu limit");
    repos.write(
        "base/nodepools/default.yaml",
        "apiVersion: karpenter.sh/v1\nkind: NodePool\nmetadata:\n  name: default\nspec: [\n",
    );
    let broken = repos.commit("Break the NodePool");
    let run = diff(&repos, &["--base", "HEAD~1"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("did not load: base/nodepools/default.yaml:"), "{}", run.stdout);

    repos.set_cpu_limit("300");
    repos.commit("Fix the NodePool");
    let across = diff(&repos, &["--base", "HEAD~1"]);
    assert_eq!(across.code, 2, "a head that loads over a broken base: {}{}", across.stdout, across.stderr);
    assert!(across.stdout.contains("base HEAD~1"), "{}", across.stdout);

    let audit = capstan(&["audit", repos.work().to_str().unwrap(), "--cluster", "dev"]);
    assert_eq!(audit.code, 0, "{}", audit.stderr);
    let out = &audit.stdout;
    let at = out.find(&broken[..12]).unwrap_or_else(|| panic!("the broken commit is listed:\n{out}"));
    let entry: String = out[at..].lines().take(3).collect::<Vec<_>>().join("\n");
    assert!(entry.contains("did not load: base/nodepools/default.yaml:"), "{entry}");
    assert!(!out.contains("deleted") && !out.contains("NodePool/default created\n    NodePool"), "{out}");
    assert!(
        out.contains("NodePool/default spec.limits.cpu: 200 → 300"),
        "the fix is compared with the last revision that loaded:\n{out}"
    );
    assert_eq!(out.matches("NodePool/default created").count(), 1, "only the initial commit creates it:\n{out}");
}

#[test]
fn usage_errors_exit_three() {
    let repos = Repos::new();
    let missing = capstan(&["diff", repos.work().to_str().unwrap()]);
    assert_eq!(missing.code, 3, "--base is required: {}", missing.stderr);
    let bad = diff(&repos, &["--base", "no-such-branch"]);
    assert_eq!(bad.code, 3, "{}", bad.stderr);
    assert!(bad.stderr.contains("no-such-branch"), "{}", bad.stderr);
    let unknown = diff(&repos, &["--base", "HEAD", "--cluster", "nope"]);
    assert_eq!(unknown.code, 3, "{}", unknown.stderr);
    let format = diff(&repos, &["--base", "HEAD", "--format", "xml"]);
    assert_eq!(format.code, 3, "{}", format.stderr);
}
