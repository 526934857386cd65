//! `capstan trace` from the command line: what it writes loads, and bad arguments get a clear
//! error and the usage exit code.

use crate::common::capstan;

#[test]
fn synth_writes_a_trace_that_loads_to_stdout_or_a_file() {
    let run = capstan(&["trace", "synth", "--pattern", "steady", "--pods", "20", "--hours", "2"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let trace = capstan::trace::parse("stdout", run.stdout.as_bytes()).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(trace.spec.duration.duration().as_secs(), 7200);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.yaml");
    let run = capstan(&["trace", "synth", "--pattern", "batch", "--pods", "20", "--out", out.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("wrote"), "{}", run.stderr);
    capstan::trace::load(&out).unwrap_or_else(|d| panic!("{d}"));
}

#[test]
fn bad_arguments_are_usage_errors() {
    for args in [
        &["trace", "synth", "--pattern", "steady", "--pods", "0"][..],
        &["trace", "synth", "--pattern", "weekly", "--pods", "10"][..],
        &["trace", "record", "--duration", "soon"][..],
    ] {
        let run = capstan(args);
        assert_eq!(run.code, 3, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("error"), "{args:?}: {}", run.stderr);
    }
}

#[test]
fn record_without_a_cluster_says_which_kubeconfig_failed() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-kubeconfig");
    let run = capstan(&["trace", "record", "--kubeconfig", missing.to_str().unwrap(), "--duration", "1s"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("no-such-kubeconfig"), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "nothing is written on failure: {}", run.stdout);
}

#[test]
fn simulate_names_the_place_of_a_bad_trace() {
    let dir = tempfile::tempdir().unwrap();
    let work = crate::common::example_fleet(dir.path());
    let trace = dir.path().join("bad.yaml");
    let text = "apiVersion: capstan.io/v1alpha1\nkind: Trace\nmetadata: {name: bad}\nspec:\n  duration: 1h\n  events:\n  - {at: 2h, scale: {name: web, replicas: 3}}\n";
    std::fs::write(&trace, text).unwrap();
    let out = dir.path().join("report.md");
    std::fs::write(&out, "the previous report").unwrap();
    let run = capstan(&[
        "simulate",
        work.to_str().unwrap(),
        "--base",
        "HEAD",
        "--trace",
        trace.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("bad.yaml:7:"), "{}", run.stderr);
    assert!(run.stderr.contains("spec.events[0].at"), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "the previous report", "a failed run keeps the old report");
}
