//! Whether two sets of node selector requirements can select the same node: the test behind the
//! NodeOverlay conflict check. Each set is folded per key into what a label value must be (in a
//! set, not in a set, present, absent, within integer bounds); two sets overlap unless, on some
//! key, what both ask together is impossible.

use std::collections::{BTreeMap, BTreeSet};

use super::nodeoverlay::OverlayRequirement;
use super::nodepool::Operator;

/// What the requirements on one key ask of a label.
#[derive(Debug, Clone, Default)]
struct Ask {
    /// The value must be one of these (`In`, intersected).
    within: Option<BTreeSet<String>>,
    /// The value must not be one of these (`NotIn`).
    outside: BTreeSet<String>,
    /// The label must exist (`Exists`, `In`, `Gt`, `Lt`, `Gte`, `Lte`).
    present: bool,
    /// The label must not exist (`DoesNotExist`).
    absent: bool,
    /// The value, an integer, is at least this (`Gt`/`Gte`).
    low: Option<i128>,
    /// The value, an integer, is at most this (`Lt`/`Lte`).
    high: Option<i128>,
}

impl Ask {
    fn add(&mut self, operator: Operator, values: &[String]) {
        let number = || values.first().and_then(|v| v.parse::<i128>().ok());
        match operator {
            Operator::In => {
                let set: BTreeSet<String> = values.iter().cloned().collect();
                self.within = Some(match self.within.take() {
                    Some(w) => w.intersection(&set).cloned().collect(),
                    None => set,
                });
                self.present = true;
            }
            Operator::NotIn => self.outside.extend(values.iter().cloned()),
            Operator::Exists => self.present = true,
            Operator::DoesNotExist => self.absent = true,
            Operator::Gt | Operator::Gte | Operator::Lt | Operator::Lte => {
                self.present = true;
                let Some(n) = number() else { return };
                match operator {
                    Operator::Gt => self.low = Some(self.low.map_or(n + 1, |l| l.max(n + 1))),
                    Operator::Gte => self.low = Some(self.low.map_or(n, |l| l.max(n))),
                    Operator::Lt => self.high = Some(self.high.map_or(n - 1, |h| h.min(n - 1))),
                    _ => self.high = Some(self.high.map_or(n, |h| h.min(n))),
                }
            }
        }
    }

    fn bounded(&self) -> bool {
        self.low.is_some() || self.high.is_some()
    }

    fn in_bounds(&self, value: &str) -> bool {
        if !self.bounded() {
            return true;
        }
        value.parse::<i128>().is_ok_and(|v| self.low.is_none_or(|l| v >= l) && self.high.is_none_or(|h| v <= h))
    }

    /// Whether some label (or its absence) satisfies everything asked.
    fn possible(&self) -> bool {
        if self.absent {
            return !self.present;
        }
        if let Some(within) = &self.within {
            return within.iter().any(|v| !self.outside.contains(v) && self.in_bounds(v));
        }
        match (self.low, self.high) {
            (Some(l), Some(h)) => l <= h,
            _ => true,
        }
    }
}

fn asks<'a>(requirements: impl IntoIterator<Item = &'a OverlayRequirement>, into: &mut BTreeMap<&'a str, Ask>) {
    for r in requirements {
        into.entry(r.key.as_str()).or_default().add(r.operator, &r.values);
    }
}

/// Whether some node can meet both `a` and `b`; when it can, a key both select on (if any).
pub fn overlap<'a>(a: &'a [OverlayRequirement], b: &'a [OverlayRequirement]) -> Option<Option<&'a str>> {
    let mut both = BTreeMap::new();
    asks(a.iter().chain(b), &mut both);
    if both.values().any(|ask| !ask.possible()) {
        return None;
    }
    let in_b: BTreeSet<&str> = b.iter().map(|r| r.key.as_str()).collect();
    Some(a.iter().map(|r| r.key.as_str()).find(|k| in_b.contains(k)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(key: &str, operator: Operator, values: &[&str]) -> OverlayRequirement {
        OverlayRequirement { key: key.into(), operator, values: values.iter().map(|v| v.to_string()).collect() }
    }

    const FAMILY: &str = "karpenter.k8s.aws/instance-family";
    const CPU: &str = "karpenter.k8s.aws/instance-cpu";

    #[test]
    fn disjoint_values_do_not_overlap_and_shared_ones_do() {
        let m5 = [req(FAMILY, Operator::In, &["m5"])];
        let c5 = [req(FAMILY, Operator::In, &["c5"])];
        let both = [req(FAMILY, Operator::In, &["m5", "c5"])];
        assert_eq!(overlap(&m5, &c5), None);
        assert_eq!(overlap(&m5, &both), Some(Some(FAMILY)));
        assert_eq!(overlap(&m5, &[]), Some(None), "no requirements select everything");
    }

    #[test]
    fn not_in_absence_and_bounds_are_taken_into_account() {
        let m5 = [req(FAMILY, Operator::In, &["m5"])];
        assert_eq!(overlap(&m5, &[req(FAMILY, Operator::NotIn, &["m5"])]), None);
        assert!(overlap(&m5, &[req(FAMILY, Operator::NotIn, &["c5"])]).is_some());
        assert_eq!(overlap(&m5, &[req(FAMILY, Operator::DoesNotExist, &[])]), None);
        assert!(
            overlap(&[req(FAMILY, Operator::NotIn, &["m5"])], &[req(FAMILY, Operator::DoesNotExist, &[])]).is_some()
        );
        let small = [req(CPU, Operator::Lt, &["4"])];
        assert_eq!(overlap(&small, &[req(CPU, Operator::Gt, &["3"])]), None);
        assert!(overlap(&small, &[req(CPU, Operator::Gte, &["3"])]).is_some());
        assert_eq!(overlap(&small, &[req(CPU, Operator::In, &["8", "16"])]), None);
    }
}
