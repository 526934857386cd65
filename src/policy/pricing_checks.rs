//! Checks of the documents that change prices: NodeOverlays (per cluster, after overrides are
//! merged) and Commitments (once for the fleet). Names and integer ranges are
//! [`bounds`](super::bounds)' job; this module checks patterns, exclusive fields, references to
//! the fleet's clusters and overlays that contradict each other.
//!
//! Two overlays of the same weight that can select the same offering with different effects are
//! an error naming both documents: Karpenter would mark both not applied at run time, a
//! reviewer should see it in the pull request instead.

use super::commitment::{Commitment, CommitmentType};
use super::diag::{Diagnostics, Severity};
use super::document::Located;
use super::document::{Origin, steps};
use super::effective::EffectivePolicy;
use super::load::{Entry, Repo};
use super::nodeoverlay::{MAX_REQUIREMENTS, NodeOverlay, PriceEffect, STANDARD_RESOURCES, is_offering_key};
use super::nodepool::Operator;

/// Reports findings about one object, at its fields.
struct Report<'a> {
    origin: &'a Origin,
    object: String,
    diags: &'a mut Diagnostics,
}

impl Report<'_> {
    fn at(&mut self, severity: Severity, field: &str, message: impl Into<String>, hint: impl Into<String>) {
        let d = self.origin.diag(severity, &self.object, &steps(field), message, hint);
        self.diags.push(d);
    }

    fn error(&mut self, field: &str, message: impl Into<String>, hint: impl Into<String>) {
        self.at(Severity::Error, field, message, hint);
    }
}

const PRICE_HINT: &str = "write USD per hour as digits with an optional fraction, e.g. \"0.052\"";
const ADJUSTMENT_HINT: &str =
    "write a signed amount (\"-0.05\", \"+0.5\") or percentage (\"+10%\", \"-28%\", at most \"-100%\")";

/// Checks every NodeOverlay of a cluster's effective policy, and pairs of them that conflict.
pub fn check_overlays(policy: &EffectivePolicy, diags: &mut Diagnostics) {
    for o in &policy.node_overlays {
        let mut r = Report { origin: &o.origin, object: format!("NodeOverlay/{}", o.value.metadata.name), diags };
        check_overlay(&o.value, &mut r);
    }
    for (i, b) in policy.node_overlays.iter().enumerate() {
        for a in &policy.node_overlays[..i] {
            if let Some(key) = conflict(&a.value, &b.value) {
                let (file, span) = a.origin.locate(&steps("metadata.name"));
                let mut r =
                    Report { origin: &b.origin, object: format!("NodeOverlay/{}", b.value.metadata.name), diags };
                r.error(
                    "spec.weight",
                    format!(
                        "NodeOverlay/{} and NodeOverlay/{} ({file}:{}:{}) both have weight {} and can select the same offerings{key} with different effects",
                        b.value.metadata.name,
                        a.value.metadata.name,
                        span.line,
                        span.column,
                        a.value.spec.weight()
                    ),
                    "give the one that should win a higher weight, or narrow the requirements so they select different offerings",
                );
            }
        }
    }
}

/// Why two overlays conflict: same weight, requirements that can both hold, and different prices
/// or different amounts of one extended resource.
/// The text names a key their requirements overlap on, when there is one.
fn conflict(a: &NodeOverlay, b: &NodeOverlay) -> Option<String> {
    // Prices and capacities are settled apart: an overlay that only adds capacity does not
    // contradict one that only changes the price.
    fn prices(o: &NodeOverlay) -> Option<(&Option<String>, &Option<String>)> {
        (o.spec.price.is_some() || o.spec.price_adjustment.is_some())
            .then_some((&o.spec.price, &o.spec.price_adjustment))
    }
    let price_differs = matches!((prices(a), prices(b)), (Some(x), Some(y)) if x != y);
    let capacity_differs = a.spec.capacity.iter().any(|(k, v)| b.spec.capacity.get(k).is_some_and(|w| w != v));
    if a.spec.weight() != b.spec.weight() || !(price_differs || capacity_differs) {
        return None;
    }
    let shared = super::overlap::overlap(&a.spec.requirements, &b.spec.requirements)?;
    Some(shared.map(|k| format!(" (both select on {k})")).unwrap_or_default())
}

