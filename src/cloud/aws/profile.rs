//! Instance profiles capstan makes for EC2NodeClasses that name a `role` and no
//! `instanceProfile`, as Karpenter does, but never in a way Karpenter would take for its own.
//!
//! ```text
//! class (role, no instanceProfile) ─► name(cluster, class, role)      pure, stable
//!   GetInstanceProfile ─ missing ─► CreateInstanceProfile (path /capstan/<cluster>/, tags)
//!   tags missing ─► TagInstanceProfile
//!   another role ─► RemoveRoleFromInstanceProfile ─► AddRoleToInstanceProfile
//! ```
//!
//! A profile lives under [`path`] and carries `kubernetes.io/cluster/<cluster>: owned` and
//! [`CLASS_TAG`]; Karpenter's own live under `/karpenter/…` with `karpenter.k8s.aws/ec2nodeclass`,
//! so neither tool lists or deletes the other's. A class with `instanceProfile` uses that profile
//! as given and nothing is made for it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_iam::types::Tag;

use super::super::CloudError;
use super::super::provider::tags;
use crate::policy::nodeclass::EC2NodeClass;

pub use super::template::CLASS_TAG;

/// How long after capstan creates a profile (or gives it its role) a refused launch is put down
/// to IAM's eventual consistency and retried: EC2 may not see it for several seconds.
pub const SETTLE: Duration = Duration::from_secs(120);

/// The longest IAM instance-profile name.
const MAX_NAME: usize = 128;

/// Where the profile of a class comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `instanceProfile`: used as given, never created, tagged or deleted.
    Given(String),
    /// `role` (a name or an ARN): capstan's profile of this name holds it.
    Role {
        /// The profile's name ([`name`]).
        profile: String,
        /// The role's name (the last part of an ARN or a path).
        role: String,
    },
}

impl Source {
    /// The instance profile's name, whichever way it comes.
    pub fn profile(&self) -> &str {
        match self {
            Source::Given(p) => p,
            Source::Role { profile, .. } => profile,
        }
    }
}

/// The profile an EC2NodeClass launches with; neither `role` nor `instanceProfile` is a
/// configuration error (validation refuses it before it gets here).
pub fn source(cluster: &str, class: &EC2NodeClass) -> Result<Source, CloudError> {
    match (&class.spec.instance_profile, &class.spec.role) {
        (Some(p), _) => Ok(Source::Given(p.clone())),
        (None, Some(r)) => {
            let role = role_name(r).to_string();
            Ok(Source::Role { profile: name(cluster, &class.metadata.name, &role), role })
        }
        (None, None) => Err(CloudError::InvalidConfig(format!(
            "EC2NodeClass {}: neither role nor instanceProfile is set; set spec.role (capstan creates the instance profile) or spec.instanceProfile (kOps: nodes.<cluster>)",
            class.metadata.name
        ))),
    }
}

/// A role's name from a name, `path/name` or `arn:aws:iam::<account>:role/<path>/<name>`
/// (AddRoleToInstanceProfile takes the bare name).
pub fn role_name(role: &str) -> &str {
    role.rsplit('/').next().unwrap_or(role)
}

/// The IAM path of this cluster's profiles: `/capstan/<cluster>/`.
pub fn path(cluster: &str) -> String {
    format!("/capstan/{}/", clean(cluster))
}

/// The profile's name: readable (`capstan_<cluster>_<class>`) and ending in a hash of the
/// cluster, class and role, so another role gets another profile; at most 128 characters of
/// `[\w+=,.@-]`.
pub fn name(cluster: &str, class: &str, role: &str) -> String {
    let hash = crate::digest::fnv64(format!("{cluster}|{class}|{}", role_name(role)).as_bytes());
    let tail = format!("_{hash:016x}");
    let mut head = clean(&format!("capstan_{cluster}_{class}"));
    head.truncate(MAX_NAME - tail.len());
    head + &tail
}

/// `text` with every character IAM refuses in a name or path replaced by `-`.
fn clean(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) { c } else { '-' }).collect()
}

/// The tags of a class's profile: the cluster's ownership tag and [`CLASS_TAG`].
pub fn profile_tags(cluster: &str, class: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(tags::cluster(cluster), "owned".to_string()), (CLASS_TAG.to_string(), class.to_string())])
}

/// The profiles the current classes want (those with `role` and no `instanceProfile`).
pub fn wanted<'a>(cluster: &str, classes: impl IntoIterator<Item = &'a EC2NodeClass>) -> BTreeSet<String> {
    classes
        .into_iter()
        .filter_map(|c| match source(cluster, c) {
            Ok(Source::Role { profile, .. }) => Some(profile),
            _ => None,
        })
        .collect()
}

