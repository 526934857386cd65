//! Node requirements as sets: the algebra Karpenter uses to combine a NodePool's requirements,
//! a pod's node selector and affinity, and an instance type's labels.
//!
//! Every operator maps onto one shape — a value set that is either listed or the complement of
//! a listed set, with optional integer bounds:
//!
//! | operator       | complement | values | bounds      |
//! |----------------|------------|--------|-------------|
//! | In [v…]        | no         | v…     |             |
//! | NotIn [v…]     | yes        | v…     |             |
//! | Exists         | yes        | —      |             |
//! | DoesNotExist   | no         | —      |             |
//! | Gt n / Gte n   | yes        | —      | > n / ≥ n   |
//! | Lt n / Lte n   | yes        | —      | < n / ≤ n   |

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::policy::nodepool::{Operator, Requirement as PolicyRequirement};

/// The values one label key may take.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueSet {
    complement: bool,
    values: BTreeSet<String>,
    /// Exclusive lower bound.
    gt: Option<i64>,
    /// Exclusive upper bound.
    lt: Option<i64>,
    /// The least number of distinct values a launch must be able to choose from.
    pub min_values: Option<usize>,
}

impl ValueSet {
    pub fn any() -> ValueSet {
        ValueSet { complement: true, values: BTreeSet::new(), gt: None, lt: None, min_values: None }
    }

    pub fn none() -> ValueSet {
        ValueSet { complement: false, values: BTreeSet::new(), gt: None, lt: None, min_values: None }
    }

    pub fn one(value: &str) -> ValueSet {
        ValueSet::of(false, [value])
    }

    pub fn of<'a>(complement: bool, values: impl IntoIterator<Item = &'a str>) -> ValueSet {
        ValueSet {
            complement,
            values: values.into_iter().map(str::to_string).collect(),
            gt: None,
            lt: None,
            min_values: None,
        }
    }

    /// The set an operator with these values stands for; `None` when a numeric operator's value
    /// is not an integer.
    pub fn from_operator(op: Operator, values: &[String]) -> Option<ValueSet> {
        let int = || values.first().and_then(|v| v.parse::<i64>().ok());
        let mut set = match op {
            Operator::In => ValueSet::of(false, values.iter().map(String::as_str)),
            Operator::NotIn => ValueSet::of(true, values.iter().map(String::as_str)),
            Operator::Exists => ValueSet::any(),
            Operator::DoesNotExist => ValueSet::none(),
            Operator::Gt | Operator::Gte | Operator::Lt | Operator::Lte => ValueSet::any(),
        };
        match op {
            Operator::Gt => set.gt = Some(int()?),
            // At the ends of i64 the bound is no bound (≥ i64::MIN, ≤ i64::MAX).
            Operator::Gte => set.gt = int()?.checked_sub(1),
            Operator::Lt => set.lt = Some(int()?),
            Operator::Lte => set.lt = int()?.checked_add(1),
            _ => {}
        }
        Some(set)
    }

    fn in_bounds(&self, value: &str) -> bool {
        if self.gt.is_none() && self.lt.is_none() {
            return true;
        }
        let Ok(n) = value.parse::<i64>() else { return false };
        self.gt.is_none_or(|g| n > g) && self.lt.is_none_or(|l| n < l)
    }

    /// Whether a node whose label has `value` satisfies the set.
    pub fn has(&self, value: &str) -> bool {
        self.values.contains(value) != self.complement && self.in_bounds(value)
    }

    /// Whether a node without the label satisfies the set (only `DoesNotExist`-like sets and
    /// NotIn without bounds do).
    pub fn allows_absent(&self) -> bool {
        if self.complement {
            self.gt.is_none() && self.lt.is_none() && !self.values.is_empty()
        } else {
            self.values.is_empty()
        }
    }

    /// `DoesNotExist`: no value at all.
    pub fn is_does_not_exist(&self) -> bool {
        !self.complement && self.values.is_empty()
    }

    /// True when no value satisfies the set.
    pub fn is_empty(&self) -> bool {
        if self.complement {
            matches!((self.gt, self.lt), (Some(g), Some(l)) if l - g <= 1)
        } else {
            self.values.is_empty() || !self.values.iter().any(|v| self.in_bounds(v))
        }
    }

    /// The listed values, for a non-complement set.
    pub fn values(&self) -> Option<impl Iterator<Item = &str>> {
        (!self.complement).then(|| self.values.iter().filter(|v| self.in_bounds(v)).map(String::as_str))
    }

    /// Number of values, when finite.
    pub fn len(&self) -> Option<usize> {
        self.values().map(|v| v.count())
    }

    pub fn intersect(&self, other: &ValueSet) -> ValueSet {
        let gt = match (self.gt, other.gt) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let lt = match (self.lt, other.lt) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let (complement, values) = match (self.complement, other.complement) {
            (true, true) => (true, self.values.union(&other.values).cloned().collect()),
            (true, false) => (false, other.values.difference(&self.values).cloned().collect()),
            (false, true) => (false, self.values.difference(&other.values).cloned().collect()),
            (false, false) => (false, self.values.intersection(&other.values).cloned().collect()),
        };
        let min_values = match (self.min_values, other.min_values) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let mut out = ValueSet { complement, values, gt, lt, min_values };
        if !out.complement {
            let kept: BTreeSet<String> = out.values.iter().filter(|v| out.in_bounds(v)).cloned().collect();
            out.values = kept;
        }
        out
    }
}

