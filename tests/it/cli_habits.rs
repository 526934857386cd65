//! The command line's shared habits: one exit-code convention (0 success, 1 error or findings,
//! 2 changes or in progress, 3 usage), `KOPS_STATE_STORE`, `--cluster` by fleet or kOps name,
//! Go durations, `version`, `completion`, `-o`, and a demo that leaves no folder behind.

use std::path::Path;
use std::process::Command;

use capstan::fleet::record::{Held, Phase, Record};
use serde_json::Value;

use capstan::kops::{S3Options, StateStore, Store, object};

use crate::common::{Run, TempRepo, example_fleet, karpenter_ig};
use crate::kops::rt;

const OK: i32 = 0;
const FAILED: i32 = 1;
const CHANGES: i32 = 2;
const USAGE: i32 = 3;

/// `capstan ARGS` with `env` set (and `KOPS_STATE_STORE` unset unless given).
fn capstan_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_capstan"));
    cmd.args(args).env_remove("KOPS_STATE_STORE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run capstan");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[track_caller]
fn expect(run: &Run, code: i32) {
    assert_eq!(run.code, code, "stdout: {}\nstderr: {}", run.stdout, run.stderr);
}

/// A usage error: exit 3 and a message on standard error.
#[track_caller]
fn usage(args: &[&str]) -> Run {
    let run = capstan_env(args, &[]);
    expect(&run, USAGE);
    assert!(run.stderr.contains("error"), "{args:?}: {}", run.stderr);
    run
}

/// A repository whose NodePool has an invalid quantity.
fn broken() -> TempRepo {
    let repo = TempRepo::valid();
    repo.write("base/nodepools/default.yaml", crate::common::NODE_POOL.replace("\"100\"", "100x"));
    repo
}

#[test]
fn validate_exit_codes() {
    let repo = TempRepo::valid();
    let path = repo.path().to_str().unwrap();
    expect(&capstan_env(&["validate", path], &[]), OK);
    expect(&capstan_env(&["validate", path, "--cluster", "dev.example.com"], &[]), OK);
    expect(&capstan_env(&["validate", broken().path().to_str().unwrap()], &[]), FAILED);
    usage(&["validate", path, "--bogus"]);
    usage(&["validate", path, "-o", "xml"]);
    usage(&["validate", "/nonexistent/repo"]);
    let unknown = usage(&["validate", path, "--cluster", "nope"]);
    assert!(unknown.stderr.contains("known clusters: dev (kOps dev.example.com)"), "{}", unknown.stderr);
    let slip = usage(&["validate", path, "--cluster", "dve"]);
    assert!(slip.stderr.contains("did you mean dev?"), "{}", slip.stderr);
}