/// A profile found under the cluster's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The profile's name.
    pub name: String,
    /// Its IAM path.
    pub path: String,
    /// When IAM created it (time since the epoch).
    pub created: Duration,
}

/// The profiles to delete: exactly under the cluster's path, wanted by no class, used by no live
/// instance, and older than `grace` (a profile made moments ago may be on its way into a
/// launch).
pub fn unused(
    cluster: &str,
    listed: &[Listed],
    wanted: &BTreeSet<String>,
    in_use: &BTreeSet<String>,
    now: Duration,
    grace: Duration,
) -> Vec<String> {
    let ours = path(cluster);
    listed
        .iter()
        .filter(|p| p.path == ours && !wanted.contains(&p.name) && !in_use.contains(&p.name))
        .filter(|p| now.saturating_sub(p.created) >= grace)
        .map(|p| p.name.clone())
        .collect()
}

/// An IAM error, typed: `NoSuchEntity` is `NotFound`, `AccessDenied` says which permission the
/// IAM policy lacks.
pub fn iam_error<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    call: &str,
    err: SdkError<E, R>,
) -> CloudError {
    match super::error_code(&err) {
        Some("NoSuchEntity") => CloudError::NotFound(format!("{call}: {}", err_message(&err))),
        Some("AccessDenied") => CloudError::Unauthorized(format!(
            "{call}: AccessDenied; the IAM policy must allow iam:{call} on instance profiles under /capstan/<cluster>/ (deploy/aws/iam-policy.json)"
        )),
        _ => super::classify(call, err),
    }
}

fn err_message<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> String {
    match err {
        SdkError::ServiceError(s) => s.err().message().unwrap_or_default().to_string(),
        _ => String::new(),
    }
}

/// An IAM client from the standard AWS chain, in the EC2 client's region, on IAM's own endpoint:
/// what a provider uses when it was handed none ([`super::iam`] honours an endpoint override).
pub async fn default_client(ec2: &aws_sdk_ec2::Client) -> aws_sdk_iam::Client {
    let region = ec2.config().region().map(|r| r.to_string());
    aws_sdk_iam::Client::new(&super::sdk_config(&super::Endpoint { url: None, region }).await)
}

fn iam_tags(map: &BTreeMap<String, String>) -> Vec<Tag> {
    map.iter().filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok()).collect()
}

/// Whether [`ensure`] changed anything: a profile just created or given its role is not usable
/// by EC2 for a few seconds (IAM is eventually consistent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ensured {
    /// It was there, tagged, holding the role.
    AsItWas,
    /// Created, or its role added or swapped just now.
    Changed,
}

/// Whether a profile made at `created` (by IAM's clock) or last changed by this process at
/// `changed` (its clock) is still settling into IAM at `now`: within [`SETTLE`] of either.
pub fn settling(created: Option<Duration>, changed: Option<Duration>, now: Duration) -> bool {
    [created, changed].into_iter().flatten().any(|at| now.saturating_sub(at) < SETTLE)
}

/// An AccessDenied from `call` on a profile still settling ([`settling`]): the IAM policy allows
/// AddRoleToInstanceProfile and TagInstanceProfile on the profile's tags (`aws:ResourceTag`),
/// which IAM may not show yet right after CreateInstanceProfile. A retryable `Api` error that
/// says so; anything else as [`iam_error`] types it.
fn settling_error<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    call: &str,
    profile: &str,
    err: SdkError<E, R>,
    settling: bool,
) -> CloudError {
    if settling && super::error_code(&err) == Some("AccessDenied") {
        return CloudError::Api(format!(
            "{call} {profile}: AccessDenied moments after the profile was created; the IAM policy allows it on the profile's tags, which IAM may not show yet: retried"
        ));
    }
    iam_error(call, err)
}

