//! A recording as it is made: every recorded object as last seen, the starting workloads and
//! the events so far. Synchronous and without I/O: the caller feeds it what the watches report
//! and when.
//!
//! The recording starts once every kind has been listed; changes seen before only shape the
//! starting workloads. A watch that restarts lists its kind again (`Init` … `InitDone`): what
//! that listing lacks was deleted meanwhile, what differs changed.

use std::collections::{BTreeMap, BTreeSet};

use kube::runtime::watcher::Event;
use serde_json::Value;
use tokio::time::Instant;

use super::clean::{Key, Kind, Skip, change, clean};
use crate::policy::duration::GoDuration;
use crate::trace::{TimedEvent, Trace};

pub struct Recording {
    /// Kinds whose first listing has not ended; the recording starts when none is left.
    unsynced: BTreeSet<Kind>,
    /// Every recorded object as last seen, cleaned.
    objects: BTreeMap<Key, Value>,
    /// A kind being listed again after its watch restarted, with what the listing holds so far.
    relisting: BTreeMap<Kind, BTreeMap<Key, Value>>,
    /// Objects left out and why, so each reason is logged once.
    skipped: BTreeMap<Key, Skip>,
    /// When the recording started; `None` while the first listings run.
    start: Option<Instant>,
    /// The objects when the recording started.
    workloads: Vec<Value>,
    events: Vec<TimedEvent>,
    /// Watch events received, for progress reports.
    received: u64,
}

impl Recording {
    /// A recording that starts once each of `kinds` has been listed.
    pub fn new(kinds: &[Kind]) -> Recording {
        Recording {
            unsynced: kinds.iter().copied().collect(),
            objects: BTreeMap::new(),
            relisting: BTreeMap::new(),
            skipped: BTreeMap::new(),
            start: None,
            workloads: Vec::new(),
            events: Vec::new(),
            received: 0,
        }
    }

    pub fn start(&self) -> Option<Instant> {
        self.start
    }

    /// Kinds not listed yet.
    pub fn unsynced(&self) -> impl Iterator<Item = Kind> + '_ {
        self.unsynced.iter().copied()
    }

    pub fn objects(&self) -> usize {
        self.objects.len()
    }

    pub fn events(&self) -> usize {
        self.events.len()
    }

    pub fn received(&self) -> u64 {
        self.received
    }

    /// Takes in what the watch of `kind` reported at `now`.
    pub fn apply(&mut self, kind: Kind, event: Event<Value>, now: Instant) {
        self.received += 1;
        match event {
            Event::Init => {
                self.relisting.insert(kind, BTreeMap::new());
            }
            Event::InitApply(raw) => {
                let (key, object) = self.admit(kind, &raw);
                if let Some(object) = object {
                    self.relisting.entry(kind).or_default().insert(key, object);
                }
            }
            Event::InitDone => {
                let listed = self.relisting.remove(&kind).unwrap_or_default();
                let gone: Vec<Key> =
                    self.objects.keys().filter(|k| k.kind == kind && !listed.contains_key(k)).cloned().collect();
                for key in gone {
                    self.set(key, None, now);
                }
                for (key, object) in listed {
                    self.set(key, Some(object), now);
                }
                if self.unsynced.remove(&kind) && self.unsynced.is_empty() {
                    self.start = Some(now);
                    self.workloads = self.objects.values().cloned().collect();
                }
            }
            Event::Apply(raw) => {
                let (key, object) = self.admit(kind, &raw);
                self.set(key, object, now);
            }
            Event::Delete(raw) => self.set(Key::of(kind, &raw), None, now),
        }
    }

    /// The object cleaned, or `None` if it is left out (logged once per reason).
    fn admit(&mut self, kind: Kind, raw: &Value) -> (Key, Option<Value>) {
        let key = Key::of(kind, raw);
        match clean(kind, raw) {
            Ok(object) => {
                self.skipped.remove(&key);
                (key, Some(object))
            }
            Err(skip) => {
                if self.skipped.get(&key) != Some(&skip) {
                    let (k, ns, name) = (kind.name(), &key.namespace, &key.name);
                    match &skip {
                        Skip::NotReplayable(_) => {
                            tracing::warn!(kind = k, namespace = %ns, name = %name, reason = %skip, "object not recorded")
                        }
                        _ => {
                            tracing::debug!(kind = k, namespace = %ns, name = %name, reason = %skip, "object not recorded")
                        }
                    }
                    self.skipped.insert(key.clone(), skip);
                }
                (key, None)
            }
        }
    }

    /// Records `key` as `object` (`None`: gone), with the event that makes, once started.
    fn set(&mut self, key: Key, object: Option<Value>, now: Instant) {
        let old = match &object {
            Some(o) => self.objects.insert(key.clone(), o.clone()),
            None => self.objects.remove(&key),
        };
        let Some(start) = self.start else { return };
        if let Some(action) = change(&key, old.as_ref(), object.as_ref()) {
            let at = GoDuration::from_secs(now.saturating_duration_since(start).as_secs());
            self.events.push(TimedEvent { at, action });
        }
    }

    /// The trace named `name`, lasting `duration_secs`; an event at or after the end is left out.
    pub fn finish(self, name: &str, duration_secs: u64) -> Trace {
        let mut trace = Trace::new(name, GoDuration::from_secs(duration_secs));
        trace.spec.workloads = self.workloads;
        trace.spec.events = self.events;
        // A change seen as the recording ended has no time left to act in a replay.
        trace.spec.events.retain(|e| e.at.duration().as_secs() < duration_secs);
        trace
    }
}
