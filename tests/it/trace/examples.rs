//! The traces of examples/traces/: each loads, and each made by `capstan trace synth` is what
//! the command in examples/traces/README.md writes.

use std::path::{Path, PathBuf};

use capstan::trace::synth::{Pattern, SynthOptions, synth};
use capstan::trace::{Action, load};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/traces")
}

fn example(name: &str) -> capstan::trace::Trace {
    load(&dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_example_trace_loads() {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            let trace = load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(!trace.spec.events.is_empty(), "{}: no events", path.display());
            names.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    names.sort();
    for expected in ["diurnal-web.yaml", "inflate.yaml"] {
        assert!(names.iter().any(|n| n == expected), "{expected} is missing from {names:?}");
    }
    let readme = std::fs::read_to_string(dir().join("README.md")).unwrap();
    for name in &names {
        assert!(readme.contains(&format!("`{name}`")), "README.md does not describe {name}");
    }
}

#[test]
fn inflate_tells_the_demo_story() {
    let trace = example("inflate.yaml");
    assert_eq!(trace.spec.duration.duration().as_secs(), 600);
    assert_eq!(trace.spec.workloads.len(), 1);
    let inflate = &trace.spec.workloads[0];
    assert_eq!(inflate["metadata"]["name"], "inflate");
    assert_eq!(inflate["spec"]["replicas"], 0);
    // The object is examples/workloads/inflate.yaml's, as kubectl would apply it.
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/workloads/inflate.yaml"));
    let workload: serde_json::Value = serde_yaml::from_str(&text.unwrap()).unwrap();
    assert_eq!(inflate, &workload);
    let scales: Vec<(u64, u32)> = trace
        .spec
        .events
        .iter()
        .map(|e| match &e.action {
            Action::Scale(s) if s.name == "inflate" => (e.at.duration().as_secs(), s.replicas),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(scales, [(5, 16), (156, 0)]);
}

#[test]
fn diurnal_web_is_what_its_command_writes() {
    let readme = std::fs::read_to_string(dir().join("README.md")).unwrap();
    let command = "capstan trace synth --pattern diurnal --pods 200 --hours 24 --seed 42";
    assert!(readme.contains(command), "README.md gives another command");
    let written = synth(&SynthOptions { pattern: Pattern::Diurnal, pods: 200, hours: 24, seed: 42 }).unwrap();
    assert!(
        example("diurnal-web.yaml") == written,
        "examples/traces/diurnal-web.yaml is not what `{command}` writes now: run it with --out to refresh the file"
    );
}

#[test]
fn burst_spot_is_its_command_plus_a_shortage() {
    let mut written = synth(&SynthOptions { pattern: Pattern::Burst, pods: 120, hours: 6, seed: 7 }).unwrap();
    let file = example("burst-spot.yaml");
    let at = file.spec.events.iter().position(|e| matches!(e.action, Action::Shortage(_))).expect("a shortage");
    written.spec.events.insert(at, file.spec.events[at].clone());
    assert!(file == written, "examples/traces/burst-spot.yaml is not its command's output plus one shortage");
    assert!(file.spec.events.iter().filter(|e| matches!(e.action, Action::Interrupt(_))).count() >= 2);
}