/// Makes capstan's profile for `class` exist under the cluster's path, tagged, holding `role`
/// and only it. Idempotent. A profile of that name outside the path is not capstan's: a
/// configuration error, nothing is changed. A profile created here is noted in `recent` at
/// once (at `now`), before its tags and role are set, so that a launch refused while it
/// settles is retried whatever fails next.
pub async fn ensure(
    iam: &aws_sdk_iam::Client,
    cluster: &str,
    class: &str,
    profile: &str,
    role: &str,
    recent: &super::recent::Recent,
    now: Duration,
) -> Result<Ensured, CloudError> {
    let wanted_tags = profile_tags(cluster, class);
    let mut changed = false;
    let found = match iam.get_instance_profile().instance_profile_name(profile).send().await {
        Ok(out) => out.instance_profile,
        Err(e) => match iam_error("GetInstanceProfile", e) {
            CloudError::NotFound(_) => None,
            other => return Err(other),
        },
    };
    let current = match found {
        Some(p) => p,
        None => {
            let created = iam
                .create_instance_profile()
                .instance_profile_name(profile)
                .path(path(cluster))
                .set_tags(Some(iam_tags(&wanted_tags)))
                .send()
                .await;
            changed = true;
            match created {
                Ok(out) => {
                    recent.profile_changed(profile, now);
                    out.instance_profile.ok_or_else(|| {
                        CloudError::Api(format!("CreateInstanceProfile {profile}: IAM answered no profile"))
                    })?
                }
                // Made by another replica in between: read it.
                Err(e) if super::error_code(&e) == Some("EntityAlreadyExists") => iam
                    .get_instance_profile()
                    .instance_profile_name(profile)
                    .send()
                    .await
                    .map_err(|e| iam_error("GetInstanceProfile", e))?
                    .instance_profile
                    .ok_or_else(|| CloudError::NotFound(format!("instance profile {profile}")))?,
                Err(e) => return Err(iam_error("CreateInstanceProfile", e)),
            }
        }
    };
    if current.path() != path(cluster) {
        return Err(CloudError::InvalidConfig(format!(
            "EC2NodeClass {class}: an instance profile named {profile} exists under {} and is not capstan's; delete or rename it, or set spec.instanceProfile",
            current.path()
        )));
    }
    let created = Duration::from_secs(current.create_date().secs().max(0) as u64);
    let young = settling(Some(created), recent.changed_at(profile), now);
    let have: BTreeMap<&str, &str> = current.tags().iter().map(|t| (t.key(), t.value())).collect();
    if wanted_tags.iter().any(|(k, v)| have.get(k.as_str()) != Some(&v.as_str())) {
        iam.tag_instance_profile()
            .instance_profile_name(profile)
            .set_tags(Some(iam_tags(&wanted_tags)))
            .send()
            .await
            .map_err(|e| settling_error("TagInstanceProfile", profile, e, young))?;
    }
    let mut holds = false;
    for r in current.roles() {
        if r.role_name() == role {
            holds = true;
            continue;
        }
        // A profile holds one role: the old one makes room for the new.
        remove_role(iam, profile, r.role_name()).await?;
    }
    if !holds {
        changed = true;
        match iam.add_role_to_instance_profile().instance_profile_name(profile).role_name(role).send().await {
            Ok(_) => {}
            Err(e) if super::error_code(&e) == Some("NoSuchEntity") => {
                return Err(CloudError::InvalidConfig(format!(
                    "EC2NodeClass {class}: IAM role {role} does not exist; create it (kOps: nodes.{cluster}) or fix spec.role"
                )));
            }
            Err(e) => return Err(settling_error("AddRoleToInstanceProfile", profile, e, young)),
        }
    }
    Ok(if changed { Ensured::Changed } else { Ensured::AsItWas })
}

async fn remove_role(iam: &aws_sdk_iam::Client, profile: &str, role: &str) -> Result<(), CloudError> {
    match iam.remove_role_from_instance_profile().instance_profile_name(profile).role_name(role).send().await {
        Ok(_) => Ok(()),
        Err(e) => match iam_error("RemoveRoleFromInstanceProfile", e) {
            CloudError::NotFound(_) => Ok(()),
            other => Err(other),
        },
    }
}

/// The profiles under the cluster's path.
pub async fn list(iam: &aws_sdk_iam::Client, cluster: &str) -> Result<Vec<Listed>, CloudError> {
    let pages: Vec<_> = iam
        .list_instance_profiles()
        .path_prefix(path(cluster))
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| iam_error("ListInstanceProfiles", e))?;
    Ok(pages
        .iter()
        .flat_map(|p| p.instance_profiles())
        .map(|p| Listed {
            name: p.instance_profile_name().to_string(),
            path: p.path().to_string(),
            created: Duration::from_secs(p.create_date().secs().max(0) as u64),
        })
        .collect())
}

