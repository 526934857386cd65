//! The folder state store under faults: writes killed midway, objects that cannot be read, a
//! lock that is broken or held, a corrupt Cluster spec, an oversized InstanceGroup. Each names
//! the key or path and what to do, and never blocks or scatters files where kOps reads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{CLUSTER_SPEC, Run, TempRepo, karpenter_ig};

const CLUSTER: &str = "dev.example.com";

/// A repository with one Karpenter-managed IG, and a folder store holding the cluster.
struct Setup {
    repo: TempRepo,
    store: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let repo = TempRepo::valid();
        let spec = "  image: ami-0123456789abcdef0\n  machineType: m6i.large\n  maxSize: 10\n  minSize: 1\n  subnets:\n  - us-east-1a\n";
        repo.write("clusters/dev/instancegroups/karpenter-nodes.yaml", karpenter_ig("karpenter-nodes", spec));
        let setup = Setup { repo, store: tempfile::tempdir().unwrap() };
        setup.put("config", CLUSTER_SPEC);
        setup
    }

    /// `<root>/<cluster>/<rel>`.
    fn path(&self, rel: &str) -> PathBuf {
        self.store.path().join(CLUSTER).join(rel)
    }

    fn put(&self, rel: &str, text: impl AsRef<[u8]>) {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn args(&self, cmd: &str, extra: &[&str]) -> Vec<String> {
        let url = format!("file://{}", self.store.path().display());
        let mut args = vec![cmd.into(), self.repo.path().display().to_string(), "--cluster".into(), "dev".into()];
        args.extend(["--state-store".to_string(), url]);
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    /// Runs capstan, killing it (and failing) if it has not ended after a minute.
    fn run(&self, cmd: &str, extra: &[&str]) -> Run {
        let mut child = Command::new(env!("CARGO_BIN_EXE_capstan"))
            .args(self.args(cmd, extra))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run capstan");
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                child.kill().unwrap();
                let out = child.wait_with_output().unwrap();
                panic!("capstan {cmd} still running after 60s: {}", String::from_utf8_lossy(&out.stderr));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn reconcile(&self) -> Run {
        self.run("reconcile", &["--once"])
    }

    /// Every file of the cluster's folder, relative to it, with its content.
    fn files(&self) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        files(&self.store.path().join(CLUSTER), "", &mut out);
        out
    }
}

fn files(dir: &Path, prefix: &str, out: &mut BTreeMap<String, Vec<u8>>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        if entry.file_type().unwrap().is_dir() {
            files(&entry.path(), &format!("{name}/"), out);
        } else {
            out.insert(name, std::fs::read(entry.path()).unwrap_or_default());
        }
    }
}

