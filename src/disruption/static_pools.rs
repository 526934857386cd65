//! Drift and expiry in static NodePools: each stale node is replaced one for one, the new node
//! launched from the pool's template and initialized before the old one is drained, as
//! Karpenter's static drift does. Consolidation and emptiness never take these nodes.
//!
//! A replacement is made only while no scale-down is under way (more active nodes than
//! `replicas`), within the pool's disruption budget, and when `limits.nodes` leaves room for
//! one more node (the nodes already leaving counted). Without that room a drifted node waits;
//! an expired one is removed first and the pool refilled once it is gone, as Karpenter's
//! expiry deletes the node and its static provisioning launches another when the limit allows.

use std::collections::HashMap;

use crate::provisioning::static_pools::{Member, claim, members, named, next_number, room};
use crate::rules::Reason;

use super::candidate::{Candidate, stale};
use super::{Budgets, Command, Plan, Request, command};

/// The first stale node of a static pool that can be replaced now; the others are kept with
/// the reason.
pub(super) fn replace(req: &Request, fixed: &[Candidate], budgets: &mut Budgets, out: &mut Plan) -> Option<Command> {
    let mut pools: HashMap<usize, Vec<Member>> = HashMap::new();
    for (c, reason, why) in stale(req, fixed) {
        let keep =
            |out: &mut Plan, text: String| out.kept.push((c.node.name.clone(), format!("{}: {text}", reason.label())));
        if let Some(b) = &c.blocked {
            keep(out, b.clone());
            continue;
        }
        let spec = &req.rules().pools[c.pool];
        let replicas = req.rules().pool_rules[c.pool].replicas.unwrap_or_default();
        let members = pools.entry(c.pool).or_insert_with(|| members(req.snapshot(), req.instances(), &spec.name));
        let active = members.iter().filter(|m| !m.leaving()).count() as u64;
        if active > replicas {
            keep(out, format!("static NodePool {} is scaling down to {replicas}", spec.name));
            continue;
        }
        let fits = room(&spec.limits, members.len()) > 0;
        if !fits && reason != Reason::Expired {
            keep(out, format!("limits.nodes of static NodePool {} leaves no room for a replacement", spec.name));
            continue;
        }
        if !budgets.take(req, c.pool, reason) {
            keep(out, format!("disruption budget of NodePool {} is used up", spec.name));
            continue;
        }
        if !fits {
            let why = format!("{why}; limits.nodes leaves no room, so it goes first and the pool is refilled after");
            return Some(command(req, reason, &[c], Vec::new(), why));
        }
        match claim(&req.view, spec, Vec::new()) {
            Ok(new) => {
                let mut cmd = command(req, reason, &[c], Vec::new(), format!("{why}; replaced one for one"));
                let name = format!("{}-replace-{}", spec.name, next_number(req.instances(), &spec.name, "replace"));
                cmd.replacements.push(named(new, req.rules(), name));
                cmd.savings -= cmd.replacements[0].plan.price;
                return Some(cmd);
            }
            Err(e) => keep(out, format!("no replacement for static NodePool {}: {e}", spec.name)),
        }
    }
    None
}
