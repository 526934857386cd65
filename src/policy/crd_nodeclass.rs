//! The rules of Karpenter's EC2NodeClass CRD (karpenter.k8s.aws/v1, Karpenter 1.15) that span
//! fields: its `x-kubernetes-validations` on selector terms, AMI aliases, block devices, network
//! interfaces, the placement group, connection tracking and tags. Each message carries the CRD's
//! own wording of the rule, then says what to do. Single-field patterns and ranges are rows of
//! [`bounds_rules`](super::bounds_rules).
//!
//! The CRD tests presence (`has(x.tags)`), so a term that writes `tags: {}` has tags; presence is
//! read from the written document where the typed value cannot tell.

use super::crd_patterns::alias_format;
use super::nodeclass::{AmiFamily, EC2NodeClassSpec, SelectorTerm};
use super::reporter::Reporter;

/// Checks the cross-field rules of one EC2NodeClass spec.
pub(super) fn check(s: &EC2NodeClassSpec, r: &mut Reporter) {
    ami_terms(s, r);
    subnet_terms(&s.subnet_selector_terms, r);
    security_group_terms(&s.security_group_selector_terms, r);
    reservation_terms(s, r);
    tags(s, r);
    block_devices(s, r);
    network_interfaces(s, r);
    if let Some(p) = &s.placement_group_selector {
        match (&p.name, &p.id) {
            (None, None) => r.error(
                "spec.placementGroupSelector",
                "the placement group selector is empty; Karpenter's rule: expected at least one, got none, ['name', 'id']",
                "select the placement group by name or by id",
            ),
            (Some(_), Some(_)) => r.error(
                "spec.placementGroupSelector",
                "both name and id are set; Karpenter's rule: 'name' and 'id' are mutually exclusive",
                "keep one of name and id",
            ),
            _ => {}
        }
    }
    if let Some(c) = &s.connection_tracking
        && c.tcp_established_timeout.is_none()
        && c.udp_stream_timeout.is_none()
        && c.udp_timeout.is_none()
    {
        r.error(
            "spec.connectionTracking",
            "connectionTracking sets no timeout; Karpenter's rule: at least one of tcpEstablishedTimeout, udpStreamTimeout, or udpTimeout must be set",
            "set a timeout, e.g. tcpEstablishedTimeout: 3600, or remove connectionTracking",
        );
    }
}

/// Whether `field` is present: set in the typed value, or written (an empty mapping).
fn has(r: &Reporter, typed: bool, field: &str) -> bool {
    typed || r.written(field)
}

/// The selector terms' `tags`: "empty tag keys or values aren't supported".
fn term_tags(tags: &super::meta::Labels, at: &str, r: &mut Reporter) {
    if tags.iter().any(|(k, v)| k.is_empty() || v.is_empty()) {
        r.error(
            &format!("{at}.tags"),
            "a tag has an empty key or value; Karpenter's rule: empty tag keys or values aren't supported",
            "give every tag a key and a value; use \"*\" to match any value",
        );
    }
}

const FAMILIES: [(&str, AmiFamily, &str); 6] = [
    ("al2", AmiFamily::AL2, "AL2"),
    ("al2023", AmiFamily::AL2023, "AL2023"),
    ("bottlerocket", AmiFamily::Bottlerocket, "Bottlerocket"),
    ("windows2019", AmiFamily::Windows2019, "Windows2019"),
    ("windows2022", AmiFamily::Windows2022, "Windows2022"),
    ("windows2025", AmiFamily::Windows2025, "Windows2025"),
];