fn check_overlay(o: &NodeOverlay, r: &mut Report) {
    let spec = &o.spec;
    if spec.requirements.len() > MAX_REQUIREMENTS {
        r.error(
            "spec.requirements",
            format!("{} requirements; a NodeOverlay may have at most {MAX_REQUIREMENTS}", spec.requirements.len()),
            "merge requirements on the same key into one with several values",
        );
    }
    for (i, q) in spec.requirements.iter().enumerate() {
        let at = format!("spec.requirements[{i}]");
        let n = q.values.len();
        // The NodeOverlay CRD (v1alpha1, Karpenter 1.15) requires values for both In and NotIn,
        // unlike the NodePool's, which requires them for In only.
        match q.operator {
            Operator::In | Operator::NotIn if n == 0 => r.error(
                &format!("{at}.values"),
                format!(
                    "operator {:?} has no values; Karpenter's rule: requirements with operator '{:?}' must have a value defined",
                    q.operator, q.operator
                ),
                "list the values, or use Exists / DoesNotExist",
            ),
            // The CRD sets no rule here, and Karpenter ignores the values.
            Operator::Exists | Operator::DoesNotExist if n > 0 => r.at(
                Severity::Warning,
                &format!("{at}.values"),
                format!("operator {:?} ignores its values {:?}", q.operator, q.values),
                "remove the values, or use In / NotIn",
            ),
            // `int(values[0]) >= 0`, `int` being a 64-bit signed integer.
            op if op.is_numeric() && !(n == 1 && q.values[0].parse::<i64>().is_ok_and(|v| v >= 0)) => r.error(
                &format!("{at}.values"),
                format!(
                    "operator {op:?} needs exactly one non-negative integer value (at most 9223372036854775807), got {:?}; Karpenter's rule: requirements operator 'Gt', 'Lt', 'Gte' or 'Lte' must have a single positive integer value",
                    q.values
                ),
                "write one whole number, e.g. values: [\"4\"]",
            ),
            _ => {}
        }
        if let Some(why) = super::labels::overlay_restricted_reason(&q.key) {
            r.error(
                &format!("{at}.key"),
                format!("requirement key `{}` is not allowed: {why}", q.key),
                "use a well-known label such as karpenter.k8s.aws/instance-family",
            );
        } else if !is_offering_key(&q.key) {
            r.at(
                Severity::Warning,
                &format!("{at}.key"),
                format!("capstan prices one catalog for every NodePool and matches overlays on instance-type, zone, capacity-type and region labels only; `{}` is not one, so this overlay is not applied", q.key),
                "select offerings by karpenter.k8s.aws/instance-* labels, node.kubernetes.io/instance-type, topology.kubernetes.io/zone or karpenter.sh/capacity-type",
            );
        }
    }
    match (&spec.price, &spec.price_adjustment) {
        (Some(_), Some(_)) => r.error(
            "spec.priceAdjustment",
            "cannot set both 'price' and 'priceAdjustment'",
            "keep one: price sets the price, priceAdjustment changes it",
        ),
        (Some(p), None) if PriceEffect::parse_price(p).is_none() => {
            r.error("spec.price", format!("price `{p}` does not match ^\\d+(\\.\\d+)?$"), PRICE_HINT)
        }
        (None, Some(a)) if PriceEffect::parse_adjustment(a).is_none() => r.error(
            "spec.priceAdjustment",
            format!("priceAdjustment `{a}` is not a price change Karpenter accepts"),
            ADJUSTMENT_HINT,
        ),
        _ => {}
    }
    for key in spec.capacity.keys() {
        if STANDARD_RESOURCES.contains(&key.as_str()) {
            r.error(
                &format!("spec.capacity.{key}"),
                format!("capacity may not name `{key}`: a NodeOverlay adds extended resources only"),
                "name an extended resource such as example.com/fpga, or remove it",
            );
        }
    }
    if !spec.capacity.is_empty() {
        r.at(
            Severity::Warning,
            "spec.capacity",
            "capacity is accepted but not acted on yet: the instance catalog carries no extended resources",
            "pods requesting these resources stay pending; prices in this overlay still apply",
        );
    }
}

/// Types the Commitments read from `commitments/` into the repository and checks them.
pub fn commitments(repo: &mut Repo) {
    for (entry, origin) in std::mem::take(&mut repo.commitment_entries) {
        admit_commitment(repo, &entry, origin);
    }
    check_commitments(repo);
}

/// Types a Commitment from `commitments/` into the repository, refusing a second of one name.
fn admit_commitment(repo: &mut Repo, entry: &Entry, origin: Origin) {
    let object = entry.object();
    if let Some(first) = repo.commitments.iter().find(|c| c.value.metadata.name == entry.doc.name()) {
        let (file, span) = first.origin.locate(&steps("metadata.name"));
        let d = origin.diag(
            Severity::Error,
            &object,
            &steps("metadata.name"),
            format!("{object} is defined twice; first at {file}:{}:{}", span.line, span.column),
            "commitment names are unique in commitments/; rename or remove one",
        );
        return repo.diagnostics.push(d);
    }
    let admitted = super::bounds::admit::<Commitment>(entry.kind, &origin, &object, &entry.doc.value);
    admitted.diagnostics.into_iter().for_each(|d| repo.diagnostics.push(d));
    if let Some(value) = admitted.value {
        repo.commitments.push(Located { value, origin });
    }
}

