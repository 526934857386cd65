//! Whether a cluster is healthy on the revision in force, measured by its own daemon. Healthy
//! means all of:
//!
//! - the capacity loop runs the revision in force, and its last pass succeeded;
//! - the kOps state store was reconciled to that revision without conflict or error;
//! - no launch failed for lack of any usable offering since the revision went in force;
//! - no pod has waited for capacity longer than `maxPendingTime` under the revision (a pod
//!   pending from before counts from the moment the revision went in force);
//! - the daemon's own status write succeeded (the heartbeat others read is fresh).
//!
//! Until the loop and the store have both run the revision, health is unknown: neither a soak
//! nor a halt counts.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The default of ClusterPolicy `spec.health.maxPendingTime`.
pub const DEFAULT_MAX_PENDING: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Not yet measured on the revision in force: why.
    Unknown(String),
    Healthy,
    Unhealthy(Vec<String>),
}

impl Health {
    pub fn is_healthy(&self) -> bool {
        matches!(self, Health::Healthy)
    }

    pub fn reasons(&self) -> Vec<String> {
        match self {
            Health::Unknown(r) => vec![r.clone()],
            Health::Healthy => Vec::new(),
            Health::Unhealthy(r) => r.clone(),
        }
    }
}

/// The capacity loop's side.
#[derive(Debug, Clone, Default)]
pub struct LoopView {
    /// The revision the loop decides under.
    pub revision: String,
    /// The last pass's error.
    pub error: Option<String>,
    /// When the oldest pod waiting for capacity was created, and its name.
    pub oldest_pending: Option<(DateTime<Utc>, String)>,
    /// The last launch that failed for lack of any usable offering.
    pub last_unserved: Option<(DateTime<Utc>, String)>,
}

impl LoopView {
    /// The view of a capacity loop's status.
    pub fn of(s: &crate::capacity::report::LoopStatus) -> LoopView {
        let at = |d: std::time::Duration| crate::capacity::wall(d);
        LoopView {
            revision: s.revision.clone(),
            error: s.last_error.clone(),
            oldest_pending: s.oldest_pending.as_ref().map(|(t, p)| (at(*t), p.clone())),
            last_unserved: s.last_unserved.as_ref().map(|(t, w)| (at(*t), w.clone())),
        }
    }
}

/// The state store's side: the last reconcile pass.
#[derive(Debug, Clone, Default)]
pub struct StoreView {
    pub revision: String,
    /// `applied`, `unchanged`, `conflict` or `error`.
    pub result: String,
    pub error: Option<String>,
}

/// ClusterPolicy `spec.health.maxPendingTime` of a policy, or the default.
pub fn max_pending(policy: &crate::policy::EffectivePolicy) -> Duration {
    let health = policy.cluster_policy.as_ref().and_then(|p| p.value.spec.health.as_ref());
    health.and_then(|h| h.max_pending_time.as_ref()).map_or(DEFAULT_MAX_PENDING, |d| d.duration())
}

/// The health of the revision a record holds in force, from the loop's and the store's views.
pub fn measure(
    rec: &super::record::Record,
    policy: Option<&crate::policy::EffectivePolicy>,
    capacity: Option<&LoopView>,
    store: Option<&StoreView>,
    status_write: Option<&str>,
    now: DateTime<Utc>,
) -> Health {
    let Some(held) = &rec.in_force else { return Health::Unknown("nothing in force yet".into()) };
    assess(&Input {
        now,
        revision: &held.revision,
        since: held.since,
        max_pending: policy.map_or(DEFAULT_MAX_PENDING, max_pending),
        capacity,
        store,
        status_write,
    })
}

pub struct Input<'a> {
    pub now: DateTime<Utc>,
    /// The revision in force and since when.
    pub revision: &'a str,
    pub since: DateTime<Utc>,
    pub max_pending: Duration,
    pub capacity: Option<&'a LoopView>,
    pub store: Option<&'a StoreView>,
    /// The daemon's last write of its own status failed: why.
    pub status_write: Option<&'a str>,
}

