//! Built-in guardrails and a repository's tightening of them.

use crate::common::{TempRepo, capstan, errors};

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

// Relaxations and exceptions: a built-in rule loosened on record, with a reason.

const RELAX_LIMITS: &str = "apiVersion: capstan.io/v1alpha1
kind: Guardrails
metadata:
  name: org
spec:
  relax:
    - rule: requireNodePoolLimits
      reason: dev accounts are bounded by their EC2 quotas
";

/// The default NodePool without `spec.limits`, as most of Karpenter's examples are written.
fn pool_without_limits(name: &str) -> String {
    crate::common::NODE_POOL
        .replace("  limits:\n    cpu: \"100\"\n", "")
        .replace("name: default\nspec:", &format!("name: {name}\nspec:"))
}

/// `pool` with one annotation under its metadata.
fn annotated(pool: &str, key: &str, value: &str) -> String {
    let name_line = pool.lines().find(|l| l.starts_with("  name: ")).unwrap();
    pool.replacen(name_line, &format!("{name_line}\n  annotations:\n    {key}: \"{value}\""), 1)
}

#[test]
fn a_relaxation_with_a_reason_turns_a_rule_off() {
    let repo = TempRepo::valid();
    repo.write("base/nodepools/default.yaml", pool_without_limits("default"));
    assert_eq!(messages(&repo).0, 1, "the built-in rule applies first");
    repo.write("guardrails.yaml", RELAX_LIMITS);
    let run = repo.validate();
    assert_eq!(run.code, 0, "{}", run.stdout);
    let v = run.json();
    let r = &v["relaxations"][0];
    assert_eq!(r["rule"], "requireNodePoolLimits");
    assert_eq!(r["effect"], "not required");
    assert_eq!(r["reason"], "dev accounts are bounded by their EC2 quotas");
    assert!(r["file"].as_str().unwrap().ends_with("guardrails.yaml"), "{r}");
    let (line, column) = crate::common::at(RELAX_LIMITS, "requireNodePoolLimits");
    assert_eq!((r["line"].as_u64(), r["column"].as_u64()), (Some(line), Some(column)), "{r}");
    assert_eq!(v["exceptions"].as_array().unwrap().len(), 0);
}

#[test]
fn a_relaxation_of_the_spot_minimum_and_of_one_family() {
    let repo = TempRepo::valid();
    repo.write(
        "base/nodepools/spot.yaml",
        SPOT_POOL.replace("[m5.large, m5.xlarge, c5.large]", "[m5.large, m5.xlarge, m1.large]"),
    );
    let (_, errs, _) = messages(&repo);
    assert!(errs.iter().any(|m| m.contains("at least 15")), "{errs:?}");
    assert!(errs.iter().any(|m| m.contains("`m1` is forbidden")), "{errs:?}");
    repo.write(
        "guardrails.yaml",
        "apiVersion: capstan.io/v1alpha1\nkind: Guardrails\nmetadata:\n  name: org\nspec:\n  relax:\n    - rule: minSpotInstanceTypes\n      value: 3\n      reason: one small region\n    - rule: forbiddenInstanceFamilies\n      values: [m1]\n      reason: a legacy image needs it until March\n",
    );
    let (code, errs, _) = messages(&repo);
    assert_eq!((code, errs.len()), (0, 0), "{errs:?}");
    let v = repo.validate().json();
    let effects: Vec<&str> =
        v["relaxations"].as_array().unwrap().iter().map(|r| r["effect"].as_str().unwrap()).collect();
    assert_eq!(effects, ["minimum 3", "allows m1"]);
}

