//! Capacity reservations with `AwsCloud` on moto. moto 5.1.22 does not implement
//! DescribeCapacityReservations (it answers 500), so what is proven here is the failure path: a
//! class that selects reservations still gets its catalog (without reserved offerings), and a
//! reserved launch that cannot find its reservation launches nothing and answers
//! InsufficientCapacity for its reserved options, so the loop avoids them and falls back.
//! Choosing a reservation, its launch template and the labels are tested without EC2 and on the
//! simulator.

use capstan::cloud::provider::{Avoid, CloudProvider};
use capstan::cloud::{CloudError, OfferingKey};
use capstan::policy::nodeclass::CapacityReservationSelectorTerm;
use capstan::scheduling::catalog::CapacityType;

use crate::aws_cloud::{claim, cloud};
use crate::aws_resolve::unique;

#[test]
fn reservations_ec2_cannot_list_leave_the_catalog_whole_and_launch_nothing() {
    let cluster = unique("reserved");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut cloud = cloud(&cluster).await;
        let class = cloud.classes.get_mut("nodes").unwrap();
        class.spec.capacity_reservation_selector_terms =
            vec![CapacityReservationSelectorTerm { id: Some("cr-0123456789abcdef0".into()), ..Default::default() }];
        let catalog = cloud.catalog().await.expect("the catalog is served without reserved offerings");
        assert!(!catalog.types.is_empty());
        let reserved =
            catalog.types.iter().flat_map(|t| &t.offerings).any(|o| o.capacity_type == CapacityType::Reserved);
        assert!(!reserved, "nothing was found, nothing is offered");
        let mut c = claim(&unique("cr"));
        for o in &mut c.options {
            o.capacity_type = CapacityType::Reserved;
        }
        let err = cloud.create(&c, &Avoid::new()).await.expect_err("no reservation, no launch");
        let offerings: Vec<OfferingKey> = c.options.iter().map(OfferingKey::of).collect();
        assert_eq!(err, CloudError::InsufficientCapacity { offerings });
        assert!(cloud.list().await.unwrap().iter().all(|i| i.claim != c.name));
    });
}