pub fn assess(i: &Input) -> Health {
    let Some(capacity) = i.capacity.filter(|c| c.revision == i.revision) else {
        return Health::Unknown(format!("the capacity loop has not run {} yet", i.revision));
    };
    let Some(store) = i.store.filter(|s| s.revision == i.revision) else {
        return Health::Unknown(format!("the state store has not been reconciled to {} yet", i.revision));
    };
    let mut bad = Vec::new();
    if let Some(e) = &capacity.error {
        bad.push(format!("the last capacity pass failed: {e}"));
    }
    match store.result.as_str() {
        "applied" | "unchanged" => {}
        other => bad.push(format!(
            "the state-store pass ended in {other}{}",
            store.error.as_ref().map(|e| format!(": {e}")).unwrap_or_default()
        )),
    }
    if let Some((at, what)) = &capacity.last_unserved
        && *at >= i.since
    {
        bad.push(format!("a launch failed for lack of any usable offering: {what}"));
    }
    if let Some((created, pod)) = &capacity.oldest_pending {
        let from = (*created).max(i.since);
        let waited = (i.now - from).to_std().unwrap_or_default();
        if waited > i.max_pending {
            bad.push(format!(
                "pod {pod} has waited {}s for capacity (maxPendingTime {}s)",
                waited.as_secs(),
                i.max_pending.as_secs()
            ));
        }
    }
    if let Some(e) = i.status_write {
        bad.push(format!("the rollout status cannot be written: {e}"));
    }
    if bad.is_empty() { Health::Healthy } else { Health::Unhealthy(bad) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_592_800 + s, 0).unwrap()
    }

    fn views(rev: &str) -> (LoopView, StoreView) {
        (
            LoopView { revision: rev.into(), ..LoopView::default() },
            StoreView { revision: rev.into(), result: "applied".into(), error: None },
        )
    }

    fn input<'a>(c: &'a LoopView, s: &'a StoreView, now: i64) -> Input<'a> {
        Input {
            now: t(now),
            revision: "r2",
            since: t(100),
            max_pending: Duration::from_secs(60),
            capacity: Some(c),
            store: Some(s),
            status_write: None,
        }
    }

    #[test]
    fn unknown_until_the_loop_and_the_store_run_the_revision() {
        let (c, s) = views("r1");
        assert!(matches!(assess(&input(&c, &s, 200)), Health::Unknown(_)));
        let (c2, _) = views("r2");
        assert!(matches!(assess(&input(&c2, &s, 200)), Health::Unknown(_)));
        let (_, s2) = views("r2");
        assert_eq!(assess(&input(&c2, &s2, 200)), Health::Healthy);
    }

    #[test]
    fn a_pod_pending_too_long_counts_from_the_revision() {
        let (mut c, s) = views("r2");
        c.oldest_pending = Some((t(0), "default/a".into()));
        // Pending since t=0, but r2 came in force at t=100: 50 s under r2.
        assert_eq!(assess(&input(&c, &s, 150)), Health::Healthy);
        let h = assess(&input(&c, &s, 161));
        assert!(matches!(&h, Health::Unhealthy(r) if r[0].contains("default/a")), "{h:?}");
    }

    #[test]
    fn failures_make_it_unhealthy() {
        let (mut c, mut s) = views("r2");
        c.last_unserved = Some((t(50), "old".into()));
        assert_eq!(assess(&input(&c, &s, 200)), Health::Healthy, "a failure before the revision does not count");
        c.last_unserved = Some((t(150), "c6i.large: InsufficientInstanceCapacity".into()));
        assert!(!assess(&input(&c, &s, 200)).is_healthy());
        c.last_unserved = None;
        s.result = "conflict".into();
        assert!(!assess(&input(&c, &s, 200)).is_healthy());
        s.result = "unchanged".into();
        c.error = Some("reading the cloud".into());
        assert!(!assess(&input(&c, &s, 200)).is_healthy());
        c.error = None;
        let mut i = input(&c, &s, 200);
        i.status_write = Some("403");
        assert!(!assess(&i).is_healthy());
    }
}
