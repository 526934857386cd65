//! Walks the config-repository layout and sorts its documents by scope.
//!
//! ```text
//! fleet.yaml                 Fleet
//! guardrails.yaml            Guardrails (optional; tightens the built-in rules, relaxes one only with a reason)
//! commitments/*.yaml         Commitments (Savings Plans, Reserved Instances) for the whole fleet
//! {base,clusters/<c>}/nodeoverlays/*.yaml   NodeOverlays (karpenter.sh/v1alpha1)
//! {base,clusters/<c>}/capacitybuffers/*.yaml   CapacityBuffers (autoscaling.x-k8s.io), PodTemplates (v1)
//! base/{nodepools,nodeclasses}/*.yaml, base/policy.yaml
//! clusters/<c>/{cluster.yaml, instancegroups/*, nodepools/*, nodeclasses/*, policy.yaml}
//! ```

use std::collections::BTreeMap;

use super::bounds;
use super::capstan::{Fleet, Guardrails};
use super::diag::{Diagnostic, Diagnostics, Severity};
use super::document::{self, Kind, Origin, RawDoc};
use super::snapshot::{Snapshot, is_yaml};

/// A document with its kind.
#[derive(Debug, Clone)]
pub struct Entry {
    pub kind: Kind,
    pub doc: RawDoc,
}

impl Entry {
    pub fn object(&self) -> String {
        format!("{}/{}", self.kind.name(), self.doc.name())
    }
}

/// Everything read from a repository, before any cluster's policy is computed.
#[derive(Debug, Default)]
pub struct Repo {
    pub fleet: Option<(Fleet, Origin)>,
    pub guardrails: Option<(Guardrails, Origin)>,
    /// The fleet's Savings Plans and Reserved Instances, typed; every cluster sees them.
    pub commitments: Vec<super::document::Located<super::commitment::Commitment>>,
    /// The documents of `commitments/`, as read: typed and checked into `commitments` by
    /// [`super::pricing_checks::commitments`].
    pub commitment_entries: Vec<(Entry, Origin)>,
    pub base: Vec<Entry>,
    pub clusters: BTreeMap<String, Vec<Entry>>,
    pub diagnostics: Diagnostics,
}

