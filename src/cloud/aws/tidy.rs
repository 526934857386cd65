//! Clean-up of what capstan made for this cluster on EC2 and IAM and no longer uses:
//! the EC2 provider's `tidy`.
//!
//! ```text
//! DescribeInstances (cluster-owned, live) ─► templates and profiles in use
//! DescribeLaunchTemplates (cluster tag + class tag) ─► unused_templates ─► DeleteLaunchTemplate (by id)
//! ListInstanceProfiles (/capstan/<cluster>/) ─► profile::unused ─► remove role, DeleteInstanceProfile
//! ```
//!
//! Only what carries this cluster's ownership tag and capstan's class tag, under capstan's name
//! prefix or IAM path, is ever deleted; everything is checked again on the answer before it goes.
//! Anything made less than [`GRACE`] ago (by EC2's clock), or ensured by this process within it,
//! stays: a launch may be on its way with it. A template deleted and wanted again later is simply
//! created again by the next launch.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_ec2::types::Filter;

use super::super::CloudError;
use super::super::provider::{Tidied, tags};
use super::profile::{self, CLASS_TAG};
pub use super::recent::{GRACE, Recent};
use super::template::{self, INSTANCE_PROFILE_TAG, INSTANCE_TEMPLATE_TAG};
use super::{classify, error_code};

/// The tag EC2 itself puts on an instance launched from a template.
const EC2_TEMPLATE_ID_TAG: &str = "aws:ec2launchtemplate:id";

/// A launch template as EC2 lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedTemplate {
    /// `lt-…`.
    pub id: String,
    /// Its name.
    pub name: String,
    /// When EC2 created it (time since the epoch).
    pub created: Duration,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
}

/// What live instances of the cluster were launched with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InUse {
    /// Launch-template names and ids.
    pub templates: BTreeSet<String>,
    /// Instance-profile names.
    pub profiles: BTreeSet<String>,
}

/// The templates to delete: capstan's for this cluster (its ownership tag, the class tag and the
/// name prefix, all three), used by no live instance, not ensured recently and older than
/// [`GRACE`].
pub fn unused_templates<'a>(
    cluster: &str,
    listed: &'a [ListedTemplate],
    in_use: &BTreeSet<String>,
    recent: &BTreeSet<String>,
    now: Duration,
) -> Vec<&'a ListedTemplate> {
    let owned = tags::cluster(cluster);
    listed
        .iter()
        .filter(|t| t.tags.get(&owned).is_some_and(|v| v == "owned") && t.tags.contains_key(CLASS_TAG))
        .filter(|t| t.name.starts_with(&template::prefix(cluster)))
        .filter(|t| !in_use.contains(&t.name) && !in_use.contains(&t.id) && !recent.contains(&t.name))
        .filter(|t| now.saturating_sub(t.created) >= GRACE)
        .collect()
}

/// What clean-up works with.
pub struct Scope<'a> {
    pub ec2: &'a aws_sdk_ec2::Client,
    /// IAM, when profiles are cleaned up too (see the provider's `tidy`).
    pub iam: Option<&'a aws_sdk_iam::Client>,
    /// The kOps cluster name.
    pub cluster: &'a str,
    /// The instance profiles the current EC2NodeClasses want.
    pub wanted: &'a BTreeSet<String>,
    /// What this process prepared for launches lately: kept.
    pub recent: &'a Recent,
    /// The provider's clock, now.
    pub now: Duration,
}

/// Deletes the cluster's unused launch templates, then its unused instance profiles. A
/// failure on the profiles is logged and leaves the templates' result standing.
pub async fn run(s: &Scope<'_>) -> Result<Tidied, CloudError> {
    let now = s.now;
    let in_use = in_use(s).await?;
    let mut tidied = Tidied::default();
    let listed = cluster_templates(s).await?;
    let recent = s.recent.templates_within(now);
    for t in unused_templates(s.cluster, &listed, &in_use.templates, &recent, now) {
        match s.ec2.delete_launch_template().launch_template_id(&t.id).send().await {
            Ok(_) => tidied.launch_templates.push(t.name.clone()),
            Err(e) if error_code(&e).is_some_and(|c| c.contains("NotFound")) => {}
            Err(e) => return Err(classify("DeleteLaunchTemplate", e)),
        }
    }
    if let Some(iam) = s.iam {
        match tidy_profiles(s, iam, &in_use).await {
            Ok(deleted) => tidied.instance_profiles = deleted,
            Err(e) => tracing::warn!(error = %e, "cleaning up unused instance profiles"),
        }
    }
    Ok(tidied)
}

