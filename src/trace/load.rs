//! Reading a trace: the YAML is parsed with positions, typed, and checked, so every error
//! names `file:line:column`, the field and what to do.

use std::path::Path;

use serde_json::Value;

use std::collections::HashSet;

use super::{
    API_VERSION, Action, KIND, MAX_DURATION_SECS, MAX_EVENTS, MAX_PODS_AT_ONCE, MAX_REPLICAS, MAX_START_NODES,
    START_RANGE, Trace,
};
use crate::cluster::workload;
use crate::policy::diag::{Diagnostic, Severity};
use crate::policy::document::{self, Limits, Origin, steps};
use crate::policy::names;
use crate::scheduling::builtin;
use crate::scheduling::catalog::Catalog;

/// How large a trace may be: a month of a busy cluster.
pub const LIMITS: Limits = Limits { max_bytes: 64 << 20, max_nodes: 10_000_000, what: "traces" };

/// Why a trace cannot be replayed: the first problem found, at its place.
pub type TraceError = Box<Diagnostic>;

/// Reads and checks the trace in `path`.
pub fn load(path: &Path) -> Result<Trace, TraceError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| {
        Box::new(Diagnostic {
            severity: Severity::Error,
            file: name.clone(),
            line: 1,
            column: 1,
            object: None,
            field: None,
            message: format!("cannot read the trace: {e}"),
            hint: "give the path of a trace file (capstan trace synth writes one)".to_string(),
        })
    })?;
    parse(&name, &bytes)
}

/// Parses and checks a trace; `file` names it in errors.
pub fn parse(file: &str, bytes: &[u8]) -> Result<Trace, TraceError> {
    let docs = document::parse_file_within(file, bytes, LIMITS)?;
    let Some(doc) = docs.into_iter().find(|d| !d.value.is_null()) else {
        return Err(Box::new(Diagnostic {
            severity: Severity::Error,
            file: file.to_string(),
            line: 1,
            column: 1,
            object: None,
            field: None,
            message: "the file holds no trace".to_string(),
            hint: format!("a trace is one document with apiVersion: {API_VERSION} and kind: {KIND}"),
        }));
    };
    let origin = Origin::of(&doc);
    let object = format!("{KIND}/{}", doc.name());
    let at = |path: &str, message: String, hint: &str| {
        Box::new(origin.diag(Severity::Error, &object, &steps(path), message, hint.to_string()))
    };
    let api = doc.value["apiVersion"].as_str().unwrap_or_default();
    let kind = doc.value["kind"].as_str().unwrap_or_default();
    if api != API_VERSION || kind != KIND {
        return Err(at(
            "kind",
            format!("expected apiVersion {API_VERSION}, kind {KIND}; found {api:?}, {kind:?}"),
            "a trace starts with apiVersion: capstan.io/v1alpha1 and kind: Trace",
        ));
    }
    let trace: Trace = document::typed(&origin, &object, &doc.value)?;
    check(&trace, file, &at)?;
    Ok(trace)
}

type At<'a> = dyn Fn(&str, String, &str) -> TraceError + 'a;

fn check(trace: &Trace, file: &str, at: &At) -> Result<(), TraceError> {
    let spec = &trace.spec;
    if let Some(problem) = names::subdomain_problem(&trace.metadata.name, 253) {
        return Err(at("metadata.name", problem, "name the trace as a Kubernetes object is named"));
    }
    let length = spec.duration.duration().as_secs();
    if length == 0 || length > MAX_DURATION_SECS {
        return Err(at(
            "spec.duration",
            format!("duration {} is out of range", spec.duration),
            "a trace lasts from 1s to 744h (31 days)",
        ));
    }
    if let Some(t) = spec.start
        && !START_RANGE.contains(&t.timestamp())
    {
        return Err(at(
            "spec.start",
            format!("start {t} is out of range"),
            "give a time between the years 2000 and 2100",
        ));
    }
    if spec.events.len() > MAX_EVENTS {
        return Err(at(
            "spec.events",
            format!("{} events; a trace may hold at most {MAX_EVENTS}", spec.events.len()),
            "split the trace",
        ));
    }
    let catalog = builtin::catalog();
    let mut total = 0u64;
    for (i, n) in spec.nodes.iter().enumerate() {
        let field = format!("spec.nodes[{i}]");
        total += u64::from(n.count);
        if total > MAX_START_NODES {
            return Err(at(
                &format!("{field}.count"),
                format!("more than {MAX_START_NODES} nodes at the start"),
                "start with fewer nodes",
            ));
        }
        offered(&catalog, Some(&n.instance_type), Some(&n.zone), &field, at)?;
    }
    let mut present = HashSet::new();
    for (i, w) in spec.workloads.iter().enumerate() {
        present.insert(object(file, w, &format!("spec.workloads[{i}]"), at)?);
    }
    check_events(trace, file, &catalog, &mut present, at)?;
    let peak = trace.peak_pods();
    if peak > MAX_PODS_AT_ONCE {
        return Err(at(
            "spec",
            format!("the trace asks for {peak} pods at once; at most {MAX_PODS_AT_ONCE} are replayed"),
            "scale the trace down (capstan trace synth --pods sets the peak)",
        ));
    }
    Ok(())
}

/// Kind, namespace and name of a workload.
type Key = (String, String, String);

