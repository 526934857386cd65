//! When a capacity task runs a pass. Passes are driven by change, not by a fixed tick:
//!
//! ```text
//! first pass ─┐
//! due (batch window closes, validation, disruption poll: CapacityLoop::next_due) ─┤
//! a launch or a drain in flight ─┼─► pass
//! the cluster's fingerprint changed (capacity::fingerprint of the snapshot) ─┤
//! IDLE_PASS_BOUND since the last pass ─┘
//! ```
//!
//! Otherwise the task sleeps until its next check. The decision is a pure function of the
//! loop's times and the fingerprint, so it is tested without a runtime.

use std::time::Duration;

/// The longest a quiet cluster goes without a capacity pass. It bounds how late the loop sees
/// what no signal reports: pods that stay pending with nothing new (their retry at the batch
/// max pace), an instance gone without its node noticing, a failed pass retried. A quiet pass
/// costs no cloud call while the instance list is fresh
/// ([`crate::capacity::INSTANCES_STALE_AFTER`]).
pub const IDLE_PASS_BOUND: Duration = Duration::from_secs(10);

/// Why a pass runs: the value of the `reason` a driver logs at debug level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// No pass has run yet.
    First,
    /// The loop has something timed to do now (`CapacityLoop::next_due`).
    Due,
    /// A launch or a drain is in flight; passes follow it until it lands.
    InFlight,
    /// The cluster changed in a way a pass acts on (pods pending, nodes, their marks).
    Changed,
    /// [`IDLE_PASS_BOUND`] has passed since the last pass.
    Idle,
}

impl Why {
    pub fn label(self) -> &'static str {
        match self {
            Why::First => "first",
            Why::Due => "due",
            Why::InFlight => "in-flight",
            Why::Changed => "changed",
            Why::Idle => "idle",
        }
    }
}

/// What a driver remembers between checks: the last pass's time and what it saw.
#[derive(Debug, Default, Clone)]
pub struct Wake {
    /// When the last pass ran, on the loop's clock.
    last: Option<Duration>,
    /// The cluster's fingerprint that pass saw.
    seen: Option<u64>,
}

impl Wake {
    /// Whether a pass runs at `now`: `due` is the loop's next timed action, `in_flight` whether
    /// a launch or a drain is in flight, `fingerprint` the cluster's now.
    pub fn check(&self, due: Option<Duration>, in_flight: bool, fingerprint: u64, now: Duration) -> Option<Why> {
        let Some(last) = self.last else { return Some(Why::First) };
        if due.is_some_and(|d| d <= now) {
            Some(Why::Due)
        } else if in_flight {
            Some(Why::InFlight)
        } else if self.seen != Some(fingerprint) {
            Some(Why::Changed)
        } else if now >= last + IDLE_PASS_BOUND {
            Some(Why::Idle)
        } else {
            None
        }
    }

    /// A pass ran at `now` over a cluster whose fingerprint was `fingerprint`.
    pub fn ran(&mut self, fingerprint: u64, now: Duration) {
        self.last = Some(now);
        self.seen = Some(fingerprint);
    }

    /// Forgets the last pass, so the next check runs one (a new policy revision).
    pub fn reset(&mut self) {
        *self = Wake::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn after_pass(at: Duration, fp: u64) -> Wake {
        let mut w = Wake::default();
        w.ran(fp, at);
        w
    }

    #[test]
    fn the_first_check_runs_a_pass() {
        assert_eq!(Wake::default().check(None, false, 1, S), Some(Why::First));
    }

    #[test]
    fn a_quiet_cluster_sleeps_until_the_idle_bound() {
        let w = after_pass(S, 7);
        assert_eq!(w.check(None, false, 7, S + IDLE_PASS_BOUND - Duration::from_millis(1)), None);
        assert_eq!(w.check(None, false, 7, S + IDLE_PASS_BOUND), Some(Why::Idle));
    }

    #[test]
    fn something_due_runs_a_pass_at_its_time_not_before() {
        let w = after_pass(S, 7);
        assert_eq!(w.check(Some(3 * S), false, 7, 2 * S), None);
        assert_eq!(w.check(Some(3 * S), false, 7, 3 * S), Some(Why::Due));
    }

    #[test]
    fn a_launch_or_drain_in_flight_runs_every_check() {
        assert_eq!(after_pass(S, 7).check(None, true, 7, S), Some(Why::InFlight));
    }

    #[test]
    fn a_changed_cluster_runs_a_pass_once() {
        let mut w = after_pass(S, 7);
        assert_eq!(w.check(None, false, 8, 2 * S), Some(Why::Changed));
        w.ran(8, 2 * S);
        assert_eq!(w.check(None, false, 8, 2 * S), None);
    }

    #[test]
    fn reset_runs_a_pass_at_the_next_check() {
        let mut w = after_pass(S, 7);
        w.reset();
        assert_eq!(w.check(None, false, 7, S), Some(Why::First));
    }
}