/// Deletes one of the cluster's profiles after checking again that it is capstan's (path and
/// tags): its role is removed first. `false` when it was not capstan's or already gone.
pub async fn delete(iam: &aws_sdk_iam::Client, cluster: &str, profile: &str) -> Result<bool, CloudError> {
    let current = match iam.get_instance_profile().instance_profile_name(profile).send().await {
        Ok(out) => out.instance_profile,
        Err(e) => match iam_error("GetInstanceProfile", e) {
            CloudError::NotFound(_) => None,
            other => return Err(other),
        },
    };
    let Some(current) = current else { return Ok(false) };
    let owned = current.tags().iter().any(|t| t.key() == tags::cluster(cluster) && t.value() == "owned");
    let marked = current.tags().iter().any(|t| t.key() == CLASS_TAG);
    if current.path() != path(cluster) || !owned || !marked {
        return Ok(false);
    }
    for r in current.roles() {
        remove_role(iam, profile, r.role_name()).await?;
    }
    match iam.delete_instance_profile().instance_profile_name(profile).send().await {
        Ok(_) => Ok(true),
        Err(e) => match iam_error("DeleteInstanceProfile", e) {
            CloudError::NotFound(_) => Ok(false),
            other => Err(other),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(name: &str) -> bool {
        (1..=128).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
    }

    #[test]
    fn a_name_is_stable_valid_and_changes_with_the_role_class_or_cluster() {
        let n = name("dev.example.com", "nodes", "nodes.dev.example.com");
        assert_eq!(n, name("dev.example.com", "nodes", "arn:aws:iam::111122223333:role/nodes.dev.example.com"));
        assert!(n.starts_with("capstan_dev.example.com_nodes_") && valid(&n), "{n}");
        assert_ne!(n, name("dev.example.com", "nodes", "other"));
        assert_ne!(n, name("dev.example.com", "gpu", "nodes.dev.example.com"));
        assert_ne!(n, name("prod.example.com", "nodes", "nodes.dev.example.com"));
        let long = name(&"c".repeat(200), &"k".repeat(200), "r");
        assert!(valid(&long) && long.len() == 128, "{long}");
        assert_ne!(long, name(&"c".repeat(200), &"k".repeat(199), "r"), "the hash keeps long names apart");
    }

    #[test]
    fn a_profile_settles_for_a_while_after_iam_made_it_or_capstan_changed_it() {
        let s = |secs| Some(Duration::from_secs(secs));
        let now = Duration::from_secs(1000);
        assert!(settling(s(990), None, now), "created moments ago by IAM's clock");
        assert!(settling(None, s(990), now), "changed moments ago by this process");
        assert!(settling(s(0), s(1000 - SETTLE.as_secs() + 1), now));
        assert!(!settling(s(0), s(1000 - SETTLE.as_secs()), now), "settled");
        assert!(!settling(None, None, now));
    }

    #[test]
    fn the_path_is_a_valid_iam_path_per_cluster() {
        assert_eq!(path("dev.example.com"), "/capstan/dev.example.com/");
        assert_eq!(role_name("arn:aws:iam::1:role/team/nodes"), "nodes");
        assert_eq!(role_name("nodes"), "nodes");
    }

    #[test]
    fn only_old_profiles_under_the_path_that_nothing_wants_or_uses_are_unused() {
        let at = |name: &str, path: &str, created: u64| Listed {
            name: name.into(),
            path: path.into(),
            created: Duration::from_secs(created),
        };
        let ours = path("c");
        let listed = [
            at("wanted", &ours, 0),
            at("used", &ours, 0),
            at("idle", &ours, 0),
            at("young", &ours, 990),
            at("deeper", "/capstan/c/x/", 0),
        ];
        let wanted = BTreeSet::from(["wanted".to_string()]);
        let used = BTreeSet::from(["used".to_string()]);
        let gone = unused("c", &listed, &wanted, &used, Duration::from_secs(1000), Duration::from_secs(600));
        assert_eq!(gone, ["idle"]);
    }

    #[test]
    fn a_given_profile_is_used_as_is_and_a_role_gets_capstans() {
        let mut class = EC2NodeClass {
            api_version: "karpenter.k8s.aws/v1".into(),
            kind: "EC2NodeClass".into(),
            metadata: Default::default(),
            spec: Default::default(),
            status: None,
        };
        class.metadata.name = "nodes".into();
        assert!(matches!(source("c", &class), Err(CloudError::InvalidConfig(_))));
        class.spec.role = Some("arn:aws:iam::1:role/r".into());
        let s = source("c", &class).unwrap();
        assert_eq!(s, Source::Role { profile: name("c", "nodes", "r"), role: "r".into() });
        assert_eq!(wanted("c", [&class]), BTreeSet::from([name("c", "nodes", "r")]));
        class.spec.instance_profile = Some("given".into());
        assert_eq!(source("c", &class).unwrap().profile(), "given");
        assert!(wanted("c", [&class]).is_empty());
    }
}
