//! Every category of bad input gets exit 1 and a message naming file:line:column, the object,
//! the field path and a hint. Positions are computed from the test's own YAML text.

use crate::common::{TempRepo, at, capstan, errors, expect_error, karpenter_ig};

/// A NodePool whose template spec ends with `extra` (indented six spaces) and whose spec ends
/// with `tail` (indented two spaces).
fn pool(extra: &str, tail: &str) -> String {
    format!(
        "apiVersion: karpenter.sh/v1\nkind: NodePool\nmetadata:\n  name: default\nspec:\n  template:\n    spec:\n      nodeClassRef:\n        group: karpenter.k8s.aws\n        kind: EC2NodeClass\n        name: default\n{extra}  limits:\n    cpu: \"100\"\n{tail}"
    )
}

fn with_pool(text: &str) -> TempRepo {
    let repo = TempRepo::valid();
    repo.write("base/nodepools/default.yaml", text);
    repo
}

const POOL_FILE: &str = "base/nodepools/default.yaml";

#[test]
fn valid_repository_passes() {
    let run = TempRepo::valid().validate();
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(errors(&run).is_empty());
}

#[test]
fn yaml_syntax_error() {
    let text = pool("      requirements: [\n", "");
    let run = with_pool(&text).validate();
    assert_eq!(run.code, 1);
    let e = &errors(&run)[0];
    assert!(e["file"].as_str().unwrap().ends_with(POOL_FILE));
    assert!(e["message"].as_str().unwrap().starts_with("YAML syntax error"), "{e}");
    assert!(e["line"].as_u64().unwrap() >= 12, "{e}");
    assert!(!e["hint"].as_str().unwrap().is_empty());
}

#[test]
fn unknown_field() {
    let text = pool("      requirements: []\n      expireAfterr: 720h\n", "");
    let (l, c) = at(&text, "expireAfterr");
    let d = expect_error(
        &with_pool(&text).validate(),
        POOL_FILE,
        l,
        c,
        Some("spec.template.spec.expireAfterr"),
        "unknown field `expireAfterr`",
    );
    assert!(d["hint"].as_str().unwrap().contains("expireAfter"), "hint lists known fields: {d}");
    assert_eq!(d["object"], "NodePool/default");
}

#[test]
fn wrong_type() {
    let text = pool("      requirements: []\n", "  weight: ten\n");
    let (l, c) = at(&text, "ten");
    expect_error(&with_pool(&text).validate(), POOL_FILE, l, c, Some("spec.weight"), "invalid type");
}

#[test]
fn bad_quantity() {
    let text = pool("      requirements: []\n", "").replace("cpu: \"100\"", "cpu: 10x");
    let (l, c) = at(&text, "10x");
    let d =
        expect_error(&with_pool(&text).validate(), POOL_FILE, l, c, Some("spec.limits.cpu"), "invalid quantity `10x`");
    assert!(d["hint"].as_str().unwrap().contains("500m"));
}

#[test]
fn unknown_requirement_operator() {
    let text = pool(
        "      requirements:\n        - key: kubernetes.io/arch\n          operator: Inside\n          values: [amd64]\n",
        "",
    );
    let (l, c) = at(&text, "Inside");
    let d = expect_error(
        &with_pool(&text).validate(),
        POOL_FILE,
        l,
        c,
        Some("spec.template.spec.requirements[0].operator"),
        "unknown variant `Inside`",
    );
    assert!(d["hint"].as_str().unwrap().contains("NotIn"));
}

#[test]
fn gt_with_non_integer() {
    let text = pool(
        "      requirements:\n        - key: karpenter.k8s.aws/instance-cpu\n          operator: Gt\n          values: [\"four\"]\n",
        "",
    );
    let (l, c) = at(&text, "values: [\"four\"]");
    expect_error(
        &with_pool(&text).validate(),
        POOL_FILE,
        l,
        c,
        Some("spec.template.spec.requirements[0].values"),
        "non-negative integer",
    );
}

