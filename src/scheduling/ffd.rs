//! Karpenter's packing, kept as a baseline: pods largest first, each onto the first NodeClaim
//! (in creation order) that can still hold it with some instance type, else onto a new claim of
//! the highest-weight NodePool that can take it; each claim is finally launched as the cheapest
//! instance type that holds everything it was given.

use std::sync::Arc;

use super::catalog::{CAPACITY_TYPE, CapacityType, INSTANCE_TYPE, ZONE};
use super::groups::{ExclCounts, Group};
use super::plan::{LaunchOption, NewClaim, Unschedulable, diverse_options};
use super::requirements::{Requirements, ValueSet};
use super::resources::Resources;
use super::solve::Ctx;
use super::view::GroupFit;

struct Claim {
    pi: usize,
    reqs: Requirements,
    /// Pool types that can still hold every pod given.
    options: Vec<usize>,
    requests: Resources,
    excl: ExclCounts,
    pods: Vec<usize>,
    /// Capacity reserved against limits (the cheapest option's).
    reserved: Resources,
}

pub fn pack(ctx: &mut Ctx, groups: &mut [Group], level: usize) {
    let input = ctx.input;
    let mut claims: Vec<Claim> = Vec::new();
    for (gi, g) in groups.iter_mut().enumerate() {
        if g.pods.is_empty() || level >= g.levels.len() {
            continue;
        }
        let fits: Vec<Option<GroupFit>> = (0..input.pools.len())
            .map(|pi| {
                ctx.fits.get((gi, level, pi), g, &input.pools[pi], &ctx.views[pi], input.catalog, &ctx.zones).cloned()
            })
            .collect();
        let mut start = 0usize;
        let mut placed = 0usize;
        for &p in &g.pods {
            let mut done = false;
            for (ci, claim) in claims.iter_mut().enumerate().skip(start) {
                if try_add(ctx, claim, g, fits[claim.pi].as_ref(), p) {
                    start = ci;
                    done = true;
                    break;
                }
            }
            if !done {
                match open(ctx, g, gi, &fits, p) {
                    Some(c) => {
                        claims.push(c);
                        start = claims.len() - 1;
                    }
                    None => break,
                }
            }
            placed += 1;
        }
        g.pods.drain(..placed);
    }
    for c in claims {
        finish(ctx, c);
    }
}

/// Options of `claim` still able to hold `requests` under `reqs`.
fn narrow(
    ctx: &Ctx,
    pi: usize,
    options: &[usize],
    fit: &GroupFit,
    requests: &Resources,
    reqs: &Requirements,
) -> Vec<usize> {
    let view = &ctx.views[pi];
    let class = ctx.input.pools[pi].node_class.as_str();
    options
        .iter()
        .copied()
        .filter(|&pt| fit.any_type(pt) && requests.fits(&view.types[pt].alloc))
        .filter(|&pt| ctx.catalog().types[view.types[pt].t].offerings_for(reqs, class).next().is_some())
        .collect()
}

fn try_add(ctx: &mut Ctx, claim: &mut Claim, g: &Group, fit: Option<&GroupFit>, p: usize) -> bool {
    let Some(fit) = fit else { return false };
    if claim.excl.room(&g.roles) == 0 {
        return false;
    }
    let Some(alt) = fit.alts.iter().find(|a| claim.reqs.conflict(&a.reqs).is_none()) else { return false };
    let requests = &claim.requests + &g.requests;
    let reqs = claim.reqs.intersect(&alt.reqs);
    let options = narrow(ctx, claim.pi, &claim.options, fit, &requests, &reqs);
    if options.is_empty() {
        return false;
    }
    // The claim will launch as its cheapest option; keep the limit reservation in step.
    let Some((pt, _)) = cheapest(ctx, claim.pi, &options, &reqs) else { return false };
    let reserved = ctx.views[claim.pi].types[pt].capacity.clone();
    let delta = &reserved - &claim.reserved;
    if !ctx.delta_room(claim.pi, &delta) {
        return false;
    }
    ctx.pool_usage[claim.pi].resources += &delta;
    ctx.cluster_usage.resources += &delta;
    claim.reserved = reserved;
    claim.options = options;
    claim.requests = requests;
    claim.reqs = reqs;
    claim.excl.add(&g.roles, 1);
    claim.pods.push(p);
    true
}

