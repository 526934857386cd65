//! Shared test helpers: temporary config repositories and running the `capstan` binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The repository root (where Cargo.toml is).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The result of one `capstan` run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

pub fn capstan(args: &[&str]) -> Run {
    // A developer's KOPS_STATE_STORE must not change what the tests see.
    let out = Command::new(env!("CARGO_BIN_EXE_capstan"))
        .args(args)
        .env_remove("KOPS_STATE_STORE")
        .output()
        .expect("run capstan");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A config repository in a temporary folder, valid until a test changes it.
pub struct TempRepo {
    pub dir: tempfile::TempDir,
}

pub const FLEET: &str = "apiVersion: capstan.io/v1alpha1
kind: Fleet
metadata:
  name: test
spec:
  clusters:
    - name: dev
      kopsName: dev.example.com
      stateStore: file:///tmp/capstan-test-store
      region: us-east-1
      wave: 0
  waves:
    - wave: 0
      soakTime: 0s
";

pub const NODE_CLASS: &str = "apiVersion: karpenter.k8s.aws/v1
kind: EC2NodeClass
metadata:
  name: default
spec:
  amiFamily: AL2023
  amiSelectorTerms:
    - alias: al2023@latest
  role: KarpenterNodeRole
  subnetSelectorTerms:
    - tags:
        team: a
  securityGroupSelectorTerms:
    - tags:
        team: a
";

pub const NODE_POOL: &str = "apiVersion: karpenter.sh/v1
kind: NodePool
metadata:
  name: default
spec:
  template:
    spec:
      nodeClassRef:
        group: karpenter.k8s.aws
        kind: EC2NodeClass
        name: default
      requirements:
        - key: karpenter.sh/capacity-type
          operator: In
          values: [on-demand]
  limits:
    cpu: \"100\"
";

pub const CLUSTER_SPEC: &str = "apiVersion: kops.k8s.io/v1alpha2
kind: Cluster
metadata:
  name: dev.example.com
spec:
  karpenter:
    enabled: false
  serviceAccountIssuerDiscovery:
    enableAWSOIDCProvider: true
  subnets:
    - name: us-east-1a
      type: Private
    - name: utility-us-east-1a
      type: Utility
";

/// A Karpenter-managed IG whose `spec` lines are given (indented by four spaces by the caller).
pub fn karpenter_ig(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: kops.k8s.io/v1alpha2\nkind: InstanceGroup\nmetadata:\n  name: {name}\nspec:\n  role: Node\n  manager: Karpenter\n{spec}"
    )
}

impl TempRepo {
    /// fleet.yaml with cluster `dev`, one EC2NodeClass and one NodePool, and dev's cluster.yaml.
    pub fn valid() -> TempRepo {
        let repo = TempRepo { dir: tempfile::tempdir().expect("tempdir") };
        repo.write("fleet.yaml", FLEET);
        repo.write("base/nodeclasses/default.yaml", NODE_CLASS);
        repo.write("base/nodepools/default.yaml", NODE_POOL);
        repo.write("clusters/dev/cluster.yaml", CLUSTER_SPEC);
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, text: impl AsRef<[u8]>) {
        let path = self.dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    pub fn remove(&self, rel: &str) {
        std::fs::remove_file(self.dir.path().join(rel)).unwrap();
    }

    pub fn validate(&self) -> Run {
        capstan(&["validate", self.path().to_str().unwrap(), "--format", "json"])
    }

    pub fn validate_text(&self) -> Run {
        capstan(&["validate", self.path().to_str().unwrap()])
    }

    pub fn render(&self, cluster: &str) -> Run {
        capstan(&["render", self.path().to_str().unwrap(), "--cluster", cluster])
    }
}

/// The errors of a JSON validate run.
pub fn errors(run: &Run) -> Vec<Value> {
    let v = run.json();
    v["diagnostics"].as_array().unwrap().iter().filter(|d| d["severity"] == "error").cloned().collect()
}

/// Asserts exit 1 and exactly one error whose place and field are as given; returns it.
#[track_caller]
pub fn expect_error(run: &Run, file: &str, line: u64, column: u64, field: Option<&str>, message_part: &str) -> Value {
    assert_eq!(run.code, 1, "exit code; stdout: {}\nstderr: {}", run.stdout, run.stderr);
    let errs = errors(run);
    let found = errs.iter().find(|d| d["message"].as_str().unwrap_or("").contains(message_part));
    let d = found.unwrap_or_else(|| panic!("no error containing {message_part:?} in {errs:#?}")).clone();
    assert!(d["file"].as_str().unwrap().ends_with(file), "file of {d}");
    assert_eq!((d["line"].as_u64(), d["column"].as_u64()), (Some(line), Some(column)), "position of {d}");
    assert_eq!(d["field"].as_str(), field, "field of {d}");
    assert!(!d["hint"].as_str().unwrap_or("").is_empty(), "hint missing in {d}");
    d
}

/// 1-based line and column of the first occurrence of `needle` in `text`.
pub fn at(text: &str, needle: &str) -> (u64, u64) {
    let i = text.find(needle).unwrap_or_else(|| panic!("{needle:?} not in text"));
    let before = &text[..i];
    let line = before.matches('\n').count() as u64 + 1;
    let col = (i - before.rfind('\n').map_or(0, |n| n + 1)) as u64 + 1;
    (line, col)
}

/// `examples/fleet` copied to `<dir>/fleet` and committed on `main` as one Git repository;
/// returns its path.
pub fn example_fleet(dir: &Path) -> PathBuf {
    let work = dir.join("fleet");
    let copied = Command::new("cp").arg("-R").arg(root().join("examples/fleet")).arg(&work).status().unwrap();
    assert!(copied.success(), "copy examples/fleet");
    let git = |args: &[&str]| {
        let ok = Command::new("git").current_dir(&work).args(args).status().unwrap().success();
        assert!(ok, "git {args:?}");
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["config", "user.name", "Alice Admin"]);
    git(&["config", "user.email", "alice@example.com"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "Example fleet"]);
    work
}

/// Chromium and the folder whose node_modules holds playwright-core, as the test command
/// installs them (`CAPSTAN_TEST_CHROMIUM`, `CAPSTAN_TEST_PLAYWRIGHT`).
pub fn browser() -> (PathBuf, PathBuf) {
    let var = |name: &str| -> PathBuf {
        std::env::var_os(name).map(PathBuf::from).unwrap_or_else(|| {
            panic!("{name} is not set: run ./scripts/test.sh, which installs Chromium and Playwright")
        })
    };
    (var("CAPSTAN_TEST_CHROMIUM"), var("CAPSTAN_TEST_PLAYWRIGHT"))
}

/// Runs the Node script `script` (a path under the source tree) in headless Chromium with
/// `args`, and returns the JSON it printed; panics with its output when it fails.
pub fn node_script(script: &str, args: &[&std::ffi::OsStr]) -> Value {
    let (chromium, playwright) = browser();
    let out = Command::new("node")
        .arg(root().join(script))
        .args(args)
        .env("CAPSTAN_TEST_CHROMIUM", chromium)
        .env("CAPSTAN_TEST_PLAYWRIGHT", playwright)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{script} failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{script} printed no JSON ({e}): {stdout}"))
}
