//! Policy validation against hostile input: negative and out-of-range values, names that cannot
//! be stored, label syntax, a byte-order mark, unreadable folders. Each error must name
//! file:line:column, the object, the field and what to do.

use serde_json::Value;

use crate::common::{FLEET, NODE_POOL, Run, TempRepo, at, capstan, errors, expect_error, karpenter_ig};

fn validate_dev(repo: &TempRepo) -> Run {
    capstan(&["validate", repo.path().to_str().unwrap(), "--cluster", "dev", "--format", "json"])
}

/// The NodePool of the common repository under another name and cpu limit.
fn pool(name: &str, cpu: &str) -> String {
    NODE_POOL
        .replace("name: default\nspec", &format!("name: {name}\nspec"))
        .replace("cpu: \"100\"", &format!("cpu: {cpu}"))
}

/// Asserts the error carries the object it is about.
#[track_caller]
fn object_is(d: &Value, object: &str) {
    assert_eq!(d["object"], object, "object of {d}");
}

const GOOD_IG: &str = "  image: ami-0123456789abcdef0\n  maxSize: 3\n  subnets: [us-east-1a]\n";

#[test]
fn a_negative_pool_limit_cannot_hide_another_pool_from_the_cluster_ceiling() {
    let repo = TempRepo::valid();
    repo.write(
        "guardrails.yaml",
        "apiVersion: capstan.io/v1alpha1\nkind: Guardrails\nmetadata:\n  name: org\nspec:\n  maxClusterCpu: \"400\"\n",
    );
    repo.write("base/nodepools/default.yaml", pool("default", "\"100000\""));
    let spot = pool("spot", "\"-100000\"");
    repo.write("base/nodepools/spot.yaml", &spot);
    let run = validate_dev(&repo);
    let (l, c) = at(&spot, "\"-100000\"");
    let d = expect_error(&run, "base/nodepools/spot.yaml", l, c, Some("spec.limits.cpu"), "is negative");
    object_is(&d, "NodePool/spot");
    let all = errors(&run);
    assert!(
        all.iter().any(|d| d["message"].as_str().unwrap().contains("the ceiling for cluster `dev` is 400")),
        "the guardrail still sees the other pool: {all:#?}"
    );
}

#[test]
fn negative_quantities_are_refused_in_every_kind() {
    let repo = TempRepo::valid();
    let text = pool("default", "\"-5\"");
    repo.write("base/nodepools/default.yaml", &text);
    let (l, c) = at(&text, "\"-5\"");
    expect_error(
        &validate_dev(&repo),
        "base/nodepools/default.yaml",
        l,
        c,
        Some("spec.limits.cpu"),
        "`-5` is negative",
    );

    let repo = TempRepo::valid();
    let policy = "apiVersion: capstan.io/v1alpha1\nkind: ClusterPolicy\nmetadata:\n  name: default\nspec:\n  limits:\n    cpu: -1\n";
    repo.write("base/policy.yaml", policy);
    let (l, c) = at(policy, "-1");
    let d = expect_error(&validate_dev(&repo), "base/policy.yaml", l, c, Some("spec.limits.cpu"), "is negative");
    object_is(&d, "ClusterPolicy/default");

    let repo = TempRepo::valid();
    let class = format!(
        "{}  blockDeviceMappings:\n    - deviceName: /dev/xvda\n      ebs:\n        volumeSize: -1Gi\n",
        crate::common::NODE_CLASS
    );
    repo.write("base/nodeclasses/default.yaml", &class);
    let (l, c) = at(&class, "-1Gi");
    let field = Some("spec.blockDeviceMappings[0].ebs.volumeSize");
    let d = expect_error(&validate_dev(&repo), "base/nodeclasses/default.yaml", l, c, field, "is negative");
    object_is(&d, "EC2NodeClass/default");
}

