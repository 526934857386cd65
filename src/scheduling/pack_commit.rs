//! Emitting a chosen fill as NodeClaims: repeated while the same pods remain and limits allow,
//! each with up to 60 launch options that can hold its pods.

use std::sync::Arc;

use super::catalog::{CAPACITY_TYPE, CapacityType, INSTANCE_TYPE, ZONE};
use super::pack::{Fill, Offer, State};
use super::plan::{LaunchOption, MAX_OPTIONS, NewClaim, diverse_options};
use super::requirements::{Requirements, ValueSet};
use super::solve::Ctx;

/// Emits the fill as claims, as many times as the same pods remain and limits allow, at most
/// `most`. Returns the pods placed and the pool type launched.
pub(super) fn commit(ctx: &mut Ctx, st: &mut State, f: &Fill, most: u32) -> (u64, usize) {
    let cheaper = cheapest_holding(ctx, st, f);
    let f = cheaper.as_ref().unwrap_or(f);
    let colocate = f.takes.iter().any(|(gi, _)| st.groups[*gi].colocate);
    let mut repeats =
        if colocate { 1 } else { f.takes.iter().map(|(gi, n)| st.rem[*gi] / n).min().unwrap_or(1).max(1).min(most) };
    let reserved_in = (f.at.cap == CapacityType::Reserved).then(|| {
        (ctx.catalog().types[ctx.views[f.at.pi].types[f.at.pt].t].name.as_str(), ctx.zones[f.at.zone].clone())
    });
    let class = ctx.input.pools[f.at.pi].node_class.as_str();
    if let Some((name, zone)) = &reserved_in {
        repeats = repeats.min(ctx.reserved.left(class, name, zone));
    }
    let (options, requirements) = match launch_options(ctx, st, f) {
        Ok(o) => o,
        Err(reason) => {
            ctx.note(f.takes[0].0, format!("NodePool {}: {reason}", ctx.input.pools[f.at.pi].name));
            st.failed[f.takes[0].0] = true;
            return (0, f.at.pt);
        }
    };
    let input = ctx.input;
    let pool = &input.pools[f.at.pi];
    let pool_type = ctx.views[f.at.pi].types[f.at.pt].clone();
    let capacity = pool_type.capacity.clone();
    let name = ctx.catalog().types[pool_type.t].name.clone();
    let mut placed = 0u64;
    for _ in 0..repeats {
        if let Err(r) = ctx.limit_room(f.at.pi, &capacity) {
            for (gi, _) in &f.takes {
                ctx.note(*gi, r.clone());
            }
            st.failed[f.takes[0].0] = true;
            break;
        }
        ctx.use_capacity(f.at.pi, &capacity);
        if let Some((name, zone)) = &reserved_in {
            ctx.reserved.take(class, name, zone, 1);
        }
        let mut pods = Vec::new();
        for &(gi, n) in &f.takes {
            let start = st.taken[gi];
            for &p in &st.groups[gi].pods[start..start + n as usize] {
                pods.push(ctx.input.pods[p].name.clone());
            }
            st.taken[gi] += n as usize;
            st.rem[gi] -= n;
            placed += n as u64;
        }
        let seq = ctx.plan.claims.len();
        ctx.plan.claims.push(NewClaim {
            name: format!("{}-{seq:05}", pool.name),
            node_pool: pool.name.clone(),
            instance_type: name.clone(),
            zone: ctx.zones[f.at.zone].clone(),
            capacity_type: f.at.cap,
            price: f.at.price,
            options: options.clone(),
            requirements: requirements.clone(),
            pods,
            requests: &f.requests + &pool_type.overhead,
            allocatable: &pool_type.alloc + &pool_type.overhead,
        });
        if colocate {
            for (gi, _) in &f.takes {
                if st.groups[*gi].colocate && st.rem[*gi] > 0 {
                    ctx.note(
                        *gi,
                        "pod affinity on hostname: the pods that must share a node do not fit on one".to_string(),
                    );
                    st.failed[*gi] = true;
                }
            }
        }
    }
    (placed, f.at.pt)
}

