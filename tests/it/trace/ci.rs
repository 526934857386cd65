//! The CI examples of examples/ci/ and the pre-commit hook of .pre-commit-hooks.yaml: they are
//! YAML of the shape their platform reads, and every `capstan …` command they run is accepted
//! by the real CLI and exits as the scripts expect, in a config repository made from
//! examples/fleet with a policy change on a branch. The scripts' exit-code handling and comment
//! updates run too, with the platform's tools replaced by stubs.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use capstan::trace::synth::{Pattern, SynthOptions, synth};
use serde_yaml::Value;

use crate::gitops::git;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn yaml(rel: &str) -> Value {
    let text = std::fs::read_to_string(root().join(rel)).unwrap();
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v:?}")).to_string()
}

/// The GitHub workflow's steps (of its one job).
fn github_steps() -> Vec<Value> {
    let wf = yaml("examples/ci/github-actions.yml");
    assert!(wf["on"].get("pull_request").is_some(), "runs on pull_request");
    let jobs = wf["jobs"].as_mapping().unwrap();
    assert_eq!(jobs.len(), 1);
    jobs.values().next().unwrap()["steps"].as_sequence().unwrap().clone()
}

fn github_step(name: &str) -> Value {
    github_steps().into_iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("no step {name}"))
}

/// The GitLab job: its `before_script` and `script` items.
fn gitlab_job() -> Value {
    let ci = yaml("examples/ci/gitlab-ci.yml");
    ci["capstan"].clone()
}

fn gitlab_items(key: &str) -> Vec<String> {
    gitlab_job()[key].as_sequence().unwrap().iter().map(text).collect()
}

/// Each `capstan …` command of `script`, as the shell would start it: from `capstan` to the
/// end of its line, or to the `||`, `&&`, `;` or `|` that ends it. Comments are skipped.
fn commands(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in script.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
        for part in line.split("||").flat_map(|p| p.split("&&")).flat_map(|p| p.split(';')).flat_map(|p| p.split('|')) {
            let part = part.trim().trim_start_matches("if ").trim_start_matches("! ").trim();
            if part.starts_with("capstan ") {
                out.push(part.to_string());
            }
        }
    }
    out
}

/// A config repository made from examples/fleet, with `origin/main` pushed to a bare remote and
/// the branch `change` checked out with a policy change. The trace the CI examples replay,
/// traces/diurnal-web.yaml, is an hour long here so that the test takes seconds.
struct ConfigRepo {
    dir: tempfile::TempDir,
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

impl ConfigRepo {
    /// `guardrails` is appended to guardrails.yaml's spec on the branch.
    fn new(guardrails: &str) -> ConfigRepo {
        let repo = ConfigRepo { dir: tempfile::tempdir().unwrap() };
        let (d, w) = (repo.dir.path(), repo.work());
        git(d, &["init", "-q", "--bare", "-b", "main", "remote.git"]);
        copy_dir(&root().join("examples/fleet"), &w);
        let trace = synth(&SynthOptions { pattern: Pattern::Diurnal, pods: 30, hours: 1, seed: 1 }).unwrap();
        std::fs::create_dir_all(w.join("traces")).unwrap();
        std::fs::write(w.join("traces/diurnal-web.yaml"), trace.to_yaml()).unwrap();
        git(&w, &["init", "-q", "-b", "main"]);
        git(&w, &["config", "user.name", "Alice Admin"]);
        git(&w, &["config", "user.email", "alice@example.com"]);
        git(&w, &["remote", "add", "origin", d.join("remote.git").to_str().unwrap()]);
        git(&w, &["add", "-A"]);
        git(&w, &["commit", "-q", "-m", "The example fleet"]);
        git(&w, &["push", "-q", "origin", "main"]);
        git(&w, &["checkout", "-q", "-b", "change"]);
        let pool = w.join("base/nodepools/default.yaml");
        let text = std::fs::read_to_string(&pool).unwrap();
        assert!(text.contains("cpu: \"200\""), "the example's default NodePool changed: adjust this test");
        std::fs::write(&pool, text.replace("cpu: \"200\"", "cpu: \"150\"")).unwrap();
        let path = w.join("guardrails.yaml");
        let rails = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{rails}{guardrails}")).unwrap();
        git(&w, &["commit", "-q", "-am", "A tighter cpu limit for the default NodePool"]);
        repo
    }

    fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// A folder on PATH before the system's, holding `capstan` and the stubs.
    fn bin(&self) -> PathBuf {
        let bin = self.dir.path().join("bin");
        if !bin.exists() {
            std::fs::create_dir_all(&bin).unwrap();
            std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_capstan"), bin.join("capstan")).unwrap();
        }
        bin
    }