#[test]
fn instance_group_values_are_checked_before_they_are_translated() {
    let cases: &[(&str, &str, &str, &str)] = &[
        ("  kubelet:\n    maxPods: 4294967296\n", "4294967296", "spec.kubelet.maxPods", "out of range"),
        ("  kubelet:\n    maxPods: -1\n", "-1\n", "spec.kubelet.maxPods", "out of range"),
        ("  rootVolumeSize: -64\n", "-64", "spec.rootVolumeSize", "out of range"),
        ("  rootVolumeType: floppy\n", "floppy", "spec.rootVolumeType", "`floppy` is not one of"),
        ("  rootVolume:\n    type: gp9\n", "gp9", "spec.rootVolume.type", "`gp9` is not one of"),
        (
            "  kubelet:\n    systemReserved:\n      cpu: \"-1\"\n",
            "\"-1\"",
            "spec.kubelet.systemReserved.cpu",
            "negative",
        ),
        ("  nodeLabels:\n    team: \"a b\"\n", "\"a b\"", "spec.nodeLabels.team", "not a valid label value"),
    ];
    for (spec, needle, field, message) in cases {
        let repo = TempRepo::valid();
        let text = karpenter_ig("batch", &format!("{GOOD_IG}{spec}"));
        repo.write("clusters/dev/instancegroups/batch.yaml", &text);
        let run = validate_dev(&repo);
        let (l, c) = at(&text, needle);
        let d = expect_error(&run, "clusters/dev/instancegroups/batch.yaml", l, c, Some(field), message);
        object_is(&d, "InstanceGroup/batch");
        let made = errors(&run).into_iter().filter(|d| d["object"] != "InstanceGroup/batch").collect::<Vec<_>>();
        assert!(made.is_empty(), "{spec}: reported once, at the IG, not again at its NodePool: {made:#?}");
    }
    let repo = TempRepo::valid();
    let text = karpenter_ig("batch", "  image: ami-0123456789abcdef0\n  maxSize: -5\n  subnets: [us-east-1a]\n");
    repo.write("clusters/dev/instancegroups/batch.yaml", &text);
    let (l, c) = at(&text, "-5");
    let d =
        expect_error(&validate_dev(&repo), "clusters/dev/instancegroups/batch.yaml", l, c, Some("spec.maxSize"), "-5");
    assert!(d["hint"].as_str().unwrap().contains("above 0"), "{d}");
}

#[test]
fn an_unknown_instance_group_manager_is_refused() {
    let repo = TempRepo::valid();
    let text = karpenter_ig("batch", GOOD_IG).replace("manager: Karpenter", "manager: Karpentr");
    repo.write("clusters/dev/instancegroups/batch.yaml", &text);
    let (l, c) = at(&text, "Karpentr");
    let d = expect_error(
        &validate_dev(&repo),
        "clusters/dev/instancegroups/batch.yaml",
        l,
        c,
        Some("spec.manager"),
        "`Karpentr`",
    );
    assert!(d["hint"].as_str().unwrap().contains("CloudGroup, Karpenter"), "{d}");
}

#[test]
fn instance_group_names_that_cannot_be_stored_are_refused() {
    for name in ["a/b", "../escape", "Batch", "a..b"] {
        let repo = TempRepo::valid();
        let text = karpenter_ig(name, GOOD_IG);
        repo.write("clusters/dev/instancegroups/bad.yaml", &text);
        let (l, c) = at(&text, &format!("name: {name}"));
        let run = validate_dev(&repo);
        let d = expect_error(
            &run,
            "clusters/dev/instancegroups/bad.yaml",
            l,
            c + 6,
            Some("metadata.name"),
            "is not a valid name",
        );
        object_is(&d, &format!("InstanceGroup/{name}"));
    }
    // A Karpenter-managed IG becomes a NodePool, whose name Karpenter limits to 63 characters.
    let repo = TempRepo::valid();
    let long = "n".repeat(64);
    let text = karpenter_ig(&long, GOOD_IG);
    repo.write("clusters/dev/instancegroups/long.yaml", &text);
    let run = validate_dev(&repo);
    let (l, c) = at(&text, &long);
    let d = expect_error(&run, "clusters/dev/instancegroups/long.yaml", l, c, Some("metadata.name"), "64 characters");
    assert!(d["message"].as_str().unwrap().contains(&format!("made from InstanceGroup/{long}")), "{d}");
}

