//! The `Clock` port: where time is read. The system clock for the daemon on real backends; the
//! simulated world's virtual clock for the demo, the simulated daemon and tests. Adapters that
//! need the time (the Kubernetes lease, the pod history of the Kubernetes adapter) are handed a
//! `Clock`; none reads the system time itself.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};

/// A source of the current time. Implementations never go backwards within one process
/// (the system clock may, if the machine's clock is set back; nothing here corrects that).
pub trait Clock: Send + Sync {
    /// Time since the Unix epoch.
    fn now(&self) -> Duration;

    /// The same instant as a UTC date-time.
    fn utc(&self) -> DateTime<Utc> {
        wall(self.now())
    }
}

/// Wall-clock time of a loop time (time since the Unix epoch); the epoch for a time beyond
/// what `DateTime` holds.
pub fn wall(since_epoch: Duration) -> DateTime<Utc> {
    DateTime::from_timestamp(since_epoch.as_secs() as i64, since_epoch.subsec_nanos()).unwrap_or_default()
}

/// The machine's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_and_utc_agree() {
        let t = Duration::new(1_795_000_000, 250_000_000);
        assert_eq!(wall(t).to_rfc3339(), "2026-11-18T11:06:40.250+00:00");
        assert_eq!(wall(t).timestamp(), 1_795_000_000);
        assert!(SystemClock.now() > t - Duration::from_secs(1_000_000_000));
    }
}
