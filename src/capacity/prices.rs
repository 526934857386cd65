//! What capacity costs this cluster: the published catalog priced with the policy's
//! NodeOverlays and its share of the fleet's commitments ([`crate::scheduling::overlay`]), the
//! running instances at what each costs, and a plan's new claims settled one after another
//! against what the commitments still cover.

use std::sync::Arc;

use super::CapacityLoop;
use crate::cloud::provider::{CloudProvider, Instance, InstanceState};
use crate::cluster::ClusterApi;
use crate::provisioning::{self, Provision};
use crate::scheduling::catalog::Catalog;
use crate::scheduling::overlay::{Usage, priced, settle};
use crate::scheduling::plan::Plan;

fn live(i: &Instance) -> bool {
    matches!(i.state, InstanceState::Pending | InstanceState::Running)
}

impl<C: CloudProvider, K: ClusterApi> CapacityLoop<C, K> {
    /// `catalog` at the prices this cluster pays for one more instance: its NodeOverlays and its
    /// share of the fleet's commitments, less what its instances of the last listing use.
    pub(super) fn priced(&self, catalog: Arc<Catalog>) -> Arc<Catalog> {
        if self.rules.pricing.is_empty() {
            return catalog;
        }
        let running = self.listed.iter().flat_map(|l| &l.instances).filter(|i| live(i));
        let usage = Usage::count(running.map(|i| (i.instance_type.as_str(), i.capacity_type)));
        Arc::new(priced(&catalog, &self.rules.pricing, &usage))
    }

    /// `instances` at what each costs the cluster (the oldest use the commitments first), so
    /// disruption weighs a covered node at its covered rate.
    pub(super) fn at_effective_prices(&self, mut instances: Vec<Instance>) -> Vec<Instance> {
        let Some(published) = self.published_catalog().filter(|_| !self.rules.pricing.is_empty()) else {
            return instances;
        };
        let mut order: Vec<usize> = (0..instances.len()).filter(|&k| live(&instances[k])).collect();
        order.sort_by(|&a, &b| {
            (instances[a].launched_at, &instances[a].id).cmp(&(instances[b].launched_at, &instances[b].id))
        });
        let running = order
            .iter()
            .map(|&k| (instances[k].instance_type.as_str(), instances[k].zone.as_str(), instances[k].capacity_type));
        let prices = crate::scheduling::overlay::running_prices(&published, &self.rules.pricing, running);
        for (k, price) in order.into_iter().zip(prices) {
            if let Some(price) = price {
                instances[k].price = price;
            }
        }
        instances
    }
    /// A decision's new claims settled in order against the commitments: a batch needing more
    /// nodes than the cluster's share still covers pays the on-demand price for the rest, and
    /// each claim takes the option that is cheapest once the claims before it are counted.
    /// Claims are named again for the option they settle on.
    pub(super) fn settle(&self, decided: &mut Provision, instances: &[Instance]) {
        let Some(published) = self.published_catalog().filter(|_| !self.rules.pricing.is_empty()) else { return };
        let usage =
            Usage::count(instances.iter().filter(|i| live(i)).map(|i| (i.instance_type.as_str(), i.capacity_type)));
        let mut plan = Plan { claims: decided.launches.drain(..).map(|l| l.plan).collect(), ..Plan::default() };
        settle(&mut plan, &published, &self.rules.pricing, &usage);
        decided.launches = plan.claims.into_iter().map(|c| provisioning::launch(c, &self.rules)).collect();
    }
}