#[test]
fn validate_and_render_print_json_and_yaml() {
    let repo = TempRepo::valid();
    let path = repo.path().to_str().unwrap();
    for flag in [&["-o", "json"][..], &["--output", "json"], &["--format", "json"]] {
        let run = capstan_env(&[&["validate", path][..], flag].concat(), &[]);
        expect(&run, OK);
        assert_eq!(run.json()["errors"], 0, "{flag:?}");
    }
    let yaml = capstan_env(&["validate", path, "-o", "yaml"], &[]);
    expect(&yaml, OK);
    let v: Value = serde_yaml::from_str(&yaml.stdout).unwrap();
    assert_eq!(v["clusters"][0], "dev");

    let rendered = capstan_env(&["render", path, "--cluster", "dev", "-o", "json"], &[]);
    expect(&rendered, OK);
    let list = rendered.json();
    assert_eq!(list["kind"], "List");
    let kinds: Vec<&str> = list["items"].as_array().unwrap().iter().map(|i| i["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["NodePool", "EC2NodeClass"], "{}", rendered.stdout);
}

#[test]
fn render_exit_codes_and_cluster_names() {
    let repo = TempRepo::valid();
    let path = repo.path().to_str().unwrap();
    let by_name = capstan_env(&["render", path, "--cluster", "dev"], &[]);
    expect(&by_name, OK);
    assert!(by_name.stdout.contains("kind: NodePool"), "{}", by_name.stdout);
    let by_kops = capstan_env(&["render", path, "--cluster", "dev.example.com"], &[]);
    assert_eq!((by_kops.code, &by_kops.stdout), (OK, &by_name.stdout), "{}", by_kops.stderr);
    expect(&capstan_env(&["render", broken().path().to_str().unwrap(), "--cluster", "dev"], &[]), FAILED);
    usage(&["render", path, "--cluster", "dev", "--bogus"]);
    usage(&["render", path]);
    let unknown = usage(&["render", path, "--cluster", "nope"]);
    assert!(unknown.stderr.contains("not listed in fleet.yaml"), "{}", unknown.stderr);
}

/// A `file://` kOps state store in a temporary folder.
struct FolderStore {
    url: String,
    _dir: tempfile::TempDir,
}

/// A repository with one Karpenter IG for dev, and a folder store holding dev's cluster spec.
fn kops_setup() -> (TempRepo, FolderStore) {
    let repo = TempRepo::valid();
    let spec = "  image: ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20250305\n  machineType: m6i.large\n  maxSize: 10\n  minSize: 1\n  subnets:\n  - us-east-1a\n";
    repo.write("clusters/dev/instancegroups/karpenter-nodes.yaml", karpenter_ig("karpenter-nodes", spec));
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    rt().block_on(async {
        let store = Store::open(&url, &S3Options::default()).await.unwrap();
        let key = object::config_key(crate::kops::CLUSTER);
        store.put_if_absent(&key, crate::common::CLUSTER_SPEC.as_bytes()).await.unwrap();
    });
    (repo, FolderStore { url, _dir: dir })
}

#[test]
fn plan_exit_codes() {
    let (repo, store) = kops_setup();
    let path = repo.path().to_str().unwrap();
    let url = store.url.as_str();
    let plan =
        |cluster: &str| capstan_env(&["plan", path, "--cluster", cluster, "--state-store", url, "-o", "json"], &[]);
    let changes = plan("dev");
    expect(&changes, CHANGES);
    assert_eq!(changes.json()["changes"][0]["action"], "create");
    let by_kops = plan("dev.example.com");
    assert_eq!((by_kops.code, by_kops.json()), (CHANGES, changes.json()), "{}", by_kops.stderr);

    expect(&capstan_env(&["reconcile", path, "--cluster", "dev", "--state-store", url, "--once"], &[]), OK);
    expect(&plan("dev"), OK);

    let errors =
        capstan_env(&["plan", broken().path().to_str().unwrap(), "--cluster", "dev", "--state-store", url], &[]);
    expect(&errors, FAILED);
    usage(&["plan", path, "--cluster", "dev", "--state-store", url, "--bogus"]);
    usage(&["plan", path, "--state-store", url]);
    usage(&["plan", path, "--cluster", "nope", "--state-store", url]);
    usage(&["plan", path, "--cluster", "dev", "--state-store", "ftp://nowhere"]);
}

#[test]
fn plan_reads_kops_state_store_only_where_it_agrees_and_the_flag_wins() {
    let (repo, store) = kops_setup();
    let path = repo.path().to_str().unwrap();
    // fleet.yaml names another store: the variable is refused rather than followed.
    let env = [("KOPS_STATE_STORE", store.url.as_str())];
    let refused = capstan_env(&["plan", path, "--cluster", "dev"], &env);
    expect(&refused, USAGE);
    assert!(refused.stderr.contains("fleet.yaml gives cluster dev the state store"), "{}", refused.stderr);
    // The same store in both: used.
    let fleet = std::fs::read_to_string(repo.path().join("fleet.yaml")).unwrap();
    let fleet = fleet.replace("file:///tmp/capstan-test-store", &store.url);
    std::fs::write(repo.path().join("fleet.yaml"), fleet).unwrap();
    let agreed = capstan_env(&["plan", path, "--cluster", "dev"], &[("KOPS_STATE_STORE", &format!("{}/", store.url))]);
    expect(&agreed, CHANGES);
    assert!(agreed.stdout.contains(&format!("state store {}", store.url)), "{}", agreed.stdout);
    // The flag wins over both.
    let flag = capstan_env(
        &["plan", path, "--cluster", "dev", "--state-store", &store.url],
        &[("KOPS_STATE_STORE", "ftp://nowhere")],
    );
    expect(&flag, CHANGES);
    let help = capstan_env(&["plan", "--help"], &[]);
    assert!(help.stdout.contains("KOPS_STATE_STORE"), "{}", help.stdout);
}

#[test]
fn durations_are_go_durations() {
    let (repo, store) = kops_setup();
    let path = repo.path().to_str().unwrap();
    let args = ["reconcile", path, "--cluster", "dev", "--state-store", &store.url, "--once"];
    expect(&capstan_env(&[&args[..], &["--interval", "500ms", "--lock-timeout", "1m30s"]].concat(), &[]), OK);
    let bad = usage(&[&args[..], &["--interval", "500"]].concat());
    assert!(bad.stderr.contains("500ms, 30s, 1m30s"), "{}", bad.stderr);
    let short = usage(&[&args[..], &["--interval", "1ms"]].concat());
    assert!(short.stderr.contains("from 100ms to 24h"), "{}", short.stderr);
    let help = capstan_env(&["reconcile", "--help"], &[]);
    assert!(help.stdout.contains("from 100ms to 24h"), "{}", help.stdout);
}

/// A Git repository of the example fleet and a second commit that raises dev's limits.
fn git_fleet(dir: &Path) -> std::path::PathBuf {
    let work = example_fleet(dir);
    let git = |args: &[&str]| assert!(Command::new("git").current_dir(&work).args(args).status().unwrap().success());
    let pool = work.join("base/nodepools/default.yaml");
    let text = std::fs::read_to_string(&pool).unwrap();
    let changed = text.replacen("cpu: \"200\"", "cpu: \"300\"", 1);
    assert_ne!(text, changed, "the example NodePool has a cpu limit");
    std::fs::write(&pool, changed).unwrap();
    git(&["commit", "-q", "-am", "More CPU"]);
    work
}

#[test]
fn diff_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let work = git_fleet(dir.path());
    let path = work.to_str().unwrap();
    expect(&capstan_env(&["diff", path, "--base", "HEAD"], &[]), OK);
    let changes = capstan_env(&["diff", path, "--base", "HEAD~1", "-o", "json"], &[]);
    expect(&changes, CHANGES);
    assert!(!changes.json()["clusters"].as_array().unwrap().is_empty());
    let by_kops = capstan_env(&["diff", path, "--base", "HEAD~1", "--cluster", "dev.example.com", "-o", "json"], &[]);
    expect(&by_kops, CHANGES);
    assert_eq!(by_kops.json()["clusters"][0]["cluster"], "dev");
    // A head that does not load.
    std::fs::write(work.join("base/nodepools/default.yaml"), "kind: NodePool\nspec: [\n").unwrap();
    let git = |args: &[&str]| assert!(Command::new("git").current_dir(&work).args(args).status().unwrap().success());
    git(&["commit", "-q", "-am", "Broken"]);
    expect(&capstan_env(&["diff", path, "--base", "HEAD~1"], &[]), FAILED);
    usage(&["diff", path, "--base", "HEAD~2", "--bogus"]);
    usage(&["diff", path]);
    usage(&["diff", path, "--base", "no-such-revision"]);
    usage(&["diff", path, "--base", "HEAD~2", "--head", "HEAD~1", "--cluster", "nope"]);
}

fn record(phase: Phase) -> Record {
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let held = Held {
        revision: format!("main@sha1:{sha}"),
        sha: sha.to_string(),
        digest: format!("sha256:{sha}"),
        epoch: sha.to_string(),
        since: "2025-03-01T10:00:00Z".parse().unwrap(),
    };
    Record { cluster: "dev".into(), phase, healthy: true, in_force: Some(held), ..Record::default() }
}

#[test]
fn fleet_status_exit_codes_and_its_state_store() {
    let repo = TempRepo::valid();
    let path = repo.path().to_str().unwrap();
    let state = tempfile::tempdir().unwrap();
    let url = format!("file://{}", state.path().display());
    // KOPS_STATE_STORE is not read by fleet status: each cluster's fleet.yaml store is.
    let ignored = capstan_env(&["fleet", "status", path, "-o", "json"], &[("KOPS_STATE_STORE", url.as_str())]);
    let reason = ignored.json()["clusters"][0]["reason"].as_str().unwrap().to_string();
    assert!(!reason.contains(&url), "KOPS_STATE_STORE is not a fleet's store: {reason}");
    let status =
        |extra: &[&str]| capstan_env(&[&["fleet", "status", path, "--state-store", &url][..], extra].concat(), &[]);

    let missing = status(&["-o", "json"]);
    expect(&missing, CHANGES);
    let reason = missing.json()["clusters"][0]["reason"].as_str().unwrap().to_string();
    assert!(reason.contains(&url), "the store comes from --state-store: {reason}");

    let put = |phase: Phase| {
        let file = state.path().join("dev.example.com/capstan/status.json");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, serde_json::to_vec(&serde_json::json!({ "rollout": record(phase) })).unwrap()).unwrap();
    };
    put(Phase::Healthy);
    expect(&status(&[]), OK);
    put(Phase::Halted);
    expect(&status(&[]), FAILED);
    put(Phase::Soaking);
    expect(&status(&["--format", "json"]), CHANGES);
    usage(&["fleet", "status", path, "--bogus"]);
    usage(&["fleet", "status", "/nonexistent/repo"]);
}

