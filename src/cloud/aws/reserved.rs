//! Capacity reservations on EC2: the class's `capacityReservationSelectorTerms` resolved with
//! DescribeCapacityReservations, and launches targeted at one reservation.
//!
//! ```text
//! terms ─queries─► DescribeCapacityReservations (state active, not past its end) ─► ReservedCapacity
//!   ├─ catalog(): each class's reservations become `reserved` offerings naming the classes that
//!   │    select them (add_reserved); a request that fails drops only what it would have found
//!   └─ create() of a reserved option: the class's reservation of that type and zone with the most
//!        room, a launch template of its own (the base template's data + CapacityReservationSpecification
//!        { capacity-reservations-only, target cr-… }, and market type capacity-block for a block),
//!        CreateFleet (on-demand, or capacity-block) into it; full, or refused for any other
//!        reason → InsufficientCapacity for the reserved options, so the loop falls back to the others
//! ```
//!
//! The query building and the reservation choice are pure and tested without EC2.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_ec2::types::{
    CapacityReservation, CapacityReservationPreference, CapacityReservationTarget, DefaultTargetCapacityType, Filter,
    LaunchTemplateCapacityReservationSpecificationRequest, LaunchTemplateInstanceMarketOptionsRequest, MarketType,
    RequestLaunchTemplateData, Tag,
};

use super::super::{CloudError, OfferingKey};
use super::recent::Recent;
use super::resolve::Image;
use super::{classify, error_code, template};
use crate::policy::nodeclass::{CapacityReservationSelectorTerm, EC2NodeClass};
use crate::scheduling::catalog::{CapacityType, Catalog};
use crate::scheduling::plan::LaunchOption;
use crate::scheduling::reserved::{ReservationKind, ReservedCapacity, add_reserved};

/// How long before its end a capacity block takes no launch: EC2 starts terminating its
/// instances 30 minutes before the block ends.
pub const BLOCK_END_MARGIN: Duration = Duration::from_secs(30 * 60);

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

impl Query {
    /// The request in a few words, for logs.
    pub fn label(&self) -> String {
        if !self.ids.is_empty() {
            return format!("ids {}", self.ids.join(","));
        }
        let filters: Vec<String> = self.filters.iter().map(|(k, v)| format!("{k}={}", v.join("|"))).collect();
        format!("filters {}", filters.join(" "))
    }
}

/// An active reservation as the catalog takes it, selected by no class yet; `None` for one in
/// another state, past its end date (a capacity block within [`BLOCK_END_MARGIN`] of it) at
/// `now` (since the Unix epoch), or missing its type, zone or id.
pub fn reserved_capacity(r: &CapacityReservation, now: Duration) -> Option<ReservedCapacity> {
    if r.state().is_some_and(|s| s.as_str() != "active") {
        return None;
    }
    let kind = match r.reservation_type().map(|t| t.as_str()) {
        Some("capacity-block") => ReservationKind::CapacityBlock,
        _ => ReservationKind::Default,
    };
    let margin = if kind == ReservationKind::CapacityBlock { BLOCK_END_MARGIN } else { Duration::ZERO };
    if let Some(end) = r.end_date()
        && (end.secs().max(0) as u64) <= (now + margin).as_secs()
    {
        return None;
    }
    Some(ReservedCapacity {
        id: r.capacity_reservation_id()?.to_string(),
        instance_type: r.instance_type()?.to_string(),
        zone: r.availability_zone()?.to_string(),
        available: r.available_instance_count().unwrap_or(0).max(0) as u32,
        kind,
        interruptible: r.interruptible().unwrap_or(false),
        classes: Vec::new(),
    })
}

