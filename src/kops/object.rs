//! kOps objects in the store: where they live, how they are read (refusing anything that is not
//! a kOps v1alpha2 document of the expected kind) and how they are written (the YAML layout kOps
//! itself writes: keys sorted at every level, block style).

use serde_json::Value;

use crate::policy::Diagnostic;
use crate::policy::document::{self, Kind};
use crate::policy::kops::{Cluster, InstanceGroup};

/// Label on every InstanceGroup capstan writes; only IGs carrying it may be pruned.
pub const OWNER_LABEL: &str = "capstan.io/managed-by";
pub const OWNER_VALUE: &str = "capstan";
/// The label kOps puts on every InstanceGroup, naming its cluster.
pub const CLUSTER_LABEL: &str = "kops.k8s.io/cluster";

pub fn config_key(cluster: &str) -> String {
    format!("{cluster}/config")
}

pub fn instance_groups_prefix(cluster: &str) -> String {
    format!("{cluster}/instancegroup/")
}

pub fn instance_group_key(cluster: &str, ig: &str) -> String {
    format!("{cluster}/instancegroup/{ig}")
}

pub fn nodeup_script_key(cluster: &str, ig: &str) -> String {
    format!("{cluster}/igconfig/node/{ig}/nodeupscript.sh")
}

/// capstan's own objects live under here, and nowhere else.
pub fn own_prefix(cluster: &str) -> String {
    format!("{cluster}/capstan/")
}

pub fn status_key(cluster: &str) -> String {
    format!("{cluster}/capstan/status.json")
}

pub fn last_applied_key(cluster: &str) -> String {
    format!("{cluster}/capstan/instancegroups.applied.json")
}

pub fn backups_prefix(cluster: &str) -> String {
    format!("{cluster}/capstan/backups/instancegroup/")
}

pub fn backup_prefix(cluster: &str, ig: &str) -> String {
    format!("{}{ig}/", backups_prefix(cluster))
}

/// Why an object in the store cannot be used. It is reported with its key and left untouched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Corrupt(pub Box<Diagnostic>);

impl Corrupt {
    /// An object the store could not hand over (permissions, I/O), by key.
    pub fn unreadable(key: &str, e: &super::store::StoreError) -> Corrupt {
        let hint = "check the object's permissions (file mode, or the IAM policy for S3); it is left untouched until it can be read";
        Corrupt::at_key(key, format!("cannot be read: {e}"), hint)
    }

    fn at_key(key: &str, message: String, hint: &str) -> Corrupt {
        Corrupt(Box::new(Diagnostic {
            severity: crate::policy::Severity::Error,
            file: key.to_string(),
            line: 1,
            column: 1,
            object: None,
            field: None,
            message,
            hint: hint.to_string(),
        }))
    }
}

/// The largest object read as a kOps document. kOps writes InstanceGroups of a few kilobytes
/// and Cluster specs of a few dozen; an object this large is not one, and is not parsed. Never
/// more than the YAML reader takes, so its advice for policy files never shows for the store.
pub const MAX_OBJECT_BYTES: usize = {
    let parser = crate::policy::document::MAX_FILE_BYTES;
    if parser < 4 << 20 { parser } else { 4 << 20 }
};

