//! Capacity reservations on EC2: the class's `capacityReservationSelectorTerms` resolved with
//! DescribeCapacityReservations, and launches targeted at one reservation.
//!
//! ```text
//! terms ─queries─► DescribeCapacityReservations (state active) ─► ReservedCapacity
//!   ├─ catalog(): every class's reservations become `reserved` offerings (add_reserved)
//!   └─ create() of a reserved option: the reservation of that type and zone with the most room,
//!        a launch template of its own (the base template's data + CapacityReservationSpecification
//!        { capacity-reservations-only, target cr-… }), on-demand CreateFleet into it; full →
//!        InsufficientCapacity for that offering, so the loop falls back to the others
//! ```
//!
//! The query building and the reservation choice are pure and tested without EC2.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{
    CapacityReservation, CapacityReservationPreference, CapacityReservationTarget, Filter,
    LaunchTemplateCapacityReservationSpecificationRequest, RequestLaunchTemplateData, Tag,
};

use super::super::{CloudError, OfferingKey};
use super::provider::AwsCloud;
use super::resolve::Image;
use super::{classify, error_code, template};
use crate::policy::nodeclass::{CapacityReservationSelectorTerm, EC2NodeClass};
use crate::scheduling::catalog::{CapacityType, Catalog};
use crate::scheduling::plan::LaunchOption;
use crate::scheduling::reserved::{Reservation, ReservationKind, ReservedCapacity, add_reserved};

/// One DescribeCapacityReservations request: reservation ids and filters (name, values).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// `CapacityReservationIds` (the terms that name an id).
    pub ids: Vec<String>,
    /// Filters, ANDed: always `state = active`, then the term's tags and owner.
    pub filters: Vec<(String, Vec<String>)>,
}

fn active() -> (String, Vec<String>) {
    ("state".to_string(), vec!["active".to_string()])
}

/// The requests that find the reservations `terms` select: the id terms together in one, each
/// other term in its own (terms are ORed; a term's tags, owner and instance match criteria
/// ANDed; a tag value `*` matches any value). No terms, no requests.
pub fn queries(terms: &[CapacityReservationSelectorTerm]) -> Vec<Query> {
    let mut out = Vec::new();
    let ids: Vec<String> = terms.iter().filter_map(|t| t.id.clone()).collect();
    if !ids.is_empty() {
        out.push(Query { ids, filters: vec![active()] });
    }
    for t in terms.iter().filter(|t| t.id.is_none() && (!t.tags.is_empty() || t.instance_match_criteria.is_some())) {
        let mut filters = vec![active()];
        for (k, v) in &t.tags {
            filters.push(if v == "*" {
                ("tag-key".to_string(), vec![k.clone()])
            } else {
                (format!("tag:{k}"), vec![v.clone()])
            });
        }
        if let Some(owner) = &t.owner_id {
            filters.push(("owner-id".to_string(), vec![owner.clone()]));
        }
        if let Some(criteria) = &t.instance_match_criteria {
            filters.push(("instance-match-criteria".to_string(), vec![criteria.clone()]));
        }
        out.push(Query { ids: Vec::new(), filters });
    }
    out
}

/// An active reservation as the catalog takes it; `None` for one in another state or missing
/// its type, zone or id.
pub fn reserved_capacity(r: &CapacityReservation) -> Option<ReservedCapacity> {
    if r.state().is_some_and(|s| s.as_str() != "active") {
        return None;
    }
    let kind = match r.reservation_type().map(|t| t.as_str()) {
        Some("capacity-block") => ReservationKind::CapacityBlock,
        _ => ReservationKind::Default,
    };
    Some(ReservedCapacity {
        id: r.capacity_reservation_id()?.to_string(),
        instance_type: r.instance_type()?.to_string(),
        zone: r.availability_zone()?.to_string(),
        available: r.available_instance_count().unwrap_or(0).max(0) as u32,
        kind,
        interruptible: r.interruptible().unwrap_or(false),
    })
}

/// The reservations `terms` select, each once, by id.
pub async fn describe(
    ec2: &aws_sdk_ec2::Client,
    terms: &[CapacityReservationSelectorTerm],
) -> Result<Vec<ReservedCapacity>, CloudError> {
    let mut found: BTreeMap<String, ReservedCapacity> = BTreeMap::new();
    for q in queries(terms) {
        let mut req = ec2
            .describe_capacity_reservations()
            .set_capacity_reservation_ids((!q.ids.is_empty()).then(|| q.ids.clone()));
        for (name, values) in &q.filters {
            req = req.filters(Filter::builder().name(name).set_values(Some(values.clone())).build());
        }
        let pages: Vec<_> = req
            .into_paginator()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| classify("DescribeCapacityReservations", e))?;
        for r in pages.iter().flat_map(|p| p.capacity_reservations()).filter_map(reserved_capacity) {
            found.insert(r.id.clone(), r);
        }
    }
    Ok(found.into_values().collect())
}

