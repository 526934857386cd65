//! `capstan bench simulate`: a synthetic diurnal trace replayed twice (as `simulate` does for
//! base and head) under a repository's policy, on a single-threaded runtime, timed.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::policy;
use crate::revision::Revision;
use crate::trace::synth::{self, Pattern, SynthOptions};
use crate::whatif::replay;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimulateBench {
    pub pods: u32,
    pub hours: u32,
    pub events: usize,
    /// Seconds for each of the two replays.
    pub replay_seconds: [f64; 2],
    pub total_seconds: f64,
    pub launches: usize,
    pub cost_usd: f64,
}

/// Replays a `pods`-pod diurnal trace of `hours` twice under `cluster`'s policy in `repo`.
pub fn run(repo: &Path, cluster: &str, pods: u32, hours: u32) -> Result<SimulateBench, String> {
    let trace =
        synth::synth(&SynthOptions { pattern: Pattern::Diurnal, pods, hours, seed: 1 }).map_err(|e| e.to_string())?;
    let snapshot = policy::Snapshot::from_dir(repo).map_err(|e| format!("reading {}: {e}", repo.display()))?;
    let v = policy::validate(&snapshot, Some(cluster)).map_err(|e| e.to_string())?;
    if let Some(d) = v.diagnostics.sorted().into_iter().find(|d| d.is_error()) {
        return Err(format!("the repository has errors; run capstan validate ({d})"));
    }
    let policy = v.policies.into_iter().next().ok_or("no cluster policy")?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut seconds = [0.0; 2];
    let mut last = None;
    for s in &mut seconds {
        let one = Instant::now();
        let run = rt.block_on(replay::replay(&policy, Revision::local("bench"), &trace)).map_err(|e| e.to_string())?;
        *s = one.elapsed().as_secs_f64();
        last = Some(run);
    }
    let run = last.unwrap_or_default();
    Ok(SimulateBench {
        pods,
        hours,
        events: trace.spec.events.len(),
        replay_seconds: seconds,
        total_seconds: started.elapsed().as_secs_f64(),
        launches: run.launches,
        cost_usd: run.cost_usd,
    })
}
