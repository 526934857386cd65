//! `capstan audit` on a history that changes limits, requirements and an InstanceGroup.

use super::{Repos, git};
use crate::common::{NODE_POOL, capstan, karpenter_ig};

#[test]
fn audit_lists_the_commits_and_field_changes_that_shaped_a_cluster() {
    let repos = Repos::new();
    repos.set_cpu_limit("200");
    let raised = repos.commit("Raise the cpu limit");
    repos.write(
        "base/nodepools/default.yaml",
        &NODE_POOL.replace("cpu: \"100\"", "cpu: \"200\"").replace("values: [on-demand]", "values: [on-demand, spot]"),
    );
    repos.commit("Allow spot");
    let ig = karpenter_ig("gpu", "  image: ami-0123456789abcdef0\n  maxSize: 4\n  subnets: [us-east-1a]\n");
    repos.write("clusters/dev/instancegroups/gpu.yaml", &ig);
    repos.commit("Add a GPU instance group");
    repos.write("clusters/dev/instancegroups/gpu.yaml", &ig.replace("maxSize: 4", "maxSize: 8"));
    repos.commit("More GPU nodes");
    repos.write("README.md", "not policy\n");
    repos.commit("Docs only");

    let work = repos.work();
    let run = capstan(&["audit", work.to_str().unwrap(), "--cluster", "dev"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = run.stdout;
    for expected in [
        "NodePool/default spec.limits.cpu: 100 → 200",
        "NodePool/default spec.template.spec.requirements: [{\"key\":\"karpenter.sh/capacity-type\",\"operator\":\"In\",\"values\":[\"on-demand\"]}] → [{\"key\":\"karpenter.sh/capacity-type\",\"operator\":\"In\",\"values\":[\"on-demand\",\"spot\"]}]",
        "InstanceGroup/gpu created",
        "NodePool/gpu created",
        "InstanceGroup/gpu spec.maxSize: 4 → 8",
        "NodePool/gpu spec.limits.nodes: 4 → 8",
        "Alice Admin <alice@example.com>",
    ] {
        assert!(out.contains(expected), "missing `{expected}` in:\n{out}");
    }
    assert!(!out.contains("Docs only"), "a commit that changes no policy is not listed:\n{out}");
    let order: Vec<usize> =
        ["More GPU nodes", "Add a GPU instance group", "Allow spot", "Raise the cpu limit", "Initial policy"]
            .iter()
            .map(|s| out.find(s).unwrap_or_else(|| panic!("{s} in\n{out}")))
            .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "newest first:\n{out}");

    let json = capstan(&[
        "audit",
        work.to_str().unwrap(),
        "--cluster",
        "dev",
        "--object",
        "InstanceGroup/gpu",
        "--format",
        "json",
    ])
    .json();
    let entries = json.as_array().unwrap();
    assert_eq!(entries.len(), 2, "{json}");
    assert_eq!(entries[0]["clusters"][0]["objects"][0]["fields"][0]["path"], "spec.maxSize");
    assert_eq!(entries[0]["sha"], git(&work, &["rev-parse", "HEAD~1"]));

    // Decisions recorded in the state store join the commit whose revision caused them.
    let store = tempfile::tempdir().unwrap();
    let decisions = store.path().join("dev.example.com/capstan/decisions");
    std::fs::create_dir_all(&decisions).unwrap();
    let line = format!(
        "{{\"time\":\"2026-11-24T10:00:00Z\",\"action\":\"launch\",\"reason\":\"provisioning\",\"object\":\"NodeClaim/default-x\",\"revision\":\"main@sha1:{raised}\",\"instanceType\":\"m6i.large\"}}\n"
    );
    std::fs::create_dir_all(decisions.join("2026-11-24")).unwrap();
    std::fs::write(decisions.join("2026-11-24/100000.000000-0.jsonl"), format!("{line}not json\n")).unwrap();
    let url = format!("file://{}", store.path().display());
    let joined =
        capstan(&["audit", work.to_str().unwrap(), "--cluster", "dev", "--state-store", &url, "--format", "json"]);
    assert_eq!(joined.code, 0, "{}", joined.stderr);
    let entries = joined.json();
    let with: Vec<&serde_json::Value> =
        entries.as_array().unwrap().iter().filter(|e| e.get("decisions").is_some()).collect();
    assert_eq!(with.len(), 1, "{entries}");
    assert_eq!(with[0]["sha"], raised.as_str());
    assert_eq!(with[0]["decisions"][0]["action"], "launch");
    assert_eq!(with[0]["decisions"][0]["instanceType"], "m6i.large", "details are kept");
    assert!(joined.stderr.contains("1 unreadable line(s)"), "{}", joined.stderr);

    let future = capstan(&["audit", work.to_str().unwrap(), "--since", "2999-01-01"]);
    assert!(future.stdout.contains("no commit changed the effective policy"), "{}", future.stdout);
    let bad = capstan(&["audit", work.to_str().unwrap(), "--since", "yesterday"]);
    assert_eq!(bad.code, 3);
    assert!(bad.stderr.contains("write a date"), "{}", bad.stderr);
}

#[test]
fn audit_of_the_examples_reads_the_enclosing_repository() {
    let examples = crate::common::root().join("examples/fleet");
    let run = capstan(&["audit", examples.to_str().unwrap(), "--cluster", "dev"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("NodePool/default created"), "{}", run.stdout);
}