/// Where a file sits in the layout.
enum Place {
    Fleet,
    Guardrails,
    Commitments,
    Base(&'static [Kind]),
    Cluster(String, &'static [Kind]),
}

// Karpenter users often keep a NodePool and its EC2NodeClass in one file, so both folders take
// both kinds.
const POOLS: &[Kind] = &[Kind::NodePool, Kind::EC2NodeClass];
const CLASSES: &[Kind] = &[Kind::EC2NodeClass, Kind::NodePool];
const POLICY: &[Kind] = &[Kind::ClusterPolicy];
const IGS: &[Kind] = &[Kind::InstanceGroup];
const CLUSTER: &[Kind] = &[Kind::Cluster];
const OVERLAYS: &[Kind] = &[Kind::NodeOverlay];
const BUFFERS: &[Kind] = &[Kind::CapacityBuffer, Kind::PodTemplate];

fn place(path: &str) -> Option<Place> {
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["fleet.yaml" | "fleet.yml"] => Some(Place::Fleet),
        ["guardrails.yaml" | "guardrails.yml"] => Some(Place::Guardrails),
        ["base", "nodepools", _] => Some(Place::Base(POOLS)),
        ["base", "nodeclasses", _] => Some(Place::Base(CLASSES)),
        ["base", "policy.yaml" | "policy.yml"] => Some(Place::Base(POLICY)),
        ["base", "nodeoverlays", _] => Some(Place::Base(OVERLAYS)),
        ["base", "capacitybuffers", _] => Some(Place::Base(BUFFERS)),
        ["commitments", _] => Some(Place::Commitments),
        ["clusters", c, rest @ ..] => {
            let kinds = match rest {
                ["cluster.yaml" | "cluster.yml"] => CLUSTER,
                ["instancegroups", _] => IGS,
                ["nodepools", _] => POOLS,
                ["nodeclasses", _] => CLASSES,
                ["nodeoverlays", _] => OVERLAYS,
                ["capacitybuffers", _] => BUFFERS,
                ["policy.yaml" | "policy.yml"] => POLICY,
                _ => return None,
            };
            Some(Place::Cluster(c.to_string(), kinds))
        }
        _ => None,
    }
}

/// Reads every file of the snapshot. Bad files are reported and skipped; the rest still load.
pub fn load(snapshot: &Snapshot) -> Repo {
    let mut repo = Repo::default();
    for (path, bytes) in snapshot.files() {
        // Workload traces for `capstan simulate` live beside the policy; they are not policy.
        if !is_yaml(path) || path.starts_with("traces/") {
            continue;
        }
        let Some(place) = place(path) else {
            repo.diagnostics.push(file_warning(
                path,
                "file is not part of the config-repository layout and is ignored",
                "see the layout in the README: fleet.yaml, base/…, clusters/<name>/…",
            ));
            continue;
        };
        let docs = match document::parse_file(path, bytes) {
            Ok(docs) => docs,
            Err(d) => {
                repo.diagnostics.push(*d);
                continue;
            }
        };
        for doc in docs {
            add(&mut repo, &place, doc);
        }
    }
    check_fleet(&mut repo);
    repo
}

fn add(repo: &mut Repo, place: &Place, doc: RawDoc) {
    let kind = match document::identify(&doc) {
        Ok(kind) => kind,
        Err(d) => return repo.diagnostics.push(*d),
    };
    let entry = Entry { kind, doc };
    let allowed: &[Kind] = match place {
        Place::Fleet => &[Kind::Fleet],
        Place::Guardrails => &[Kind::Guardrails],
        Place::Commitments => &[Kind::Commitment],
        Place::Base(kinds) | Place::Cluster(_, kinds) => kinds,
    };
    if !allowed.contains(&kind) {
        let names: Vec<&str> = allowed.iter().map(|k| k.name()).collect();
        let d = Origin::of(&entry.doc).diag(
            Severity::Error,
            &entry.object(),
            &document::steps("kind"),
            format!("a {} does not belong in this file", kind.name()),
            format!("this place holds {}; {}", names.join(", "), where_it_goes(kind)),
        );
        return repo.diagnostics.push(d);
    }
    let origin = Origin::of(&entry.doc);
    match place {
        Place::Fleet => set_single(&mut repo.fleet, &mut repo.diagnostics, &entry, origin),
        Place::Guardrails => set_single(&mut repo.guardrails, &mut repo.diagnostics, &entry, origin),
        Place::Commitments => repo.commitment_entries.push((entry, origin)),
        Place::Base(_) => push_unique(&mut repo.base, &mut repo.diagnostics, entry),
        Place::Cluster(c, _) => {
            let list = repo.clusters.entry(c.clone()).or_default();
            push_unique(list, &mut repo.diagnostics, entry)
        }
    }
}

fn where_it_goes(kind: Kind) -> &'static str {
    match kind {
        Kind::NodePool => "NodePools go in base/nodepools/ or clusters/<name>/nodepools/",
        Kind::EC2NodeClass => "EC2NodeClasses go in base/nodeclasses/ or clusters/<name>/nodeclasses/",
        Kind::InstanceGroup => "InstanceGroups go in clusters/<name>/instancegroups/",
        Kind::Cluster => "the kOps Cluster spec goes in clusters/<name>/cluster.yaml",
        Kind::ClusterPolicy => "the ClusterPolicy goes in base/policy.yaml or clusters/<name>/policy.yaml",
        Kind::Fleet => "the Fleet goes in fleet.yaml",
        Kind::Guardrails => "repository guardrails go in guardrails.yaml",
        Kind::NodeOverlay => "NodeOverlays go in base/nodeoverlays/ or clusters/<name>/nodeoverlays/",
        Kind::Commitment => "Commitments go in commitments/ at the repository root (they serve the whole fleet)",
        Kind::CapacityBuffer | Kind::PodTemplate => {
            "CapacityBuffers and PodTemplates go in base/capacitybuffers/ or clusters/<name>/capacitybuffers/"
        }
    }
}

fn set_single<T: serde::de::DeserializeOwned>(
    slot: &mut Option<(T, Origin)>,
    diags: &mut Diagnostics,
    entry: &Entry,
    origin: Origin,
) {
    if slot.is_some() {
        let d = origin.diag(
            Severity::Error,
            &entry.object(),
            &[],
            format!("a second {} document", entry.kind.name()),
            "keep exactly one",
        );
        return diags.push(d);
    }
    let admitted = bounds::admit::<T>(entry.kind, &origin, &entry.object(), &entry.doc.value);
    admitted.diagnostics.into_iter().for_each(|d| diags.push(d));
    if let Some(value) = admitted.value {
        *slot = Some((value, origin));
    }
}

fn push_unique(list: &mut Vec<Entry>, diags: &mut Diagnostics, entry: Entry) {
    let same = |e: &&Entry| e.kind == entry.kind && e.doc.identity(e.kind) == entry.doc.identity(entry.kind);
    if let Some(first) = list.iter().find(same) {
        let (file, span) = Origin::of(&first.doc).locate(&document::steps("metadata.name"));
        let d = Origin::of(&entry.doc).diag(
            Severity::Error,
            &entry.object(),
            &document::steps("metadata.name"),
            format!("{} is defined twice; first at {file}:{}:{}", entry.object(), span.line, span.column),
            "names are unique per kind (and namespace, for CapacityBuffer and PodTemplate) within base/ and within each cluster folder; rename or remove one",
        );
        return diags.push(d);
    }
    list.push(entry);
}

