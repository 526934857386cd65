//! Batching of pending pods: a provisioning pass starts `idle` after the last new pending pod,
//! and at most `max` after the first, so a burst of pods becomes one decision. Plain data with
//! the clock passed in.

use std::collections::BTreeSet;
use std::time::Duration;

#[derive(Debug, Clone, Default)]
pub struct Batcher {
    /// Pending pods already seen.
    seen: BTreeSet<String>,
    /// When the open batch received its first and its latest new pod.
    first: Option<Duration>,
    last_new: Duration,
    /// When pods have been pending without a new one, passes repeat at this pace.
    last_pass: Option<Duration>,
}

impl Batcher {
    /// Records the pods pending now; true when a provisioning pass should run.
    pub fn observe(&mut self, pending: &[String], now: Duration, idle: Duration, max: Duration) -> bool {
        if pending.is_empty() {
            *self = Batcher::default();
            return false;
        }
        let now_pending: BTreeSet<&String> = pending.iter().collect();
        self.seen.retain(|p| now_pending.contains(p));
        let mut new = false;
        for p in pending {
            new |= self.seen.insert(p.clone());
        }
        if new {
            self.last_new = now;
            self.first.get_or_insert(now);
        }
        match self.first {
            Some(first) => now >= self.last_new + idle || now >= first + max,
            // Nothing new: retry at the max pace (capacity may have freed up, or an offering
            // come back).
            None => self.last_pass.is_none_or(|l| now >= l + max),
        }
    }

    /// When the open batch would be ready, for a caller that sleeps until then.
    pub fn due(&self, idle: Duration, max: Duration) -> Option<Duration> {
        self.first.map(|f| (self.last_new + idle).min(f + max))
    }

    /// The pass ran; the batch is closed.
    pub fn done(&mut self, now: Duration) {
        self.first = None;
        self.last_pass = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(10);

    fn s(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn waits_for_the_burst_to_end() {
        let mut b = Batcher::default();
        let pods: Vec<String> = (0..3).map(|i| format!("p{i}")).collect();
        assert!(!b.observe(&pods[..1], s(0), IDLE, MAX));
        assert!(!b.observe(&pods[..2], s(900), IDLE, MAX));
        assert!(!b.observe(&pods[..3], s(1800), IDLE, MAX));
        assert!(!b.observe(&pods, s(2700), IDLE, MAX));
        assert!(b.observe(&pods, s(2800), IDLE, MAX));
        b.done(s(2800));
        assert!(!b.observe(&pods, s(3000), IDLE, MAX), "nothing new: no pass until max has passed");
        assert!(b.observe(&pods, s(12_800), IDLE, MAX));
    }

    #[test]
    fn a_steady_stream_is_cut_at_max() {
        let mut b = Batcher::default();
        let mut pods = Vec::new();
        for i in 0..20u64 {
            pods.push(format!("p{i}"));
            let ready = b.observe(&pods, s(i * 500), IDLE, MAX);
            assert_eq!(ready, i * 500 >= 10_000, "at {} ms", i * 500);
        }
    }
}