#[test]
fn lt_with_two_values() {
    let text = pool(
        "      requirements:\n        - key: karpenter.k8s.aws/instance-cpu\n          operator: Lt\n          values: [\"4\", \"8\"]\n",
        "",
    );
    let (l, c) = at(&text, "values: [\"4\"");
    expect_error(
        &with_pool(&text).validate(),
        POOL_FILE,
        l,
        c,
        Some("spec.template.spec.requirements[0].values"),
        "exactly one",
    );
}

#[test]
fn taint_with_bad_effect() {
    let text = pool(
        "      requirements: []\n      taints:\n        - key: example.com/gpu\n          effect: NoScheduled\n",
        "",
    );
    let (l, c) = at(&text, "NoScheduled");
    expect_error(
        &with_pool(&text).validate(),
        POOL_FILE,
        l,
        c,
        Some("spec.template.spec.taints[0].effect"),
        "unknown variant `NoScheduled`",
    );
}

#[test]
fn same_kind_and_name_twice() {
    let repo = TempRepo::valid();
    let text = crate::common::NODE_POOL;
    repo.write("base/nodepools/other.yaml", text);
    let (l, c) = at(text, "default");
    let d = expect_error(&repo.validate(), "base/nodepools/other.yaml", l, c, Some("metadata.name"), "defined twice");
    assert!(d["message"].as_str().unwrap().contains("base/nodepools/default.yaml:4:9"), "names the first: {d}");
}

#[test]
fn node_class_ref_to_missing_node_class() {
    let text = pool("      requirements: []\n", "").replacen("        name: default", "        name: gpu", 1);
    let (l, c) = at(&text, "gpu");
    let d = expect_error(
        &with_pool(&text).validate(),
        POOL_FILE,
        l,
        c,
        Some("spec.template.spec.nodeClassRef.name"),
        "EC2NodeClass `gpu` does not exist",
    );
    assert!(d["hint"].as_str().unwrap().contains("default"), "hint names what exists: {d}");
}

#[test]
fn cluster_folder_not_in_fleet() {
    let repo = TempRepo::valid();
    repo.write(
        "clusters/staging/policy.yaml",
        "apiVersion: capstan.io/v1alpha1\nkind: ClusterPolicy\nmetadata:\n  name: default\n",
    );
    let (l, c) = at(crate::common::FLEET, "clusters:");
    let d =
        expect_error(&repo.validate(), "fleet.yaml", l, c, Some("spec.clusters"), "`clusters/staging` is not listed");
    assert_eq!(d["object"], "Fleet/test");
}

#[test]
fn bad_cron_schedule_in_budget() {
    let tail = "  disruption:\n    consolidateAfter: 1m\n    budgets:\n      - nodes: \"0\"\n        schedule: \"0 25 * * *\"\n        duration: 8h\n";
    let text = pool("      requirements: []\n", tail);
    let (l, c) = at(&text, "\"0 25");
    let d = expect_error(
        &with_pool(&text).validate(),
        POOL_FILE,
        l,
        c,
        Some("spec.disruption.budgets[0].schedule"),
        "invalid cron schedule",
    );
    assert!(d["hint"].as_str().unwrap().contains("minute hour"));
}

#[test]
fn bad_duration() {
    let tail = "  disruption:\n    consolidateAfter: 5 minutes\n";
    let text = pool("      requirements: []\n", tail);
    let (l, c) = at(&text, "5 minutes");
    expect_error(
        &with_pool(&text).validate(),
        POOL_FILE,
        l,
        c,
        Some("spec.disruption.consolidateAfter"),
        "invalid duration `5 minutes`",
    );
}

#[test]
fn pick_one_notation_from_documentation_is_explained() {
    let text = pool("      requirements: []\n      expireAfter: 720h | Never\n", "");
    let (l, c) = at(&text, "720h | Never");
    let d = expect_error(
        &with_pool(&text).validate(),
        POOL_FILE,
        l,
        c,
        Some("spec.template.spec.expireAfter"),
        "invalid duration",
    );
    assert!(d["hint"].as_str().unwrap().contains("keep exactly one"), "{d}");
}