fn check_fleet(repo: &mut Repo) {
    let Some((fleet, origin)) = &repo.fleet else {
        if !repo.diagnostics.iter().any(|d| d.file.starts_with("fleet.y")) {
            repo.diagnostics.push(file_error(
                "fleet.yaml",
                "the repository has no fleet.yaml",
                "add a capstan.io/v1alpha1 Fleet listing the clusters (see examples/fleet/fleet.yaml)",
            ));
        }
        return;
    };
    let mut diags = Vec::new();
    let object = format!("Fleet/{}", fleet.metadata.name);
    for folder in repo.clusters.keys() {
        if !fleet.spec.clusters.iter().any(|c| &c.name == folder) {
            diags.push(origin.diag(
                Severity::Error,
                &object,
                &document::steps("spec.clusters"),
                format!("cluster folder `clusters/{folder}` is not listed in fleet.yaml"),
                format!("add `- name: {folder}` with its kopsName, stateStore and region to spec.clusters, or remove the folder"),
            ));
        }
    }
    for (i, c) in fleet.spec.clusters.iter().enumerate() {
        let at = |f: &str| document::steps(&format!("spec.clusters[{i}].{f}"));
        if fleet.spec.clusters[..i].iter().any(|o| o.name == c.name) {
            diags.push(origin.diag(
                Severity::Error,
                &object,
                &at("name"),
                format!("cluster `{}` is listed twice", c.name),
                "list each cluster once",
            ));
        }
        if !fleet.spec.waves.is_empty() && !fleet.spec.waves.iter().any(|w| w.wave == c.wave) {
            diags.push(origin.diag(
                Severity::Error,
                &object,
                &at("wave"),
                format!("wave {} is not defined in spec.waves", c.wave),
                "add the wave with its soakTime to spec.waves",
            ));
        }
        if !(c.state_store.starts_with("s3://") || c.state_store.starts_with("file://")) {
            diags.push(origin.diag(
                Severity::Error,
                &object,
                &at("stateStore"),
                format!("unsupported state store `{}`", c.state_store),
                "use s3://bucket[/prefix] or file:///absolute/path",
            ));
        }
    }
    for (i, a) in fleet.spec.approvals.iter().enumerate() {
        let at = |f: &str| document::steps(&format!("spec.approvals[{i}].{f}"));
        let hex = a.revision.len() >= 7 && a.revision.len() <= 40 && a.revision.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex {
            diags.push(origin.diag(
                Severity::Error,
                &object,
                &at("revision"),
                format!("`{}` is not a commit id", a.revision),
                "write the commit's sha: 7 to 40 hex digits (git rev-parse HEAD)",
            ));
        }
        let wave = fleet.spec.waves.iter().find(|w| w.wave == a.wave);
        if wave.is_none_or(|w| w.require_approval != Some(true)) {
            diags.push(origin.diag(
                Severity::Warning,
                &object,
                &at("wave"),
                format!("wave {} does not set requireApproval, so this approval changes nothing", a.wave),
                "set requireApproval: true on the wave, or remove the approval",
            ));
        }
    }
    if fleet.spec.heartbeat_timeout.as_ref().is_some_and(|d| d.duration().is_zero()) {
        diags.push(origin.diag(
            Severity::Error,
            &object,
            &document::steps("spec.heartbeatTimeout"),
            "heartbeatTimeout must be above 0s".to_string(),
            "leave it unset (2m) or give a duration such as 1m",
        ));
    }
    for d in diags {
        repo.diagnostics.push(d);
    }
}

fn file_diag(severity: Severity, file: &str, message: &str, hint: &str) -> Diagnostic {
    Diagnostic {
        severity,
        file: file.to_string(),
        line: 1,
        column: 1,
        object: None,
        field: None,
        message: message.to_string(),
        hint: hint.to_string(),
    }
}

fn file_error(file: &str, message: &str, hint: &str) -> Diagnostic {
    file_diag(Severity::Error, file, message, hint)
}

fn file_warning(file: &str, message: &str, hint: &str) -> Diagnostic {
    file_diag(Severity::Warning, file, message, hint)
}

/// Findings about the folders and files the snapshot could not read. When only `cluster` is
/// checked, a path inside another cluster's folder is skipped with a warning; anything else is
/// an error, since the clusters being checked may need it.
pub fn unreadable(snapshot: &Snapshot, cluster: Option<&str>) -> Diagnostics {
    let mut diags = Diagnostics::default();
    for (path, why) in snapshot.unreadable() {
        let owner = path.strip_prefix("clusters/").map(|rest| rest.split('/').next().unwrap_or(rest));
        let message = format!("cannot read `{path}`: {why}");
        let d = match (owner, cluster) {
            (Some(other), Some(checked)) if other != checked => file_warning(
                path,
                &format!("{message}; skipped, since it belongs to cluster `{other}` and only `{checked}` is checked"),
                &format!(
                    "make it readable (check its owner and permissions) before checking cluster `{other}` or every cluster"
                ),
            ),
            _ => file_error(
                path,
                &message,
                "make it readable (check its owner and permissions); the clusters being checked may depend on it",
            ),
        };
        diags.push(d);
    }
    diags
}