/// Checks every Commitment's fields and its shares against the fleet.
fn check_commitments(repo: &mut Repo) {
    let mut diags = Diagnostics::default();
    for c in &repo.commitments {
        let mut r =
            Report { origin: &c.origin, object: format!("Commitment/{}", c.value.metadata.name), diags: &mut diags };
        check_commitment(c, repo, &mut r);
    }
    repo.diagnostics.extend(diags);
}

fn check_commitment(c: &Located<Commitment>, repo: &Repo, r: &mut Report) {
    let s = &c.value.spec;
    let forbid = |r: &mut Report, set: bool, field: &str, why: &str| {
        if set {
            r.error(&format!("spec.{field}"), format!("{field} does not apply to {why}"), format!("remove {field}"));
        }
    };
    match s.commitment_type {
        CommitmentType::ReservedInstances => {
            if s.instance_type.is_none() {
                r.error(
                    "spec",
                    "Reserved Instances need instanceType",
                    "name the reserved type, e.g. instanceType: m5.large",
                );
            }
            if s.count.is_none() {
                r.error(
                    "spec",
                    "Reserved Instances need count",
                    "give the number of instances reserved, e.g. count: 2",
                );
            }
            forbid(
                r,
                s.instance_family.is_some(),
                "instanceFamily",
                "Reserved Instances (size-flexible reservations are not modelled; list the instance type)",
            );
            forbid(r, s.hourly_commitment.is_some(), "hourlyCommitment", "Reserved Instances");
            match (&s.price, &s.discount) {
                (None, None) => r.error(
                    "spec",
                    "the covered rate is missing",
                    "set price (USD per instance-hour, upfront spread over the term) or discount, e.g. \"-40%\"",
                ),
                (Some(_), Some(_)) => r.error("spec.discount", "cannot set both price and discount", "keep one"),
                _ => {}
            }
        }
        CommitmentType::SavingsPlan => {
            match &s.hourly_commitment {
                None => r.error(
                    "spec",
                    "a Savings Plan needs hourlyCommitment",
                    "give the committed spend in USD per hour, e.g. hourlyCommitment: \"2.50\"",
                ),
                Some(h) if s.total().is_none() => {
                    r.error("spec.hourlyCommitment", format!("hourlyCommitment `{h}` is not an amount"), PRICE_HINT)
                }
                _ => {}
            }
            if s.discount.is_none() {
                r.error(
                    "spec",
                    "a Savings Plan needs discount",
                    "give the plan's rate as a change to on-demand, e.g. discount: \"-28%\"",
                );
            }
            forbid(
                r,
                s.instance_type.is_some(),
                "instanceType",
                "a Savings Plan (it covers a family, or every family)",
            );
            forbid(r, s.count.is_some(), "count", "a Savings Plan");
            forbid(r, s.price.is_some(), "price", "a Savings Plan (its rate is a discount on each type's price)");
        }
    }
    if let Some(p) = &s.price
        && s.discount.is_none()
        && s.rate().is_none()
    {
        r.error("spec.price", format!("price `{p}` does not match ^\\d+(\\.\\d+)?$"), PRICE_HINT);
    }
    if let Some(d) = &s.discount
        && s.price.is_none()
        && s.rate().is_none()
    {
        r.error(
            "spec.discount",
            format!("discount `{d}` is not a decrease of more than 0% and less than 100%"),
            "write it as a negative percentage, e.g. \"-28%\"",
        );
    }
    let Some((fleet, _)) = &repo.fleet else { return };
    let here: Vec<&str> =
        fleet.spec.clusters.iter().filter(|f| f.region == s.region).map(|f| f.name.as_str()).collect();
    if here.is_empty() {
        r.at(
            Severity::Warning,
            "spec.region",
            format!("no cluster of the fleet is in region {}; the commitment covers nothing", s.region),
            "check the region against fleet.yaml",
        );
    }
    for (name, share) in &s.shares {
        let field = format!("spec.shares.{name}");
        if !here.contains(&name.as_str()) {
            r.error(
                &field,
                format!("`{name}` is not a cluster of the fleet in region {}", s.region),
                format!("use one of: {}", if here.is_empty() { "(none)".to_string() } else { here.join(", ") }),
            );
        }
        if !share.is_finite() || *share < 0.0 {
            r.error(&field, format!("share {share} is negative"), "give 0 or more");
        }
    }
    let sum: f64 = s.shares.values().filter(|v| v.is_finite() && **v > 0.0).sum();
    if let Some(total) = s.total()
        && sum > total + 1e-9
    {
        r.error(
            "spec.shares",
            format!("the shares add up to {sum}, more than the {total} bought"),
            "lower the shares so they add up to the commitment at most",
        );
    }
}
