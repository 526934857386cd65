//! The `Clock` port: where time is read. The system clock for the daemon on real backends; the
//! simulated world's virtual clock for the demo, the simulated daemon and tests.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};

pub trait Clock: Send + Sync {
    /// Time since the Unix epoch.
    fn now(&self) -> Duration;

    fn utc(&self) -> DateTime<Utc> {
        let now = self.now();
        DateTime::from_timestamp(now.as_secs() as i64, now.subsec_nanos()).unwrap_or_default()
    }
}

/// The machine's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
    }
}

impl Clock for crate::cloud::sim::VirtualClock {
    fn now(&self) -> Duration {
        crate::cloud::sim::VirtualClock::now(self)
    }
}