#[test]
fn min_values_larger_than_values() {
    let text = pool(
        "      requirements:\n        - key: karpenter.k8s.aws/instance-category\n          operator: In\n          values: [c, m]\n          minValues: 3\n",
        "",
    );
    let (l, c) = at(&text, "3\n");
    expect_error(
        &with_pool(&text).validate(),
        POOL_FILE,
        l,
        c,
        Some("spec.template.spec.requirements[0].minValues"),
        "minValues 3 is larger than the 2 values",
    );
}

#[test]
fn ig_image_with_url() {
    let repo = TempRepo::valid();
    let text = karpenter_ig("gpu", "  image: https://example.com/ami.img\n  maxSize: 3\n  subnets: [us-east-1a]\n");
    repo.write("clusters/dev/instancegroups/gpu.yaml", &text);
    let (l, c) = at(&text, "https://");
    let d =
        expect_error(&repo.validate(), "clusters/dev/instancegroups/gpu.yaml", l, c, Some("spec.image"), "is a URL");
    assert_eq!(d["object"], "InstanceGroup/gpu");
}

#[test]
fn zero_or_negative_min_size_on_karpenter_ig() {
    for min in ["0", "-2"] {
        let repo = TempRepo::valid();
        let text = karpenter_ig(
            "batch",
            &format!("  image: ami-0123456789abcdef0\n  minSize: {min}\n  maxSize: 3\n  subnets: [us-east-1a]\n"),
        );
        repo.write("clusters/dev/instancegroups/batch.yaml", &text);
        let (l, c) = at(&text, &format!("{min}\n  maxSize"));
        expect_error(
            &repo.validate(),
            "clusters/dev/instancegroups/batch.yaml",
            l,
            c,
            Some("spec.minSize"),
            &format!("minSize {min} is not allowed"),
        );
    }
}

#[test]
fn file_not_utf8() {
    let repo = TempRepo::valid();
    let mut bytes = crate::common::NODE_POOL.replace("name: default\nspec", "name: caf\u{e9}\nspec").into_bytes();
    // Latin-1 é instead of UTF-8.
    let i = bytes.windows(2).position(|w| w == [0xc3, 0xa9]).unwrap();
    bytes.splice(i..i + 2, [0xe9]);
    repo.write("base/nodepools/latin1.yaml", bytes);
    let run = repo.validate();
    assert_eq!(run.code, 1);
    let e = errors(&run)
        .into_iter()
        .find(|e| e["file"].as_str().unwrap().ends_with("latin1.yaml"))
        .expect("error for the file");
    assert!(e["message"].as_str().unwrap().contains("UTF-8"));
    assert_eq!((e["line"].as_u64(), e["column"].as_u64()), (Some(4), Some(12)));
}

#[test]
fn yaml_alias_bomb_fails_fast() {
    let repo = TempRepo::valid();
    let mut text = String::from("a: &a [\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\"]\n");
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
    for w in names.windows(2) {
        let refs = vec![format!("*{}", w[0]); 10].join(",");
        text.push_str(&format!("{}: &{} [{refs}]\n", w[1], w[1]));
    }
    repo.write("base/nodepools/bomb.yaml", &text);
    let started = std::time::Instant::now();
    let run = repo.validate();
    assert!(started.elapsed().as_secs() < 10, "took {:?}", started.elapsed());
    assert_eq!(run.code, 1);
    let e =
        errors(&run).into_iter().find(|e| e["file"].as_str().unwrap().ends_with("bomb.yaml")).expect("bomb reported");
    assert!(e["message"].as_str().unwrap().contains("alias bomb"), "{e}");
}