fn ami_terms(s: &EC2NodeClassSpec, r: &mut Reporter) {
    let field = "spec.amiSelectorTerms";
    let terms = &s.ami_selector_terms;
    if terms.is_empty() {
        r.error(
            field,
            "amiSelectorTerms is empty or missing; Karpenter requires at least one term (minItems 1)",
            "select an AMI by alias (al2023@latest), id, name + owner, ssmParameter or tags",
        );
    }
    for (i, t) in terms.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let tags = has(r, !t.tags.is_empty(), &format!("{at}.tags"));
        let (id, alias, name, owner) = (t.id.is_some(), t.alias.is_some(), t.name.is_some(), t.owner.is_some());
        if !(tags || id || name || alias || t.ssm_parameter.is_some()) {
            r.error(
                &at,
                "the term selects nothing; Karpenter's rule: expected at least one, got none, ['tags', 'id', 'name', 'alias', 'ssmParameter']",
                "give the term one of alias, id, name, ssmParameter or tags",
            );
        }
        if id && (alias || tags || name || owner) {
            r.error(
                &at,
                "the term combines id with other fields; Karpenter's rule: 'id' is mutually exclusive, cannot be set with a combination of other fields in amiSelectorTerms",
                "use id alone in its term",
            );
        }
        if alias && (id || tags || name || owner) {
            r.error(
                &at,
                "the term combines alias with other fields; Karpenter's rule: 'alias' is mutually exclusive, cannot be set with a combination of other fields in amiSelectorTerms",
                "use alias alone in its term",
            );
        }
        if let Some(a) = &t.alias {
            alias_rules(a, &format!("{at}.alias"), r);
        }
        term_tags(&t.tags, &at, r);
    }
    let aliases: Vec<&str> = terms.iter().filter_map(|t| t.alias.as_deref()).collect();
    if !aliases.is_empty() && terms.len() != 1 {
        r.error(
            field,
            "an alias term is listed with other terms; Karpenter's rule: 'alias' is mutually exclusive, cannot be set with a combination of other amiSelectorTerms",
            "keep the alias term alone, or replace it by other terms",
        );
    }
    match s.ami_family {
        None if aliases.is_empty() => r.error(
            "spec",
            "no amiFamily and no alias; Karpenter's rule: must specify amiFamily if amiSelectorTerms does not contain an alias",
            "set amiFamily (AL2023, Bottlerocket, Custom, …) or select the AMI by alias",
        ),
        Some(family) if family != AmiFamily::Custom => {
            for (prefix, want, word) in FAMILIES {
                let used = aliases.iter().any(|a| a.split('@').next() == Some(prefix));
                if used && family != want {
                    r.error(
                        "spec.amiFamily",
                        format!(
                            "amiFamily {family:?} does not fit the {prefix} alias; Karpenter's rule: if set, amiFamily must be '{word}' or 'Custom' when using {} {word} alias",
                            if prefix.starts_with("al") { "an" } else { "a" }
                        ),
                        format!("set amiFamily: {word} or Custom, or leave amiFamily out (the alias sets it)"),
                    );
                }
            }
        }
        _ => {}
    }
}

fn alias_rules(alias: &str, at: &str, r: &mut Reporter) {
    if !alias_format(alias) {
        r.error(
            at,
            format!(
                "`{alias}` is not family@version; Karpenter's rule: 'alias' is improperly formatted, must match the format 'family@version'"
            ),
            "write e.g. al2023@latest or bottlerocket@v1.20.4",
        );
    }
    let mut parts = alias.split('@');
    let family = parts.next().unwrap_or_default();
    if !FAMILIES.iter().any(|(f, _, _)| *f == family) {
        r.error(
            at,
            format!(
                "`{family}` is not an AMI family Karpenter knows; Karpenter's rule: family is not supported, must be one of the following: 'al2', 'al2023', 'bottlerocket', 'windows2019', 'windows2022', 'windows2025'"
            ),
            "use one of al2, al2023, bottlerocket, windows2019, windows2022, windows2025",
        );
    }
    if family.starts_with("windows") && FAMILIES.iter().any(|(f, _, _)| *f == family) && parts.next() != Some("latest")
    {
        r.error(
            at,
            format!(
                "`{alias}` pins a Windows version; Karpenter's rule: windows families may only specify version 'latest'"
            ),
            format!("write {family}@latest"),
        );
    }
}

fn subnet_terms(terms: &[SelectorTerm], r: &mut Reporter) {
    let field = "spec.subnetSelectorTerms";
    if terms.is_empty() {
        return r.error(
            field,
            "no subnet selector terms; Karpenter's rule: subnetSelectorTerms cannot be empty",
            "select subnets by tags or id",
        );
    }
    let mut all_combine = true;
    for (i, t) in terms.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let tags = has(r, !t.tags.is_empty(), &format!("{at}.tags"));
        if !(tags || t.id.is_some()) {
            r.error(
                &at,
                "the term selects nothing; Karpenter's rule: expected at least one, got none, ['tags', 'id']",
                "give the term tags or an id",
            );
        }
        for (set, name) in [(t.name.is_some(), "name"), (t.cidr.is_some(), "cidr")] {
            if set {
                r.error(
                    &format!("{at}.{name}"),
                    format!("unknown field `{name}`: a subnet selector term has only id and tags in Karpenter's EC2NodeClass"),
                    "select subnets by tags (e.g. Name) or id",
                );
            }
        }
        all_combine &= t.id.is_some() && tags;
        term_tags(&t.tags, &at, r);
    }
    // The CRD's rule reads `!self.all(...)`: it refuses the list only when every term combines.
    if all_combine {
        r.error(
            field,
            "every term combines id with tags; Karpenter's rule: 'id' is mutually exclusive, cannot be set with a combination of other fields in a subnet selector term",
            "use id alone in its term, and tags in terms of their own",
        );
    }
}

