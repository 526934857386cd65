use crate::policy::{Diagnostic, EffectivePolicy, Severity, Snapshot, validate};

const FLEET: &str = "apiVersion: capstan.io/v1alpha1\nkind: Fleet\nmetadata: {name: f}\nspec:\n  clusters:\n    - {name: dev, kopsName: dev.example.com, stateStore: \"file:///s\", region: us-east-1}\n";

const TEMPLATE: &str = "apiVersion: v1
kind: PodTemplate
metadata:
  name: chunk
template:
  metadata:
    labels: {app: buffer}
  spec:
    containers:
      - name: pause
        image: pause
        resources:
          requests: {cpu: \"1\", memory: 1Gi}
";

fn buffer(spec: &str) -> String {
    format!("apiVersion: autoscaling.x-k8s.io/v1beta1\nkind: CapacityBuffer\nmetadata:\n  name: warm\nspec:\n{spec}")
}

fn run(files: &[(&str, &str)]) -> (Vec<Diagnostic>, EffectivePolicy) {
    let mut snap = Snapshot::default();
    snap.insert("fleet.yaml", FLEET.as_bytes().to_vec());
    for (path, text) in files {
        snap.insert(*path, text.as_bytes().to_vec());
    }
    let v = validate(&snap, Some("dev")).expect("cluster is listed");
    let errors = v.diagnostics.sorted().into_iter().filter(|d| d.severity == Severity::Error).collect();
    (errors, v.policies.into_iter().next().unwrap())
}

/// The one error, checked for its place.
fn one(errors: &[Diagnostic], file: &str, line: usize, column: usize, field: &str, says: &str) {
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let d = &errors[0];
    assert_eq!((d.file.as_str(), d.line, d.column), (file, line, column), "{d:#?}");
    assert_eq!(d.field.as_deref(), Some(field), "{d:#?}");
    assert!(d.message.contains(says), "{d:#?}");
}

#[test]
fn a_buffer_and_its_template_load() {
    let b = buffer("  podTemplateRef: {name: chunk}\n  replicas: 2\n");
    let text = format!("{b}---\n{TEMPLATE}");
    let (errors, policy) = run(&[("base/capacitybuffers/warm.yaml", &text)]);
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(policy.capacity_buffers.len(), 1);
    assert_eq!(policy.pod_templates.len(), 1);
    let older = b.replace("v1beta1", "v1alpha1");
    let (errors, policy) = run(&[("clusters/dev/capacitybuffers/w.yaml", &format!("{older}---\n{TEMPLATE}"))]);
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(policy.capacity_buffers[0].value.spec.replicas, Some(2));
}

#[test]
fn references_are_checked_where_they_are_written() {
    let (errors, _) =
        run(&[("base/capacitybuffers/w.yaml", &buffer("  podTemplateRef: {name: gone}\n  replicas: 1\n"))]);
    one(&errors, "base/capacitybuffers/w.yaml", 6, 26, "spec.podTemplateRef.name", "no PodTemplate `gone`");
    let both = buffer("  podTemplateRef: {name: chunk}\n  scalableRef: {kind: Deployment, name: web}\n  replicas: 1\n");
    let (errors, _) = run(&[("base/capacitybuffers/w.yaml", &format!("{both}---\n{TEMPLATE}"))]);
    one(&errors, "base/capacitybuffers/w.yaml", 5, 1, "spec", "exactly one of");
    let (errors, _) = run(&[(
        "base/capacitybuffers/w.yaml",
        &format!("{}---\n{TEMPLATE}", buffer("  podTemplateRef: {name: chunk}\n")),
    )]);
    one(&errors, "base/capacitybuffers/w.yaml", 6, 3, "spec.podTemplateRef", "needs replicas or limits");
    let job = buffer("  scalableRef: {kind: Job, name: web}\n  percentage: 10\n");
    let (errors, _) = run(&[("base/capacitybuffers/w.yaml", &job)]);
    one(&errors, "base/capacitybuffers/w.yaml", 6, 23, "spec.scalableRef.kind", "not supported");
    let stray = buffer("  podTemplateRef: {name: chunk}\n  replicas: 1\n  percentage: 20\n");
    let (errors, _) = run(&[("base/capacitybuffers/w.yaml", &format!("{stray}---\n{TEMPLATE}"))]);
    one(&errors, "base/capacitybuffers/w.yaml", 8, 15, "spec.percentage", "only with scalableRef");
}

#[test]
fn fields_counts_and_windows_are_checked() {
    let typo = buffer("  scalableRef: {kind: Deployment, name: web}\n  percentag: 10\n");
    let (errors, _) = run(&[("base/capacitybuffers/w.yaml", &typo)]);
    one(&errors, "base/capacitybuffers/w.yaml", 7, 3, "spec.percentag", "unknown field");
    let negative = buffer("  scalableRef: {kind: Deployment, name: web}\n  replicas: -1\n");
    let (errors, _) = run(&[("base/capacitybuffers/w.yaml", &negative)]);
    one(&errors, "base/capacitybuffers/w.yaml", 7, 13, "spec.replicas", "out of range");
    let windowed = buffer("  scalableRef: {kind: Deployment, name: web}\n  replicas: 1\n")
        .replace("  name: warm\n", "  name: warm\n  annotations:\n    capstan.io/buffer-schedule: \"0 8 * * mon-fry\"\n    capstan.io/buffer-duration: 10h\n");
    let (errors, _) = run(&[("base/capacitybuffers/w.yaml", &windowed)]);
    one(
        &errors,
        "base/capacitybuffers/w.yaml",
        6,
        33,
        "metadata.annotations.capstan.io/buffer-schedule",
        "invalid cron",
    );
    let half = windowed.replace("    capstan.io/buffer-schedule: \"0 8 * * mon-fry\"\n", "");
    let (errors, _) = run(&[("base/capacitybuffers/w.yaml", &half)]);
    one(&errors, "base/capacitybuffers/w.yaml", 6, 33, "metadata.annotations.capstan.io/buffer-duration", "needs");
}

#[test]
fn a_template_that_cannot_be_scheduled_is_located() {
    let bad = TEMPLATE.replace("cpu: \"1\"", "cpu: lots");
    let (errors, _) = run(&[("base/capacitybuffers/t.yaml", &bad)]);
    one(
        &errors,
        "base/capacitybuffers/t.yaml",
        13,
        27,
        "template.spec.containers[0].resources.requests.cpu",
        "not a quantity",
    );
    let typo = TEMPLATE.replace("containers:", "contaners:");
    let (errors, _) = run(&[("base/capacitybuffers/t.yaml", &typo)]);
    one(&errors, "base/capacitybuffers/t.yaml", 8, 3, "template.spec", "no containers");
}

#[test]
fn headroom_names_a_pool_of_the_cluster() {
    let policy = "apiVersion: capstan.io/v1alpha1\nkind: ClusterPolicy\nmetadata: {name: p}\nspec:\n  headroom: {cpu: \"2\", nodePool: nope}\n";
    let (errors, _) = run(&[("base/policy.yaml", policy)]);
    one(&errors, "base/policy.yaml", 5, 34, "spec.headroom.nodePool", "NodePool `nope`");
    let policy = "apiVersion: capstan.io/v1alpha1\nkind: ClusterPolicy\nmetadata: {name: p}\nspec:\n  headroom: {cpu: \"2\", schedule: \"0 8 * * *\"}\n";
    let (errors, _) = run(&[("base/policy.yaml", policy)]);
    one(&errors, "base/policy.yaml", 5, 3, "spec.headroom", "both schedule and duration");
}

#[test]
fn an_empty_api_group_is_the_core_group() {
    let core = buffer("  scalableRef: {apiGroup: \"\", kind: Deployment, name: web}\n  replicas: 1\n");
    let (errors, _) = run(&[("base/capacitybuffers/w.yaml", &core)]);
    one(&errors, "base/capacitybuffers/w.yaml", 6, 27, "spec.scalableRef.apiGroup", "core API group");
    for group in [
        "  scalableRef: {apiGroup: apps, kind: StatefulSet, name: web}\n",
        "  scalableRef: {kind: ReplicaSet, name: web}\n",
    ] {
        let (errors, _) = run(&[("base/capacitybuffers/w.yaml", &buffer(&format!("{group}  replicas: 1\n")))]);
        assert!(errors.is_empty(), "{group}: {errors:#?}");
    }
}

#[test]
fn the_alpha_version_loads_with_a_warning() {
    let older = buffer("  scalableRef: {kind: Deployment, name: web}\n  replicas: 1\n").replace("v1beta1", "v1alpha1");
    let mut snap = Snapshot::default();
    snap.insert("fleet.yaml", FLEET.as_bytes().to_vec());
    snap.insert("base/capacitybuffers/w.yaml", older.into_bytes());
    let v = validate(&snap, Some("dev")).expect("cluster is listed");
    let diags = v.diagnostics.sorted();
    assert_eq!(diags.len(), 1, "{diags:#?}");
    let d = &diags[0];
    assert_eq!((d.severity, d.field.as_deref()), (Severity::Warning, Some("apiVersion")), "{d:#?}");
    assert!(d.message.contains("serves only v1beta1"), "{d:#?}");
    assert_eq!(v.policies[0].capacity_buffers.len(), 1);
}

#[test]
fn buffers_of_one_name_in_two_namespaces_are_two_objects() {
    let in_ns = |ns: &str, replicas: u32| {
        buffer(&format!("  scalableRef: {{apiGroup: apps, kind: Deployment, name: web}}\n  replicas: {replicas}\n"))
            .replace("  name: warm\n", &format!("  name: web\n  namespace: {ns}\n"))
    };
    let template = |ns: &str| TEMPLATE.replace("  name: chunk\n", &format!("  name: chunk\n  namespace: {ns}\n"));
    let base = format!("{}---\n{}---\n{}---\n{}", in_ns("a", 1), in_ns("b", 2), template("a"), template("b"));
    let overlay = in_ns("b", 7);
    let (errors, policy) =
        run(&[("base/capacitybuffers/web.yaml", &base), ("clusters/dev/capacitybuffers/web.yaml", &overlay)]);
    assert!(errors.is_empty(), "{errors:#?}");
    let found: Vec<(&str, Option<i64>)> =
        policy.capacity_buffers.iter().map(|b| (b.value.namespace(), b.value.spec.replicas)).collect();
    assert_eq!(found, [("a", Some(1)), ("b", Some(7))], "the overlay of b/web leaves a/web alone");
    assert_eq!(policy.pod_templates.len(), 2);
    let (errors, _) = run(&[("base/capacitybuffers/web.yaml", &format!("{}---\n{}", in_ns("a", 1), in_ns("a", 2)))]);
    one(&errors, "base/capacitybuffers/web.yaml", 13, 9, "metadata.name", "defined twice");
}
