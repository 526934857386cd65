//! Records what `capstan version` prints: the Git commit built from (`-dirty` when the checkout
//! has changes), the build date and the rustc version. The date is the commit's, or
//! `SOURCE_DATE_EPOCH`'s when set, so two builds of one commit say the same; outside a Git
//! checkout the commit and date are `unknown` and the build goes on.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    // A change to the sources may change `-dirty`; cargo rebuilds the crate for them anyway.
    for watched in ["src", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={watched}");
    }

    // Only this crate's own checkout counts: a crate unpacked inside another repository (a home
    // folder kept in Git, say) has no commit of its own.
    let own = git(&root, &["rev-parse", "--show-toplevel"])
        .and_then(|top| std::fs::canonicalize(top).ok())
        .is_some_and(|top| std::fs::canonicalize(&root).is_ok_and(|r| r == top));
    let commit = git(&root, &["rev-parse", "HEAD"]).filter(|c| own && c.len() >= 12);
    if commit.is_some() {
        watch_head(&root);
    }
    // `--no-optional-locks`: a status must not rewrite the index of the checkout it reads; files
    // Git does not track (build output, scratch) do not make a build dirty.
    let dirty = commit.is_some()
        && git(&root, &["--no-optional-locks", "status", "--porcelain", "--untracked-files=no"])
            .is_some_and(|s| !s.is_empty());
    let short = match &commit {
        Some(c) => format!("{}{}", &c[..12], if dirty { "-dirty" } else { "" }),
        None => "unknown".to_string(),
    };
    let date = match std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|s| s.trim().parse::<i64>().ok()) {
        Some(epoch) => day(epoch),
        None if commit.is_some() => git(&root, &["log", "-1", "--format=%ct"])
            .and_then(|s| s.parse::<i64>().ok())
            .map_or_else(|| "unknown".to_string(), day),
        None => "unknown".to_string(),
    };
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let rustc_version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.split_whitespace().nth(1).map(str::to_string))
        .unwrap_or_else(|| "unknown".to_string());

    println!("cargo:rustc-env=CAPSTAN_COMMIT={}", commit.as_deref().unwrap_or("unknown"));
    println!("cargo:rustc-env=CAPSTAN_COMMIT_SHORT={short}");
    println!("cargo:rustc-env=CAPSTAN_DIRTY={dirty}");
    println!("cargo:rustc-env=CAPSTAN_BUILD_DATE={date}");
    println!("cargo:rustc-env=CAPSTAN_RUSTC_VERSION={rustc_version}");
}

/// The trimmed standard output of a Git command run in `root`, when it succeeds.
fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").current_dir(root).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Re-run when HEAD moves: the HEAD file, the branch it points to, and packed refs.
fn watch_head(root: &Path) {
    let path = |args: &[&str]| git(root, args).map(|p| root.join(p));
    let (Some(git_dir), Some(common)) = (path(&["rev-parse", "--git-dir"]), path(&["rev-parse", "--git-common-dir"]))
    else {
        return;
    };
    let head = git_dir.join("HEAD");
    println!("cargo:rerun-if-changed={}", head.display());
    if let Some(reference) =
        std::fs::read_to_string(&head).ok().and_then(|h| h.strip_prefix("ref: ").map(|r| r.trim().to_string()))
    {
        for dir in [&git_dir, &common] {
            let file = dir.join(&reference);
            if file.exists() {
                println!("cargo:rerun-if-changed={}", file.display());
            }
        }
    }
    let packed = common.join("packed-refs");
    if packed.exists() {
        println!("cargo:rerun-if-changed={}", packed.display());
    }
}

/// `YYYY-MM-DD` (UTC) of a Unix time.
fn day(epoch: i64) -> String {
    // Howard Hinnant's days-to-civil.
    let z = epoch.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}
