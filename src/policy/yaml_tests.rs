//! Unit tests of the YAML reader: positions, typing, limits, keys and merges.

use super::*;

fn one(text: &str) -> Node {
    parse_documents(text).unwrap().remove(0)
}

#[test]
fn spans_point_at_values_and_keys() {
    let doc = one("a:\n  b: 1\n  c:\n    - x\n    - y\n");
    let path = [Step::Key("a".into()), Step::Key("c".into()), Step::Index(1)];
    assert_eq!(doc.locate(&path), Span { line: 5, column: 7 });
    let path = [Step::Key("a".into()), Step::Key("b".into())];
    assert_eq!(doc.locate(&path), Span { line: 2, column: 6 });
}

#[test]
fn missing_path_falls_back_to_parent() {
    let doc = one("a:\n  b: 1\n");
    let path = [Step::Key("a".into()), Step::Key("zz".into())];
    assert_eq!(doc.locate(&path), Span { line: 1, column: 1 }, "the key of the deepest existing field");
}

#[test]
fn scalars_are_typed_like_go_yaml() {
    let text = "a: 1\nb: '1'\nc: true\nd: ~\ne: 1.5\nf: 10x\ng: 0x10\nh: \"true\"\ni: on\nj: 0755\nk: !!str on\nl: 2001-12-14\nm: 1e3\nblock: |\n  yes\n";
    let v = one(text).to_value();
    assert_eq!(v["a"], Value::from(1));
    assert_eq!(v["b"], Value::from("1"));
    assert_eq!(v["c"], Value::from(true));
    assert_eq!(v["d"], Value::Null);
    assert_eq!(v["e"], Value::from(1.5));
    assert_eq!(v["f"], Value::from("10x"));
    assert_eq!(v["g"], Value::from(16));
    assert_eq!(v["h"], Value::from("true"));
    assert_eq!(v["i"], Value::from(true), "YAML 1.1 boolean");
    assert_eq!(v["j"], Value::from(493), "a leading zero is octal");
    assert_eq!(v["k"], Value::from("on"), "!!str keeps the text");
    assert_eq!(v["l"], Value::from("2001-12-14"));
    assert_eq!(v["m"], Value::from(1000));
    assert_eq!(v["block"], Value::from("yes\n"), "block scalars are text");
}

#[test]
fn core_tags_are_checked_and_others_ignored() {
    let v = one("a: !!int \"12\"\nb: !custom 12\nc: !!float 1\n").to_value();
    assert_eq!(v["a"], Value::from(12));
    assert_eq!(v["b"], Value::from("12"));
    assert_eq!(v["c"], Value::from(1));
    let err = parse_documents("a: 1\nb: !!int abc\n").unwrap_err();
    assert_eq!((err.span.line, err.span.column), (2, 10), "{err:?}");
    assert!(err.message.contains("!!int"), "{err:?}");
    assert!(parse_documents("a: !!binary aGVsbG8=\n").unwrap_err().message.contains("!!binary"));
}

#[test]
fn values_json_cannot_hold_are_refused_at_their_position() {
    let err = parse_documents("a: 1\nb: [1, .inf]\n").unwrap_err();
    assert_eq!((err.span.line, err.span.column), (2, 8), "{err:?}");
    assert!(err.message.contains(".inf"), "{err:?}");
    assert_eq!(one("a: '.inf'\n").to_value()["a"], Value::from(".inf"));
}

#[test]
fn keys_become_json_strings_like_kubernetes() {
    let v = one("on: a\n0x10: b\n'on': c\n").to_value();
    assert_eq!(v["true"], Value::from("a"));
    assert_eq!(v["16"], Value::from("b"));
    assert_eq!(v["on"], Value::from("c"), "a quoted key keeps its text");
    let err = parse_documents("a: 1\n~: 2\n").unwrap_err();
    assert_eq!(err.span.line, 2);
    assert!(err.message.contains("null"), "{err:?}");
    assert!(parse_documents("[a]: 1\n").unwrap_err().message.contains("scalars"));
}

#[test]
fn typing_note_explains_a_value_read_as_boolean() {
    let doc = one("a: on\nb: \"on\"\nc: on-demand\n");
    let note = doc.get(&[Step::Key("a".into())]).unwrap().typing_note().unwrap();
    assert!(note.contains("boolean true") && note.contains("\"on\""), "{note}");
    assert_eq!(doc.get(&[Step::Key("b".into())]).unwrap().typing_note(), None);
    assert_eq!(doc.get(&[Step::Key("c".into())]).unwrap().typing_note(), None);
}

#[test]
fn multi_document_skips_empty_documents() {
    let docs = parse_documents("---\na: 1\n---\n---\nb: 2\n...\n").unwrap();
    assert_eq!(docs.len(), 2);
}