#[test]
fn every_bad_file_is_reported() {
    let repo = TempRepo::valid();
    repo.write("base/nodepools/syntax.yaml", "a: [\n");
    repo.write(
        "base/nodepools/quantity.yaml",
        crate::common::NODE_POOL.replace("name: default\nspec", "name: q\nspec").replace("\"100\"", "lots"),
    );
    repo.write(
        "clusters/dev/instancegroups/url.yaml",
        karpenter_ig("url", "  image: s3://bucket/img\n  maxSize: 1\n  subnets: [us-east-1a]\n"),
    );
    let run = repo.validate();
    assert_eq!(run.code, 1);
    let files: Vec<String> = errors(&run).iter().map(|e| e["file"].as_str().unwrap().to_string()).collect();
    for f in ["syntax.yaml", "quantity.yaml", "url.yaml"] {
        assert!(files.iter().any(|x| x.ends_with(f)), "{f} not reported in {files:?}");
    }
}

#[test]
fn several_errors_in_one_document_are_all_reported() {
    let text =
        pool("      requirements: []\n      expireAfter: soon\n      colour: blue\n", "").replace("\"100\"", "10x");
    let run = with_pool(&text).validate();
    let fields: Vec<String> = errors(&run).iter().filter_map(|e| e["field"].as_str().map(str::to_string)).collect();
    for f in ["spec.template.spec.expireAfter", "spec.template.spec.colour", "spec.limits.cpu"] {
        assert!(fields.iter().any(|x| x == f), "{f} missing from {fields:?}");
    }
}

#[test]
fn text_format_names_place_object_field_and_hint() {
    let text = pool("      requirements: []\n", "").replace("\"100\"", "10x");
    let repo = with_pool(&text);
    let run = repo.validate_text();
    assert_eq!(run.code, 1);
    let (l, c) = at(&text, "10x");
    let expected = format!("{POOL_FILE}:{l}:{c}: error: NodePool/default spec.limits.cpu: invalid quantity `10x`");
    assert!(run.stdout.contains(&expected), "{}", run.stdout);
    assert!(run.stdout.contains("\n  hint: use a Kubernetes quantity"), "{}", run.stdout);
}

#[test]
fn usage_errors_exit_3() {
    assert_eq!(capstan(&["validate", "--format", "xml"]).code, 3);
    assert_eq!(capstan(&["validate", "/nonexistent/repo"]).code, 3);
    let repo = TempRepo::valid();
    let run = capstan(&["render", repo.path().to_str().unwrap(), "--cluster", "nope"]);
    assert_eq!(run.code, 3);
    assert!(run.stderr.contains("not listed in fleet.yaml"), "{}", run.stderr);
}

/// The errors and warnings of a JSON validate run, as `(severity, field, message)`.
fn findings(run: &crate::common::Run) -> Vec<(String, String, String)> {
    let v = run.json();
    v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let s = |k: &str| d[k].as_str().unwrap_or("").to_string();
            (s("severity"), s("field"), s("message"))
        })
        .collect()
}

/// The shared valid repository with its NodePool's requirements replaced by `requirements`
/// (indented eight spaces, list items) and its template labels set to `labels`.
fn repo_with_requirements(requirements: &str, labels: &str) -> TempRepo {
    let text = crate::common::NODE_POOL.replace(
        "        - key: karpenter.sh/capacity-type\n          operator: In\n          values: [on-demand]\n",
        requirements,
    );
    let text = if labels.is_empty() {
        text
    } else {
        text.replace("  template:\n", &format!("  template:\n    metadata:\n      labels:\n{labels}"))
    };
    let repo = TempRepo::valid();
    repo.write(POOL_FILE, text);
    repo
}