fn security_group_terms(terms: &[SelectorTerm], r: &mut Reporter) {
    let field = "spec.securityGroupSelectorTerms";
    if terms.is_empty() {
        return r.error(
            field,
            "no security group selector terms; Karpenter's rule: securityGroupSelectorTerms cannot be empty",
            "select security groups by tags, id or name",
        );
    }
    let (mut all_id, mut all_name) = (true, true);
    for (i, t) in terms.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let tags = has(r, !t.tags.is_empty(), &format!("{at}.tags"));
        let (id, name) = (t.id.is_some(), t.name.is_some());
        if !(tags || id || name) {
            r.error(
                &at,
                "the term selects nothing; Karpenter's rule: expected at least one, got none, ['tags', 'id', 'name']",
                "give the term tags, an id or a name",
            );
        }
        if t.cidr.is_some() {
            r.error(
                &format!("{at}.cidr"),
                "unknown field `cidr`: a security group selector term has only id, name and tags in Karpenter's EC2NodeClass",
                "select security groups by tags, id or name",
            );
        }
        all_id &= id && (tags || name);
        all_name &= name && (tags || id);
        term_tags(&t.tags, &at, r);
    }
    // Both rules read `!self.all(...)`: they refuse the list only when every term combines.
    if all_id {
        r.error(
            field,
            "every term combines id with other fields; Karpenter's rule: 'id' is mutually exclusive, cannot be set with a combination of other fields in a security group selector term",
            "use id alone in its term",
        );
    }
    if all_name {
        r.error(
            field,
            "every term combines name with other fields; Karpenter's rule: 'name' is mutually exclusive, cannot be set with a combination of other fields in a security group selector term",
            "use name alone in its term",
        );
    }
}

fn reservation_terms(s: &EC2NodeClassSpec, r: &mut Reporter) {
    let field = "spec.capacityReservationSelectorTerms";
    for (i, t) in s.capacity_reservation_selector_terms.iter().enumerate() {
        term_tags(&t.tags, &format!("{field}[{i}]"), r);
    }
    let terms = &s.capacity_reservation_selector_terms;
    let combines = |(i, t): (usize, &super::nodeclass::CapacityReservationSelectorTerm)| {
        t.id.is_some()
            && (has(r, !t.tags.is_empty(), &format!("{field}[{i}].tags"))
                || t.owner_id.is_some()
                || t.instance_match_criteria.is_some())
    };
    if !terms.is_empty() && terms.iter().enumerate().all(combines) {
        r.error(
            field,
            "every term combines id with other fields; Karpenter's rule: 'id' is mutually exclusive, cannot be set along with other fields in a capacity reservation selector term",
            "use id alone in its term",
        );
    }
    // `!self.all(x, has(x.id) && …)` is false for a list with no terms.
    if terms.is_empty() && r.written(field) {
        r.error(
            field,
            "an empty list is refused by Karpenter's rule 'id' is mutually exclusive, cannot be set along with other fields in a capacity reservation selector term (it holds for no empty list)",
            "remove capacityReservationSelectorTerms, or list terms",
        );
    }
}

/// Tag keys the CRD refuses, with the text its rule names.
fn restricted_tag(key: &str) -> Option<&'static str> {
    if key.starts_with("kubernetes.io/cluster") {
        return Some("kubernetes.io/cluster/");
    }
    ["eks:eks-cluster-name", "karpenter.sh/nodepool", "karpenter.sh/nodeclaim", "karpenter.k8s.aws/ec2nodeclass"]
        .into_iter()
        .find(|k| *k == key)
}

