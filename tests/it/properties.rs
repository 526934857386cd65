//! Property tests for the parsers every policy file goes through.

use capstan::policy::document;
use capstan::policy::quantity::Quantity;
use capstan::policy::yaml;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// No input makes the YAML reader panic; it returns documents or a positioned error.
    #[test]
    fn yaml_reader_never_panics(text in "[ -~\n\t]{0,200}") {
        if let Err(e) = yaml::parse_documents(&text) {
            prop_assert!(e.span.line >= 1);
        }
    }

    /// Arbitrary bytes are read or refused with a position, never a panic.
    #[test]
    fn file_reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Err(d) = document::parse_file("f.yaml", &bytes) {
            prop_assert!(d.line >= 1 && d.column >= 1);
        }
    }

    /// A quantity written from thousandths reads back to the same value.
    #[test]
    fn quantity_round_trip(milli in -1_000_000_000_000i128..1_000_000_000_000i128) {
        let q = Quantity::from_milli(milli);
        prop_assert_eq!(Quantity::parse(q.as_str()).unwrap().milli(), milli);
    }

    /// Binary suffixes scale by powers of 1024.
    #[test]
    fn binary_suffixes(n in 0i128..1_000_000, s in 0usize..4) {
        let (suffix, factor) = [("Ki", 1i128 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30), ("Ti", 1 << 40)][s];
        let q = Quantity::parse(&format!("{n}{suffix}")).unwrap();
        prop_assert_eq!(q.milli(), n * factor * 1000);
    }

    /// Every mapping path the reader reports can be located back in the file.
    #[test]
    fn every_key_is_located(keys in proptest::collection::vec("[a-z]{1,8}", 1..6)) {
        // YAML 1.1 reads these as booleans, so their JSON key is `true` or `false`.
        prop_assume!(keys.iter().all(|k| !matches!(k.as_str(), "y" | "yes" | "on" | "n" | "no" | "off")));
        let mut text = String::new();
        for (depth, k) in keys.iter().enumerate() {
            text.push_str(&format!("{}{k}:\n", "  ".repeat(depth)));
        }
        text.push_str(&format!("{}leaf: 1\n", "  ".repeat(keys.len())));
        let node = yaml::parse_documents(&text).unwrap().remove(0);
        let mut path: Vec<yaml::Step> = keys.iter().map(|k| yaml::Step::Key(k.clone())).collect();
        path.push(yaml::Step::Key("leaf".into()));
        let span = node.locate(&path);
        prop_assert_eq!(span.line, keys.len() + 1);
        prop_assert_eq!(span.column, 2 * keys.len() + 7);
    }
}