#[test]
fn alias_bomb_fails_fast() {
    let mut text = String::from("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
    for (prev, name) in ["a", "b", "c", "d", "e", "f", "g", "h"].iter().zip(["b", "c", "d", "e", "f", "g", "h", "i"]) {
        let refs = vec![format!("*{prev}"); 9].join(",");
        text.push_str(&format!("{name}: &{name} [{refs}]\n"));
    }
    let started = std::time::Instant::now();
    let err = parse_documents(&text).unwrap_err();
    assert!(err.message.contains("alias bomb"), "{err:?}");
    assert!(started.elapsed().as_secs() < 2);
}

#[test]
fn aliases_and_merge_keys_expand() {
    let v = one("base: &b {x: 1}\nuse: *b\nmerged:\n  <<: *b\n  y: 2\n").to_value();
    assert_eq!(v["use"]["x"], Value::from(1));
    assert_eq!(v["merged"]["x"], Value::from(1));
}

#[test]
fn duplicate_keys_are_refused() {
    let err = parse_documents("a: 1\na: 2\n").unwrap_err();
    assert_eq!(err.span.line, 2);
    assert!(err.message.contains("duplicate key"));
}

#[test]
fn syntax_errors_have_a_position() {
    let err = parse_documents("a: [1, 2\nb: 3\n").unwrap_err();
    assert!(err.message.starts_with("YAML syntax error"));
    assert!(err.span.line >= 1);
}

#[test]
fn deep_nesting_is_refused() {
    let text = "[".repeat(200) + &"]".repeat(200);
    let err = parse_documents(&text).unwrap_err();
    assert!(err.message.contains("nesting"), "{err:?}");
}

const FLOW_AT_KEY_INDENT: &str = "spec:
  template:
    spec:
      requirements:
        - key: karpenter.k8s.aws/instance-category
          operator: In
          values: [
            \"c\", \"m\", \"r\"
          ]
        - key: zone
          operator: In
          values: {
            a: 1,
            b: 2
          }
";

fn path(steps: &[&str]) -> Vec<Step> {
    steps.iter().map(|s| s.parse().map(Step::Index).unwrap_or_else(|_| Step::Key(s.to_string()))).collect()
}

#[test]
fn flow_collections_may_close_left_of_their_content() {
    let doc = one(FLOW_AT_KEY_INDENT);
    let v = doc.to_value();
    let reqs = &v["spec"]["template"]["spec"]["requirements"];
    assert_eq!(reqs[0]["values"], serde_json::json!(["c", "m", "r"]));
    assert_eq!(reqs[1]["values"], serde_json::json!({"a": 1, "b": 2}));
    let at = |p: &[&str]| doc.locate(&path(p));
    let r = ["spec", "template", "spec", "requirements"];
    assert_eq!(at(&[&r[..], &["0", "values", "2"]].concat()), Span { line: 8, column: 23 });
    assert_eq!(at(&[&r[..], &["1", "values", "b"]].concat()), Span { line: 14, column: 16 });
    assert_eq!(doc.key_span(&path(&[&r[..], &["1", "values", "b"]].concat())), Some(Span { line: 14, column: 13 }));
    assert_eq!(at(&[&r[..], &["1", "operator"]].concat()), Span { line: 11, column: 21 });
}

#[test]
fn closing_bracket_at_the_column_of_its_key() {
    for close in ["          ]", "      ]", "]"] {
        let text = format!("a:\n  b:\n    values: [\n      p, q\n{close}\n");
        let doc = parse_documents(&text).unwrap_or_else(|e| panic!("{close:?}: {e:?}")).remove(0);
        assert_eq!(doc.to_value()["a"]["b"]["values"], serde_json::json!(["p", "q"]), "{close:?}");
        let text = format!("a:\n  b:\n    values: {{\n      p: 1,\n      q: 2\n{}\n", close.replace(']', "}"));
        let doc = parse_documents(&text).unwrap_or_else(|e| panic!("{close:?}: {e:?}")).remove(0);
        assert_eq!(doc.to_value()["a"]["b"]["values"], serde_json::json!({"p": 1, "q": 2}), "{close:?}");
    }
}

#[test]
fn later_errors_keep_their_position_after_a_multi_line_flow_collection() {
    let text = format!("{FLOW_AT_KEY_INDENT}  extra: 1\n  extra: 2\n");
    let err = parse_documents(&text).unwrap_err();
    assert_eq!((err.span.line, err.span.column), (17, 3), "{err:?}");
    assert!(err.message.contains("duplicate key `extra`") && err.message.contains("line 16"), "{err:?}");
    let text = format!("{FLOW_AT_KEY_INDENT}  bad: [1, 2\n");
    let err = parse_documents(&text).unwrap_err();
    assert!(err.message.starts_with("YAML syntax error"), "{err:?}");
    assert!(err.span.line >= 16, "{err:?}");
}

#[test]
fn spans_in_flow_collections() {
    let doc = one("top: {a: 1, bb: [x, {c: d}]}\n");
    assert_eq!(doc.locate(&path(&["top", "a"])), Span { line: 1, column: 10 });
    assert_eq!(doc.key_span(&path(&["top", "bb"])), Some(Span { line: 1, column: 13 }));
    assert_eq!(doc.locate(&path(&["top", "bb", "1", "c"])), Span { line: 1, column: 25 });
    assert_eq!(doc.get(&path(&["top"])).unwrap().span, Span { line: 1, column: 6 });
}

#[test]
fn merge_keys_follow_precedence() {
    let text = "base: &b {p: 1, q: 1}\nother: &o {q: 2, r: 2}\nm:\n  p: 9\n  <<: [*b, *o]\nk:\n  <<: *b\n  q: 5\n";
    let v = one(text).to_value();
    assert_eq!(v["m"], serde_json::json!({"p": 1, "q": 1, "r": 2}), "the merge overwrites keys before it");
    assert_eq!(v["k"], serde_json::json!({"q": 5, "p": 1}), "a key after the merge overrides it");
    let v = one("a: &a {x: 1, w: 1}\nb: &b {x: 2, z: 2}\nm:\n  <<: [*a, *b]\n  z: 3\n").to_value();
    assert_eq!(v["m"], serde_json::json!({"x": 1, "w": 1, "z": 3}), "earlier sources win, later keys win");
    let v = one("a: &a {x: 1}\nb: &b {x: 2}\nm:\n  <<: *a\n  <<: *b\n").to_value();
    assert_eq!(v["m"], serde_json::json!({"x": 2}), "merges apply in document order");
    let err = parse_documents("a: &a {x: 1}\nm:\n  x: 0\n  <<: *a\n  x: 2\n").unwrap_err();
    assert!(err.message.contains("duplicate key `x`"), "{err:?}");
    let quoted = one("a: &a {x: 1}\nb: {\"<<\": *a}\n").to_value();
    assert_eq!(quoted["b"]["<<"]["x"], Value::from(1), "a quoted `<<` is an ordinary key");
    let err = parse_documents("a: &a 1\nb:\n  <<: [*a]\n").unwrap_err();
    assert_eq!(err.span.line, 3);
    assert!(err.message.contains("`<<`"), "{err:?}");
}

#[test]
fn duplicate_keys_in_flow_mappings_and_after_conversion() {
    let err = parse_documents("a: {x: 1, x: 2}\n").unwrap_err();
    assert_eq!((err.span.line, err.span.column), (1, 11), "{err:?}");
    let err = parse_documents("on: 1\ntrue: 2\n").unwrap_err();
    assert!(err.message.contains("duplicate key `true`"), "both keys are `true` in JSON: {err:?}");
}

#[test]
fn deep_block_nesting_is_refused() {
    let text: String =
        (0..100).map(|i| format!("{}k{i}:\n", "  ".repeat(i))).collect::<String>() + &"  ".repeat(100) + "v\n";
    let err = parse_documents(&text).unwrap_err();
    assert!(err.message.contains("nesting deeper than"), "{err:?}");
    let shallow: String = (0..MAX_DEPTH).map(|i| format!("{}k{i}:\n", "  ".repeat(i))).collect();
    assert!(parse_documents(&shallow).is_ok(), "{MAX_DEPTH} levels are fine");
}

#[test]
fn alias_budget_counts_expanded_nodes() {
    let text = "a: &a [1, 2, 3]\nb: [*a, *a, *a]\n";
    assert!(parse_documents_within(text, 20).is_ok());
    let err = parse_documents_within(text, 15).unwrap_err();
    assert!(err.message.contains("alias bomb"), "{err:?}");
    assert_eq!(err.span.line, 2);
}

#[test]
fn alias_budget_counts_the_bytes_an_alias_copies() {
    let long = "x".repeat(1 << 20);
    let mut text = format!("a: &a {long}\nb: [");
    text.push_str(&vec!["*a"; 300].join(", "));
    text.push_str("]\n");
    let started = std::time::Instant::now();
    let err = parse_documents(&text).unwrap_err();
    assert!(started.elapsed().as_secs() < 2);
    assert!(err.message.contains("alias bomb") && err.message.contains("bytes"), "{err:?}");
    assert_eq!(err.span.line, 2, "{err:?}");
    let cost = 1 + (1 << 20) / 64;
    let err = parse_documents_within(&text, cost + 10).unwrap_err();
    assert_eq!((err.span.line, err.span.column), (2, 5), "refused at the first alias: {err:?}");
    assert!(parse_documents_within(&format!("a: &a {long}\nb: *a\n"), 2 * cost + 10).is_ok());
}

#[test]
fn a_wide_mapping_parses() {
    let text: String = (0..50_000).map(|i| format!("k{i}: {i}\n")).collect();
    let doc = one(&text);
    assert_eq!(doc.to_value()["k49999"], Value::from(49_999));
    let merged = format!(
        "base: &b {{{}}}\nm:\n  <<: *b\n",
        (0..20_000).map(|i| format!("k{i}: {i}")).collect::<Vec<_>>().join(", ")
    );
    assert_eq!(one(&merged).to_value()["m"]["k19999"], Value::from(19_999));
}
