//! The hand-off to the cloud layer: a translated EC2NodeClass boots its nodes with the nodeup
//! script kOps keeps for the InstanceGroup (`<cluster>/igconfig/node/<ig>/nodeupscript.sh`).

use super::store::StateStore;
use super::store::StoreError;
use crate::policy::EffectivePolicy;
use crate::policy::translate::USER_DATA_SOURCE;

/// Fills `userData` of every EC2NodeClass whose annotation names a state-store object.
/// Returns one line per class left without it, saying what to do.
pub async fn resolve_user_data<S: StateStore>(
    store: &S,
    policy: &mut EffectivePolicy,
) -> Result<Vec<String>, StoreError> {
    let mut missing = Vec::new();
    for class in &mut policy.node_classes {
        let meta = &class.value.metadata;
        let Some(key) = meta.annotations.get(USER_DATA_SOURCE).and_then(|s| s.strip_prefix("state-store:")) else {
            continue;
        };
        match store.get(key).await? {
            Some(o) => match String::from_utf8(o.bytes) {
                Ok(script) => class.value.spec.user_data = Some(script),
                Err(_) => missing.push(format!("EC2NodeClass/{}: {key} is not UTF-8 text", meta.name)),
            },
            None => missing.push(format!(
                "EC2NodeClass/{}: no nodeup script at {key}; run `kops update cluster --yes` so that kOps writes it",
                meta.name
            )),
        }
        policy.notes.retain(|n| !n.contains(key));
    }
    Ok(missing)
}
