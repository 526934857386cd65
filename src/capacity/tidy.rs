//! Cleaning up after the cloud provider: launch templates and instance profiles capstan made for
//! this cluster and no longer uses are deleted every [`TIDY_EVERY`], each deletion recorded as a
//! decision. A failure is logged and tried again at the next round; it never fails the pass.

use std::time::Duration;

use serde_json::json;

use super::CapacityLoop;
use crate::cloud::provider::CloudProvider;
use crate::cluster::ClusterApi;

/// Time between clean-ups (the first is on the first pass).
pub const TIDY_EVERY: Duration = Duration::from_secs(3600);

impl<C: CloudProvider, K: ClusterApi> CapacityLoop<C, K> {
    pub(super) async fn tidy(&mut self, now: Duration) {
        if now < self.next_tidy {
            return;
        }
        self.next_tidy = now + TIDY_EVERY;
        let tidied = match self.cloud.tidy().await {
            Ok(t) => t,
            Err(e) => return tracing::warn!(error = %e, "cleaning up unused launch templates and instance profiles"),
        };
        let kinds = [("LaunchTemplate", &tidied.launch_templates), ("InstanceProfile", &tidied.instance_profiles)];
        for (kind, names) in kinds {
            for name in names {
                let object = format!("{kind}/{name}");
                let d = self.decision(now, "delete", "unused", &object, json!({"kind": kind, "name": name}));
                self.decide(d);
                self.emit(
                    now,
                    "tidy",
                    format!("deleted {kind} {name}: capstan made it for this cluster and nothing uses it any more"),
                    json!({"kind": kind, "name": name}),
                );
            }
        }
    }
}