#[track_caller]
fn assert_code(r: &Run, code: i32) {
    assert_eq!(r.code, code, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
}

#[test]
fn leftovers_of_killed_writes_are_removed_and_nothing_else_changes() {
    let s = Setup::new();
    s.put("instancegroup/nodes", crate::kops::kops_ig("nodes", "Node", ""));
    assert_code(&s.reconcile(), 0);
    let before = s.files();
    // Where a write killed with -9 left its temporary file: beside the IGs (earlier releases),
    // beside the backups, and in capstan's own temporary folder.
    let leftovers =
        ["instancegroup/.tmp-999999-0", "capstan/backups/instancegroup/nodes/.tmp-4242-3", "capstan/.tmp/.tmp-77-0"];
    for rel in leftovers {
        s.put(rel, "apiVersion: kops.k8s.io/v1alpha2\nkind: InstanceGroup\n");
    }
    let r = s.reconcile();
    assert_code(&r, 0);
    for rel in leftovers {
        assert!(!s.path(rel).exists(), "{rel} is removed");
        assert!(r.stdout.contains(&format!("removed {CLUSTER}/{rel}")), "{rel} is reported: {}", r.stdout);
    }
    let unchanged = |m: BTreeMap<String, Vec<u8>>| {
        m.into_iter().filter(|(k, _)| k != "capstan/status.json").collect::<BTreeMap<_, _>>()
    };
    assert_eq!(unchanged(s.files()), unchanged(before), "only the leftovers (and the pass's status) changed");
}

#[test]
fn writes_leave_no_temporary_file_where_kops_reads() {
    let s = Setup::new();
    s.put("instancegroup/karpenter-nodes", crate::kops::kops_ig("karpenter-nodes", "Node", "  manager: Karpenter\n"));
    assert_code(&s.reconcile(), 0); // an update, with a backup
    s.repo.write(
        "clusters/dev/instancegroups/gpu.yaml",
        karpenter_ig("gpu", "  image: ami-0123456789abcdef0\n  maxSize: 2\n  subnets: [us-east-1a]\n"),
    );
    assert_code(&s.reconcile(), 0); // a create
    let names: Vec<String> = std::fs::read_dir(s.path("instancegroup"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(names, ["gpu", "karpenter-nodes"], "only InstanceGroups where kOps reads them");
    let temporary: Vec<String> = s.files().into_keys().filter(|k| k.contains(".tmp")).collect();
    assert!(temporary.is_empty(), "no temporary file is left: {temporary:?}");
    assert!(s.path("capstan/.tmp").is_dir(), "temporary files are made under the cluster's capstan/ folder");
}

#[test]
fn an_unreadable_instance_group_is_named_and_the_others_still_reconcile() {
    let s = Setup::new();
    // A symbolic link to itself cannot be read, even by root.
    std::fs::create_dir_all(s.path("instancegroup")).unwrap();
    std::os::unix::fs::symlink("broken", s.path("instancegroup/broken")).unwrap();
    let r = s.reconcile();
    assert_code(&r, 1);
    let key = format!("{CLUSTER}/instancegroup/broken");
    assert!(r.stdout.contains(&format!("error: {key}:1:1: error: cannot be read:")), "{key} is named: {}", r.stdout);
    assert!(r.stdout.contains("check the object's permissions"), "{}", r.stdout);
    assert!(s.path("instancegroup/karpenter-nodes").is_file(), "the other IG is written:\n{}", r.stdout);
    assert!(s.path("instancegroup/broken").is_symlink(), "the unreadable object is left alone");

    // A file without read permission, where permissions apply (not to root).
    let locked = s.path("instancegroup/locked");
    std::fs::write(&locked, crate::kops::kops_ig("locked", "Node", "")).unwrap();
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    if std::fs::read(&locked).is_err() {
        let r = s.reconcile();
        assert_code(&r, 1);
        assert!(
            r.stdout.contains(&format!("{CLUSTER}/instancegroup/locked:1:1: error: cannot be read:")),
            "{}",
            r.stdout
        );
        assert!(r.stdout.contains("Permission denied"), "{}", r.stdout);
    }
}

#[test]
fn a_directory_in_place_of_the_lock_is_named_with_what_to_do() {
    let s = Setup::new();
    let lock = s.store.path().join(".capstan-store.lock");
    std::fs::create_dir(&lock).unwrap();
    let r = s.reconcile();
    assert_code(&r, 1);
    assert!(r.stderr.contains(&format!("the store lock {} is a directory", lock.display())), "{}", r.stderr);
    assert!(r.stderr.contains(&format!("rmdir {}", lock.display())), "{}", r.stderr);
    assert!(!s.path("instancegroup").exists(), "nothing is written");
}

#[test]
fn a_held_lock_makes_reconcile_give_up_after_the_timeout_naming_the_holder() {
    let s = Setup::new();
    let path = s.store.path().join(".capstan-store.lock");
    let holder = "capstan pid 4242 since 2026-11-30T10:00:00Z";
    std::fs::write(&path, format!("{holder}\n")).unwrap();
    let lock = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    lock.lock().unwrap();
    let r = s.run("reconcile", &["--once", "--lock-timeout", "1s"]);
    assert_code(&r, 1);
    let waiting = format!("waiting for the lock at {}, held by {holder}", path.display());
    assert!(r.stderr.contains(&waiting), "progress names the lock and its holder: {}", r.stderr);
    assert!(r.stderr.contains(&format!("the store lock {} is still held by {holder}", path.display())), "{}", r.stderr);
    assert!(r.stderr.contains("--lock-timeout"), "{}", r.stderr);
    assert!(!s.path("instancegroup").exists(), "nothing is written");
    lock.unlock().unwrap();
    assert_code(&s.reconcile(), 0);
}

#[test]
fn a_corrupt_cluster_spec_stops_the_cluster_with_nothing_written() {
    let s = Setup::new();
    s.put("config", "spec: [unclosed\n");
    let before = s.files();
    for (cmd, extra) in [("plan", &[][..]), ("reconcile", &["--once"][..])] {
        let r = s.run(cmd, extra);
        assert_code(&r, 1);
        assert!(r.stderr.contains(&format!("{CLUSTER}/config:")), "the key is named: {}", r.stderr);
        assert!(r.stderr.contains("nothing is planned or written for this cluster"), "{}", r.stderr);
        assert!(r.stderr.contains("kops edit cluster"), "what to do: {}", r.stderr);
    }
    assert_eq!(s.files(), before, "nothing is written for the cluster");
}

#[test]
fn an_oversized_instance_group_gets_advice_for_the_store() {
    let s = Setup::new();
    let mut big = crate::kops::kops_ig("big", "Node", "").into_bytes();
    big.extend(std::iter::repeat_n(b"# padding\n".as_slice(), 600_000).flatten());
    s.put("instancegroup/big", &big);
    let r = s.reconcile();
    assert_code(&r, 1);
    let key = format!("{CLUSTER}/instancegroup/big");
    assert!(r.stdout.contains(&format!("error: {key}:1:1: error: is {} bytes", big.len())), "{}", r.stdout);
    assert!(r.stdout.contains("far larger than any kOps InstanceGroup"), "{}", r.stdout);
    assert!(r.stdout.contains(&format!("{CLUSTER}/capstan/backups/instancegroup/big/")), "{}", r.stdout);
    assert!(r.stdout.contains("kops edit ig"), "{}", r.stdout);
    assert!(!r.stdout.contains("split it into smaller files"), "{}", r.stdout);
    assert_eq!(std::fs::read(s.path("instancegroup/big")).unwrap(), big, "left untouched");
    assert!(s.path("instancegroup/karpenter-nodes").is_file(), "the other IG is written");
}