async fn tidy_profiles(s: &Scope<'_>, iam: &aws_sdk_iam::Client, in_use: &InUse) -> Result<Vec<String>, CloudError> {
    let listed = profile::list(iam, s.cluster).await?;
    let mut kept = in_use.profiles.clone();
    kept.extend(s.recent.profiles_within(s.now));
    let mut deleted = Vec::new();
    for name in profile::unused(s.cluster, &listed, s.wanted, &kept, s.now, GRACE) {
        if profile::delete(iam, s.cluster, &name).await? {
            deleted.push(name);
        }
    }
    Ok(deleted)
}

/// The templates and profiles the cluster's live instances were launched with (all of the
/// cluster's, kOps's too: a profile or template is never taken from under an instance).
async fn in_use(s: &Scope<'_>) -> Result<InUse, CloudError> {
    let owned = Filter::builder().name(format!("tag:{}", tags::cluster(s.cluster))).values("owned").build();
    let live = Filter::builder()
        .name("instance-state-name")
        .set_values(Some(["pending", "running", "stopping", "stopped", "shutting-down"].map(String::from).to_vec()))
        .build();
    let pages: Vec<_> = s
        .ec2
        .describe_instances()
        .filters(owned)
        .filters(live)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| classify("DescribeInstances", e))?;
    let mut used = InUse::default();
    for i in pages.iter().flat_map(|p| p.reservations()).flat_map(|r| r.instances()) {
        for t in i.tags() {
            let value = t.value().unwrap_or_default().to_string();
            match t.key() {
                Some(INSTANCE_TEMPLATE_TAG | EC2_TEMPLATE_ID_TAG) => used.templates.insert(value),
                Some(INSTANCE_PROFILE_TAG) => used.profiles.insert(value),
                _ => false,
            };
        }
        if let Some(arn) = i.iam_instance_profile().and_then(|p| p.arn()) {
            used.profiles.insert(profile::role_name(arn).to_string());
        }
    }
    Ok(used)
}

/// The launch templates tagged as this cluster's and carrying capstan's class tag.
async fn cluster_templates(s: &Scope<'_>) -> Result<Vec<ListedTemplate>, CloudError> {
    let owned = Filter::builder().name(format!("tag:{}", tags::cluster(s.cluster))).values("owned").build();
    let marked = Filter::builder().name("tag-key").values(CLASS_TAG).build();
    let pages: Vec<_> = s
        .ec2
        .describe_launch_templates()
        .filters(owned)
        .filters(marked)
        .max_results(200)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| classify("DescribeLaunchTemplates", e))?;
    Ok(pages
        .iter()
        .flat_map(|p| p.launch_templates())
        .map(|t| ListedTemplate {
            id: t.launch_template_id().unwrap_or_default().to_string(),
            name: t.launch_template_name().unwrap_or_default().to_string(),
            created: Duration::from_secs(t.create_time().map_or(0, |c| c.secs().max(0) as u64)),
            tags: t
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
                .collect(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lt(id: &str, name: &str, created: u64, tags: &[(&str, &str)]) -> ListedTemplate {
        ListedTemplate {
            id: id.into(),
            name: name.into(),
            created: Duration::from_secs(created),
            tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn only_old_unused_capstan_templates_of_this_cluster_are_deleted() {
        let ours = [("kubernetes.io/cluster/c.io", "owned"), (CLASS_TAG, "nodes")];
        let listed = [
            lt("lt-1", "capstan-c-io-1", 0, &ours),
            lt("lt-2", "capstan-c-io-2", 0, &ours),
            lt("lt-3", "capstan-c-io-3", 0, &ours),
            lt("lt-4", "capstan-c-io-4", 0, &ours),
            lt("lt-5", "capstan-c-io-5", 3000, &ours),
            lt("lt-6", "capstan-c-io-6", 0, &ours[..1]),
            lt("lt-7", "capstan-d-io-7", 0, &ours),
            lt("lt-8", "capstan-c-io-8", 0, &[("kubernetes.io/cluster/c.io", "shared"), (CLASS_TAG, "nodes")]),
            lt("lt-9", "someone-else", 0, &ours),
        ];
        let in_use = BTreeSet::from(["capstan-c-io-2".to_string(), "lt-3".to_string()]);
        let recent = BTreeSet::from(["capstan-c-io-4".to_string()]);
        let gone: Vec<&str> = unused_templates("c.io", &listed, &in_use, &recent, Duration::from_secs(3600))
            .iter()
            .map(|t| t.id.as_str())
            .collect();
        assert_eq!(gone, ["lt-1"], "used by name or id, recent, young, unmarked, another cluster's or not ours: kept");
    }
}
