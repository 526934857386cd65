//! The zoned model's bound against the zone-free one and the packer: a hand-computed case and
//! random small instances with a zone spread.

use proptest::prelude::*;

use super::bound_columns::{Budget, configuration_bound, generate};
use super::bound_model::Model;
use super::bound_tests::{at_most, close, input, itype};
use super::bound_zoned::zoned;
use super::catalog::{Catalog, InstanceType, ZONE};
use super::pod::{Pod, Selector, WhenUnsatisfiable, pod};
use super::solve;

/// [`itype`] offered on demand in each of `zones` at `price`.
fn offered(name: &str, vcpu: u32, pods: u32, price: f64, zones: &[&str]) -> InstanceType {
    let mut t = itype(name, vcpu, 4 * vcpu as u64, pods, price);
    let one = t.offerings.pop().expect("one offering");
    t.offerings = zones.iter().map(|z| super::catalog::Offering { zone: z.to_string(), ..one.clone() }).collect();
    t
}

/// `n` pods of `cpu` spread over zones with `skew`, counted by the selector `app=web`.
fn spread(n: usize, cpu: &str, skew: u32) -> Vec<Pod> {
    let sel = Selector::labels(&[("app", "web")]);
    (0..n)
        .map(|i| {
            let b = pod().name(&format!("web-{i}")).cpu(cpu).memory("512Mi").label("app", "web");
            b.spread(ZONE, skew, WhenUnsatisfiable::DoNotSchedule, sel.clone()).build()
        })
        .collect()
}

#[test]
fn a_zone_of_dear_types_takes_its_share_of_a_spread() {
    // zone-a: two pods a node for $1; zone-b: four a node for $3. Without zones the four pods
    // take two small nodes ($2); two of them must be in zone-b, where half a large node ($1.50)
    // is the least the LP pays for two pods, and the other two take a small node ($1).
    let catalog = Catalog {
        types: vec![offered("small.x", 2, 20, 1.0, &["zone-a"]), offered("large.x", 4, 20, 3.0, &["zone-b"])],
    };
    let input = input(&catalog, spread(4, "900m", 1));
    let free = configuration_bound(&Model::of(&input), Budget::default()).expect("zone-free LP");
    assert!(free.proven && close(free.bound, 2.0), "{free:?}");
    let m = zoned(&input).expect("a zone spread applies").model;
    assert_eq!(m.zoned.len(), 2, "one row per zone: {:?}", m.zoned);
    assert!(m.zoned.iter().all(|r| r.least == 2.0), "{:?}", m.zoned);
    let z = configuration_bound(&m.merged(), Budget::default()).expect("zoned LP");
    assert!(z.proven && close(z.bound, 2.5), "{z:?}");
    let plan = solve(&input);
    assert!(plan.unschedulable.is_empty() && close(plan.cost_per_hour(), 4.0), "{plan:?}");
}

#[test]
fn zones_alike_share_a_class_and_their_rows_add_up() {
    // Three zones offer the same type; the fourth offers it dearer. Thirteen pods over four
    // zones within skew 1: at least three in each.
    let types = vec![
        offered("small.x", 2, 20, 1.0, &["zone-a", "zone-b", "zone-c"]),
        offered("small.y", 2, 20, 2.0, &["zone-d"]),
    ];
    let catalog = Catalog { types };
    let input = input(&catalog, spread(13, "900m", 1));
    let m = zoned(&input).expect("a zone spread applies").model;
    let mut rows: Vec<(usize, f64)> = m.zoned.iter().map(|r| (r.zone, r.least)).collect();
    rows.sort_by_key(|r| r.0);
    assert_eq!(rows, vec![(0, 9.0), (1, 3.0)]);
    assert_eq!(m.zone_classes(), 2);
}

#[test]
fn no_zone_spread_no_zoned_model() {
    let catalog = Catalog { types: vec![offered("small.x", 2, 20, 1.0, &["zone-a", "zone-b"])] };
    let pods = (0..4).map(|i| pod().name(&format!("p{i}")).cpu("500m").build()).collect();
    assert!(zoned(&input(&catalog, pods)).is_none());
    // A skew as large as the pods allows all in one zone.
    assert!(zoned(&input(&catalog, spread(4, "500m", 4))).is_none());
}

/// Types as (vcpu, pods, price in cents, zones as a bit mask of three); the spread's pods as
/// (count, cpu, skew); other pods as (count, cpu).
type Zoned = (Vec<(u32, u32, u32, u8)>, (usize, usize, u32), (usize, usize));

const CPU: [&str; 4] = ["250m", "500m", "900m", "1500m"];
const ZONES: [&str; 3] = ["zone-a", "zone-b", "zone-c"];

fn instance() -> impl Strategy<Value = Zoned> {
    let types = prop::collection::vec((prop::sample::select(vec![1u32, 2, 4, 8]), 4u32..30, 1u32..100, 1u8..8), 1..=5);
    (types, (1usize..=12, 0..CPU.len(), 1u32..=2), (0usize..=6, 0..CPU.len()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn the_zoned_bound_lies_between_the_zone_free_one_and_the_packer((types, (n, cpu, skew), (others, other_cpu)) in instance()) {
        let types = types
            .iter()
            .enumerate()
            .map(|(i, (vcpu, pods, cents, mask))| {
                let zones: Vec<&str> = (0..3).filter(|z| mask & (1 << z) != 0).map(|z| ZONES[z]).collect();
                offered(&format!("t{i}.x"), *vcpu, *pods, *cents as f64 / 100.0, &zones)
            })
            .collect();
        let catalog = Catalog { types };
        let mut pods = spread(n, CPU[cpu], skew);
        pods.extend((0..others).map(|i| pod().name(&format!("other-{i}")).cpu(CPU[other_cpu]).memory("256Mi").build()));
        let input = input(&catalog, pods);
        let plan = solve(&input);
        let free = Model::of(&input);
        prop_assume!(plan.unschedulable.is_empty() && free.left_out == 0);
        let Some(zoned) = zoned(&input) else { return Ok(()) };
        let m = &zoned.model;
        let z = configuration_bound(&m.merged(), Budget::default()).expect("zoned LP");
        // Started from the packer's own nodes, the same LP.
        let start = zoned.columns(&plan, &input);
        prop_assert!(!start.is_empty() && start.iter().all(|(k, counts)| m.fits(*k, counts)), "{start:?}");
        // Warm, with the pricing the bench gives the zoned bound.
        let fine = Budget { room: true, choices: true, ..Budget::default() };
        let (warm, _) = generate(m, fine, &start).expect("zoned LP, warm");
        let unmerged = configuration_bound(m, Budget::default()).expect("zoned LP, unmerged");
        let conf = configuration_bound(&free, Budget::default()).expect("zone-free LP");
        let cost = plan.cost_per_hour();
        prop_assert!(z.proven && unmerged.proven && conf.proven, "{z:?} {unmerged:?} {conf:?}");
        prop_assert!(at_most(z.bound, unmerged.bound), "merged {z:?} > unmerged {unmerged:?}");
        prop_assert!(warm.proven && close(warm.bound, unmerged.bound), "warm {warm:?}, cold {unmerged:?}");
        prop_assert!(at_most(conf.bound, z.bound), "zone-free {conf:?} > zoned {z:?}");
        prop_assert!(at_most(unmerged.bound, cost), "zoned {unmerged:?} > packer {cost}: {plan:?}");
    }
}
