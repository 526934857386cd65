//! Properties of the policy parsers: quantities survive parse → print → parse, and each name
//! validator accepts exactly the strings Kubernetes' regular expression (and length limit)
//! accepts. The references here are small state machines written from the regular expressions,
//! independent of the validators' own code.

use capstan::policy::names;
use capstan::policy::quantity::Quantity;
use proptest::prelude::*;

/// States of the machines below: before any character, after an alphanumeric, after a
/// non-alphanumeric that may only appear inside.
#[derive(Clone, Copy, PartialEq)]
enum State {
    Start,
    Alnum,
    Inner,
}

/// Runs `s` through a machine whose edges are alphanumerics (by `alnum`) and inner characters
/// (by `inner`); accepts when it ends after an alphanumeric.
fn machine(s: &str, alnum: impl Fn(char) -> bool, inner: impl Fn(char) -> bool) -> bool {
    let mut state = State::Start;
    for c in s.chars() {
        state = match (state, alnum(c), inner(c)) {
            (_, true, _) => State::Alnum,
            (State::Alnum | State::Inner, false, true) => State::Inner,
            _ => return false,
        };
    }
    state == State::Alnum
}

fn lower(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
fn label_re(s: &str) -> bool {
    machine(s, lower, |c| c == '-')
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*`
fn subdomain_re(s: &str) -> bool {
    s.split('.').all(label_re)
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn name_re(s: &str) -> bool {
    machine(s, |c| c.is_ascii_alphanumeric(), |c| matches!(c, '-' | '_' | '.'))
}

fn reference_label(s: &str) -> bool {
    s.len() <= 63 && label_re(s)
}

fn reference_subdomain(s: &str) -> bool {
    s.len() <= 253 && subdomain_re(s)
}

fn reference_qualified(s: &str) -> bool {
    let (prefix, name) = match s.find('/') {
        Some(i) => (Some(&s[..i]), &s[i + 1..]),
        None => (None, s),
    };
    prefix.is_none_or(|p| !p.is_empty() && reference_subdomain(p)) && name.len() <= 63 && name_re(name)
}

fn reference_value(s: &str) -> bool {
    s.is_empty() || (s.len() <= 63 && name_re(s))
}

/// Strings over the characters that matter to these rules, plus a control character, a space
/// and a non-ASCII letter.
const TRICKY: &str = "[a-cA-C0-9._/ \u{7}é-]{0,12}";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn validators_agree_with_the_regular_expressions(s in TRICKY) {
        prop_assert_eq!(names::is_dns1123_label(&s), reference_label(&s), "label {:?}", s);
        prop_assert_eq!(names::is_dns1123_subdomain(&s), reference_subdomain(&s), "subdomain {:?}", s);
        prop_assert_eq!(names::is_qualified_name(&s), reference_qualified(&s), "qualified name {:?}", s);
        prop_assert_eq!(names::is_label_value(&s), reference_value(&s), "label value {:?}", s);
    }

    #[test]
    fn validators_agree_at_the_length_limits(head in "[a-z]{1,3}", n in 55usize..270, tail in "[a-z0-9._/-]{0,3}") {
        let s = format!("{head}{}{tail}", "a".repeat(n));
        prop_assert_eq!(names::is_dns1123_label(&s), reference_label(&s), "label of {}", s.len());
        prop_assert_eq!(names::is_dns1123_subdomain(&s), reference_subdomain(&s), "subdomain of {}", s.len());
        prop_assert_eq!(names::is_qualified_name(&s), reference_qualified(&s), "qualified name of {}", s.len());
        prop_assert_eq!(names::is_label_value(&s), reference_value(&s), "label value of {}", s.len());
        let prefixed = format!("{s}/name");
        prop_assert_eq!(names::is_qualified_name(&prefixed), reference_qualified(&prefixed), "prefix of {}", s.len());
    }

    #[test]
    fn strings_of_the_regular_expressions_are_accepted(
        label in "[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?",
        subdomain in "[a-z0-9]([-a-z0-9]{0,8}[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]{0,8}[a-z0-9])?){0,4}",
        name in "([A-Za-z0-9][-A-Za-z0-9_.]{0,20})?[A-Za-z0-9]",
    ) {
        prop_assert!(names::is_dns1123_label(&label), "{:?}", label);
        prop_assert!(names::is_dns1123_subdomain(&subdomain), "{:?}", subdomain);
        prop_assert!(names::is_qualified_name(&name), "{:?}", name);
        let qualified = format!("{subdomain}/{name}");
        prop_assert!(names::is_qualified_name(&qualified), "{:?}", qualified);
        prop_assert!(names::is_label_value(&name), "{:?}", name);
    }

    #[test]
    fn quantities_round_trip_through_their_text(
        text in "[+-]?([0-9]{1,7}(\\.[0-9]{0,3})?|\\.[0-9]{1,3})(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|e[+-]?[0-9])?",
    ) {
        let Some(q) = Quantity::parse(&text) else { return Err(TestCaseError::fail(format!("{text} parses"))) };
        let again = Quantity::parse(q.as_str()).expect("printed text parses");
        prop_assert_eq!(again.milli(), q.milli());
        let canonical = Quantity::from_milli(q.milli());
        prop_assert_eq!(Quantity::parse(canonical.as_str()).map(|c| c.milli()), Some(q.milli()), "{}", canonical);
        let json = serde_json::to_value(&q).unwrap();
        let read = serde_json::from_value::<Quantity>(json);
        prop_assert_eq!(read.is_ok(), !q.is_negative(), "negative quantities are refused when read: {}", text);
        if let Ok(read) = read {
            prop_assert_eq!(read.milli(), q.milli());
        }
    }

    #[test]
    fn thousandths_print_and_parse_back(milli in any::<i64>()) {
        let q = Quantity::from_milli(milli as i128);
        prop_assert_eq!(Quantity::parse(q.as_str()).map(|p| p.milli()), Some(milli as i128), "{}", q);
    }
}