#[test]
fn a_relaxation_without_a_reason_is_refused_and_the_rule_stays() {
    let repo = TempRepo::valid();
    repo.write("base/nodepools/default.yaml", pool_without_limits("default"));
    let text = RELAX_LIMITS.replace("      reason: dev accounts are bounded by their EC2 quotas\n", "");
    repo.write("guardrails.yaml", &text);
    let run = repo.validate();
    let (line, column) = crate::common::at(&text, "rule: requireNodePoolLimits");
    let d = crate::common::expect_error(
        &run,
        "guardrails.yaml",
        line,
        column,
        Some("spec.relax[0].reason"),
        "has no reason",
    );
    assert_eq!(d["object"], "Guardrails/org");
    assert!(d["message"].as_str().unwrap().contains("the built-in rule stays"), "{d}");
    assert!(
        errors(&run).iter().any(|e| e["message"] == "guardrail: the NodePool has no limits"),
        "the rule still applies"
    );
    assert_eq!(run.json()["relaxations"].as_array().unwrap().len(), 0);

    let blank = RELAX_LIMITS.replace("reason: dev accounts are bounded by their EC2 quotas", "reason: \"\"");
    repo.write("guardrails.yaml", &blank);
    let run = repo.validate();
    let (line, column) = crate::common::at(&blank, "\"\"");
    crate::common::expect_error(&run, "guardrails.yaml", line, column, Some("spec.relax[0].reason"), "empty reason");
}

#[test]
fn relaxing_an_unknown_rule_or_loosening_nothing_lists_the_rules() {
    let repo = TempRepo::valid();
    repo.write("guardrails.yaml", RELAX_LIMITS.replace("rule: requireNodePoolLimits", "rule: requireLimits"));
    let run = repo.validate();
    let (line, column) = crate::common::at(RELAX_LIMITS, "requireNodePoolLimits");
    let d = crate::common::expect_error(
        &run,
        "guardrails.yaml",
        line,
        column,
        Some("spec.relax[0].rule"),
        "`requireLimits` is not a built-in guardrail",
    );
    let hint = d["hint"].as_str().unwrap();
    for rule in ["requireNodePoolLimits", "minSpotInstanceTypes", "forbiddenInstanceFamilies"] {
        assert!(hint.contains(rule), "{hint}");
    }
    repo.write(
        "guardrails.yaml",
        RELAX_LIMITS.replace("rule: requireNodePoolLimits", "rule: forbiddenInstanceFamilies\n      values: [t2]"),
    );
    let run = repo.validate();
    let d = errors(&run).into_iter().find(|e| e["field"] == "spec.relax[0].values[0]").expect("an error at the family");
    assert!(d["message"].as_str().unwrap().contains("does not loosen"), "{d}");
    assert!(d["hint"].as_str().unwrap().contains("minSpotInstanceTypes"), "{d}");
}

#[test]
fn an_exception_skips_only_its_rule_and_only_for_its_object() {
    let repo = TempRepo::valid();
    let key = "capstan.io/guardrail-exception.requireNodePoolLimits";
    let excepted = annotated(&pool_without_limits("default"), key, "bounded by the batch queue's own concurrency");
    repo.write("base/nodepools/default.yaml", &excepted);
    repo.write("base/nodepools/other.yaml", pool_without_limits("other"));
    let run = repo.validate();
    let no_limits: Vec<String> = errors(&run)
        .iter()
        .filter(|e| e["message"] == "guardrail: the NodePool has no limits")
        .map(|e| e["object"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(no_limits, ["NodePool/other"], "only the annotated pool is excepted");
    let e = &run.json()["exceptions"][0];
    assert_eq!(e["object"], "NodePool/default");
    assert_eq!(e["rule"], "requireNodePoolLimits");
    assert_eq!(e["clusters"], serde_json::json!(["dev"]));
    let (line, column) = crate::common::at(&excepted, key);
    assert_eq!((e["line"].as_u64(), e["column"].as_u64()), (Some(line), Some(column)), "{e}");

    // The same pool is still held to the other rules.
    repo.remove("base/nodepools/other.yaml");
    let spot = annotated(&SPOT_POOL.replace("name: spot", "name: default"), key, "x")
        .replace("  limits:\n    cpu: \"10\"\n", "");
    repo.write("base/nodepools/default.yaml", &spot);
    let (_, errs, _) = messages(&repo);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].contains("at least 15"), "{errs:?}");
}