fn tags(s: &EC2NodeClassSpec, r: &mut Reporter) {
    for key in s.tags.keys() {
        if key.is_empty() {
            r.error(
                "spec.tags",
                "a tag has an empty key; Karpenter's rule: empty tag keys aren't supported",
                "give every tag a key",
            );
        } else if let Some(rule) = restricted_tag(key) {
            r.error(
                &format!("spec.tags.{key}"),
                format!("tag `{key}` is reserved; Karpenter's rule: tag contains a restricted tag matching {rule}"),
                "remove it: the autoscaler sets kubernetes.io/cluster/*, eks:eks-cluster-name, karpenter.sh/nodepool, karpenter.sh/nodeclaim and karpenter.k8s.aws/ec2nodeclass itself",
            );
        }
    }
}

fn block_devices(s: &EC2NodeClassSpec, r: &mut Reporter) {
    let roots = s.block_device_mappings.iter().filter(|b| b.root_volume == Some(true)).count();
    if roots > 1 {
        r.error(
            "spec.blockDeviceMappings",
            format!(
                "{roots} block devices have rootVolume: true; Karpenter's rule: must have only one blockDeviceMappings with rootVolume"
            ),
            "mark only the root device",
        );
    }
    for (i, b) in s.block_device_mappings.iter().enumerate() {
        let Some(ebs) = &b.ebs else { continue };
        let at = format!("spec.blockDeviceMappings[{i}].ebs");
        if ebs.volume_size.is_none() && ebs.snapshot_id.is_none() {
            r.error(
                &at,
                "the EBS volume has no size and no snapshot; Karpenter's rule: snapshotID or volumeSize must be defined",
                "add volumeSize, e.g. 100Gi, or a snapshotID",
            );
        }
        if ebs.volume_initialization_rate.is_some() && ebs.snapshot_id.as_deref().is_none_or(str::is_empty) {
            r.error(
                &format!("{at}.volumeInitializationRate"),
                "volumeInitializationRate without a snapshot; Karpenter's rule: snapshotID must be set when volumeInitializationRate is set",
                "add the snapshotID the volume is restored from, or remove volumeInitializationRate",
            );
        }
    }
}

fn network_interfaces(s: &EC2NodeClassSpec, r: &mut Reporter) {
    let field = "spec.networkInterfaces";
    let nics = &s.network_interfaces;
    let mut complete = Vec::new();
    for (i, n) in nics.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let mut missing = Vec::new();
        for (set, name) in [
            (n.device_index.is_some(), "deviceIndex"),
            (n.interface_type.is_some(), "interfaceType"),
            (n.network_card_index.is_some(), "networkCardIndex"),
        ] {
            if !set {
                missing.push(name);
            }
        }
        match (n.network_card_index, n.device_index, n.interface_type.as_deref()) {
            (Some(card), Some(device), Some(kind)) => complete.push((i, card, device, kind)),
            _ => r.error(
                &at,
                format!(
                    "missing field{} {}: Karpenter requires deviceIndex, interfaceType and networkCardIndex on every network interface",
                    if missing.len() > 1 { "s" } else { "" },
                    missing.join(", ")
                ),
                "add the missing fields, e.g. networkCardIndex: 0, deviceIndex: 0, interfaceType: interface",
            ),
        }
    }
    if !nics.is_empty()
        && !complete.iter().any(|&(_, card, device, kind)| card == 0 && device == 0 && kind == "interface")
    {
        r.error(
            field,
            "no primary interface; Karpenter's rule: networkInterfaces must include a primary interface with interfaceType='interface'",
            "add networkCardIndex: 0, deviceIndex: 0, interfaceType: interface",
        );
    }
    let mut slots = std::collections::HashMap::new();
    let mut efa_cards = std::collections::HashMap::new();
    for &(_, card, device, kind) in &complete {
        *slots.entry((card, device)).or_insert(0_usize) += 1;
        if kind == "efa-only" {
            *efa_cards.entry(card).or_insert(0_usize) += 1;
        }
    }
    for &(i, card, device, kind) in &complete {
        let same_slot = slots[&(card, device)];
        let efa_on_card = efa_cards.get(&card).copied().unwrap_or(0);
        if same_slot > 1 || (kind == "efa-only" && efa_on_card > 1) {
            r.error(
                &format!("{field}[{i}]"),
                format!(
                    "network card {card} device {device} clashes with another interface; Karpenter's rule: networkInterfaces must not have duplicate networkCardIndex and deviceIndex pairs, and can have at most one efa device per network card"
                ),
                "give each interface its own networkCardIndex/deviceIndex pair, and each card at most one efa-only interface",
            );
        }
    }
}
