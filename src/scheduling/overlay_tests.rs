use super::*;
use crate::policy::nodepool::{Operator, Requirement};

fn ty(name: &str, price: f64) -> InstanceType {
    InstanceType {
        name: name.into(),
        arch: "amd64".into(),
        vcpu: 2,
        memory_mib: 8192,
        gpus: 0,
        gpu_name: None,
        gpu_manufacturer: None,
        gpu_memory_mib: 0,
        enis: 3,
        ipv4_per_eni: 10,
        hypervisor: None,
        cpu_manufacturer: None,
        local_nvme_gib: 0,
        bare_metal: false,
        offerings: vec![offering(CapacityType::OnDemand, price), offering(CapacityType::Spot, price / 3.0)],
    }
}

/// An offering in us-east-1a; fields added to offerings later keep their defaults.
fn offering(capacity_type: CapacityType, price: f64) -> Offering {
    let v = serde_json::json!({"zone": "us-east-1a", "capacity_type": capacity_type, "price": price});
    serde_json::from_value(v).expect("an offering")
}

fn catalog() -> Catalog {
    Catalog { types: vec![ty("m5.large", 0.096), ty("c5.large", 0.085)] }
}

fn overlay(name: &str, weight: i64, reqs: &[(&str, Operator, &[&str])], effect: PriceEffect) -> PriceOverlay {
    let reqs: Vec<Requirement> = reqs.iter().map(|(k, op, v)| Requirement::new(k, *op, v)).collect();
    PriceOverlay { name: name.into(), weight, requirements: Requirements::from_policy(&reqs), effect }
}