#[test]
fn a_kops_name_that_escapes_the_state_store_is_refused() {
    let repo = TempRepo::valid();
    let fleet = FLEET.replace("kopsName: dev.example.com", "kopsName: ../evil");
    repo.write("fleet.yaml", &fleet);
    let (l, c) = at(&fleet, "../evil");
    let d = expect_error(
        &validate_dev(&repo),
        "fleet.yaml",
        l,
        c,
        Some("spec.clusters[0].kopsName"),
        "is not a valid name",
    );
    object_is(&d, "Fleet/test");
    assert!(d["hint"].as_str().unwrap().contains("DNS"), "{d}");
}

#[test]
fn node_pool_names_follow_kubernetes_and_karpenter() {
    let long = "p".repeat(300);
    for name in ["..", "Spot_Pool", long.as_str(), "p".repeat(64).as_str()] {
        let repo = TempRepo::valid();
        let text = pool(name, "\"10\"");
        repo.write("base/nodepools/bad.yaml", &text);
        let (l, c) = at(&text, &format!("name: {name}\n"));
        let run = validate_dev(&repo);
        let d = expect_error(&run, "base/nodepools/bad.yaml", l, c + 6, Some("metadata.name"), "is not a valid name");
        assert!(d["hint"].as_str().unwrap().contains("karpenter.sh/nodepool"), "{d}");
        assert!(d["message"].as_str().unwrap().chars().count() < 200, "a long name is cut in the message: {d}");
    }
    let repo = TempRepo::valid();
    repo.write("base/nodepools/ok.yaml", pool(&"p".repeat(63), "\"10\""));
    assert_eq!(validate_dev(&repo).code, 0, "63 characters is the limit, not below it");
}

#[test]
fn requirement_values_and_label_keys_follow_the_label_syntax() {
    let cases = [
        ("values: [\"on demand\"]", "\"on demand\"", "spec.template.spec.requirements[0].values[0]", "`on demand`"),
        ("values: [\"a\\ab\"]", "\"a\\ab\"", "spec.template.spec.requirements[0].values[0]", "`a\\u{7}b`"),
        ("values: [\"v\", \"\\ttab\"]", "\"\\ttab\"", "spec.template.spec.requirements[0].values[1]", "not a valid"),
    ];
    for (values, needle, field, message) in cases {
        let repo = TempRepo::valid();
        let text = NODE_POOL.replace("values: [on-demand]", values);
        repo.write("base/nodepools/default.yaml", &text);
        let (l, c) = at(&text, needle);
        expect_error(&validate_dev(&repo), "base/nodepools/default.yaml", l, c, Some(field), message);
    }
    let long = "v".repeat(64);
    let repo = TempRepo::valid();
    let text = NODE_POOL.replace("values: [on-demand]", &format!("values: [{long}]"));
    repo.write("base/nodepools/default.yaml", &text);
    let (l, c) = at(&text, &long);
    expect_error(
        &validate_dev(&repo),
        "base/nodepools/default.yaml",
        l,
        c,
        Some("spec.template.spec.requirements[0].values[0]"),
        "not a valid",
    );

    // A label key with a dotted prefix is located at its key.
    let repo = TempRepo::valid();
    let text =
        NODE_POOL.replace("  template:\n", "  template:\n    metadata:\n      labels:\n        Example.com/team: a\n");
    repo.write("base/nodepools/default.yaml", &text);
    let (l, c) = at(&text, "Example.com/team");
    expect_error(
        &validate_dev(&repo),
        "base/nodepools/default.yaml",
        l,
        c,
        Some("spec.template.metadata.labels.Example.com/team"),
        "not a valid label key",
    );
}