/// The reservations of every class, each once: what `catalog()` adds as reserved offerings.
pub async fn of_classes<'a>(
    ec2: &aws_sdk_ec2::Client,
    classes: impl Iterator<Item = &'a EC2NodeClass>,
) -> Result<Vec<ReservedCapacity>, CloudError> {
    let mut found: BTreeMap<String, ReservedCapacity> = BTreeMap::new();
    for class in classes.filter(|c| !c.spec.capacity_reservation_selector_terms.is_empty()) {
        for r in describe(ec2, &class.spec.capacity_reservation_selector_terms).await? {
            found.insert(r.id.clone(), r);
        }
    }
    Ok(found.into_values().collect())
}

/// `catalog` with the reserved offerings of every class's reservations. A failed read serves
/// the catalog without them (and is logged): on-demand and spot launches go on.
pub async fn with_reserved<'a>(
    ec2: &aws_sdk_ec2::Client,
    classes: impl Iterator<Item = &'a EC2NodeClass>,
    mut catalog: Catalog,
) -> Catalog {
    match of_classes(ec2, classes).await {
        Ok(found) => {
            let skipped = add_reserved(&mut catalog, &found);
            if !skipped.is_empty() {
                tracing::warn!(?skipped, "capacity reservations of instance types not in the catalog are not used");
            }
        }
        Err(e) => tracing::warn!(error = %e, "capacity reservations could not be read; serving no reserved offerings"),
    }
    catalog
}

/// The reservation a launch of `instance_type` in `zone` goes into: among the class's, the one
/// of that type and zone with the most room (ties: the lowest id); `None` when all are full.
pub fn choose<'a>(
    reservations: &'a [ReservedCapacity],
    instance_type: &str,
    zone: &str,
) -> Option<&'a ReservedCapacity> {
    reservations
        .iter()
        .filter(|r| r.instance_type == instance_type && r.zone == zone && r.available > 0)
        .min_by(|a, b| b.available.cmp(&a.available).then_with(|| a.id.cmp(&b.id)))
}

/// The name of the launch template targeted at `reservation`, derived from the base
/// template's name so it shares its prefix (and its clean-up).
pub fn template_name(base: &str, reservation: &str) -> String {
    format!("{base}-{reservation}")
}

/// The base template's data, launching only into `reservation`.
pub fn targeted(mut data: RequestLaunchTemplateData, reservation: &str) -> RequestLaunchTemplateData {
    data.capacity_reservation_specification = Some(
        LaunchTemplateCapacityReservationSpecificationRequest::builder()
            .capacity_reservation_preference(CapacityReservationPreference::CapacityReservationsOnly)
            .capacity_reservation_target(
                CapacityReservationTarget::builder().capacity_reservation_id(reservation).build(),
            )
            .build(),
    );
    data
}

