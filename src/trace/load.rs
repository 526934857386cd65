//! Reading a trace: the YAML is parsed with positions, typed, and checked, so every error
//! names `file:line:column`, the field and what to do.

use std::path::Path;

use serde_json::Value;

use super::{API_VERSION, Action, KIND, MAX_DURATION_SECS, MAX_EVENTS, MAX_REPLICAS, Trace};
use crate::cluster::workload;
use crate::policy::diag::{Diagnostic, Severity};
use crate::policy::document::{self, Origin, steps};

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
    let docs = document::parse_file(file, bytes)?;
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
    let length = spec.duration.duration().as_secs();
    if length == 0 || length > MAX_DURATION_SECS {
        return Err(at(
            "spec.duration",
            format!("duration {} is out of range", spec.duration),
            "a trace lasts from 1s to 744h (31 days)",
        ));
    }
    if spec.events.len() > MAX_EVENTS {
        return Err(at(
            "spec.events",
            format!("{} events; a trace may hold at most {MAX_EVENTS}", spec.events.len()),
            "split the trace",
        ));
    }
    for (i, n) in spec.nodes.iter().enumerate() {
        if n.count > 10_000 {
            return Err(at(&format!("spec.nodes[{i}].count"), format!("{} nodes", n.count), "at most 10000"));
        }
    }
    for (i, w) in spec.workloads.iter().enumerate() {
        object(file, w, &format!("spec.workloads[{i}]"), at)?;
    }
    let mut last = 0;
    for (i, e) in spec.events.iter().enumerate() {
        let t = e.at.duration().as_secs();
        let field = format!("spec.events[{i}]");
        if t > length {
            return Err(at(
                &format!("{field}.at"),
                format!("event at {} is after the trace ends ({})", e.at, spec.duration),
                "raise spec.duration or remove the event",
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
            }
            Action::Create(v) => object(file, v, &format!("{field}.create"), at)?,
            Action::Delete(r) => {
                if !workload::KINDS.contains(&r.kind.as_str()) {
                    return Err(at(
                        &format!("{field}.delete.kind"),
                        format!("unknown kind {}", r.kind),
                        &format!("delete one of {}", workload::KINDS.join(", ")),
                    ));
                }
            }
            Action::Interrupt(n) => {
                if n.count == 0 || n.count > 10_000 {
                    return Err(at(&format!("{field}.interrupt.count"), format!("count {}", n.count), "1 to 10000"));
                }
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
            }
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
/// the scheduler can read.
fn object(file: &str, v: &Value, field: &str, at: &At) -> Result<(), TraceError> {
    let kind = v["kind"].as_str().unwrap_or_default();
    if !workload::KINDS.contains(&kind) {
        return Err(at(
            &format!("{field}.kind"),
            format!("kind {kind:?} is not replayed"),
            &format!("use one of {}", workload::KINDS.join(", ")),
        ));
    }
    match workload::from_value(file, 1, v.clone()) {
        Ok(Some(w)) => {
            if let Some(n) = w.replicas() {
                replicas(n, &format!("{field}.spec.replicas"), at)?;
            }
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(e) => Err(at(field, e.to_string(), "write the object as kubectl apply would take it")),
    }
}
