//! The policy model: every document a config repository holds, loading with overlays, the kOps
//! InstanceGroup translation, validation and guardrails. Pure: it reads a [`Snapshot`] and
//! returns values; nothing here touches the network or the clock.
//!
//! ```text
//! Snapshot ─load─► Repo ─effective(cluster)─► EffectivePolicy ─checks+guardrails─► Diagnostics
//!                                                    └─render─► YAML
//! ```

pub mod bounds;
mod bounds_rules;
pub mod buffer_checks;
pub mod capacitybuffer;
pub mod capstan;
pub mod checks;
pub mod commitment;
mod crd_nodeclass;
mod crd_patterns;
pub mod diag;
pub mod document;
pub mod duration;
pub mod effective;
pub mod guardrail_waivers;
pub mod guardrails;
pub mod hint;
pub mod kops;
pub mod labels;
pub mod load;
pub mod meta;
pub mod names;
pub mod nodeclass;
pub mod nodeoverlay;
pub mod nodepool;
pub mod overlap;
pub mod pricing_checks;
pub mod quantity;
pub mod render;
mod reporter;
pub mod reservation_terms;
pub mod schema;
pub mod snapshot;
pub mod translate;
pub mod yaml;

pub use diag::{Diagnostic, Diagnostics, Severity};
pub use effective::EffectivePolicy;
pub use snapshot::Snapshot;

/// The outcome of validating a repository: findings, and each cluster's effective policy.
#[derive(Debug)]
pub struct Validation {
    pub diagnostics: Diagnostics,
    pub policies: Vec<EffectivePolicy>,
    /// The guardrails in force: the built-in ones tightened by the repository's.
    pub guardrails: capstan::GuardrailsSpec,
    /// The guardrails loosened on record: the repository's relaxations and the objects'
    /// exceptions in force.
    pub waivers: Vec<guardrail_waivers::Waiver>,
}

/// Why a validation could not start.
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error("cluster `{cluster}` is not listed in fleet.yaml (known clusters: {known})")]
    UnknownCluster { cluster: String, known: String },
}

/// Loads and checks the repository for one cluster, or for every cluster of the fleet.
pub fn validate(snapshot: &Snapshot, cluster: Option<&str>) -> Result<Validation, ValidateError> {
    let mut repo = load::load(snapshot);
    pricing_checks::commitments(&mut repo);
    let mut diagnostics = repo.diagnostics.clone();
    let listed: Vec<String> =
        repo.fleet.as_ref().map(|(f, _)| f.spec.clusters.iter().map(|c| c.name.clone()).collect()).unwrap_or_default();
    let clusters = match cluster {
        Some(c) if listed.iter().any(|l| l == c) => vec![c.to_string()],
        Some(c) if repo.fleet.is_some() => {
            return Err(ValidateError::UnknownCluster { cluster: c.to_string(), known: listed.join(", ") });
        }
        Some(c) => vec![c.to_string()],
        // Without a usable fleet, still check the base documents and every cluster folder.
        None if listed.is_empty() => {
            let mut all: Vec<String> = repo.clusters.keys().cloned().collect();
            if all.is_empty() {
                all.push(String::new());
            }
            all
        }
        None => listed,
    };
    diagnostics.extend(load::unreadable(snapshot, cluster));
    let (rules, mut waivers) = guardrails::tighten(guardrails::builtin(), repo.guardrails.as_ref(), &mut diagnostics);
    let mut policies = Vec::new();
    for c in clusters {
        let (policy, found) = effective::effective(&repo, &c);
        diagnostics.extend(found);
        checks::check(&policy, &mut diagnostics);
        buffer_checks::check(&policy, &mut diagnostics);
        let excepted = guardrails::check(&rules, &policy, &mut diagnostics);
        guardrail_waivers::gather(&mut waivers, excepted);
        policies.push(policy);
    }
    Ok(Validation { diagnostics, policies, guardrails: rules, waivers })
}
