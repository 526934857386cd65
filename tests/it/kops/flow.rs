//! `capstan plan` and `capstan reconcile --once` on both backends: plan, apply, idempotence,
//! ownership and pruning, backups, status, corrupt objects, and the cluster-spec checks.

use capstan::kops::StateStore;
use capstan::kops::object;
use serde_json::Value;

use super::{Backend, CLUSTER, TestStore, kops_ig, on_each_backend};
use crate::common::{CLUSTER_SPEC, Run, TempRepo, capstan};

const IMAGE: &str = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20250305";

fn repo() -> TempRepo {
    let repo = TempRepo::valid();
    let spec = format!(
        "  image: {IMAGE}\n  machineType: m6i.large\n  maxSize: 10\n  minSize: 1\n  subnets:\n  - us-east-1a\n"
    );
    repo.write(
        "clusters/dev/instancegroups/karpenter-nodes.yaml",
        crate::common::karpenter_ig("karpenter-nodes", &spec),
    );
    let gpu = format!("{spec}  kubelet:\n    maxPods: 30\n  taints:\n  - nvidia.com/gpu=present:NoSchedule\n");
    repo.write("clusters/dev/instancegroups/gpu.yaml", crate::common::karpenter_ig("gpu", &gpu));
    repo
}

fn run(cmd: &str, repo: &TempRepo, store: &TestStore, extra: &[&str]) -> Run {
    let mut args = vec![cmd.to_string(), repo.path().display().to_string(), "--cluster".into(), "dev".into()];
    args.extend(store.cli_args());
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    capstan(&args)
}

fn plan_json(repo: &TempRepo, store: &TestStore) -> (i32, Value) {
    let r = run("plan", repo, store, &["--format", "json"]);
    assert!(r.code != 1, "plan failed: {}{}", r.stdout, r.stderr);
    (r.code, r.json())
}

fn change<'a>(plan: &'a Value, name: &str) -> &'a Value {
    plan["changes"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("{name}: {plan}"))
}

fn field_paths(change: &Value) -> Vec<String> {
    change["fields"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap().to_string()).collect()
}

#[test]
fn plan_apply_then_nothing_left_to_do() {
    on_each_backend(plan_apply_idempotent);
}

