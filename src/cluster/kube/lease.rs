//! Leader election with a coordination.k8s.io/v1 Lease: only the holder runs the capacity loop
//! and reconciles the state store. The holder renews every [`RENEW_EVERY`]; a lease not renewed
//! for [`LEASE_DURATION`] may be taken. A holder that cannot renew within the duration steps
//! down at once, before anyone else can take over.
//!
//! The decision of what to do with a lease is pure ([`decide`]); the API calls use the lease's
//! resourceVersion, so two replicas racing for it cannot both win (409 Conflict).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::watch;

use crate::clock::Clock;

/// A lease not renewed for this long is free.
pub const LEASE_DURATION: Duration = Duration::from_secs(10);
/// How often the holder renews and the others try.
pub const RENEW_EVERY: Duration = Duration::from_secs(2);

/// What to do with the lease as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    /// Nobody holds it (or the holder let it expire): take it.
    Acquire,
    /// We hold it: renew.
    Renew,
    /// Someone else holds it and is alive.
    Follow,
}

/// Decides from the holder, its last renewal and its duration (all as read) and the time.
pub fn decide(me: &str, holder: Option<&str>, renewed: Option<Duration>, duration: Duration, now: Duration) -> Move {
    match holder {
        Some(h) if h == me => Move::Renew,
        Some(h) if !h.is_empty() && renewed.is_some_and(|r| now < r + duration) => Move::Follow,
        _ => Move::Acquire,
    }
}

fn micro(now: Duration) -> MicroTime {
    let ts = k8s_openapi::jiff::Timestamp::new(now.as_secs() as i64, now.subsec_nanos() as i32).unwrap_or_default();
    MicroTime(ts)
}

fn since_epoch(t: &MicroTime) -> Duration {
    Duration::new(t.0.as_second().max(0) as u64, t.0.subsec_nanosecond().max(0) as u32)
}

/// Leader election for one identity on one Lease.
pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    /// The time written as the renewal and compared with the holder's (the system clock in the
    /// daemon: replicas on different machines compare their clocks through the Lease).
    clock: Arc<dyn Clock>,
}

impl Elector {
    pub fn new(client: Client, namespace: &str, name: &str, identity: &str, clock: Arc<dyn Clock>) -> Elector {
        Elector {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
            identity: identity.to_string(),
            clock,
        }
    }

    /// One attempt; true when we hold the lease afterwards.
    pub async fn try_once(&self, now: Duration) -> Result<bool, kube::Error> {
        let spec = LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(LEASE_DURATION.as_secs() as i32),
            renew_time: Some(micro(now)),
            ..LeaseSpec::default()
        };
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let fresh = Lease {
                metadata: ObjectMeta { name: Some(self.name.clone()), ..ObjectMeta::default() },
                spec: Some(LeaseSpec { acquire_time: Some(micro(now)), lease_transitions: Some(0), ..spec }),
            };
            return match self.api.create(&PostParams::default(), &fresh).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let current = lease.spec.clone().unwrap_or_default();
        let duration = current.lease_duration_seconds.map_or(LEASE_DURATION, |s| Duration::from_secs(s.max(1) as u64));
        let mv = decide(
            &self.identity,
            current.holder_identity.as_deref(),
            current.renew_time.as_ref().map(since_epoch),
            duration,
            now,
        );
        let next = match mv {
            Move::Follow => return Ok(false),
            Move::Renew => LeaseSpec {
                acquire_time: current.acquire_time.clone(),
                lease_transitions: current.lease_transitions,
                ..spec
            },
            Move::Acquire => LeaseSpec {
                acquire_time: Some(micro(now)),
                lease_transitions: Some(current.lease_transitions.unwrap_or(0) + 1),
                ..spec
            },
        };
        lease.spec = Some(next);
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Tries every [`RENEW_EVERY`] until `stop`; publishes whether we lead. Leadership is
    /// dropped as soon as a renewal has not succeeded for the lease duration less one period,
    /// so the old leader stops before a new one can start.
    pub async fn run(&self, leading: watch::Sender<bool>, mut stop: watch::Receiver<bool>) {
        let mut last_ok: Option<std::time::Instant> = None;
        loop {
            let now = self.clock.now();
            match self.try_once(now).await {
                Ok(true) => {
                    if !*leading.borrow() {
                        tracing::info!(identity = %self.identity, lease = %self.name, "became the leader");
                    }
                    last_ok = Some(std::time::Instant::now());
                    leading.send_replace(true);
                }
                Ok(false) => {
                    if *leading.borrow() {
                        tracing::warn!(identity = %self.identity, "lost the lease; stopping at once");
                    }
                    last_ok = None;
                    leading.send_replace(false);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "lease renewal failed");
                    let expired = last_ok.is_none_or(|t| t.elapsed() + RENEW_EVERY >= LEASE_DURATION);
                    if expired && *leading.borrow() {
                        tracing::warn!(identity = %self.identity, "could not renew the lease in time; stopping");
                        leading.send_replace(false);
                    }
                }
            }
            tokio::select! {
                _ = stop.wait_for(|s| *s) => {
                    leading.send_replace(false);
                    return;
                }
                _ = tokio::time::sleep(RENEW_EVERY) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Duration = Duration::from_secs(10);

    #[test]
    fn holder_renews_others_follow_until_it_expires() {
        let t = Duration::from_secs(1000);
        assert_eq!(decide("a", None, None, D, t), Move::Acquire);
        assert_eq!(decide("a", Some("a"), Some(t), D, t), Move::Renew);
        assert_eq!(decide("b", Some("a"), Some(t), D, t + Duration::from_secs(9)), Move::Follow);
        assert_eq!(decide("b", Some("a"), Some(t), D, t + D), Move::Acquire);
        assert_eq!(decide("b", Some(""), Some(t), D, t), Move::Acquire, "released");
    }
}