/// Reads one document of `kind` from the object at `key`, as a JSON value.
fn read(key: &str, bytes: &[u8], kind: Kind) -> Result<Value, Corrupt> {
    if bytes.len() > MAX_OBJECT_BYTES {
        let message = format!(
            "is {} bytes, far larger than any kOps {} (at most {MAX_OBJECT_BYTES} bytes are read); it was not parsed",
            bytes.len(),
            kind.name()
        );
        let hint = match kind {
            Kind::InstanceGroup => format!(
                "restore it from its backup under {} or rewrite it with `kops edit ig`",
                key.replacen("/instancegroup/", "/capstan/backups/instancegroup/", 1) + "/"
            ),
            _ => "restore it from a backup of the state store or rewrite it with `kops edit cluster`".to_string(),
        };
        return Err(Corrupt::at_key(key, message, &hint));
    }
    let docs = document::parse_file(key, bytes).map_err(Corrupt)?;
    let mut docs: Vec<_> = docs.into_iter().filter(|d| !d.node.is_null()).collect();
    if docs.len() != 1 {
        let message =
            format!("holds {} YAML documents; kOps writes exactly one {} per object", docs.len(), kind.name());
        return Err(Corrupt::at_key(key, message, "restore it from a backup or with `kops edit`"));
    }
    let doc = docs.remove(0);
    let found = document::identify(&doc).map_err(Corrupt)?;
    if found != kind {
        let message = format!("holds kind {}; expected kind {}", found.name(), kind.name());
        return Err(Corrupt::at_key(key, message, "restore it from a backup or with `kops edit`"));
    }
    Ok(doc.value)
}

/// Reads an InstanceGroup and checks that its name matches its key.
pub fn read_instance_group(key: &str, bytes: &[u8]) -> Result<Value, Corrupt> {
    let value = read(key, bytes, Kind::InstanceGroup)?;
    if let Err(e) = serde_json::from_value::<InstanceGroup>(value.clone()) {
        return Err(Corrupt::at_key(key, format!("is not a valid InstanceGroup: {e}"), "fix it with `kops edit ig`"));
    }
    let name = value["metadata"]["name"].as_str().unwrap_or_default();
    let expected = key.rsplit('/').next().unwrap_or_default();
    if name != expected {
        let message = format!("holds InstanceGroup `{name}` but its key names `{expected}`");
        return Err(Corrupt::at_key(
            key,
            message,
            "kOps keeps each IG under its own name; rename or restore the object",
        ));
    }
    Ok(value)
}

/// Reads the kOps Cluster spec (`<cluster>/config`).
pub fn read_cluster(key: &str, bytes: &[u8]) -> Result<Cluster, Corrupt> {
    let value = read(key, bytes, Kind::Cluster)?;
    serde_json::from_value(value)
        .map_err(|e| Corrupt::at_key(key, format!("is not a valid Cluster: {e}"), "fix it with `kops edit cluster`"))
}

/// Writes a document the way kOps does (see [`super::emit`]).
pub fn write_yaml(value: &Value) -> Vec<u8> {
    super::emit::to_yaml(value).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const IG: &str =
        "apiVersion: kops.k8s.io/v1alpha2\nkind: InstanceGroup\nmetadata:\n  name: nodes\nspec:\n  role: Node\n";

    #[test]
    fn reads_and_refuses() {
        assert!(read_instance_group("c/instancegroup/nodes", IG.as_bytes()).is_ok());
        let wrong_name = read_instance_group("c/instancegroup/other", IG.as_bytes()).unwrap_err();
        assert!(wrong_name.to_string().contains("key names `other`"), "{wrong_name}");
        let not_yaml = read_instance_group("c/instancegroup/nodes", b"spec: [unclosed").unwrap_err();
        assert!(not_yaml.to_string().starts_with("c/instancegroup/nodes:"), "{not_yaml}");
        let api = IG.replace("v1alpha2", "v9");
        let e = read_instance_group("c/instancegroup/nodes", api.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("apiVersion"), "{e}");
        let kind = IG.replace("InstanceGroup", "Cluster");
        let e = read_instance_group("c/instancegroup/nodes", kind.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("holds kind Cluster"), "{e}");
    }

    #[test]
    fn writes_sorted_block_yaml() {
        let v: Value =
            serde_json::json!({"spec": {"subnets": ["b", "a"], "maxSize": 2}, "apiVersion": "x", "kind": "K"});
        let text = String::from_utf8(write_yaml(&v)).unwrap();
        assert_eq!(text, "apiVersion: x\nkind: K\nspec:\n  maxSize: 2\n  subnets:\n  - b\n  - a\n");
    }
}