#[test]
fn an_exception_without_a_reason_or_rule_excepts_nothing() {
    let repo = TempRepo::valid();
    let key = "capstan.io/guardrail-exception.requireNodePoolLimits";
    let pool = annotated(&pool_without_limits("default"), key, " ");
    repo.write("base/nodepools/default.yaml", &pool);
    let run = repo.validate();
    let (line, column) = crate::common::at(&pool, key);
    let field = format!("metadata.annotations.{key}");
    crate::common::expect_error(&run, "base/nodepools/default.yaml", line, column, Some(&field), "empty reason");
    assert!(errors(&run).iter().any(|e| e["message"] == "guardrail: the NodePool has no limits"));

    let typo = "capstan.io/guardrail-exception.requireLimits";
    repo.write("base/nodepools/default.yaml", annotated(&pool_without_limits("default"), typo, "x"));
    let run = repo.validate();
    let bad = errors(&run).into_iter().find(|e| e["message"].as_str().unwrap().contains("names no guardrail")).unwrap();
    assert!(bad["hint"].as_str().unwrap().contains(key), "{bad}");
}

#[test]
fn an_instance_group_carries_the_exception_of_its_node_pool() {
    let repo = TempRepo::valid();
    let ig = crate::common::karpenter_ig("k", "  image: ami-1\n  subnets: [us-east-1a]\n").replace(
        "  name: k\n",
        "  name: k\n  annotations:\n    capstan.io/guardrail-exception.requireNodePoolLimits: sized by hand\n",
    );
    repo.write("clusters/dev/instancegroups/k.yaml", &ig);
    let run = repo.validate();
    assert!(!errors(&run).iter().any(|e| e["message"] == "guardrail: the NodePool has no limits"), "{}", run.stdout);
    let e = &run.json()["exceptions"][0];
    assert_eq!(e["object"], "NodePool/k");
    assert!(e["file"].as_str().unwrap().ends_with("clusters/dev/instancegroups/k.yaml"), "{e}");
}

#[test]
fn an_instance_group_exception_read_as_a_boolean_is_an_error() {
    let repo = TempRepo::valid();
    let key = "capstan.io/guardrail-exception.requireNodePoolLimits";
    let ig = crate::common::karpenter_ig("k", "  image: ami-1\n  subnets: [us-east-1a]\n")
        .replace("  name: k\n", &format!("  name: k\n  annotations:\n    {key}: yes\n"));
    repo.write("clusters/dev/instancegroups/k.yaml", &ig);
    let run = repo.validate();
    let (line, column) = crate::common::at(&ig, key);
    let field = format!("metadata.annotations.{key}");
    crate::common::expect_error(&run, "clusters/dev/instancegroups/k.yaml", line, column, Some(&field), "boolean true");
    let bad = errors(&run).into_iter().find(|e| e["message"].as_str().unwrap().contains("is not text")).unwrap();
    assert!(bad["message"].as_str().unwrap().contains("\"yes\""), "{bad}");
    assert!(errors(&run).iter().any(|e| e["message"] == "guardrail: the NodePool has no limits"), "{}", run.stdout);
    assert_eq!(run.json()["exceptions"].as_array().unwrap().len(), 0);
}

#[test]
fn validate_prints_the_relaxations_and_exceptions_in_use() {
    let repo = TempRepo::valid();
    repo.write("guardrails.yaml", RELAX_LIMITS);
    repo.write(
        "base/nodepools/default.yaml",
        annotated(crate::common::NODE_POOL, "capstan.io/guardrail-exception.forbiddenInstanceFamilies", "m1 bench box"),
    );
    let run = repo.validate_text();
    assert_eq!(run.code, 0, "{}", run.stdout);
    let out = run.stdout;
    assert!(out.contains("guardrails loosened on record:"), "{out}");
    assert!(
        out.contains("guardrails.yaml:7:13: relaxation: requireNodePoolLimits not required for the repository; reason: dev accounts are bounded by their EC2 quotas"),
        "{out}"
    );
    assert!(
        out.contains("base/nodepools/default.yaml:6:5: exception: forbiddenInstanceFamilies skipped for NodePool/default (clusters dev); reason: m1 bench box"),
        "{out}"
    );
}

