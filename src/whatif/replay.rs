//! Replaying a trace under one revision's effective policy: the simulated world of `capstan
//! demo` with the same capacity loop, driven on its virtual clock. Time moves a second at a
//! time while something happens (a pass acted, a node drains) and otherwise jumps to the next
//! moment anything can change (a trace event, the loop's next timed action, an instance
//! becoming running or Ready, a Job pod finishing), so a quiet day costs few passes.

use std::sync::Arc;
use std::time::Duration;

use super::Run;
use super::measure::{Billed, Meter, State};
use crate::cloud::provider::InstanceState;
use crate::cluster::workload::{self, WorkloadError};
use crate::policy::EffectivePolicy;
use crate::revision::Revision;
use crate::rules::Rules;
use crate::scheduling::catalog::CapacityType;
use crate::sim::{STEP, SimLoop, World};
use crate::trace::{Action, Shortage, Trace};

/// The longest jump while pods wait (the daemon's idle pass bound).
const WAITING_JUMP: Duration = crate::capacity::wake::IDLE_PASS_BOUND;
/// The longest jump while nothing waits.
const QUIET_JUMP: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("spec.nodes[{index}]: instance type {instance_type} is not in the catalog")]
    UnknownInstanceType { index: usize, instance_type: String },
    #[error("{0}")]
    Workload(#[from] WorkloadError),
    #[error("spec.events[{index}] (at {at}): {message}")]
    Event { index: usize, at: String, message: String },
}

/// A shortage in force until `until` (or the end).
struct Short {
    shortage: Shortage,
    until: Option<Duration>,
}

/// Replays `trace` under `policy` (in force as `revision`) and measures it.
pub async fn replay(policy: &EffectivePolicy, revision: Revision, trace: &Trace) -> Result<Run, ReplayError> {
    replay_with(policy, revision, trace, &mut |_| {}).await
}

/// [`replay`], telling `progress` how far into the trace the replay is after every step.
pub async fn replay_with(
    policy: &EffectivePolicy,
    revision: Revision,
    trace: &Trace,
    progress: &mut dyn FnMut(Duration),
) -> Result<Run, ReplayError> {
    let start = trace.start();
    let world = World::new(&policy.kops_name, start);
    setup(&world, trace)?;
    let mut lp = world.capacity_loop(Arc::new(Rules::from_policy(policy, revision.clone())));
    let mut meter = Meter::new(&revision.to_string(), trace.spec.duration.duration());
    let end = start + trace.spec.duration.duration();
    let mut next_event = 0;
    let mut shortages: Vec<Short> = Vec::new();
    loop {
        let now = world.now();
        while let Some(e) = trace.spec.events.get(next_event).filter(|e| start + e.at.duration() <= now) {
            let fail = |message: String| ReplayError::Event { index: next_event, at: e.at.to_string(), message };
            act(&world, &e.action, now, &mut shortages, &mut meter).map_err(fail)?;
            next_event += 1;
        }
        expire(&world, &mut shortages, now);
        let events = world.step(&mut lp).await;
        meter.events(&events);
        for w in world.cluster.take_waits() {
            let until = w.bound.unwrap_or(now);
            meter.wait(until.saturating_sub(w.created).as_secs_f64(), w.bound.is_some());
        }
        if now >= end {
            break;
        }
        progress(now - start);
        let state = state(&world);
        let busy = !events.is_empty() || !lp.status().draining.is_empty();
        let upcoming = trace.spec.events.get(next_event).map(|e| start + e.at.duration());
        let next = next_time(&world, &lp, now, busy, state.pending_pods > 0, upcoming, &shortages).min(end);
        meter.advance((now - start).as_secs_f64(), (next - start).as_secs_f64(), &state);
        world.clock.set(next);
    }
    for created in world.cluster.waiting() {
        meter.wait(end.saturating_sub(created).as_secs_f64(), false);
    }
    Ok(meter.finish(world.cluster.evictions()))
}

/// Static nodes and the workloads present at the start.
fn setup(world: &World, trace: &Trace) -> Result<(), ReplayError> {
    for (index, n) in trace.spec.nodes.iter().enumerate() {
        for k in 0..n.count {
            let name = format!("static-{index}-{k}");
            if !world.cluster.add_static_node(&name, &n.instance_type, &n.zone) {
                return Err(ReplayError::UnknownInstanceType { index, instance_type: n.instance_type.clone() });
            }
        }
    }
    let mut workloads = Vec::new();
    for (i, v) in trace.spec.workloads.iter().enumerate() {
        workloads.extend(workload::from_value("spec.workloads", i + 1, v.clone())?);
    }
    world.cluster.apply(workloads);
    Ok(())
}