/// What one request found.
async fn run(ec2: &aws_sdk_ec2::Client, q: &Query) -> Result<Vec<CapacityReservation>, CloudError> {
    let mut req =
        ec2.describe_capacity_reservations().set_capacity_reservation_ids((!q.ids.is_empty()).then(|| q.ids.clone()));
    for (name, values) in &q.filters {
        req = req.filters(Filter::builder().name(name).set_values(Some(values.clone())).build());
    }
    let pages: Vec<_> = req
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| classify("DescribeCapacityReservations", e))?;
    Ok(pages.iter().flat_map(|p| p.capacity_reservations()).cloned().collect())
}

/// The reservations `terms` select, each once, by id, and the requests that failed (what each
/// asked for, and why). A request failing drops only what it would have found; an id request
/// that fails is asked again one id at a time, so one stale id does not hide the others.
pub async fn describe(
    ec2: &aws_sdk_ec2::Client,
    terms: &[CapacityReservationSelectorTerm],
    now: Duration,
) -> (Vec<ReservedCapacity>, Vec<(String, CloudError)>) {
    let mut found: BTreeMap<String, ReservedCapacity> = BTreeMap::new();
    let mut failed = Vec::new();
    let mut keep = |all: Vec<CapacityReservation>| {
        for r in all.iter().filter_map(|r| reserved_capacity(r, now)) {
            found.insert(r.id.clone(), r);
        }
    };
    for q in queries(terms) {
        match run(ec2, &q).await {
            Ok(all) => keep(all),
            Err(e) if q.ids.len() > 1 && !matches!(e, CloudError::Throttled(_)) => {
                for id in &q.ids {
                    let one = Query { ids: vec![id.clone()], filters: q.filters.clone() };
                    match run(ec2, &one).await {
                        Ok(all) => keep(all),
                        Err(e) => failed.push((one.label(), e)),
                    }
                }
            }
            Err(e) => failed.push((q.label(), e)),
        }
    }
    (found.into_values().collect(), failed)
}

/// The reservations of every class, each once, naming the classes that select it: what
/// `catalog()` adds as reserved offerings. A request that fails is logged with its class and
/// drops only what it would have found.
pub async fn of_classes<'a>(
    ec2: &aws_sdk_ec2::Client,
    classes: impl Iterator<Item = &'a EC2NodeClass>,
    now: Duration,
) -> Vec<ReservedCapacity> {
    let mut found: BTreeMap<String, ReservedCapacity> = BTreeMap::new();
    for class in classes.filter(|c| !c.spec.capacity_reservation_selector_terms.is_empty()) {
        let name = &class.metadata.name;
        let (reservations, failed) = describe(ec2, &class.spec.capacity_reservation_selector_terms, now).await;
        for (request, error) in failed {
            tracing::warn!(
                node_class = %name, %request, %error,
                "capacity reservations could not be read; the class's other reservations are still used"
            );
        }
        for r in reservations {
            let entry = found.entry(r.id.clone()).or_insert(r);
            if !entry.admits(name) {
                entry.classes.push(name.clone());
                entry.classes.sort();
            }
        }
    }
    found.into_values().collect()
}