#[test]
fn version_names_this_commit() {
    let head = Command::new("git").current_dir(crate::common::root()).args(["rev-parse", "HEAD"]).output().unwrap();
    let head = String::from_utf8(head.stdout).unwrap().trim().to_string();
    let run = capstan_env(&["version"], &[]);
    expect(&run, OK);
    let line = run.stdout.trim_end();
    let rest = line
        .strip_prefix(concat!("capstan ", env!("CARGO_PKG_VERSION"), " (commit "))
        .unwrap_or_else(|| panic!("{line}"));
    let (commit, rest) = rest.split_once(", built ").unwrap_or_else(|| panic!("{line}"));
    let (built, rustc) = rest.split_once(", rustc ").unwrap_or_else(|| panic!("{line}"));
    if head.len() == 40 {
        assert_eq!(commit.trim_end_matches("-dirty"), &head[..12], "{line}");
    }
    assert!(built == "unknown" || (built.len() == 10 && built.as_bytes()[4] == b'-'), "{line}");
    assert!(rustc.ends_with(')') && rustc.starts_with(|c: char| c.is_ascii_digit()), "{line}");

    let flag = capstan_env(&["--version"], &[]);
    assert_eq!((flag.code, flag.stdout.as_str()), (OK, run.stdout.as_str()));
    let json = capstan_env(&["version", "--json"], &[]).json();
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
    if head.len() == 40 {
        assert_eq!(json["commit"], head.as_str());
    }
}

