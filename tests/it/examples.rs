//! The shipped example repository validates and renders as the README says.

use crate::common::capstan as run_capstan;

#[test]
fn example_fleet_validates_clean() {
    let run = run_capstan(&["validate", "examples/fleet"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("0 error(s)"), "{}", run.stdout);
    assert!(run.stdout.contains("clusters checked: dev, staging, prod"));
}

fn render(cluster: &str) -> String {
    let run = run_capstan(&["render", "examples/fleet", "--cluster", cluster]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.stdout
}

fn documents(text: &str) -> Vec<serde_yaml::Value> {
    text.split("\n---\n").skip(1).map(|d| serde_yaml::from_str(d).unwrap()).collect()
}

fn find<'a>(docs: &'a [serde_yaml::Value], kind: &str, name: &str) -> &'a serde_yaml::Value {
    docs.iter()
        .find(|d| d["kind"].as_str() == Some(kind) && d["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("{kind}/{name} missing"))
}

#[test]
fn render_includes_the_translated_instance_group() {
    for cluster in ["dev", "staging", "prod"] {
        let out = render(cluster);
        let docs = documents(&out);
        let pool = find(&docs, "NodePool", "karpenter-nodes");
        assert_eq!(
            pool["metadata"]["annotations"]["capstan.io/translated-from"].as_str(),
            Some("InstanceGroup/karpenter-nodes")
        );
        let class = find(&docs, "EC2NodeClass", "karpenter-nodes");
        assert_eq!(class["spec"]["instanceProfile"].as_str(), Some(format!("nodes.{cluster}.example.com").as_str()));
        assert!(out.contains("userData not resolved"), "the output says userData is not resolved");
        assert!(
            out.contains(&format!("clusters/{cluster}/cluster.yaml (repository copy)")),
            "the output names the cluster-spec source"
        );
    }
}

#[test]
fn prod_shows_its_override_and_dev_keeps_the_base() {
    let dev = documents(&render("dev"));
    let prod = documents(&render("prod"));
    let cpu = |docs: &[serde_yaml::Value]| {
        find(docs, "NodePool", "default")["spec"]["limits"]["cpu"].as_str().unwrap().to_string()
    };
    assert_eq!(cpu(&dev), "200");
    assert_eq!(cpu(&prod), "1000");
    // The merge patch changed one field: everything else of the base pool is there.
    let dev_pool = find(&dev, "NodePool", "default");
    let prod_pool = find(&prod, "NodePool", "default");
    assert_eq!(dev_pool["spec"]["template"], prod_pool["spec"]["template"]);
    assert_eq!(dev_pool["spec"]["limits"]["memory"], prod_pool["spec"]["limits"]["memory"]);
    let nodes = |docs: &[serde_yaml::Value]| {
        find(docs, "NodePool", "karpenter-nodes")["spec"]["limits"]["nodes"].as_str().unwrap().to_string()
    };
    assert_eq!((nodes(&dev), nodes(&prod)), ("10".to_string(), "20".to_string()));
}

#[test]
fn render_order_is_stable() {
    let first = render("prod");
    assert_eq!(first, render("prod"));
    let docs = documents(&first);
    let keys: Vec<(String, String)> = docs
        .iter()
        .map(|d| (d["kind"].as_str().unwrap().to_string(), d["metadata"]["name"].as_str().unwrap().to_string()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_by_key(|(k, n)| (k != "NodePool", n.clone()));
    assert_eq!(keys, sorted, "NodePools then EC2NodeClasses, each by name");
}

#[test]
fn validate_json_lists_clusters_and_counts() {
    let run = run_capstan(&["validate", "examples/fleet", "--cluster", "prod", "--format", "json"]);
    assert_eq!(run.code, 0);
    let v = run.json();
    assert_eq!(v["errors"], 0);
    assert_eq!(v["clusters"], serde_json::json!(["prod"]));
}

#[test]
fn committed_schemas_match_the_model() {
    for (name, text) in capstan::policy::schema::all() {
        let path = crate::common::root().join("policies/schema").join(&name);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == text,
            "{} is out of date: run `cargo run -- schema --out policies/schema`",
            path.display()
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(v["properties"]["spec"].is_object(), "{name} describes spec");
    }
}