/// `catalog` with the reserved offerings of every class's reservations (see [`of_classes`]):
/// reservations that cannot be read are left out, and on-demand and spot launches go on.
pub async fn with_reserved<'a>(
    ec2: &aws_sdk_ec2::Client,
    classes: impl Iterator<Item = &'a EC2NodeClass>,
    mut catalog: Catalog,
    now: Duration,
) -> Catalog {
    let found = of_classes(ec2, classes, now).await;
    let skipped = add_reserved(&mut catalog, &found);
    if !skipped.is_empty() {
        tracing::warn!(?skipped, "capacity reservations of instance types not in the catalog are not used");
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
/// template's name so it shares its prefix (and its clean-up); a capacity block's says so, as
/// its data differs (the market type).
pub fn template_name(base: &str, reservation: &ReservedCapacity) -> String {
    match reservation.kind {
        ReservationKind::Default => format!("{base}-{}", reservation.id),
        ReservationKind::CapacityBlock => format!("{base}-{}-block", reservation.id),
    }
}

/// The base template's data, launching only into `reservation` (a capacity block also needs
/// the market type `capacity-block`).
pub fn targeted(mut data: RequestLaunchTemplateData, reservation: &ReservedCapacity) -> RequestLaunchTemplateData {
    data.capacity_reservation_specification = Some(
        LaunchTemplateCapacityReservationSpecificationRequest::builder()
            .capacity_reservation_preference(CapacityReservationPreference::CapacityReservationsOnly)
            .capacity_reservation_target(
                CapacityReservationTarget::builder().capacity_reservation_id(&reservation.id).build(),
            )
            .build(),
    );
    if reservation.kind == ReservationKind::CapacityBlock {
        data.instance_market_options =
            Some(LaunchTemplateInstanceMarketOptionsRequest::builder().market_type(MarketType::CapacityBlock).build());
    }
    data
}

/// CreateFleet's `DefaultTargetCapacityType` for a launch at `capacity` (into `reservation`,
/// when reserved): EC2 takes a capacity block only as `capacity-block`, an ordinary
/// reservation as `on-demand`.
pub fn target_capacity_type(
    capacity: CapacityType,
    reservation: Option<&ReservedCapacity>,
) -> DefaultTargetCapacityType {
    match (capacity, reservation.map(|r| r.kind)) {
        (CapacityType::Spot, _) => DefaultTargetCapacityType::Spot,
        (CapacityType::Reserved, Some(ReservationKind::CapacityBlock)) => DefaultTargetCapacityType::CapacityBlock,
        _ => DefaultTargetCapacityType::OnDemand,
    }
}

/// A reserved launch that failed, as the caller gets it: throttling (and a dry run) as it is;
/// anything else (no room, a platform or tenancy the reservation does not take, access
/// denied…) is logged and becomes InsufficientCapacity for the reserved `offerings`, so the
/// loop avoids them for a while and the pods fall back to capacity that is not reserved.
pub fn refused(err: CloudError, offerings: &[OfferingKey]) -> CloudError {
    match err {
        CloudError::Throttled(_) | CloudError::DryRun { .. } => err,
        CloudError::InsufficientCapacity { offerings: named } if !named.is_empty() => {
            CloudError::InsufficientCapacity { offerings: named }
        }
        CloudError::InsufficientCapacity { .. } => CloudError::InsufficientCapacity { offerings: offerings.to_vec() },
        other => {
            let keys: Vec<String> = offerings.iter().map(ToString::to_string).collect();
            tracing::warn!(
                error = %other, offerings = ?keys,
                "reserved launch refused; these reserved offerings are avoided for a while"
            );
            CloudError::InsufficientCapacity { offerings: offerings.to_vec() }
        }
    }
}

/// The instance tags of a launch into `r` (none without one): its node labels.
pub fn tags(r: Option<&ReservedCapacity>) -> Vec<Tag> {
    let labels = r.map(|r| r.reservation().labels());
    labels.into_iter().flatten().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

/// What a reserved launch takes from the provider.
pub struct Launcher<'a> {
    pub ec2: &'a aws_sdk_ec2::Client,
    /// The kOps cluster name: the templates' ownership tag.
    pub cluster: &'a str,
    /// Where the template is noted, so clean-up keeps it.
    pub recent: &'a Recent,
    /// The provider's clock, now.
    pub now: Duration,
}

/// For a launch of reserved `options`: the class's reservation the first option with room
/// goes into, and the launch template targeted at it (made when missing, tagged and named
/// like `base`, so clean-up treats it as the base's). No reservation with room (or none
/// could be read) → `InsufficientCapacity` for every reserved option; reading throttled
/// with nothing found → `Throttled`.
pub async fn launch(
    on: &Launcher<'_>,
    class: &EC2NodeClass,
    image: &Image,
    security_groups: &[String],
    profile: &str,
    base: &str,
    options: &[&LaunchOption],
) -> Result<(ReservedCapacity, String), CloudError> {
    let now = on.now;
    let (reservations, failed) = describe(on.ec2, &class.spec.capacity_reservation_selector_terms, now).await;
    for (request, error) in &failed {
        tracing::warn!(node_class = %class.metadata.name, %request, %error, "capacity reservations could not be read");
    }
    let reserved: Vec<&&LaunchOption> = options.iter().filter(|o| o.capacity_type == CapacityType::Reserved).collect();
    let Some(r) = reserved.iter().find_map(|o| choose(&reservations, &o.instance_type, &o.zone)) else {
        if let Some((_, e)) = failed.iter().find(|(_, e)| matches!(e, CloudError::Throttled(_))) {
            return Err(e.clone());
        }
        let offerings = reserved.iter().map(|o| OfferingKey::of(o)).collect();
        return Err(CloudError::InsufficientCapacity { offerings });
    };
    let name = template_name(base, r);
    on.recent.template(&name, now);
    if template::existing(on.ec2, on.cluster, &name).await? {
        return Ok((r.clone(), name));
    }
    let data = targeted(template::data(class, image, security_groups, profile), r);
    let created = on
        .ec2
        .create_launch_template()
        .launch_template_name(&name)
        .launch_template_data(data)
        .tag_specifications(template::tag_specification(on.cluster, class))
        .send()
        .await;
    match created {
        Ok(_) => Ok((r.clone(), name)),
        Err(e) if error_code(&e).is_some_and(|c| c.ends_with("AlreadyExists")) => {
            template::existing(on.ec2, on.cluster, &name).await.map(|_| (r.clone(), name))
        }
        Err(e) => Err(classify("CreateLaunchTemplate", e)),
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
        let now = Duration::from_secs(1_800_000_000);
        let r = CapacityReservation::builder()
            .capacity_reservation_id("cr-0a")
            .instance_type("p5.48xlarge")
            .availability_zone("us-east-1a")
            .available_instance_count(2)
            .state(CapacityReservationState::Active)
            .reservation_type(CapacityReservationType::CapacityBlock)
            .interruptible(true)
            .build();
        let c = reserved_capacity(&r, now).unwrap();
        assert_eq!((c.id.as_str(), c.instance_type.as_str(), c.zone.as_str()), ("cr-0a", "p5.48xlarge", "us-east-1a"));
        assert_eq!((c.available, c.kind, c.interruptible), (2, ReservationKind::CapacityBlock, true));
        assert!(c.classes.is_empty());
        let mut expired = r.clone();
        expired.state = Some(CapacityReservationState::Expired);
        assert_eq!(reserved_capacity(&expired, now), None);
        // Still `active`, but past its end date: EC2 has not caught up yet.
        let ending = |r: &CapacityReservation, secs: i64| {
            let mut r = r.clone();
            r.end_date = Some(aws_sdk_ec2::primitives::DateTime::from_secs(now.as_secs() as i64 + secs));
            r
        };
        let mut ordinary = r.clone();
        ordinary.reservation_type = None;
        assert_eq!(reserved_capacity(&ending(&ordinary, -1), now), None);
        assert!(reserved_capacity(&ending(&ordinary, 60), now).is_some());
        // A capacity block takes no launch in its last half hour: EC2 is terminating its instances.
        assert_eq!(reserved_capacity(&ending(&r, 29 * 60), now), None);
        assert!(reserved_capacity(&ending(&r, 31 * 60), now).is_some());
    }

    fn reservation(id: &str, zone: &str, available: u32, kind: ReservationKind) -> ReservedCapacity {
        ReservedCapacity {
            id: id.into(),
            instance_type: "m5.large".into(),
            zone: zone.into(),
            available,
            kind,
            interruptible: false,
            classes: vec!["nodes".into()],
        }
    }

    #[test]
    fn a_launch_goes_into_the_reservation_with_most_room_and_its_own_template() {
        let r = |id: &str, zone: &str, available| reservation(id, zone, available, ReservationKind::Default);
        let all = [r("cr-1", "us-east-1a", 1), r("cr-2", "us-east-1a", 3), r("cr-3", "us-east-1b", 0)];
        assert_eq!(choose(&all, "m5.large", "us-east-1a").map(|r| r.id.as_str()), Some("cr-2"));
        assert_eq!(choose(&all, "m5.large", "us-east-1b"), None);
        assert_eq!(choose(&all, "c5.large", "us-east-1a"), None);
        assert_eq!(template_name("capstan-dev-0123", &all[1]), "capstan-dev-0123-cr-2");
        let data = targeted(RequestLaunchTemplateData::builder().image_id("ami-1").build(), &all[1]);
        let spec = data.capacity_reservation_specification().unwrap();
        assert_eq!(
            spec.capacity_reservation_preference(),
            Some(&CapacityReservationPreference::CapacityReservationsOnly)
        );
        assert_eq!(spec.capacity_reservation_target().and_then(|t| t.capacity_reservation_id()), Some("cr-2"));
        assert_eq!(data.image_id(), Some("ami-1"));
        assert_eq!(data.instance_market_options(), None, "an ordinary reservation is on-demand capacity");
        assert_eq!(target_capacity_type(CapacityType::Reserved, Some(&all[1])), DefaultTargetCapacityType::OnDemand);
    }

    #[test]
    fn a_capacity_block_is_launched_as_one() {
        let block = reservation("cr-9", "us-east-1a", 1, ReservationKind::CapacityBlock);
        let data = targeted(RequestLaunchTemplateData::builder().build(), &block);
        let market = data.instance_market_options().and_then(|m| m.market_type());
        assert_eq!(market, Some(&MarketType::CapacityBlock));
        assert_eq!(
            target_capacity_type(CapacityType::Reserved, Some(&block)),
            DefaultTargetCapacityType::CapacityBlock
        );
        assert_eq!(target_capacity_type(CapacityType::Spot, None), DefaultTargetCapacityType::Spot);
        assert_eq!(target_capacity_type(CapacityType::OnDemand, None), DefaultTargetCapacityType::OnDemand);
        // Its template is its own, never one made for an ordinary reservation of the same id.
        assert_eq!(template_name("capstan-dev-0123", &block), "capstan-dev-0123-cr-9-block");
    }

    #[test]
    fn a_reserved_launch_refused_for_any_reason_makes_its_offerings_unavailable() {
        let key = OfferingKey::new("m5.large", "us-east-1a", CapacityType::Reserved);
        let ice = |offerings: Vec<OfferingKey>| CloudError::InsufficientCapacity { offerings };
        let keys = [key.clone()];
        let denied = CloudError::Unauthorized("CreateFleet: UnauthorizedOperation".into());
        assert_eq!(refused(denied, &keys), ice(vec![key.clone()]));
        let tenancy = CloudError::Api("CreateFleet: InvalidParameterCombination: tenancy".into());
        assert_eq!(refused(tenancy, &keys), ice(vec![key.clone()]));
        assert_eq!(refused(ice(Vec::new()), &keys), ice(vec![key.clone()]));
        let other = OfferingKey::new("m5.large", "us-east-1b", CapacityType::Reserved);
        assert_eq!(refused(ice(vec![other.clone()]), &keys), ice(vec![other]));
        let throttled = CloudError::Throttled("slow down".into());
        assert_eq!(refused(throttled.clone(), &keys), throttled);
    }

    #[test]
    fn a_request_is_named_by_what_it_asks_for() {
        let q = queries(&[id("cr-1"), id("cr-2"), tags(&[("team", "ml")], None)]);
        assert_eq!(q[0].label(), "ids cr-1,cr-2");
        assert_eq!(q[1].label(), "filters state=active tag:team=ml");
    }
}