/// Applies one trace event to the world.
fn act(
    world: &World,
    action: &Action,
    now: Duration,
    shortages: &mut Vec<Short>,
    meter: &mut Meter,
) -> Result<(), String> {
    match action {
        Action::Scale(s) => {
            world.cluster.scale_kind(&s.kind, &s.namespace, &s.name, s.replicas).map_err(|e| e.to_string())
        }
        Action::Create(v) => {
            let w = workload::from_value("create", 1, v.clone()).map_err(|e| e.to_string())?;
            world.cluster.apply(w.into_iter().collect());
            Ok(())
        }
        Action::Delete(r) => world.cluster.delete(&r.kind, &r.namespace, &r.name).map_err(|e| e.to_string()),
        Action::Interrupt(n) => {
            let mut spot: Vec<_> = world
                .cloud
                .current()
                .into_iter()
                .filter(|i| i.capacity_type == CapacityType::Spot && i.state == InstanceState::Running)
                // Already warned: it goes two minutes after its warning, and is not hit twice.
                .filter(|i| !world.cloud.interrupted(&i.id))
                .filter(|i| n.instance_type.as_ref().is_none_or(|t| *t == i.instance_type))
                .filter(|i| n.zone.as_ref().is_none_or(|z| *z == i.zone))
                .collect();
            spot.sort_by(|a, b| a.launched_at.cmp(&b.launched_at).then(a.id.cmp(&b.id)));
            let hit: Vec<_> = spot.into_iter().take(n.count as usize).collect();
            for i in &hit {
                world.cloud.interrupt(&i.id);
            }
            meter.interrupted(hit.len());
            Ok(())
        }
        Action::Shortage(s) => {
            exhaust(world, s);
            shortages.push(Short { shortage: s.clone(), until: s.lasts.as_ref().map(|d| now + d.duration()) });
            Ok(())
        }
    }
}

fn exhaust(world: &World, s: &Shortage) {
    let Some(t) = world.cloud.catalog_ref().get(&s.instance_type) else { return };
    for o in &t.offerings {
        let zone = s.zone.as_ref().is_none_or(|z| *z == o.zone);
        let capacity = s.capacity_type.as_ref().is_none_or(|c| c == o.capacity_type.label());
        if zone && capacity {
            world.cloud.exhaust(&t.name, &o.zone, o.capacity_type);
        }
    }
}

/// Ends the shortages whose time is up; the others stay in force.
fn expire(world: &World, shortages: &mut Vec<Short>, now: Duration) {
    let before = shortages.len();
    shortages.retain(|s| s.until.is_none_or(|u| now < u));
    if shortages.len() != before {
        world.cloud.restore_capacity();
        for s in shortages.iter() {
            exhaust(world, &s.shortage);
        }
    }
}

/// The nodes being paid for and the pods waiting, now.
fn state(world: &World) -> State {
    let mut nodes: Vec<Billed> = world
        .cloud
        .current()
        .into_iter()
        .filter(|i| i.state != InstanceState::Terminated)
        .map(|i| Billed {
            instance_type: i.instance_type,
            capacity_type: i.capacity_type.label().into(),
            price: i.price,
        })
        .collect();
    let catalog = world.cloud.catalog_ref();
    for (_, instance_type, zone) in world.cluster.static_nodes() {
        let price = catalog
            .get(&instance_type)
            .and_then(|t| t.offerings.iter().find(|o| o.zone == zone && o.capacity_type == CapacityType::OnDemand))
            .map_or(0.0, |o| o.price);
        nodes.push(Billed { instance_type, capacity_type: "static".into(), price });
    }
    State { nodes, pending_pods: world.cluster.waiting().len() }
}

/// The next moment worth a pass.
fn next_time(
    world: &World,
    lp: &SimLoop,
    now: Duration,
    busy: bool,
    waiting: bool,
    upcoming: Option<Duration>,
    shortages: &[Short],
) -> Duration {
    if busy {
        return now + STEP;
    }
    let timing = world.cloud.timing();
    let instances = world.cloud.current();
    let launches = instances
        .iter()
        .filter(|i| i.state != InstanceState::Terminated)
        .flat_map(|i| [i.launched_at + timing.running_after, i.launched_at + timing.ready_after]);
    let cap = now + if waiting { WAITING_JUMP } else { QUIET_JUMP };
    [upcoming, lp.next_due(), world.cluster.next_completion()]
        .into_iter()
        .flatten()
        .chain(launches)
        .chain(shortages.iter().filter_map(|s| s.until))
        .filter(|t| *t > now)
        .fold(cap, Duration::min)
}