    fn stub(&self, name: &str, script: &str) {
        let path = self.bin().join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{script}")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// Runs `script` with bash in the work tree, with the CI variables of both platforms set.
    fn run(&self, flags: &str, script: &str, env: &[(&str, &str)]) -> (i32, String) {
        let path = format!("{}:{}", self.bin().display(), std::env::var("PATH").unwrap_or_default());
        let out = Command::new("bash")
            .args([flags, script])
            .current_dir(self.work())
            .env("PATH", path)
            .env("BASE", "main")
            .env("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", "main")
            .env("GITHUB_REPOSITORY", "example/fleet-config")
            .env("PR", "7")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.code().unwrap_or(-1), log)
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.work().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }
}

/// What each command must exit with in the repository of [`ConfigRepo::new`] within the
/// guardrails: validate passes, diff finds changes, simulate finds no guardrail broken.
fn expected(command: &str) -> i32 {
    match command.split_whitespace().nth(1) {
        Some("validate") | Some("--version") => 0,
        Some("diff") => 2,
        Some("simulate") => 0,
        other => panic!("unexpected command {other:?} in {command}"),
    }
}

fn run_commands(file: &str, scripts: &[String]) {
    let repo = ConfigRepo::new("");
    let all: Vec<String> = scripts.iter().flat_map(|s| commands(s)).collect();
    for sub in ["validate", "diff", "simulate"] {
        assert!(all.iter().any(|c| c.starts_with(&format!("capstan {sub}"))), "{file} runs no capstan {sub}: {all:?}");
    }
    for command in &all {
        let (code, log) = repo.run("-c", command, &[]);
        assert_eq!(code, expected(command), "{file}: `{command}` exited {code}:\n{log}");
    }
    assert!(repo.read("diff.md").starts_with("<!-- capstan-diff -->\n"), "{file}: diff.md");
    assert!(repo.read("simulate.md").starts_with("<!-- capstan-simulate -->"), "{file}: simulate.md");
    assert!(repo.read("simulate.html").contains("<html"), "{file}: simulate.html");
}

#[test]
fn the_files_are_yaml_of_their_platforms_shape() {
    let steps = github_steps();
    let checkout =
        steps.iter().find(|s| s["uses"].as_str().is_some_and(|u| u.starts_with("actions/checkout@"))).unwrap();
    assert_eq!(checkout["with"]["fetch-depth"], 0, "full history, for the base revision");
    let wf = yaml("examples/ci/github-actions.yml");
    for var in ["CAPSTAN_GIT", "CAPSTAN_VERSION", "BASE"] {
        assert!(wf["env"][var].is_string(), "env.{var}");
    }
    assert_eq!(wf["permissions"]["pull-requests"], "write");
    let upload = steps.iter().find(|s| s["uses"].as_str().is_some_and(|u| u.starts_with("actions/upload-artifact@")));
    assert_eq!(upload.unwrap()["with"]["path"], "simulate.html");
    let install = text(&github_step("Install capstan")["run"]);
    assert!(install.contains(r#"cargo install --locked --git "$CAPSTAN_GIT" --tag "$CAPSTAN_VERSION" capstan"#));

    let job = gitlab_job();
    assert_eq!(job["rules"][0]["if"], "$CI_PIPELINE_SOURCE == \"merge_request_event\"");
    assert_eq!(job["variables"]["GIT_DEPTH"], "0");
    assert!(job["variables"]["CAPSTAN_GIT"].is_string() && job["variables"]["CAPSTAN_VERSION"].is_string());
    assert_eq!(job["artifacts"]["paths"][0], "simulate.html");
    assert_eq!(job["artifacts"]["when"], "always");
    let before = gitlab_items("before_script").join("\n");
    assert!(before.contains(r#"cargo install --locked --git "$CAPSTAN_GIT" --tag "$CAPSTAN_VERSION" capstan"#));
    assert!(before.contains("PRIVATE-TOKEN: $GITLAB_TOKEN") && before.contains("/notes"));

    let hooks = yaml(".pre-commit-hooks.yaml");
    let hook = &hooks.as_sequence().unwrap()[0];
    assert_eq!(hook["id"], "capstan-validate");
    assert_eq!(hook["pass_filenames"], false);
    assert!(["system", "rust"].contains(&hook["language"].as_str().unwrap()));
    assert!(hook["name"].is_string());
}

#[test]
fn every_capstan_command_of_the_github_workflow_runs() {
    let scripts: Vec<String> =
        github_steps().iter().filter(|s| s["run"].is_string()).map(|s| text(&s["run"])).collect();
    run_commands("github-actions.yml", &scripts);
}

#[test]
fn every_capstan_command_of_the_gitlab_job_runs() {
    let mut scripts = gitlab_items("before_script");
    scripts.extend(gitlab_items("script"));
    run_commands("gitlab-ci.yml", &scripts);
}

#[test]
fn the_pre_commit_hook_validates_the_repository() {
    let hooks = yaml(".pre-commit-hooks.yaml");
    let hook = &hooks.as_sequence().unwrap()[0];
    let args: Vec<String> = hook["args"].as_sequence().map(|a| a.iter().map(text).collect()).unwrap_or_default();
    let command = format!("{} {}", text(&hook["entry"]), args.join(" "));
    assert!(command.starts_with("capstan validate"), "{command}");
    let repo = ConfigRepo::new("");
    let (code, log) = repo.run("-c", &command, &[]);
    assert_eq!(code, 0, "{log}");
    // A broken policy fails the hook.
    std::fs::write(repo.work().join("base/nodepools/default.yaml"), "kind: NodePool\nspec: [\n").unwrap();
    let (code, _) = repo.run("-c", &command, &[]);
    assert_ne!(code, 0, "a broken NodePool passes the hook");
}

/// A head that breaks an outcome guardrail: every pod of the trace waits longer than 1s.
const BREAKING: &str = "  simulation:\n    maxPendingP99: 1s\n";

#[test]
fn the_github_workflow_posts_or_updates_one_comment_per_report_then_fails_on_a_broken_guardrail() {
    let repo = ConfigRepo::new(BREAKING);
    let output = repo.dir.path().join("github-output");
    std::fs::write(&output, "").unwrap();
    let env = [("GITHUB_OUTPUT", output.to_str().unwrap())];
    for step in ["Diff", "Simulate"] {
        let (code, log) = repo.run("-ec", &text(&github_step(step)["run"]), &env);
        assert_eq!(code, 0, "step {step} fails before the comment is posted:\n{log}");
    }
    assert_eq!(std::fs::read_to_string(&output).unwrap().trim(), "code=1", "the broken guardrail is remembered");
    assert!(repo.read("simulate.md").contains("maxPendingP99"), "{}", repo.read("simulate.md"));

    // gh lists one earlier diff comment (id 41) and no simulate comment; writes are logged.
    let log = repo.dir.path().join("gh.log");
    repo.stub(
        "gh",
        &format!(
            r#"case "$*" in
  *--paginate*capstan-diff*) echo 41 ;;
  *--paginate*) ;;
  *) echo "$*" >> {log} ;;
esac
"#,
            log = log.display()
        ),
    );
    let (code, out) = repo.run("-ec", &text(&github_step("Comment on the pull request")["run"]), &env);
    assert_eq!(code, 0, "{out}");
    let calls = std::fs::read_to_string(&log).unwrap();
    let calls: Vec<&str> = calls.lines().collect();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(
        calls[0].contains("--method PATCH repos/example/fleet-config/issues/comments/41 -F body=@diff.md"),
        "{calls:?}"
    );
    assert!(
        calls[1].contains("--method POST repos/example/fleet-config/issues/7/comments -F body=@simulate.md"),
        "{calls:?}"
    );

    let last = github_steps().last().cloned().unwrap();
    assert_eq!(last["if"], "steps.simulate.outputs.code != '0'");
    let (code, _) = repo.run("-ec", &text(&last["run"]), &env);
    assert_eq!(code, 1, "the job fails");
}

#[test]
fn the_gitlab_job_posts_its_notes_then_fails_on_a_broken_guardrail() {
    let repo = ConfigRepo::new(BREAKING);
    // The Notes API: one earlier diff note (id 41) on page 2, none for simulate; writes logged.
    let log = repo.dir.path().join("curl.log");
    repo.stub(
        "curl",
        &format!(
            r#"headers=""; method=GET; body=""
while [ $# -gt 0 ]; do
  case "$1" in
    -D) headers="$2"; shift ;;
    -X) method="$2"; shift ;;
    --data-urlencode) body="$2"; shift ;;
    --header) shift ;;
    -*) ;;
    *) url="$1" ;;
  esac
  shift