fn check_events(
    trace: &Trace,
    file: &str,
    catalog: &Catalog,
    present: &mut HashSet<Key>,
    at: &At,
) -> Result<(), TraceError> {
    let spec = &trace.spec;
    let length = spec.duration.duration().as_secs();
    let mut last = 0;
    for (i, e) in spec.events.iter().enumerate() {
        let t = e.at.duration().as_secs();
        let field = format!("spec.events[{i}]");
        if t >= length {
            return Err(at(
                &format!("{field}.at"),
                format!("event at {} is not before the trace ends ({})", e.at, spec.duration),
                "raise spec.duration or remove the event: an event at the end has no time to act",
            ));
        }
        if t < last {
            return Err(at(
                &format!("{field}.at"),
                format!("event at {} comes before the event above it", e.at),
                "list events in time order",
            ));
        }
        last = t;
        match &e.action {
            Action::Scale(s) => {
                if s.kind != "Deployment" && s.kind != "StatefulSet" {
                    return Err(at(
                        &format!("{field}.scale.kind"),
                        format!("cannot scale a {}", s.kind),
                        "scale a Deployment or a StatefulSet",
                    ));
                }
                replicas(s.replicas, &format!("{field}.scale.replicas"), at)?;
                exists(present, (s.kind.clone(), s.namespace.clone(), s.name.clone()), &format!("{field}.scale"), at)?;
            }
            Action::Create(v) => {
                present.insert(object(file, v, &format!("{field}.create"), at)?);
            }
            Action::Delete(r) => {
                if !workload::KINDS.contains(&r.kind.as_str()) {
                    return Err(at(
                        &format!("{field}.delete.kind"),
                        format!("unknown kind {}", r.kind),
                        &format!("delete one of {}", workload::KINDS.join(", ")),
                    ));
                }
                let key = (r.kind.clone(), r.namespace.clone(), r.name.clone());
                exists(present, key.clone(), &format!("{field}.delete"), at)?;
                present.remove(&key);
            }
            Action::Interrupt(n) => {
                if n.count == 0 || n.count > 10_000 {
                    return Err(at(&format!("{field}.interrupt.count"), format!("count {}", n.count), "1 to 10000"));
                }
                offered(catalog, n.instance_type.as_ref(), n.zone.as_ref(), &format!("{field}.interrupt"), at)?;
            }
            Action::Shortage(s) => {
                if let Some(c) = &s.capacity_type
                    && c != "spot"
                    && c != "on-demand"
                {
                    return Err(at(
                        &format!("{field}.shortage.capacityType"),
                        format!("unknown capacity type {c}"),
                        "spot or on-demand",
                    ));
                }
                if let Some(d) = &s.lasts
                    && (d.duration().is_zero() || d.duration().as_secs() > MAX_DURATION_SECS)
                {
                    return Err(at(
                        &format!("{field}.shortage.for"),
                        format!("for {d} is out of range"),
                        "1s to 744h; leave it out for the rest of the trace",
                    ));
                }
                offered(catalog, Some(&s.instance_type), s.zone.as_ref(), &format!("{field}.shortage"), at)?;
            }
        }
    }
    Ok(())
}

/// The workload an event acts on was created before it (and not deleted since).
fn exists(present: &HashSet<Key>, key: Key, field: &str, at: &At) -> Result<(), TraceError> {
    if present.contains(&key) {
        return Ok(());
    }
    let (kind, ns, name) = key;
    Err(at(
        &format!("{field}.name"),
        format!("there is no {kind} {ns}/{name} at this time"),
        "create it in spec.workloads or an earlier create event, and check kind and namespace",
    ))
}

/// The instance type is in the catalog the simulator uses and the zone is one of its zones.
fn offered(
    catalog: &Catalog,
    instance_type: Option<&String>,
    zone: Option<&String>,
    field: &str,
    at: &At,
) -> Result<(), TraceError> {
    let t = match instance_type {
        Some(name) => Some(catalog.get(name).ok_or_else(|| {
            at(
                &format!("{field}.instanceType"),
                format!("instance type {name} is not in the simulator's catalog"),
                "use an instance type EC2 offers, e.g. m5.large",
            )
        })?),
        None => None,
    };
    if let Some(z) = zone {
        let known = match t {
            Some(t) => t.offerings.iter().any(|o| o.zone == *z),
            None => catalog.zones().contains(z),
        };
        if !known {
            return Err(at(
                &format!("{field}.zone"),
                format!("zone {z} is not offered here"),
                &format!("use one of {}", catalog.zones().join(", ")),
            ));
        }
    }
    Ok(())
}

fn replicas(n: u32, field: &str, at: &At) -> Result<(), TraceError> {
    if n > MAX_REPLICAS {
        return Err(at(field, format!("{n} replicas"), &format!("at most {MAX_REPLICAS}")));
    }
    Ok(())
}

/// A Kubernetes object of the trace: one of the kinds the simulated cluster runs, whose pods
/// the scheduler can read. Returns its kind, namespace and name.
fn object(file: &str, v: &Value, field: &str, at: &At) -> Result<Key, TraceError> {
    let kind = v["kind"].as_str().unwrap_or_default();
    if !workload::KINDS.contains(&kind) {
        return Err(at(
            &format!("{field}.kind"),
            format!("kind {kind:?} is not replayed"),
            &format!("use one of {}", workload::KINDS.join(", ")),
        ));
    }
    let name = v["metadata"]["name"].as_str().unwrap_or_default();
    if let Some(problem) = names::subdomain_problem(name, 253) {
        return Err(at(&format!("{field}.metadata.name"), problem, "name it as Kubernetes would"));
    }
    match workload::from_value(file, 1, v.clone()) {
        Ok(Some(w)) => {
            if let Some(n) = w.replicas() {
                replicas(n, &format!("{field}.spec.replicas"), at)?;
            }
        }
        Ok(None) => {}
        Err(e) => return Err(at(field, e.to_string(), "write the object as kubectl apply would take it")),
    }
    let ns = v["metadata"]["namespace"].as_str().unwrap_or("default");
    Ok((kind.to_string(), ns.to_string(), name.to_string()))
}
