//! InstanceGroups from kOps's documentation and test data through the store: read, written the
//! way kOps writes them, read back the same, and every field capstan does not model kept.

use std::collections::BTreeMap;

use capstan::kops::object::{self, read_instance_group, write_yaml};
use capstan::kops::plan::desired_document;
use capstan::kops::userdata::resolve_user_data;
use capstan::kops::{Cache, Target, reconcile_once};
use capstan::policy::Snapshot;
use capstan::policy::kops::InstanceGroup;
use serde_json::Value;

use super::{Backend, CLUSTER, TestStore, rt};
use crate::common::root;

fn fixtures() -> Vec<(String, String)> {
    let dir = root().join("tests/fixtures/kops");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("ig-") && !name.contains("v1alpha3") {
            out.push((name, std::fs::read_to_string(&path).unwrap()));
        }
    }
    out.sort();
    assert!(out.len() >= 12, "the kOps IG fixtures are there");
    out
}

fn ig_name(text: &str) -> String {
    let v: Value = serde_yaml::from_str(text).unwrap();
    v["metadata"]["name"].as_str().unwrap().to_string()
}

#[test]
fn documented_instance_groups_survive_a_write_and_read_back() {
    let wanted = ["mixedInstancesPolicy", "rootVolume", "kubelet", "cloudLabels", "taints"];
    let mut seen = BTreeMap::new();
    for (file, text) in fixtures() {
        let key = object::instance_group_key(CLUSTER, &ig_name(&text));
        let value = read_instance_group(&key, text.as_bytes()).unwrap_or_else(|e| panic!("{file}: {e}"));
        let written = String::from_utf8(write_yaml(&value)).unwrap();
        let back = read_instance_group(&key, written.as_bytes()).unwrap();
        assert_eq!(back, value, "{file}: written as\n{written}");
        let other_reader: Value = serde_yaml::from_str(&written).unwrap();
        assert_eq!(other_reader, value, "{file}: a second YAML reader agrees");
        assert_eq!(write_yaml(&back), written.as_bytes(), "{file}: writing is stable");
        for field in wanted {
            if value["spec"].as_object().unwrap().keys().any(|k| k.starts_with(field)) {
                *seen.entry(field).or_insert(0) += 1;
            }
        }
        if let Some(ts) = value["metadata"]["creationTimestamp"].as_str() {
            assert!(written.contains(&format!("creationTimestamp: \"{ts}\"")), "{file}: kOps quotes timestamps");
        }
    }
    for field in wanted {
        assert!(seen.contains_key(field), "a fixture has {field}: {seen:?}");
    }
}

/// A kOps-written IG reconciled from a repository copy of itself: only capstan's label is added,
/// and every other field, modelled or not, is as kOps wrote it.
#[test]
fn reconciling_a_documented_instance_group_changes_only_the_ownership_label() {
    rt().block_on(async {
        let store = TestStore::with_cluster(Backend::File, crate::common::CLUSTER_SPEC).await;
        for (file, text) in fixtures() {
            let name = ig_name(&text);
            let key = object::instance_group_key(CLUSTER, &name);
            let text = text.replace("kops.k8s.io/cluster: ", "kops.k8s.io/cluster-was: ");
            store.put(&key, &text).await;
            let ig: InstanceGroup = serde_yaml::from_str(&text).unwrap();
            let desired = BTreeMap::from([(name.clone(), desired_document(&ig, CLUSTER))]);
            let target = Target { cluster: CLUSTER.into(), revision: "test".into(), desired, prune: false };
            let report = reconcile_once(&store.store, &target, &Cache::default(), chrono::Utc::now()).await.unwrap();
            let fields: Vec<String> = report.plan.changes[0].fields.iter().map(|f| f.path.to_string()).collect();
            assert_eq!(
                fields,
                ["metadata.labels[\"kops.k8s.io/cluster\"]", "metadata.labels[\"capstan.io/managed-by\"]"],
                "{file}"
            );
            let mut expected = read_instance_group(&key, text.as_bytes()).unwrap();
            expected["metadata"]["labels"]["kops.k8s.io/cluster"] = CLUSTER.into();
            expected["metadata"]["labels"]["capstan.io/managed-by"] = "capstan".into();
            assert_eq!(store.ig(&name).await, expected, "{file}: nothing else changed");
            capstan::kops::StateStore::delete_if_match(&store.store, &key, &store.store_etag(&key).await)
                .await
                .unwrap();
        }
    });
}

/// The nodeup script kOps keeps for an IG becomes its EC2NodeClass's userData.
#[test]
fn the_nodeup_script_is_handed_to_the_node_class() {
    rt().block_on(async {
        let store = TestStore::with_cluster(Backend::File, crate::common::CLUSTER_SPEC).await;
        let snapshot = Snapshot::from_dir(&root().join("examples/fleet")).unwrap();
        let mut policy = capstan::policy::validate(&snapshot, Some("dev")).unwrap().policies.remove(0);
        let missing = resolve_user_data(&store.store, &mut policy).await.unwrap();
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert!(missing[0].contains("kops update cluster"), "{missing:?}");

        let script = "#!/bin/bash\nset -o errexit\n# nodeup for karpenter-nodes\n";
        let kops_name = policy.kops_name.clone();
        store.put(&object::nodeup_script_key(&kops_name, "karpenter-nodes"), script).await;
        let missing = resolve_user_data(&store.store, &mut policy).await.unwrap();
        assert!(missing.is_empty(), "{missing:?}");
        let class = policy.node_class("karpenter-nodes").unwrap();
        assert_eq!(class.value.spec.user_data.as_deref(), Some(script));
        assert!(policy.node_class("default").unwrap().value.spec.user_data.is_none(), "explicit classes keep theirs");
    });
}

impl TestStore {
    pub async fn store_etag(&self, key: &str) -> String {
        capstan::kops::StateStore::get(&self.store, key).await.unwrap().unwrap().etag
    }
}