fn price(c: &Catalog, t: &str, cap: CapacityType) -> f64 {
    c.get(t).unwrap().offerings.iter().find(|o| o.capacity_type == cap).unwrap().price
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

const FAMILY: &str = "karpenter.k8s.aws/instance-family";

#[test]
fn an_overlay_changes_only_the_offerings_it_selects() {
    let p = Pricing {
        overlays: vec![overlay(
            "m5-od",
            1,
            &[(FAMILY, Operator::In, &["m5"]), (CAPACITY_TYPE, Operator::In, &["on-demand"])],
            PriceEffect::Percent(-50.0),
        )],
        covers: vec![],
    };
    let out = priced(&catalog(), &p, &Usage::default());
    assert!(close(price(&out, "m5.large", CapacityType::OnDemand), 0.048));
    assert!(close(price(&out, "m5.large", CapacityType::Spot), 0.032));
    assert!(close(price(&out, "c5.large", CapacityType::OnDemand), 0.085));
}

#[test]
fn the_highest_weight_wins_whatever_the_order() {
    let low = overlay("low", 10, &[(FAMILY, Operator::In, &["m5"])], PriceEffect::Set(0.5));
    let high = overlay("high", 100, &[(FAMILY, Operator::Exists, &[])], PriceEffect::Set(0.01));
    let mut overlays = vec![low, high];
    overlays.sort_by_key(|o| std::cmp::Reverse(o.weight));
    let p = Pricing { overlays, covers: vec![] };
    let out = priced(&catalog(), &p, &Usage::default());
    assert!(close(price(&out, "m5.large", CapacityType::OnDemand), 0.01));
}

#[test]
fn a_zone_requirement_is_met_by_the_offering() {
    let p = Pricing {
        overlays: vec![overlay("b", 1, &[(ZONE, Operator::In, &["us-east-1b"])], PriceEffect::Set(0.0))],
        covers: vec![],
    };
    let out = priced(&catalog(), &p, &Usage::default());
    assert!(close(price(&out, "m5.large", CapacityType::OnDemand), 0.096));
}

fn ri(share: f64, rate: f64) -> Cover {
    Cover { name: "ri".into(), covers: Covers::Instances("m5.large".into()), share, rate: Rate::Price(rate) }
}

#[test]
fn reserved_instances_price_what_the_share_still_covers() {
    let p = Pricing { overlays: vec![], covers: vec![ri(2.0, 0.01)] };
    let c = catalog();
    let none = priced(&c, &p, &Usage::default());
    assert!(close(price(&none, "m5.large", CapacityType::OnDemand), 0.01));
    assert!(close(price(&none, "m5.large", CapacityType::Spot), 0.032), "spot is never covered");
    assert!(close(price(&none, "c5.large", CapacityType::OnDemand), 0.085));
    let two =
        priced(&c, &p, &Usage::count([("m5.large", CapacityType::OnDemand), ("m5.large", CapacityType::OnDemand)]));
    assert!(close(price(&two, "m5.large", CapacityType::OnDemand), 0.096));
    let spot = priced(&c, &p, &Usage::count([("m5.large", CapacityType::Spot); 2]));
    assert!(close(price(&spot, "m5.large", CapacityType::OnDemand), 0.01), "spot usage uses no reservation");
}

#[test]
fn half_an_instance_left_is_half_covered() {
    let p = Pricing { overlays: vec![], covers: vec![ri(0.5, 0.0)] };
    let out = priced(&catalog(), &p, &Usage::default());
    assert!(close(price(&out, "m5.large", CapacityType::OnDemand), 0.048));
}

#[test]
fn a_savings_plan_covers_spend_in_its_family() {
    // 0.1 $/h at 72 % of on-demand: one m5.large (0.06912) fully, then 0.03088 of the next.
    let sp =
        Cover { name: "sp".into(), covers: Covers::Spend(Some("m5".into())), share: 0.1, rate: Rate::Fraction(0.72) };
    let p = Pricing { overlays: vec![], covers: vec![sp] };
    let c = catalog();
    let first = priced(&c, &p, &Usage::default());
    assert!(close(price(&first, "m5.large", CapacityType::OnDemand), 0.096 * 0.72));
    assert!(close(price(&first, "c5.large", CapacityType::OnDemand), 0.085));
    let second = priced(&c, &p, &Usage::count([("m5.large", CapacityType::OnDemand)]));
    let left = 0.1 - 0.096 * 0.72;
    let expect = left + (1.0 - left / (0.096 * 0.72)) * 0.096;
    assert!(close(price(&second, "m5.large", CapacityType::OnDemand), expect));
}

#[test]
fn reservations_are_used_before_savings_plans() {
    let sp = Cover { name: "sp".into(), covers: Covers::Spend(None), share: 0.05, rate: Rate::Fraction(0.5) };
    let p = Pricing { overlays: vec![], covers: vec![ri(1.0, 0.02), sp] };
    let c = catalog();
    let left = p.remaining(&c, &Usage::count([("m5.large", CapacityType::OnDemand)]));
    assert!(close(left[0], 0.0) && close(left[1], 0.05));
    let left = p.remaining(&c, &Usage::count([("m5.large", CapacityType::OnDemand); 2]));
    assert!(close(left[1], 0.002));
}

#[test]
fn an_overlay_prices_the_part_no_commitment_covers() {
    let p = Pricing {
        overlays: vec![overlay("m5", 1, &[(FAMILY, Operator::In, &["m5"])], PriceEffect::Set(0.2))],
        covers: vec![ri(0.5, 0.0)],
    };
    let out = priced(&catalog(), &p, &Usage::default());
    assert!(close(price(&out, "m5.large", CapacityType::OnDemand), 0.1));
}

#[test]
fn running_instances_use_the_share_oldest_first() {
    let p = Pricing { overlays: vec![], covers: vec![ri(1.0, 0.01)] };
    let od = CapacityType::OnDemand;
    let prices = running_prices(
        &catalog(),
        &p,
        [("m5.large", "us-east-1a", od), ("m5.large", "us-east-1a", od), ("x9.large", "us-east-1a", od)],
    );
    assert_eq!(prices.len(), 3);
    assert!(close(prices[0].unwrap(), 0.01) && close(prices[1].unwrap(), 0.096));
    assert_eq!(prices[2], None, "an offering the catalog does not know keeps its price");
}