/// The instance tags of a launch into `r` (none without one): its node labels.
pub fn tags(r: Option<&ReservedCapacity>) -> Vec<Tag> {
    let labels = r.map(|r| {
        Reservation { id: r.id.clone(), kind: r.kind, interruptible: r.interruptible, available: r.available }.labels()
    });
    labels.into_iter().flatten().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

impl AwsCloud {
    /// For a launch of reserved `options`: the class's reservation the first option with room
    /// goes into, and the launch template targeted at it (made when missing, tagged and named
    /// like `base`, so clean-up treats it as the base's). No reservation with room →
    /// `InsufficientCapacity` for every reserved option.
    pub(super) async fn reserved_launch(
        &self,
        class: &EC2NodeClass,
        image: &Image,
        security_groups: &[String],
        profile: &str,
        base: &str,
        options: &[&LaunchOption],
    ) -> Result<(ReservedCapacity, String), CloudError> {
        let reservations = describe(&self.ec2, &class.spec.capacity_reservation_selector_terms).await?;
        let reserved: Vec<&&LaunchOption> =
            options.iter().filter(|o| o.capacity_type == CapacityType::Reserved).collect();
        let Some(r) = reserved.iter().find_map(|o| choose(&reservations, &o.instance_type, &o.zone)) else {
            let offerings = reserved.iter().map(|o| OfferingKey::of(o)).collect();
            return Err(CloudError::InsufficientCapacity { offerings });
        };
        let name = template_name(base, &r.id);
        self.recent.template(&name, self.clock.now());
        let existing = self.ec2.describe_launch_templates().launch_template_names(&name).send().await;
        if existing.is_ok_and(|o| o.launch_templates().iter().any(|t| t.launch_template_name() == Some(name.as_str())))
        {
            return Ok((r.clone(), name));
        }
        let data = targeted(template::data(class, image, security_groups, profile), &r.id);
        let created = self
            .ec2
            .create_launch_template()
            .launch_template_name(&name)
            .launch_template_data(data)
            .tag_specifications(template::tag_specification(&self.cluster, class))
            .send()
            .await;
        match created {
            Ok(_) => Ok((r.clone(), name)),
            Err(e) if error_code(&e).is_some_and(|c| c.ends_with("AlreadyExists")) => Ok((r.clone(), name)),
            Err(e) => Err(classify("CreateLaunchTemplate", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::types::{CapacityReservationState, CapacityReservationType};

    use super::*;

    fn id(id: &str) -> CapacityReservationSelectorTerm {
        CapacityReservationSelectorTerm { id: Some(id.into()), ..Default::default() }
    }

    fn tags(pairs: &[(&str, &str)], owner: Option<&str>) -> CapacityReservationSelectorTerm {
        CapacityReservationSelectorTerm {
            tags: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            owner_id: owner.map(str::to_string),
            ..Default::default()
        }
    }

    fn filter(name: &str, value: &str) -> (String, Vec<String>) {
        (name.to_string(), vec![value.to_string()])
    }

    #[test]
    fn id_terms_go_in_one_request_and_each_tag_term_in_its_own() {
        let open =
            CapacityReservationSelectorTerm { instance_match_criteria: Some("open".into()), ..Default::default() };
        let terms = [id("cr-1"), tags(&[("team", "ml"), ("any", "*")], Some("123456789012")), id("cr-2"), open];
        let q = queries(&terms);
        assert_eq!(q.len(), 3, "{q:?}");
        assert_eq!(q[2].filters, vec![filter("state", "active"), filter("instance-match-criteria", "open")]);
        assert_eq!(q[0], Query { ids: vec!["cr-1".into(), "cr-2".into()], filters: vec![filter("state", "active")] });
        assert!(q[1].ids.is_empty());
        assert_eq!(
            q[1].filters,
            vec![
                filter("state", "active"),
                filter("tag-key", "any"),
                filter("tag:team", "ml"),
                filter("owner-id", "123456789012")
            ]
        );
        assert!(queries(&[]).is_empty());
    }

    #[test]
    fn an_active_reservation_becomes_reserved_capacity() {
        let r = CapacityReservation::builder()
            .capacity_reservation_id("cr-0a")
            .instance_type("p5.48xlarge")
            .availability_zone("us-east-1a")
            .available_instance_count(2)
            .state(CapacityReservationState::Active)
            .reservation_type(CapacityReservationType::CapacityBlock)
            .interruptible(true)
            .build();
        let c = reserved_capacity(&r).unwrap();
        assert_eq!((c.id.as_str(), c.instance_type.as_str(), c.zone.as_str()), ("cr-0a", "p5.48xlarge", "us-east-1a"));
        assert_eq!((c.available, c.kind, c.interruptible), (2, ReservationKind::CapacityBlock, true));
        let mut expired = r.clone();
        expired.state = Some(CapacityReservationState::Expired);
        assert_eq!(reserved_capacity(&expired), None);
    }

    #[test]
    fn a_launch_goes_into_the_reservation_with_most_room_and_its_own_template() {
        let r = |id: &str, zone: &str, available| ReservedCapacity {
            id: id.into(),
            instance_type: "m5.large".into(),
            zone: zone.into(),
            available,
            kind: ReservationKind::Default,
            interruptible: false,
        };
        let all = [r("cr-1", "us-east-1a", 1), r("cr-2", "us-east-1a", 3), r("cr-3", "us-east-1b", 0)];
        assert_eq!(choose(&all, "m5.large", "us-east-1a").map(|r| r.id.as_str()), Some("cr-2"));
        assert_eq!(choose(&all, "m5.large", "us-east-1b"), None);
        assert_eq!(choose(&all, "c5.large", "us-east-1a"), None);
        assert_eq!(template_name("capstan-dev-0123", "cr-2"), "capstan-dev-0123-cr-2");
        let data = targeted(RequestLaunchTemplateData::builder().image_id("ami-1").build(), "cr-2");
        let spec = data.capacity_reservation_specification().unwrap();
        assert_eq!(
            spec.capacity_reservation_preference(),
            Some(&CapacityReservationPreference::CapacityReservationsOnly)
        );
        assert_eq!(spec.capacity_reservation_target().and_then(|t| t.capacity_reservation_id()), Some("cr-2"));
        assert_eq!(data.image_id(), Some("ami-1"));
    }
}
