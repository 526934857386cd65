//! `capstan simulate` on a real Git history: deterministic output, the proof of concept's
//! numbers, and changes whose effect is known (a cheaper family, tighter limits, calmer
//! consolidation), each outcome guardrail failing the run.

use crate::common::{NODE_POOL, capstan};
use crate::gitops::Repos;

/// A Deployment `web` of amd64 pods asking `cpu` each, scaled through `steps` (at, replicas).
fn trace(minutes: u32, cpu: &str, steps: &[(&str, u32)]) -> String {
    let mut events = String::new();
    for (at, n) in steps {
        events.push_str(&format!("  - {{at: {at}, scale: {{name: web, replicas: {n}}}}}\n"));
    }
    format!(
        "apiVersion: capstan.io/v1alpha1
kind: Trace
metadata: {{name: web}}
spec:
  duration: {minutes}m
  workloads:
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {{name: web, namespace: default}}
    spec:
      replicas: 0
      selector: {{matchLabels: {{app: web}}}}
      template:
        metadata: {{labels: {{app: web}}}}
        spec:
          nodeSelector: {{kubernetes.io/arch: amd64}}
          containers: [{{name: web, image: pause, resources: {{requests: {{cpu: \"{cpu}\", memory: 256Mi}}}}}}]
  events:
{events}"
    )
}

fn write_trace(repos: &Repos, text: &str) -> String {
    let path = repos.dir.path().join("trace.yaml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

fn simulate(repos: &Repos, trace: &str, extra: &[&str]) -> crate::common::Run {
    simulate_from(repos, "HEAD~1", trace, extra)
}

fn simulate_from(repos: &Repos, base: &str, trace: &str, extra: &[&str]) -> crate::common::Run {
    let work = repos.work();
    let mut args = vec!["simulate", work.to_str().unwrap(), "--base", base, "--trace", trace];
    args.extend(extra);
    capstan(&args)
}

/// The default NodePool with `requirements` appended and `limits.cpu` set.
fn pool(extra_requirement: &str, cpu: &str, disruption: &str) -> String {
    NODE_POOL
        .replace("          values: [on-demand]\n", &format!("          values: [on-demand]\n{extra_requirement}"))
        .replace("cpu: \"100\"", &format!("cpu: \"{cpu}\""))
        .replace("  limits:", &format!("{disruption}  limits:"))
}

const ONLY_R: &str =
    "        - key: karpenter.k8s.aws/instance-category\n          operator: In\n          values: [r]\n";
const C_M_R: &str =
    "        - key: karpenter.k8s.aws/instance-category\n          operator: In\n          values: [c, m, r]\n";

fn json_runs(run: &crate::common::Run) -> (serde_json::Value, serde_json::Value) {
    let json = run.json();
    let dev = json["clusters"].as_array().unwrap().iter().find(|c| c["cluster"] == "dev").cloned().unwrap();
    (dev["base"].clone(), dev["head"].clone())
}

#[test]
fn the_same_inputs_give_the_same_report() {
    let repos = Repos::new();
    repos.write("base/nodepools/default.yaml", &pool(C_M_R, "100", ""));
    repos.commit("Compute families");
    let t = write_trace(&repos, &trace(30, "500m", &[("10s", 20), ("10m", 5), ("20m", 12)]));
    let a = simulate(&repos, &t, &["--format", "json"]);
    let b = simulate(&repos, &t, &["--format", "json"]);
    assert_eq!(a.code, 0, "{}", a.stderr);
    assert_eq!(a.stdout, b.stdout, "two replays of the same trace and revisions differ");
    let (base, head) = json_runs(&a);
    assert!(head["launches"].as_u64().unwrap() > 0, "{head}");
    assert!(base["podsScheduled"].as_u64().unwrap() >= 20, "{base}");
    let md = simulate(&repos, &t, &["--format", "markdown"]);
    assert!(md.stdout.starts_with("<!-- capstan-simulate -->"), "{}", md.stdout);
}

#[test]
fn a_cheaper_family_allowed_costs_less() {
    let repos = Repos::new();
    repos.write("base/nodepools/default.yaml", &pool(ONLY_R, "100", ""));
    repos.commit("Memory-optimised only");
    repos.write("base/nodepools/default.yaml", &pool(C_M_R, "100", ""));
    repos.commit("Allow compute and general purpose");
    let t = write_trace(&repos, &trace(60, "1", &[("10s", 16), ("40m", 0)]));
    let run = simulate(&repos, &t, &["--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (base, head) = json_runs(&run);
    let cost = |r: &serde_json::Value| r["costUsd"].as_f64().unwrap();
    assert!(cost(&head) < cost(&base), "head {} should cost less than base {}", cost(&head), cost(&base));
    let types = |r: &serde_json::Value| r["instanceTypes"].as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert!(types(&base).iter().all(|t| t.starts_with('r')), "{:?}", types(&base));
    assert!(types(&head).iter().any(|t| !t.starts_with('r')), "{:?}", types(&head));
}

#[test]
fn tighter_limits_leave_pods_never_scheduled() {
    let repos = Repos::new();
    repos.write("base/nodepools/default.yaml", &pool(C_M_R, "8", ""));
    repos.commit("At most 8 cpu");
    let t = write_trace(&repos, &trace(20, "1", &[("10s", 16)]));
    let run = simulate(&repos, &t, &["--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (base, head) = json_runs(&run);
    assert_eq!(base["podsNeverScheduled"], 0, "{base}");
    assert!(head["podsNeverScheduled"].as_u64().unwrap() > 0, "{head}");
    assert!(head["limitsHit"].as_u64().unwrap() > 0, "{head}");
    let text = simulate(&repos, &t, &[]);
    assert!(text.stdout.contains("never scheduled"), "{}", text.stdout);
}

#[test]
fn calmer_consolidation_disrupts_fewer_nodes() {
    let repos = Repos::new();
    let eager = "  disruption:\n    consolidationPolicy: WhenEmptyOrUnderutilized\n    consolidateAfter: 30s\n";
    repos.write("base/nodepools/default.yaml", &pool(C_M_R, "200", eager));
    repos.commit("Eager consolidation");
    let calm = "  disruption:\n    consolidationPolicy: WhenEmpty\n    consolidateAfter: 30m\n";
    repos.write("base/nodepools/default.yaml", &pool(C_M_R, "200", calm));
    repos.commit("Calm consolidation");
    let steps = [("10s", 40), ("15m", 8), ("30m", 40), ("45m", 8), ("60m", 40), ("75m", 8)];
    let t = write_trace(&repos, &trace(90, "1", &steps));
    let run = simulate(&repos, &t, &["--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (base, head) = json_runs(&run);
    let disrupted = |r: &serde_json::Value| {
        r["disruptions"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum::<u64>()
    };
    assert!(disrupted(&base) > 0, "the eager policy consolidates: {base}");
    assert!(disrupted(&head) < disrupted(&base), "head {} base {}", disrupted(&head), disrupted(&base));
}

#[test]
fn each_outcome_guardrail_fails_the_run_when_crossed() {
    let repos = Repos::new();
    repos.write("base/nodepools/default.yaml", &pool(C_M_R, "100", ""));
    let base = repos.commit("Compute families");
    let t = write_trace(&repos, &trace(30, "1", &[("10s", 16), ("15m", 0)]));
    let guard = |rule: &str| {
        format!(
            "apiVersion: capstan.io/v1alpha1\nkind: Guardrails\nmetadata:\n  name: outcomes\nspec:\n  simulation:\n    {rule}\n"
        )
    };
    // Memory-optimised nodes cost more; an 8-cpu limit leaves pods without a node.
    let dearer = pool(ONLY_R, "100", "");
    let limited = pool(C_M_R, "8", "");
    let cases = [
        (&dearer, "maxCostIncreasePercent: 5", "maxCostIncreasePercent"),
        (&dearer, "maxPendingP99: 30s", "maxPendingP99"),
        (&dearer, "maxDisruptionsPerHour: 0", "maxDisruptionsPerHour"),
        (&limited, "maxPodsNeverScheduled: 0", "maxPodsNeverScheduled"),
    ];
    let mut written = String::new();
    for (head, rule, name) in cases {
        if *head != written {
            repos.write("base/nodepools/default.yaml", head);
            repos.commit(&format!("Head for {name}"));
            written = head.clone();
        }
        // Without outcome guardrails the same change passes.
        let free = simulate_from(&repos, &base, &t, &[]);
        assert_eq!(free.code, 0, "{name}: {}", free.stderr);
        repos.write("guardrails.yaml", &guard(rule));
        repos.commit(&format!("Guardrail {name}"));
        let run = simulate_from(&repos, &base, &t, &["--format", "markdown"]);
        assert_eq!(run.code, 1, "{rule} should fail the run:\n{}\n{}", run.stdout, run.stderr);
        assert!(run.stderr.contains(name), "{}", run.stderr);
        assert!(run.stdout.contains(name), "the comment names the broken guardrail:\n{}", run.stdout);
        std::fs::remove_file(repos.work().join("guardrails.yaml")).unwrap();
        repos.commit("Drop the guardrail");
    }
}

#[test]
fn the_proof_of_concept_trace_reproduces_the_demo() {
    let dir = tempfile::tempdir().unwrap();
    let work = crate::common::example_fleet(dir.path());
    let state = dir.path().join("state");
    let demo = capstan(&["demo", "--json", "--state-dir", state.to_str().unwrap()]);
    assert_eq!(demo.code, 0, "{}", demo.stderr);
    let last = demo.stdout.lines().last().unwrap();
    let summary: serde_json::Value = serde_json::from_str(last).unwrap();
    let summary = &summary["detail"];
    let trace = crate::common::root().join("examples/traces/inflate.yaml");
    let args =
        ["simulate", work.to_str().unwrap(), "--base", "HEAD", "--trace", trace.to_str().unwrap(), "--cluster", "dev"];
    let run = capstan(&[&args[..], &["--format", "json"]].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (base, head) = json_runs(&run);
    assert_eq!(base, head, "the same revision twice gives the same run");
    assert_eq!(base["launches"], summary["nodesLaunched"], "{base}\n{summary}");
    let mut types: Vec<String> = base["instanceTypes"].as_object().unwrap().keys().cloned().collect();
    let mut demo_types: Vec<String> =
        summary["instanceTypes"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect();
    types.sort();
    demo_types.sort();
    assert_eq!(types, demo_types);
    let (cost, demo_cost) = (base["costUsd"].as_f64().unwrap(), summary["costUsd"].as_f64().unwrap());
    assert!((cost - demo_cost).abs() < 0.0005, "simulate ${cost} vs demo ${demo_cost}");
    assert_eq!(base["pending"]["max"].as_f64(), summary["secondsToRunning"].as_f64(), "{base}");
    assert_eq!(base["disruptions"]["empty"], summary["nodesLaunched"], "both nodes go when empty: {base}");
}