async fn plan_apply_idempotent(backend: Backend) {
    let store = TestStore::with_cluster(backend, CLUSTER_SPEC).await;
    let existing = kops_ig("karpenter-nodes", "Node", "  manager: Karpenter\n  detailedInstanceMonitoring: true\n");
    store.put(&object::instance_group_key(CLUSTER, "karpenter-nodes"), &existing).await;
    let unmanaged = kops_ig("nodes", "Node", "");
    store.put(&object::instance_group_key(CLUSTER, "nodes"), &unmanaged).await;
    let repo = repo();

    let (code, plan) = plan_json(&repo, &store);
    assert_eq!(code, 2, "changes pending: {plan}");
    assert_eq!(change(&plan, "gpu")["action"], "create");
    let update = change(&plan, "karpenter-nodes");
    assert_eq!(update["action"], "update");
    assert_eq!(field_paths(update), ["metadata.labels[\"capstan.io/managed-by\"]", "spec.maxSize"], "{update}");
    assert_eq!((update["fields"][1]["before"].clone(), update["fields"][1]["after"].clone()), (3.into(), 10.into()));
    assert_eq!(plan["kept"][0]["name"], "nodes");

    let text = run("plan", &repo, &store, &[]);
    assert!(text.stdout.contains("~ spec.maxSize: 3 → 10"), "{}", text.stdout);
    assert!(text.stdout.contains("+ instancegroup/gpu (create)"), "{}", text.stdout);
    assert!(text.stdout.contains("Plan: 1 to create, 1 to change, 0 to delete; 0 unchanged."), "{}", text.stdout);

    let applied = run("reconcile", &repo, &store, &["--once"]);
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);

    let ig = store.ig("karpenter-nodes").await;
    assert_eq!(ig["spec"]["maxSize"], 10);
    assert_eq!(ig["spec"]["detailedInstanceMonitoring"], true, "a field only the store has is kept");
    assert_eq!(ig["metadata"]["creationTimestamp"], "2024-05-01T10:00:00Z");
    assert_eq!(ig["metadata"]["labels"]["capstan.io/managed-by"], "capstan");
    let gpu = store.ig("gpu").await;
    assert_eq!(gpu["metadata"]["labels"]["kops.k8s.io/cluster"], CLUSTER);
    assert!(gpu["metadata"]["creationTimestamp"].is_string());
    assert_eq!(gpu["spec"]["taints"][0], "nvidia.com/gpu=present:NoSchedule");
    let untouched = store.text(&object::instance_group_key(CLUSTER, "nodes")).await.unwrap();
    assert_eq!(untouched, unmanaged, "an IG that is not ours is not rewritten");

    let backups = store.store_list(&object::backup_prefix(CLUSTER, "karpenter-nodes")).await;
    assert_eq!(backups.len(), 1, "one backup before the one update: {backups:?}");
    assert_eq!(store.text(&backups[0]).await.unwrap(), existing, "the backup is the previous version");
    assert!(store.store_list(&object::backup_prefix(CLUSTER, "gpu")).await.is_empty(), "nothing to back up on create");

    let status: Value = serde_json::from_str(&store.text(&object::status_key(CLUSTER)).await.unwrap()).unwrap();
    let section = &status["instanceGroups"];
    assert_eq!(section["outcome"], "applied");
    assert_eq!((section["created"].clone(), section["updated"].clone()), (1.into(), 1.into()));
    assert!(section["revision"].as_str().unwrap().contains("@fnv64:"), "{section}");
    assert!(section["time"].as_str().unwrap().ends_with('Z'));

    let (code, plan) = plan_json(&repo, &store);
    assert_eq!(code, 0, "a second pass has nothing to do: {plan}");
    let again = run("reconcile", &repo, &store, &["--once", "--format", "json"]);
    assert_eq!(again.json()["result"], "unchanged", "{}", again.stdout);
    assert_eq!(store.store_list(&object::backup_prefix(CLUSTER, "karpenter-nodes")).await.len(), 1);
}

#[test]
fn pruning_follows_ownership_role_and_policy() {
    on_each_backend(pruning);
}

