//! `capstan version` and `capstan --version`: the version, the commit built from (`-dirty` when
//! the checkout had changes), the build date (the commit's, or `SOURCE_DATE_EPOCH`'s, never the
//! wall clock's) and the rustc that compiled it, all recorded by `build.rs`.

use std::process::ExitCode;

use super::out::outln;

/// `0.1.0 (commit 0123456789ab, built 2026-12-01, rustc 1.91.0)`; clap puts `capstan ` before it.
pub const LINE: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("CAPSTAN_COMMIT_SHORT"),
    ", built ",
    env!("CAPSTAN_BUILD_DATE"),
    ", rustc ",
    env!("CAPSTAN_RUSTC_VERSION"),
    ")"
);

/// What `capstan version --json` prints.
#[derive(Debug, serde::Serialize)]
struct Version {
    name: &'static str,
    version: &'static str,
    /// The full commit id, or `unknown` outside a Git checkout.
    commit: &'static str,
    /// The checkout had changes not committed.
    dirty: bool,
    /// `YYYY-MM-DD`, or `unknown`.
    built: &'static str,
    rustc: &'static str,
}

const VERSION: Version = Version {
    name: "capstan",
    version: env!("CARGO_PKG_VERSION"),
    commit: env!("CAPSTAN_COMMIT"),
    dirty: const_str_eq(env!("CAPSTAN_DIRTY"), "true"),
    built: env!("CAPSTAN_BUILD_DATE"),
    rustc: env!("CAPSTAN_RUSTC_VERSION"),
};

const fn const_str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

pub(crate) fn print(json: bool) -> ExitCode {
    if json {
        outln!("{}", serde_json::to_string_pretty(&VERSION).expect("version serialises"));
    } else {
        outln!("capstan {LINE}");
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_the_commit_date_and_rustc() {
        assert!(LINE.starts_with(&format!("{} (commit ", env!("CARGO_PKG_VERSION"))), "{LINE}");
        assert!(LINE.contains(", built ") && LINE.contains(", rustc ") && LINE.ends_with(')'), "{LINE}");
        let short = env!("CAPSTAN_COMMIT_SHORT").trim_end_matches("-dirty");
        assert!(short == "unknown" || VERSION.commit.starts_with(short) && short.len() == 12, "{short}");
        assert_eq!(env!("CAPSTAN_COMMIT_SHORT").ends_with("-dirty"), VERSION.dirty);
    }
}