// Karpenter's NodePool CRD: "requirements with operator 'In' must have a value defined" — the
// rule names In only, so NotIn with no values is accepted (and excludes nothing).
#[test]
fn crd_accepts_not_in_without_values_and_refuses_in_without_values() {
    let run = repo_with_requirements(
        "        - key: karpenter.k8s.aws/instance-family\n          operator: NotIn\n          values: []\n",
        "",
    )
    .validate();
    assert!(errors(&run).is_empty(), "{}", run.stdout);
    let run = repo_with_requirements(
        "        - key: karpenter.k8s.aws/instance-family\n          operator: In\n          values: []\n",
        "",
    )
    .validate();
    assert_eq!(run.code, 1, "{}", run.stdout);
    let errs = errors(&run);
    assert!(
        errs.iter().any(|e| e["field"] == "spec.template.spec.requirements[0].values"
            && e["message"].as_str().unwrap().contains("must have a value defined")),
        "{errs:#?}"
    );
}

// No CRD rule limits Exists / DoesNotExist values; Karpenter ignores them, and so do we, warning.
#[test]
fn crd_accepts_exists_and_does_not_exist_with_values_warning_they_are_ignored() {
    let run = repo_with_requirements(
        "        - key: example.com/team\n          operator: Exists\n          values: [a]\n        - key: example.com/gpu\n          operator: DoesNotExist\n          values: [b]\n",
        "",
    )
    .validate();
    assert!(errors(&run).is_empty(), "{}", run.stdout);
    let found = findings(&run);
    for i in 0..2 {
        let field = format!("spec.template.spec.requirements[{i}].values");
        assert!(
            found.iter().any(|(s, f, m)| s == "warning" && *f == field && m.contains("ignores its values")),
            "{found:#?}"
        );
    }
}

// CRD: "requirements operator 'Gt', 'Lt', 'Gte', or 'Lte' must have a single positive integer
// value" — `x.values.size() == 1 && int(x.values[0]) >= 0`, where CEL's int is 64-bit signed.
#[test]
fn crd_numeric_requirement_value_is_a_non_negative_int64() {
    let numeric = |op: &str, value: &str| {
        repo_with_requirements(
            &format!(
                "        - key: karpenter.k8s.aws/instance-memory\n          operator: {op}\n          values: [\"{value}\"]\n"
            ),
            "",
        )
        .validate()
    };
    for op in ["Gt", "Gte", "Lt"] {
        let run = numeric(op, "9223372036854775807");
        assert!(errors(&run).is_empty(), "{op}: {}", run.stdout);
    }
    for value in ["9223372036854775808", "18446744073709551615", "-1"] {
        let run = numeric("Gt", value);
        assert_eq!(run.code, 1, "{value}: {}", run.stdout);
        let errs = errors(&run);
        assert!(
            errs.iter().any(|e| e["field"] == "spec.template.spec.requirements[0].values"
                && e["message"].as_str().unwrap().contains("non-negative integer")),
            "{value}: {errs:#?}"
        );
    }
}

// The NodePool CRD lists `requirements` under spec.template.spec's `required` (an empty list is
// allowed).
#[test]
fn crd_refuses_a_node_pool_without_requirements() {
    let text = pool("", "");
    let (l, c) = at(&text, "spec:\n      nodeClassRef");
    let d = expect_error(
        &with_pool(&text).validate(),
        POOL_FILE,
        l,
        c,
        Some("spec.template.spec"),
        "missing field `requirements`",
    );
    let hint = d["hint"].as_str().unwrap();
    assert!(hint.contains("requirements") && hint.contains("karpenter.sh/capacity-type"), "{d}");
    let run = repo_with_requirements("        []\n", "").validate();
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(!errors(&run).iter().any(|e| e["message"].as_str().unwrap().contains("requirements")), "{}", run.stdout);
}