fn open(ctx: &mut Ctx, g: &Group, gi: usize, fits: &[Option<GroupFit>], p: usize) -> Option<Claim> {
    for (pi, fit) in fits.iter().enumerate() {
        let Some(fit) = fit else { continue };
        for alt in &fit.alts {
            let all: Vec<usize> = (0..ctx.views[pi].types.len()).collect();
            let mut options = narrow(ctx, pi, &all, fit, &g.requests, &alt.reqs);
            let mut reason = None;
            options.retain(|&pt| match ctx.limit_room(pi, &ctx.views[pi].types[pt].capacity) {
                Ok(()) => true,
                Err(r) => {
                    reason = Some(r);
                    false
                }
            });
            if let Some(r) = reason.filter(|_| options.is_empty()) {
                ctx.note(gi, r);
            }
            let Some(cheapest) = cheapest(ctx, pi, &options, &alt.reqs) else { continue };
            let reserved = ctx.views[pi].types[cheapest.0].capacity.clone();
            ctx.use_capacity(pi, &reserved);
            let mut excl = ExclCounts::new(ctx.keys.len());
            excl.add(&g.roles, 1);
            return Some(Claim {
                pi,
                reqs: alt.reqs.clone(),
                options,
                requests: g.requests.clone(),
                excl,
                pods: vec![p],
                reserved,
            });
        }
    }
    None
}

/// The cheapest (pool type, offering) among `options` under `reqs`.
fn cheapest(ctx: &Ctx, pi: usize, options: &[usize], reqs: &Requirements) -> Option<(usize, LaunchOption)> {
    let catalog = ctx.catalog();
    let class = ctx.input.pools[pi].node_class.as_str();
    options
        .iter()
        .filter_map(|&pt| {
            let t = &catalog.types[ctx.views[pi].types[pt].t];
            // Reserved offerings count only while their reservations have room.
            let allowed = t.offerings_for(reqs, class).filter(|o| ctx.reserved.allows(class, t, o));
            allowed.min_by(|a, b| a.price.total_cmp(&b.price)).map(|o| {
                (
                    pt,
                    LaunchOption {
                        instance_type: t.name.clone(),
                        zone: o.zone.clone(),
                        capacity_type: o.capacity_type,
                        price: o.price,
                    },
                )
            })
        })
        .min_by(|a, b| a.1.price.total_cmp(&b.1.price))
}

fn finish(ctx: &mut Ctx, c: Claim) {
    let Some((pt, chosen)) = cheapest(ctx, c.pi, &c.options, &c.reqs) else { return };
    let view = &ctx.views[c.pi];
    let t = &view.types[pt];
    let catalog = ctx.catalog();
    let class = ctx.input.pools[c.pi].node_class.as_str();
    let mut options: Vec<LaunchOption> = c
        .options
        .iter()
        .flat_map(|&o| {
            let it = &catalog.types[view.types[o].t];
            it.offerings_for(&c.reqs, class)
                .filter(|off| ctx.reserved.allows(class, it, off))
                .map(|off| LaunchOption {
                    instance_type: it.name.clone(),
                    zone: off.zone.clone(),
                    capacity_type: off.capacity_type,
                    price: off.price,
                })
                .collect::<Vec<_>>()
        })
        .collect();
    options.sort_by(|a, b| a.price.total_cmp(&b.price));
    if let Some(i) = options.iter().position(|o| *o == chosen) {
        let c = options.remove(i);
        options.insert(0, c);
    }
    let options = match diverse_options(options, &c.reqs, catalog) {
        Ok(o) => o,
        Err(reason) => {
            let pool = &ctx.input.pools[c.pi].name;
            for &p in &c.pods {
                ctx.plan.unschedulable.push(Unschedulable {
                    pod: ctx.input.pods[p].name.clone(),
                    reason: format!("NodePool {pool}: {reason}"),
                });
            }
            return;
        }
    };
    if chosen.capacity_type == CapacityType::Reserved {
        ctx.reserved.take(&ctx.input.pools[c.pi].node_class, &chosen.instance_type, &chosen.zone, 1);
    }
    let mut reqs = c.reqs.clone();
    reqs.add(INSTANCE_TYPE, ValueSet::of(false, options.iter().map(|o| o.instance_type.as_str())));
    reqs.add(ZONE, ValueSet::of(false, options.iter().map(|o| o.zone.as_str())));
    reqs.add(CAPACITY_TYPE, ValueSet::of(false, options.iter().map(|o| o.capacity_type.label())));
    let pool = &ctx.input.pools[c.pi];
    let seq = ctx.plan.claims.len();
    let pods = c.pods.iter().map(|&p| ctx.input.pods[p].name.clone()).collect();
    ctx.plan.claims.push(NewClaim {
        name: format!("{}-{seq:05}", pool.name),
        node_pool: pool.name.clone(),
        instance_type: chosen.instance_type.clone(),
        zone: chosen.zone.clone(),
        capacity_type: chosen.capacity_type,
        price: chosen.price,
        options: Arc::new(options),
        requirements: reqs,
        pods,
        requests: &c.requests + &t.overhead,
        allocatable: &t.alloc + &t.overhead,
    });
}