#[test]
fn a_byte_order_mark_is_ignored_and_positions_stay_right() {
    let repo = TempRepo::valid();
    repo.write("base/nodepools/default.yaml", format!("\u{feff}{NODE_POOL}"));
    let run = validate_dev(&repo);
    assert_eq!(run.code, 0, "{}", run.stdout);

    let text = pool("default", "\"10x\"");
    repo.write("base/nodepools/default.yaml", format!("\u{feff}{text}"));
    let (l, c) = at(&text, "\"10x\"");
    expect_error(
        &validate_dev(&repo),
        "base/nodepools/default.yaml",
        l,
        c,
        Some("spec.limits.cpu"),
        "invalid quantity",
    );
    // A syntax error on the first line is placed as in the same file without the mark.
    let place = |text: String| {
        repo.write("base/nodepools/default.yaml", text);
        let run = validate_dev(&repo);
        let d = errors(&run).into_iter().find(|d| d["file"].as_str().unwrap().ends_with("default.yaml")).unwrap();
        (d["line"].clone(), d["column"].clone(), d["message"].clone())
    };
    let broken = "kind: NodePool: x\n";
    assert_eq!(place(format!("\u{feff}{broken}")), place(broken.to_string()));
}

const TWO_CLUSTERS: &str = "    - name: prod\n      kopsName: prod.example.com\n      stateStore: file:///tmp/capstan-test-store\n      region: us-east-1\n      wave: 0\n  waves:\n";

/// A repository with clusters dev and prod, where `rel` cannot be read (a link to itself, which
/// even root cannot read).
fn with_unreadable(rel: &str) -> TempRepo {
    let repo = TempRepo::valid();
    repo.write("fleet.yaml", FLEET.replace("  waves:\n", TWO_CLUSTERS));
    let path = repo.path().join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&path, &path).unwrap();
    repo
}

#[test]
fn an_unreadable_file_of_another_cluster_does_not_stop_validating_this_one() {
    let repo = with_unreadable("clusters/prod/instancegroups/loop.yaml");
    let run = validate_dev(&repo);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let v = run.json();
    let warning = v["diagnostics"].as_array().unwrap().iter().find(|d| {
        d["severity"] == "warning" && d["file"].as_str().unwrap().ends_with("clusters/prod/instancegroups/loop.yaml")
    });
    let w = warning.unwrap_or_else(|| panic!("the skipped path is named: {v:#}"));
    assert!(w["message"].as_str().unwrap().contains("cluster `prod`"), "{w}");
    assert!(!w["hint"].as_str().unwrap().is_empty(), "{w}");

    // Checking every cluster, or prod, needs it.
    let run = repo.validate();
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        errors(&run).iter().any(|d| d["file"].as_str().unwrap().ends_with("clusters/prod/instancegroups/loop.yaml")),
        "{}",
        run.stdout
    );
}

#[test]
fn an_unreadable_path_of_the_checked_cluster_is_an_error_naming_it() {
    for rel in ["clusters/dev/instancegroups/loop.yaml", "base/nodepools/loop.yaml"] {
        let repo = with_unreadable(rel);
        let run = validate_dev(&repo);
        assert_eq!(run.code, 1, "{rel}: {}\n{}", run.stdout, run.stderr);
        let d = errors(&run).into_iter().find(|d| d["file"].as_str().unwrap().ends_with(rel));
        let d = d.unwrap_or_else(|| panic!("{rel} is named: {}", run.stdout));
        assert!(d["message"].as_str().unwrap().contains("cannot read"), "{d}");
    }
}

#[test]
fn an_unreadable_folder_is_named_where_permissions_apply() {
    let repo = with_unreadable("clusters/prod/nodeclasses/loop.yaml");
    let locked = repo.path().join("clusters/prod/instancegroups");
    std::fs::create_dir_all(&locked).unwrap();
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    if std::fs::read_dir(&locked).is_ok() {
        return; // root reads it anyway
    }
    let run = validate_dev(&repo);
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("clusters/prod/instancegroups"), "{}", run.stdout);
}