// CRD: `self.all(x, x in ["karpenter.sh/capacity-type", "karpenter.sh/nodepool"] ||
// !x.find("^([^/]+)").endsWith("karpenter.sh"))` (message: label domain "karpenter.sh" is
// restricted), and the same for "karpenter.k8s.aws" with its list of well-known labels: a domain
// that merely ends with the restricted one is refused too.
#[test]
fn crd_refuses_label_domains_ending_with_karpenter_domains() {
    let run = repo_with_requirements(
        "        - key: evilkarpenter.k8s.aws/x\n          operator: In\n          values: [a]\n",
        "        notkarpenter.sh/x: a\n",
    )
    .validate();
    assert_eq!(run.code, 1, "{}", run.stdout);
    let errs = errors(&run);
    let has = |field: &str, domain: &str| {
        errs.iter().any(|e| {
            e["field"] == field
                && e["message"].as_str().unwrap().contains(&format!("label domain \"{domain}\" is restricted"))
        })
    };
    assert!(has("spec.template.metadata.labels.notkarpenter.sh/x", "karpenter.sh"), "{errs:#?}");
    assert!(has("spec.template.spec.requirements[0].key", "karpenter.k8s.aws"), "{errs:#?}");
}

// The CRD's "karpenter.k8s.aws" list includes karpenter.k8s.aws/nitro-sandbox; a domain that
// only starts with a Karpenter domain is not restricted.
#[test]
fn crd_accepts_the_labels_its_domain_rules_list() {
    let run = repo_with_requirements(
        "        - key: karpenter.k8s.aws/nitro-sandbox\n          operator: Exists\n        - key: karpenter.sh/capacity-type\n          operator: In\n          values: [on-demand]\n",
        "        karpenter.sh.example.com/team: a\n        karpenter.k8s.aws/nitro-sandbox: \"true\"\n",
    )
    .validate();
    assert!(errors(&run).is_empty(), "{}", run.stdout);
}

const CLASS_FILE: &str = "base/nodeclasses/default.yaml";

// The EC2NodeClass CRD (since v1.13): `cpuOptions.nestedVirtualization`, `enum: [enabled, disabled]`.
#[test]
fn crd_ec2nodeclass_cpu_options_are_accepted_and_reported_as_not_acted_on() {
    let repo = TempRepo::valid();
    repo.write(CLASS_FILE, format!("{}  cpuOptions:\n    nestedVirtualization: enabled\n", crate::common::NODE_CLASS));
    let run = repo.validate();
    assert!(errors(&run).is_empty(), "{}", run.stdout);
    let found = findings(&run);
    assert!(
        found.iter().any(|(s, f, m)| s == "warning" && f == "spec.cpuOptions" && m.contains("not acted on")),
        "{found:#?}"
    );
    // Quoted: a bare `on` is the boolean true, as Kubernetes reads YAML.
    let text = format!("{}  cpuOptions:\n    nestedVirtualization: \"on\"\n", crate::common::NODE_CLASS);
    repo.write(CLASS_FILE, &text);
    let (l, c) = at(&text, "\"on\"\n");
    let d = expect_error(
        &repo.validate(),
        CLASS_FILE,
        l,
        c,
        Some("spec.cpuOptions.nestedVirtualization"),
        "unknown variant",
    );
    assert!(d["hint"].as_str().unwrap().contains("enabled"), "{d}");
}

// The EC2NodeClass CRD does not list `spec` under `required`, but its spec requires
// amiSelectorTerms, securityGroupSelectorTerms and subnetSelectorTerms: such a class loads and
// cannot launch.
#[test]
fn crd_ec2nodeclass_without_spec_loads_and_is_reported_as_unable_to_launch() {
    let repo = TempRepo::valid();
    let text = "apiVersion: karpenter.k8s.aws/v1\nkind: EC2NodeClass\nmetadata:\n  name: default\n";
    repo.write(CLASS_FILE, text);
    let run = repo.validate();
    assert_eq!(run.code, 1, "{}", run.stdout);
    let errs = errors(&run);
    assert!(!errs.iter().any(|e| e["message"].as_str().unwrap().contains("missing field")), "{errs:#?}");
    assert!(
        errs.iter().any(|e| e["object"] == "EC2NodeClass/default"
            && e["message"].as_str().unwrap().contains("has no spec, so it cannot launch")),
        "{errs:#?}"
    );
    let render = repo.render("dev");
    assert!(!render.stderr.contains("panicked"), "{}", render.stderr);
}
