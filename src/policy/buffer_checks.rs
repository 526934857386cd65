//! Checks of a cluster's CapacityBuffers, PodTemplates and ClusterPolicy `headroom`: the rules
//! of the CapacityBuffer CRD (exactly one reference, `replicas` or `limits` with a template,
//! counts within int32), references that must resolve in the repository, and capstan's window
//! annotations. Every finding names the file, line and column of the field.

use super::capacitybuffer::{
    ACTIVE_CAPACITY, ALPHA_API_VERSION, API_VERSION, CapacityBuffer, DURATION_ANNOTATION, PodTemplate, SCALABLE_KINDS,
    SCHEDULE_ANNOTATION,
};
use super::diag::{Diagnostics, Severity};
use super::document::{self, Located, Origin};
use super::duration::{DURATION_HINT, GoDuration};
use super::effective::EffectivePolicy;
use super::meta::{CRON_HINT, CronSchedule};
use super::yaml::Step;

/// Findings about one object, at paths of its document.
struct Report<'a> {
    origin: &'a Origin,
    object: String,
    diags: &'a mut Diagnostics,
}

impl Report<'_> {
    fn at(&mut self, severity: Severity, path: &[Step], message: String, hint: &str) {
        let d = self.origin.diag(severity, &self.object, path, message, hint);
        self.diags.push(d);
    }

    fn error(&mut self, path: &str, message: String, hint: &str) {
        self.at(Severity::Error, &document::steps(path), message, hint);
    }
}

/// Checks every CapacityBuffer and PodTemplate of `policy`, and its ClusterPolicy's headroom.
pub fn check(policy: &EffectivePolicy, diags: &mut Diagnostics) {
    for t in &policy.pod_templates {
        let object = format!("PodTemplate/{}", t.value.metadata.name);
        template(&t.value, &mut Report { origin: &t.origin, object, diags });
    }
    for b in &policy.capacity_buffers {
        let object = format!("CapacityBuffer/{}", b.value.metadata.name);
        buffer(b, policy, &mut Report { origin: &b.origin, object, diags });
    }
    if let Some(p) = &policy.cluster_policy
        && let Some(h) = &p.value.spec.headroom
    {
        let mut r = Report { origin: &p.origin, object: format!("ClusterPolicy/{}", p.value.metadata.name), diags };
        if let Some(pool) = &h.node_pool
            && policy.node_pool(pool).is_none()
        {
            let msg = format!("headroom names NodePool `{pool}`, which this cluster does not have");
            r.error("spec.headroom.nodePool", msg, "name one of the cluster's NodePools, or leave it unset");
        }
        if h.schedule.is_some() != h.duration.is_some() {
            let msg = "headroom needs both schedule and duration, or neither".to_string();
            r.error("spec.headroom", msg, "add duration: 10h beside schedule: \"0 8 * * mon-fri\"");
        }
        for (key, q) in [("cpu", &h.cpu), ("memory", &h.memory)] {
            if q.as_ref().is_some_and(|q| q.is_negative()) {
                r.error(&format!("spec.headroom.{key}"), format!("headroom {key} is negative"), "use 0 or more");
            }
        }
    }
}

fn template(t: &PodTemplate, r: &mut Report) {
    #[derive(serde::Deserialize)]
    struct Wrapped {
        #[allow(dead_code)]
        template: k8s_openapi::api::core::v1::PodTemplateSpec,
    }
    let value = serde_json::json!({ "template": t.template });
    if let Err(d) = document::typed::<Wrapped>(r.origin, &r.object, &value) {
        return r.diags.push(*d);
    }
    let Ok(spec) = t.spec() else { return };
    let Some(pod) = spec.spec.as_ref() else {
        let msg = "the template has no spec".to_string();
        return r.error("template", msg, "give the pod's spec: containers with resource requests");
    };
    if pod.containers.is_empty() {
        let msg = "the template has no containers".to_string();
        return r.error("template.spec", msg, "list the containers with their resource requests (check the spelling)");
    }
    for (field, text) in quantities(pod) {
        if super::quantity::Quantity::parse(&text).is_none() {
            let field = format!("template.spec.{field}");
            r.error(
                &field,
                format!("`{text}` is not a quantity"),
                "write a Kubernetes quantity such as 500m, 2 or 4Gi",
            );
        }
    }
}

/// Every resource quantity of a pod spec (containers, init containers, overhead), with its
/// field path.
fn quantities(pod: &k8s_openapi::api::core::v1::PodSpec) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let lists = [("containers", Some(&pod.containers)), ("initContainers", pod.init_containers.as_ref())];
    for (list, containers) in lists {
        for (i, c) in containers.into_iter().flatten().enumerate() {
            let Some(res) = &c.resources else { continue };
            for (part, map) in [("requests", &res.requests), ("limits", &res.limits)] {
                for (k, v) in map.iter().flatten() {
                    out.push((format!("{list}[{i}].resources.{part}.{k}"), v.0.clone()));
                }
            }
        }
    }
    for (k, v) in pod.overhead.iter().flatten() {
        out.push((format!("overhead.{k}"), v.0.clone()));
    }
    out
}