/// The same pods on a cheaper type in the same zone, when one holds them: the fill was chosen
/// for its worth per dollar among a shortlist, and may leave room a cheaper type does without.
/// Reserved offerings are left to the fill that chose them.
fn cheapest_holding(ctx: &Ctx, st: &State, f: &Fill) -> Option<Fill> {
    if f.at.cap == CapacityType::Reserved {
        return None;
    }
    let view = &ctx.views[f.at.pi];
    let mut best: Option<(usize, CapacityType, f64)> = None;
    for &pt in &st.by_price[f.at.pi] {
        let bar = best.map_or(f.at.price, |b| b.2);
        if st.type_price[f.at.pi][pt] >= bar - 1e-12 {
            break;
        }
        if pt == f.at.pt || !f.requests.fits(&view.types[pt].alloc) {
            continue;
        }
        for &(z, cap, price) in &st.offers[f.at.pi][pt] {
            let bar = best.map_or(f.at.price, |b| b.2);
            if z != f.at.zone || cap == CapacityType::Reserved || price >= bar - 1e-12 {
                continue;
            }
            let holds = |gi: usize| st.table[f.at.pi][gi].as_ref().is_some_and(|fit| fit.alt_for(pt, z, cap).is_some());
            if f.takes.iter().all(|(gi, _)| holds(*gi)) {
                best = Some((pt, cap, price));
            }
        }
    }
    let (pt, cap, price) = best?;
    Some(Fill { at: Offer { pt, cap, price, ..f.at }, ..f.clone() })
}

/// Up to 60 offerings, cheapest first, that can hold the fill's pods; the chosen one first.
fn launch_options(ctx: &Ctx, st: &State, f: &Fill) -> Result<(Arc<Vec<LaunchOption>>, Requirements), String> {
    let catalog = ctx.catalog();
    let view = &ctx.views[f.at.pi];
    let chosen = &catalog.types[view.types[f.at.pt].t];
    let class = ctx.input.pools[f.at.pi].node_class.as_str();
    let mut options = vec![LaunchOption {
        instance_type: chosen.name.clone(),
        zone: ctx.zones[f.at.zone].clone(),
        capacity_type: f.at.cap,
        price: f.at.price,
    }];
    let mut reqs = ctx.input.pools[f.at.pi].requirements.clone();
    for (gi, _) in &f.takes {
        if let Some(alt) = st.table[f.at.pi][*gi].as_ref().and_then(|fit| fit.alt_for(f.at.pt, f.at.zone, f.at.cap)) {
            reqs = reqs.intersect(&alt.reqs);
        }
    }
    let want_all = reqs.min_values().next().is_some();
    for &pt in &st.by_price[f.at.pi] {
        if options.len() >= MAX_OPTIONS && !want_all {
            break;
        }
        let t = &view.types[pt];
        if !f.requests.fits(&t.alloc) {
            continue;
        }
        let it = &catalog.types[t.t];
        for &(z, cap, price) in &st.offers[f.at.pi][pt] {
            let same = pt == f.at.pt && z == f.at.zone && cap == f.at.cap;
            if cap == CapacityType::Reserved && ctx.reserved.left(class, &it.name, &ctx.zones[z]) == 0 {
                continue;
            }
            let all_ok = f
                .takes
                .iter()
                .all(|(gi, _)| st.table[f.at.pi][*gi].as_ref().is_some_and(|fit| fit.alt_for(pt, z, cap).is_some()));
            if !same && all_ok {
                options.push(LaunchOption {
                    instance_type: it.name.clone(),
                    zone: ctx.zones[z].clone(),
                    capacity_type: cap,
                    price,
                });
            }
        }
    }
    let options = diverse_options(options, &reqs, catalog)?;
    let mut narrowed = reqs;
    narrowed.add(INSTANCE_TYPE, ValueSet::of(false, options.iter().map(|o| o.instance_type.as_str())));
    narrowed.add(ZONE, ValueSet::of(false, options.iter().map(|o| o.zone.as_str())));
    narrowed.add(CAPACITY_TYPE, ValueSet::of(false, options.iter().map(|o| o.capacity_type.label())));
    Ok((Arc::new(options), narrowed))
}