async fn pruning(backend: Backend) {
    let store = TestStore::with_cluster(backend, CLUSTER_SPEC).await;
    let repo = repo();
    assert_eq!(run("reconcile", &repo, &store, &["--once"]).code, 0);
    let owned_master = kops_ig("old-master", "Master", "")
        .replace("    kops.k8s.io/cluster", "    capstan.io/managed-by: capstan\n    kops.k8s.io/cluster");
    store.put(&object::instance_group_key(CLUSTER, "old-master"), &owned_master).await;
    store.put(&object::instance_group_key(CLUSTER, "manual"), &kops_ig("manual", "Node", "")).await;
    repo.remove("clusters/dev/instancegroups/gpu.yaml");

    let (code, plan) = plan_json(&repo, &store);
    assert_eq!(code, 0, "pruning is off by default, so nothing changes: {plan}");
    let kept: Vec<(&str, &str)> = plan["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["name"].as_str().unwrap(), k["reason"].as_str().unwrap()))
        .collect();
    assert!(kept.iter().any(|(n, r)| *n == "gpu" && r.contains("pruneInstanceGroups")), "{kept:?}");
    assert!(kept.iter().any(|(n, r)| *n == "manual" && r.contains("not written by capstan")), "{kept:?}");
    assert!(kept.iter().any(|(n, r)| *n == "old-master" && r.contains("role Master is never pruned")), "{kept:?}");

    repo.write(
        "clusters/dev/policy.yaml",
        "apiVersion: capstan.io/v1alpha1\nkind: ClusterPolicy\nmetadata:\n  name: dev\nspec:\n  pruneInstanceGroups: true\n",
    );
    let (code, plan) = plan_json(&repo, &store);
    assert_eq!(code, 2, "{plan}");
    assert_eq!(change(&plan, "gpu")["action"], "delete");
    assert_eq!(plan["changes"].as_array().unwrap().len(), 1, "only capstan's own Node IG is pruned: {plan}");
    let gpu_before = store.text(&object::instance_group_key(CLUSTER, "gpu")).await.unwrap();
    assert_eq!(run("reconcile", &repo, &store, &["--once"]).code, 0);
    assert_eq!(store.text(&object::instance_group_key(CLUSTER, "gpu")).await, None);
    assert!(store.text(&object::instance_group_key(CLUSTER, "manual")).await.is_some());
    assert!(store.text(&object::instance_group_key(CLUSTER, "old-master")).await.is_some());
    let backups = store.store_list(&object::backup_prefix(CLUSTER, "gpu")).await;
    assert_eq!(store.text(&backups[0]).await.unwrap(), gpu_before, "the deleted IG is kept as a backup");
}

#[test]
fn a_field_removed_from_git_is_removed_and_drift_is_named() {
    on_each_backend(removal_and_drift);
}

async fn removal_and_drift(backend: Backend) {
    let store = TestStore::with_cluster(backend, CLUSTER_SPEC).await;
    let repo = repo();
    assert_eq!(run("reconcile", &repo, &store, &["--once"]).code, 0);
    let key = object::instance_group_key(CLUSTER, "gpu");
    // Someone edits the store by hand: a field Git sets, and one Git does not know.
    let edited = store
        .text(&key)
        .await
        .unwrap()
        .replace("maxSize: 10", "maxSize: 99")
        .replace("role: Node", "role: Node\n  suspendProcesses: [AZRebalance]");
    let etag = store.store.get(&key).await.unwrap().unwrap().etag;
    store.store.put_if_match(&key, edited.as_bytes(), &etag).await.unwrap();
    let text = run("plan", &repo, &store, &[]).stdout;
    assert!(text.contains("~ spec.maxSize: 99 → 10  (changed in the store outside Git"), "{text}");

    let spec = format!(
        "  image: {IMAGE}\n  machineType: m6i.large\n  maxSize: 10\n  minSize: 1\n  subnets:\n  - us-east-1a\n  taints:\n  - nvidia.com/gpu=present:NoSchedule\n"
    );
    repo.write("clusters/dev/instancegroups/gpu.yaml", crate::common::karpenter_ig("gpu", &spec));
    let (_, plan) = plan_json(&repo, &store);
    let fields = field_paths(change(&plan, "gpu"));
    assert_eq!(fields, ["spec.maxSize", "spec.kubelet.maxPods"], "{plan}");
    assert_eq!(run("reconcile", &repo, &store, &["--once"]).code, 0);
    let gpu = store.ig("gpu").await;
    assert_eq!(gpu["spec"].get("kubelet"), None, "kubelet was only maxPods, so the map goes too");
    assert_eq!(gpu["spec"]["suspendProcesses"][0], "AZRebalance", "a field Git never set is kept");
    assert_eq!(plan_json(&repo, &store).0, 0);
}

#[test]
fn corrupt_objects_are_named_and_left_alone_while_the_rest_reconciles() {
    on_each_backend(corrupt);
}

async fn corrupt(backend: Backend) {
    let store = TestStore::with_cluster(backend, CLUSTER_SPEC).await;
    let bad = [
        ("gpu", "spec: [unclosed\n"),
        ("wrongkind", "apiVersion: kops.k8s.io/v1alpha2\nkind: Cluster\nmetadata:\n  name: wrongkind\nspec: {}\n"),
        ("futureapi", "apiVersion: kops.k8s.io/v2\nkind: InstanceGroup\nmetadata:\n  name: futureapi\nspec: {}\n"),
    ];
    for (name, text) in bad {
        store.put(&object::instance_group_key(CLUSTER, name), text).await;
    }
    let repo = repo();
    let r = run("reconcile", &repo, &store, &["--once"]);
    assert_eq!(r.code, 1, "a corrupt object fails the pass: {}{}", r.stdout, r.stderr);
    for (name, text) in bad {
        let key = object::instance_group_key(CLUSTER, name);
        assert!(r.stdout.contains(&format!("error: {key}:")), "{key} is named: {}", r.stdout);
        assert_eq!(store.text(&key).await.unwrap(), text, "{key} is left untouched");
    }
    assert!(r.stdout.contains("must have apiVersion kops.k8s.io/v1alpha2"), "{}", r.stdout);
    assert!(r.stdout.contains("holds kind Cluster; expected kind InstanceGroup"), "{}", r.stdout);
    assert_eq!(store.ig("karpenter-nodes").await["spec"]["maxSize"], 10, "the other IGs still reconcile");
    let status: Value = serde_json::from_str(&store.text(&object::status_key(CLUSTER)).await.unwrap()).unwrap();
    assert_eq!(status["instanceGroups"]["outcome"], "error");
    assert_eq!(status["instanceGroups"]["errors"].as_array().unwrap().len(), 3);
}

#[test]
fn a_missing_cluster_is_refused_and_the_cluster_spec_is_checked() {
    on_each_backend(cluster_checks);
}

async fn cluster_checks(backend: Backend) {
    let repo = repo();
    let empty = TestStore::new(backend).await;
    let r = run("plan", &repo, &empty, &[]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("no kOps cluster at dev.example.com/config"), "{}", r.stderr);
    assert!(r.stderr.contains("kopsName"), "{}", r.stderr);
    assert!(empty.store_list("").await.is_empty(), "nothing is written to a store without the cluster");

    let spec = CLUSTER_SPEC.replace("    enabled: false\n", "    enabled: true\n");
    let store = TestStore::with_cluster(backend, &spec).await;
    let (_, plan) = plan_json(&repo, &store);
    let warnings = plan["warnings"].to_string();
    assert!(
        warnings.contains("set spec.karpenter.enabled: false") && warnings.contains("gpu, karpenter-nodes"),
        "{warnings}"
    );
    assert!(!warnings.contains("is labelled"), "{warnings}");

    let ig =
        crate::common::karpenter_ig("gpu", "  image: ami-0123456789abcdef0\n  maxSize: 1\n  subnets: [us-east-1a]\n")
            .replace(
                "metadata:\n  name: gpu\n",
                "metadata:\n  name: gpu\n  labels:\n    kops.k8s.io/cluster: prod.example.com\n",
            );
    repo.write("clusters/dev/instancegroups/gpu.yaml", ig);
    let (_, plan) = plan_json(&repo, &store);
    let warnings = plan["warnings"].to_string();
    assert!(warnings.contains("InstanceGroup/gpu is labelled kops.k8s.io/cluster: prod.example.com"), "{warnings}");
}

impl TestStore {
    pub async fn store_list(&self, prefix: &str) -> Vec<String> {
        capstan::kops::StateStore::list(&self.store, prefix).await.unwrap()
    }
}

/// The README's folder-store commands, on the example repository.
#[test]
fn the_readme_commands_work_on_the_example_repository() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(CLUSTER)).unwrap();
    let example = crate::common::root().join("examples/fleet");
    std::fs::copy(example.join("clusters/dev/cluster.yaml"), dir.path().join(CLUSTER).join("config")).unwrap();
    let url = format!("file://{}", dir.path().display());
    let args = |cmd: &'static str, once: bool| {
        let mut a = vec![cmd.to_string(), example.display().to_string(), "--cluster".into(), "dev".into()];
        a.extend(["--state-store".to_string(), url.clone()]);
        if once {
            a.push("--once".into());
        }
        a
    };
    let go = |a: Vec<String>| capstan(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let first = go(args("plan", false));
    assert_eq!(first.code, 2, "{}{}", first.stdout, first.stderr);
    assert!(first.stdout.contains("+ instancegroup/karpenter-nodes (create)"), "{}", first.stdout);
    let applied = go(args("reconcile", true));
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    let last = go(args("plan", false));
    assert_eq!(last.code, 0, "{}{}", last.stdout, last.stderr);
    assert!(last.stdout.contains("Plan: 0 to create, 0 to change, 0 to delete; 2 unchanged."), "{}", last.stdout);
}

#[test]
fn a_missing_bucket_is_named() {
    let repo = repo();
    let r = capstan(&[
        "plan",
        repo.path().to_str().unwrap(),
        "--cluster",
        "dev",
        "--state-store",
        "s3://capstan-no-such-bucket",
        "--s3-endpoint",
        &crate::aws_catalog::moto(),
        "--s3-path-style",
        "--region",
        "us-east-1",
    ]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("bucket `capstan-no-such-bucket` does not exist; check the state store URL"),
        "{}",
        r.stderr
    );
}