fn buffer(b: &Located<CapacityBuffer>, policy: &EffectivePolicy, r: &mut Report) {
    let spec = &b.value.spec;
    if b.value.api_version == ALPHA_API_VERSION {
        r.at(
            Severity::Warning,
            &document::steps("apiVersion"),
            format!(
                "{ALPHA_API_VERSION} is deprecated: Karpenter's CapacityBuffer CRD serves only v1beta1, and Cluster Autoscaler's still serves v1alpha1 but stores v1beta1"
            ),
            &format!("write apiVersion: {API_VERSION}; the fields are the same"),
        );
    }
    if !b.value.active() {
        let s = spec.provisioning_strategy.clone().unwrap_or_default();
        r.at(
            Severity::Warning,
            &document::steps("spec.provisioningStrategy"),
            format!("provisioning strategy `{s}` is ignored: capstan keeps no room for this buffer"),
            &format!("use {ACTIVE_CAPACITY} (the default) for capstan to act on it"),
        );
    }
    match (&spec.pod_template_ref, &spec.scalable_ref) {
        (Some(_), Some(_)) | (None, None) => r.error(
            "spec",
            "set exactly one of podTemplateRef and scalableRef".into(),
            "podTemplateRef names a PodTemplate of the repository; scalableRef a Deployment, StatefulSet or ReplicaSet",
        ),
        (Some(t), None) => {
            if spec.replicas.is_none() && spec.limits.is_none() {
                let msg = "a buffer with podTemplateRef needs replicas or limits".to_string();
                r.error("spec.podTemplateRef", msg, "add replicas: 1, or limits such as {cpu: \"4\"}");
            }
            let ns = b.value.namespace();
            if !policy.pod_templates.iter().any(|p| p.value.metadata.name == t.name && p.value.namespace() == ns) {
                r.error(
                    "spec.podTemplateRef.name",
                    format!("no PodTemplate `{}` in namespace `{ns}` in the repository", t.name),
                    "add a v1 PodTemplate beside the buffer (capacitybuffers/*.yaml), in the buffer's namespace",
                );
            }
        }
        (None, Some(s)) => {
            if !SCALABLE_KINDS.contains(&s.kind.as_str()) {
                let msg = format!("scalableRef kind `{}` is not supported", s.kind);
                r.error("spec.scalableRef.kind", msg, "use Deployment, StatefulSet or ReplicaSet");
            }
            match s.api_group.as_deref() {
                None | Some("apps") => {}
                Some("") => r.error(
                    "spec.scalableRef.apiGroup",
                    format!(
                        "scalableRef apiGroup \"\" is the core API group, which has no {}; the CRD reads an empty apiGroup as core, not apps",
                        s.kind
                    ),
                    "write apiGroup: apps",
                ),
                Some(g) => {
                    let msg = format!("scalableRef apiGroup `{g}` is not supported");
                    r.error("spec.scalableRef.apiGroup", msg, "use apps");
                }
            }
        }
    }
    if spec.percentage.is_some() && spec.scalable_ref.is_none() {
        let msg = "percentage applies only with scalableRef".to_string();
        r.error("spec.percentage", msg, "remove percentage, or name the workload in scalableRef");
    }
    for (field, n) in [("replicas", spec.replicas), ("percentage", spec.percentage)] {
        if n.is_some_and(|n| !(0..=i64::from(i32::MAX)).contains(&n)) {
            r.error(&format!("spec.{field}"), format!("{field} is out of range"), "use 0 to 2147483647");
        }
    }
    for (key, q) in spec.limits.iter().flatten() {
        if q.is_negative() {
            r.error(&format!("spec.limits.{key}"), format!("limit {key} is negative"), "use 0 or more");
        }
    }
    window(b, r);
}

fn window(b: &Located<CapacityBuffer>, r: &mut Report) {
    let notes = &b.value.metadata.annotations;
    let at = |key: &str| vec![Step::Key("metadata".into()), Step::Key("annotations".into()), Step::Key(key.into())];
    let schedule = notes.get(SCHEDULE_ANNOTATION);
    let duration = notes.get(DURATION_ANNOTATION);
    if let Some(s) = schedule
        && let Err(e) = CronSchedule::parse(s)
    {
        r.at(Severity::Error, &at(SCHEDULE_ANNOTATION), format!("invalid cron schedule `{s}`: {e}"), CRON_HINT);
    }
    if let Some(d) = duration
        && GoDuration::parse(d).is_none()
    {
        r.at(Severity::Error, &at(DURATION_ANNOTATION), format!("`{d}` is not a duration"), DURATION_HINT);
    }
    if schedule.is_some() != duration.is_some() {
        let (have, missing) = if schedule.is_some() {
            (SCHEDULE_ANNOTATION, DURATION_ANNOTATION)
        } else {
            (DURATION_ANNOTATION, SCHEDULE_ANNOTATION)
        };
        r.at(Severity::Error, &at(have), format!("{have} needs {missing} too"), "give both annotations, or neither");
    }
}

#[cfg(test)]
#[path = "buffer_checks_tests.rs"]
mod tests;