#[test]
fn completion_scripts() {
    for shell in ["bash", "zsh", "fish"] {
        let run = capstan_env(&["completion", shell], &[]);
        expect(&run, OK);
        assert!(run.stdout.contains("validate"), "{shell}: {}", run.stdout);
    }
    usage(&["completion", "tcsh"]);
}

#[test]
fn schema_prints_without_out() {
    let all = capstan_env(&["schema"], &[]);
    expect(&all, OK);
    assert!(all.json()["nodepool.schema.json"]["properties"].is_object(), "{}", all.stdout);
    let one = capstan_env(&["schema", "--kind", "NodePool"], &[]);
    expect(&one, OK);
    assert_eq!(one.json()["title"], all.json()["nodepool.schema.json"]["title"]);
    usage(&["schema", "--kind", "Pod"]);
}

#[test]
fn demo_removes_its_temporary_folder_and_keeps_a_given_one() {
    let tmp = tempfile::tempdir().unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_capstan"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["demo", "-o", "json"])
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");

    let kept = tmp.path().join("kept");
    let run = Command::new(env!("CARGO_BIN_EXE_capstan"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["demo", "--json", "--state-dir", kept.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(kept.is_dir());
    assert!(String::from_utf8_lossy(&run.stderr).contains(&format!("state kept in {}", kept.display())));
}