impl fmt::Display for ValueSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = || self.values.iter().cloned().collect::<Vec<_>>().join(", ");
        match (self.complement, self.values.is_empty()) {
            (false, true) => f.write_str("DoesNotExist")?,
            (false, false) => write!(f, "In [{}]", list())?,
            (true, true) => f.write_str("Exists")?,
            (true, false) => write!(f, "NotIn [{}]", list())?,
        }
        if let Some(g) = self.gt {
            write!(f, " >{g}")?;
        }
        if let Some(l) = self.lt {
            write!(f, " <{l}")?;
        }
        Ok(())
    }
}

/// Requirements on several keys, all of which must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Requirements {
    keys: BTreeMap<String, ValueSet>,
}

impl Requirements {
    pub fn new() -> Requirements {
        Requirements::default()
    }

    /// From NodePool-style requirements; an unparsable numeric value makes the key impossible.
    pub fn from_policy(reqs: &[PolicyRequirement]) -> Requirements {
        let mut out = Requirements::new();
        for r in reqs {
            let mut set = ValueSet::from_operator(r.operator, &r.values).unwrap_or_else(ValueSet::none);
            set.min_values = r.min_values.map(|m| m.max(0) as usize);
            out.add(&r.key, set);
        }
        out
    }

    /// From exact labels (a node selector, or a node's labels).
    pub fn from_labels<'a>(labels: impl IntoIterator<Item = (&'a String, &'a String)>) -> Requirements {
        let mut out = Requirements::new();
        for (k, v) in labels {
            out.add(k, ValueSet::one(v));
        }
        out
    }

    /// Adds a constraint on `key`, intersecting with any already there.
    pub fn add(&mut self, key: &str, set: ValueSet) {
        match self.keys.get_mut(key) {
            Some(existing) => *existing = existing.intersect(&set),
            None => {
                self.keys.insert(key.to_string(), set);
            }
        }
    }

    pub fn get(&self, key: &str) -> Option<&ValueSet> {
        self.keys.get(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &ValueSet)> {
        self.keys.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Keys that ask for at least so many distinct values.
    pub fn min_values(&self) -> impl Iterator<Item = (&str, usize)> {
        self.keys.iter().filter_map(|(k, v)| v.min_values.map(|m| (k.as_str(), m)))
    }

    /// Both sets of requirements together.
    pub fn intersect(&self, other: &Requirements) -> Requirements {
        let mut out = self.clone();
        for (k, v) in &other.keys {
            out.add(k, v.clone());
        }
        out
    }

    /// The first key on which the two cannot both hold, if any.
    pub fn conflict(&self, other: &Requirements) -> Option<String> {
        for (k, theirs) in &other.keys {
            if let Some(ours) = self.keys.get(k)
                && ours.intersect(theirs).is_empty()
                && !(ours.allows_absent() && theirs.allows_absent())
            {
                return Some(k.clone());
            }
        }
        None
    }

    /// The first key whose constraint a node with `labels` breaks (`label` returns a label's
    /// value), if any.
    pub fn unmet_by<'a>(&self, label: impl Fn(&str) -> Option<&'a str>) -> Option<&str> {
        self.keys
            .iter()
            .find(|(k, set)| match label(k) {
                Some(v) => !set.has(v),
                None => !set.allows_absent(),
            })
            .map(|(k, _)| k.as_str())
    }
}

