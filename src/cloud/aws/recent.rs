//! What this process prepared for launches (launch templates, instance profiles) and when: the
//! record clean-up keeps its hands off, and the window in which IAM may not yet show a profile
//! capstan just made.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

/// How long a template or profile made or used for a launch is kept whatever else is seen: far
/// longer than a launch takes, and long enough for EC2's and IAM's listings to settle.
pub const GRACE: Duration = Duration::from_secs(15 * 60);

/// What this process ensured for launches, and when (its clock): kept by clean-up for [`GRACE`].
/// One record serves every provider the daemon builds (one per policy revision), so a revision
/// never forgets a launch made just before it; entries past [`GRACE`] are dropped as new ones
/// come, so it never grows without bound.
#[derive(Debug, Default)]
pub struct Recent {
    /// Launch-template names.
    templates: Mutex<BTreeMap<String, Duration>>,
    /// Instance-profile names.
    profiles: Mutex<BTreeMap<String, Duration>>,
    /// Instance profiles created or given their role, and when.
    changed: Mutex<BTreeMap<String, Duration>>,
}

impl Recent {
    fn note(map: &Mutex<BTreeMap<String, Duration>>, name: &str, now: Duration) {
        let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, at| now.saturating_sub(*at) < GRACE);
        map.insert(name.to_string(), now);
    }

    /// Notes a template ensured at `now`.
    pub fn template(&self, name: &str, now: Duration) {
        Self::note(&self.templates, name, now);
    }

    /// Notes a profile ensured at `now`.
    pub fn profile(&self, name: &str, now: Duration) {
        Self::note(&self.profiles, name, now);
    }

    /// Notes a profile created or given its role at `now`.
    pub fn profile_changed(&self, name: &str, now: Duration) {
        Self::note(&self.changed, name, now);
    }

    /// How many entries are held (templates, profiles, changed profiles).
    pub fn len(&self) -> usize {
        [&self.templates, &self.profiles, &self.changed]
            .iter()
            .map(|m| m.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// When a profile was last created or given its role by this process, if ever.
    pub fn changed_at(&self, name: &str) -> Option<Duration> {
        self.changed.lock().unwrap_or_else(|p| p.into_inner()).get(name).copied()
    }

    fn within(map: &Mutex<BTreeMap<String, Duration>>, now: Duration) -> BTreeSet<String> {
        let map = map.lock().unwrap_or_else(|p| p.into_inner());
        map.iter().filter(|(_, at)| now.saturating_sub(**at) < GRACE).map(|(n, _)| n.clone()).collect()
    }

    /// The templates noted within [`GRACE`] of `now`.
    pub fn templates_within(&self, now: Duration) -> BTreeSet<String> {
        Self::within(&self.templates, now)
    }

    /// The profiles noted within [`GRACE`] of `now`.
    pub fn profiles_within(&self, now: Duration) -> BTreeSet<String> {
        Self::within(&self.profiles, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_was_ensured_is_recent_for_the_grace_period_only() {
        let r = Recent::default();
        r.template("a", Duration::from_secs(100));
        r.template("b", Duration::from_secs(100) + GRACE);
        let now = Duration::from_secs(100) + GRACE;
        assert_eq!(r.templates_within(now), BTreeSet::from(["b".to_string()]));
    }

    #[test]
    fn old_entries_are_dropped_as_new_ones_come() {
        let r = Recent::default();
        for i in 0..100u64 {
            let at = Duration::from_secs(i * 60);
            r.template(&format!("t{i}"), at);
            r.profile(&format!("p{i}"), at);
            r.profile_changed(&format!("p{i}"), at);
        }
        // Fifteen minutes of one a minute: 15 of each are within the grace period.
        assert_eq!(r.len(), 3 * 15, "bounded by the grace period");
        assert_eq!(r.changed_at("p99"), Some(Duration::from_secs(99 * 60)));
        assert_eq!(r.changed_at("p0"), None);
    }
}
