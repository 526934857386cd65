//! Standard output closed by the reader (`capstan validate | head -1`): every command runs to its
//! end without panicking and exits with the code it would have had with a reader. The pipe's read end is closed before the command
//! starts, so its first write already fails: no timing involved.

use std::process::{Command, Stdio};

use crate::common::{CLUSTER_SPEC, TempRepo};

/// Runs capstan with standard output a pipe nobody reads; returns exit code and stderr.
fn with_closed_stdout(args: &[&str]) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_capstan"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("run capstan");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[track_caller]
fn stops_quietly_with(args: &[&str], expected: i32) {
    let (code, stderr) = with_closed_stdout(args);
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    assert!(!stderr.contains("standard output"), "{args:?}: a closed pipe is no error: {stderr}");
    assert_eq!(code, Some(expected), "{args:?}: the command's own exit code stands; stderr: {stderr}");
}

#[track_caller]
fn stops_quietly(args: &[&str]) {
    stops_quietly_with(args, 0);
}

#[test]
fn validate_stops_quietly_when_the_reader_goes_away() {
    let repo = TempRepo::valid();
    // Findings to print: a NodePool that names a missing EC2NodeClass, many times over.
    for i in 0..50 {
        let pool = crate::common::NODE_POOL
            .replace("name: default\nspec", &format!("name: p{i}\nspec"))
            .replace("        name: default", "        name: missing");
        repo.write(&format!("base/nodepools/p{i}.yaml"), pool);
    }
    let path = repo.path().to_str().unwrap();
    // The findings are errors: exit 1, whether or not anyone read them.
    stops_quietly_with(&["validate", path], 1);
    stops_quietly_with(&["validate", path, "--format", "json"], 1);
}

#[test]
fn render_and_schema_stop_quietly_when_the_reader_goes_away() {
    let repo = TempRepo::valid();
    stops_quietly(&["render", repo.path().to_str().unwrap(), "--cluster", "dev"]);
    let out = tempfile::tempdir().unwrap();
    stops_quietly(&["schema", "--out", out.path().to_str().unwrap()]);
}

#[test]
fn plan_and_reconcile_stop_quietly_when_the_reader_goes_away() {
    let repo = TempRepo::valid();
    let store = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(store.path().join("dev.example.com")).unwrap();
    std::fs::write(store.path().join("dev.example.com/config"), CLUSTER_SPEC).unwrap();
    let url = format!("file://{}", store.path().display());
    let path = repo.path().to_str().unwrap();
    for format in ["text", "json"] {
        stops_quietly(&["plan", path, "--cluster", "dev", "--state-store", &url, "--format", format]);
    }
    stops_quietly(&["reconcile", path, "--cluster", "dev", "--state-store", &url, "--once"]);
}

#[test]
fn demo_stops_quietly_when_the_reader_goes_away() {
    let state = tempfile::tempdir().unwrap();
    stops_quietly(&["demo", "--state-dir", state.path().to_str().unwrap()]);
}

#[test]
fn audit_stops_quietly_when_the_reader_goes_away() {
    let repos = crate::gitops::Repos::new();
    repos.set_cpu_limit("200");
    repos.commit("Raise the cpu limit");
    let work = repos.work();
    stops_quietly(&["audit", work.to_str().unwrap(), "--cluster", "dev"]);
    stops_quietly(&["audit", work.to_str().unwrap(), "--format", "json"]);
}