impl fmt::Display for Requirements {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.keys.iter().map(|(k, v)| format!("{k} {v}")).collect();
        f.write_str(&parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(op: Operator, values: &[&str]) -> ValueSet {
        let values: Vec<String> = values.iter().map(|s| s.to_string()).collect();
        ValueSet::from_operator(op, &values).unwrap()
    }

    #[test]
    fn operators() {
        assert!(set(Operator::In, &["a", "b"]).has("a"));
        assert!(!set(Operator::In, &["a"]).has("c"));
        assert!(set(Operator::NotIn, &["a"]).has("c"));
        assert!(!set(Operator::NotIn, &["a"]).has("a"));
        assert!(set(Operator::Exists, &[]).has("x"));
        assert!(!set(Operator::Exists, &[]).allows_absent());
        assert!(set(Operator::DoesNotExist, &[]).allows_absent());
        assert!(set(Operator::Gt, &["4"]).has("5") && !set(Operator::Gt, &["4"]).has("4"));
        assert!(set(Operator::Gte, &["4"]).has("4"));
        assert!(set(Operator::Lt, &["4"]).has("3") && !set(Operator::Lt, &["4"]).has("4"));
        assert!(set(Operator::Lte, &["4"]).has("4"));
        assert!(set(Operator::Lte, &["9223372036854775807"]).has("9223372036854775807"), "no overflow at i64::MAX");
        assert!(!set(Operator::Gt, &["4"]).has("abc"));
        assert!(ValueSet::from_operator(Operator::Gt, &["x".into()]).is_none());
    }

    #[test]
    fn intersections() {
        let a = set(Operator::In, &["a", "b", "c"]);
        let b = set(Operator::NotIn, &["b"]);
        assert_eq!(a.intersect(&b).len(), Some(2));
        let n = set(Operator::In, &["2", "4", "8", "16"]).intersect(&set(Operator::Gt, &["3"]));
        assert_eq!(n.values().unwrap().collect::<Vec<_>>(), ["16", "4", "8"]);
        assert!(set(Operator::Gt, &["5"]).intersect(&set(Operator::Lt, &["6"])).is_empty());
        assert!(!set(Operator::Gt, &["5"]).intersect(&set(Operator::Lt, &["7"])).is_empty());
        assert!(set(Operator::In, &["a"]).intersect(&set(Operator::In, &["b"])).is_empty());
    }

    #[test]
    fn conflicts_between_requirement_sets() {
        let mut pool = Requirements::new();
        pool.add("arch", ValueSet::one("amd64"));
        let mut pod = Requirements::new();
        pod.add("arch", ValueSet::one("arm64"));
        assert_eq!(pool.conflict(&pod).as_deref(), Some("arch"));
        let mut ok = Requirements::new();
        ok.add("zone", ValueSet::one("a"));
        assert_eq!(pool.conflict(&ok), None);
    }

    #[test]
    fn labels_meet_requirements() {
        let mut r = Requirements::new();
        r.add("team", ValueSet::one("a"));
        r.add("gpu", ValueSet::none());
        assert_eq!(r.unmet_by(|k| (k == "team").then_some("a")), None);
        assert_eq!(r.unmet_by(|k| (k == "team").then_some("b")), Some("team"));
        assert_eq!(r.unmet_by(|k| if k == "team" { Some("a") } else { Some("t4") }), Some("gpu"));
    }
}