done
if [ "$method" = GET ]; then
  case "$url" in
    *page=1) printf 'x-next-page: 2\r\n' > "$headers"; printf '%s\n' '[{{"id": 40, "body": "LGTM"}}]' ;;
    *) printf 'x-next-page: \r\n' > "$headers"; printf '%s\n' '[{{"id": 41, "body": "<!-- capstan-diff -->\nold"}}]' ;;
  esac
else
  echo "$method $url $body" >> {log}
fi
"#,
            log = log.display()
        ),
    );
    let before = gitlab_items("before_script");
    let note = before.iter().find(|s| s.contains("note()")).unwrap();
    let script = format!("{note}\n{}", gitlab_items("script").join("\n"));
    let env = [
        ("CI_API_V4_URL", "https://gitlab.example.com/api/v4"),
        ("CI_PROJECT_ID", "12"),
        ("CI_MERGE_REQUEST_IID", "7"),
        ("GITLAB_TOKEN", "glpat-test"),
    ];
    // As the runner does: bash, stopping at the first failing command.
    let (code, out) = repo.run("-ec", &format!("set -o pipefail\n{script}"), &env);
    assert_eq!(code, 1, "the job fails on the broken guardrail:\n{out}");
    assert!(out.contains("outcome guardrail"), "{out}");
    let calls = std::fs::read_to_string(&log).unwrap_or_default();
    let calls: Vec<&str> = calls.lines().collect();
    let notes = "https://gitlab.example.com/api/v4/projects/12/merge_requests/7/notes";
    assert_eq!(calls, [format!("PUT {notes}/41 body@diff.md"), format!("POST {notes} body@simulate.md")], "{out}");
}