#[test]
fn audit_names_the_commit_and_author_that_added_each_relaxation() {
    use crate::gitops::{Repos, git};
    let repos = Repos::new();
    repos.write("guardrails.yaml", RELAX_LIMITS);
    let relaxed = repos
        .commit_with("Relax pool limits for dev", &["-c", "user.name=Bob Builder", "-c", "user.email=bob@example.com"]);
    repos.write(
        "base/nodepools/default.yaml",
        &annotated(crate::common::NODE_POOL, "capstan.io/guardrail-exception.requireNodePoolLimits", "bench pool"),
    );
    let excepted = repos.commit("Except the default pool");
    repos.write(
        "base/nodepools/default.yaml",
        &annotated(
            &crate::common::NODE_POOL.replace("cpu: \"100\"", "cpu: \"200\""),
            "capstan.io/guardrail-exception.requireNodePoolLimits",
            "bench pool",
        ),
    );
    repos.commit("Raise the cpu limit");
    let work = repos.work();

    let run = capstan(&["audit", work.to_str().unwrap(), "--guardrails", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let all = run.json();
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    let relaxation = all.iter().find(|a| a["kind"] == "relaxation").unwrap();
    assert_eq!(relaxation["sha"], relaxed.as_str());
    assert_eq!(relaxation["author"], "Bob Builder <bob@example.com>");
    assert_eq!(relaxation["subject"], "Relax pool limits for dev");
    let exception = all.iter().find(|a| a["kind"] == "exception").unwrap();
    assert_eq!(exception["sha"], excepted.as_str(), "the cpu change later in the file does not move it");
    assert_eq!(exception["author"], "Alice Admin <alice@example.com>");

    let text = capstan(&["audit", work.to_str().unwrap(), "--guardrails"]).stdout;
    assert!(text.contains(&format!("added in {} ", &relaxed[..12])), "{text}");
    assert!(text.contains("Bob Builder <bob@example.com>"), "{text}");

    // A new reason is a new decision: it is attributed to the commit that wrote it.
    repos.write("guardrails.yaml", &RELAX_LIMITS.replace("dev accounts", "dev and test accounts"));
    let reworded = repos.commit("Say which accounts");
    let run = capstan(&["audit", work.to_str().unwrap(), "--guardrails", "--format", "json"]);
    let all = run.json();
    let relaxation = all.as_array().unwrap().iter().find(|a| a["kind"] == "relaxation").unwrap().clone();
    assert_eq!(relaxation["sha"], reworded.as_str());
    assert_eq!(git(&work, &["rev-parse", "HEAD"]), reworded);
}

#[test]
fn an_exception_on_an_object_no_rule_checks_is_a_warning() {
    let repo = TempRepo::valid();
    let key = "capstan.io/guardrail-exception.requireNodePoolLimits";
    repo.write("base/nodeclasses/default.yaml", annotated(crate::common::NODE_CLASS, key, "x"));
    let (code, _, warnings) = messages(&repo);
    assert_eq!(code, 0);
    assert!(
        warnings.iter().any(|w| w == "no guardrail checks EC2NodeClass/default; the exception has no effect"),
        "{warnings:?}"
    );
    assert_eq!(repo.validate().json()["exceptions"].as_array().unwrap().len(), 0);
}

#[test]
fn audit_follows_a_merged_branch_to_the_commit_that_relaxed() {
    use crate::gitops::{Repos, git};
    let repos = Repos::new();
    let work = repos.work();
    git(&work, &["checkout", "-q", "-b", "relax"]);
    repos.write("guardrails.yaml", RELAX_LIMITS);
    git(&work, &["add", "-A"]);
    git(&work, &["-c", "user.name=Bob Builder", "commit", "-q", "-m", "Relax on a branch"]);
    let on_branch = git(&work, &["rev-parse", "HEAD"]);
    git(&work, &["checkout", "-q", "main"]);
    repos.write("README.md", "notes\n");
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "Notes"]);
    git(&work, &["merge", "-q", "--no-ff", "-m", "Merge relax", "relax"]);

    let run = capstan(&["audit", work.to_str().unwrap(), "--guardrails", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let all = run.json();
    assert_eq!(all[0]["sha"], on_branch.as_str(), "{all}");
    assert_eq!(all[0]["author"], "Bob Builder <alice@example.com>");
}
