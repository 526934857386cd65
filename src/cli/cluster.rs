//! `--cluster`: a cluster named by its folder in fleet.yaml (`dev`) or by its kOps name
//! (`dev.example.com`). An unknown name is a usage error that lists the known ones and
//! suggests the closest.

use crate::policy::{Snapshot, load};

/// The fleet name of the cluster `asked` names, or why there is none (ready to print).
/// Without a fleet.yaml, the folders under `clusters/` are the known names; with neither, the
/// name is taken as given and validation judges it.
pub(crate) fn resolve(snapshot: &Snapshot, asked: &str) -> Result<String, String> {
    let known = known(snapshot);
    if known.is_empty() {
        return Ok(asked.to_string());
    }
    if let Some(k) = known.iter().find(|k| k.name == asked || k.kops_name.as_deref() == Some(asked)) {
        return Ok(k.name.clone());
    }
    let listed: Vec<String> = known
        .iter()
        .map(|k| match &k.kops_name {
            Some(kops) => format!("{} (kOps {kops})", k.name),
            None => k.name.clone(),
        })
        .collect();
    let place = if known[0].kops_name.is_some() { "listed in fleet.yaml" } else { "a folder under clusters/" };
    let mut message =
        format!("--cluster `{asked}`: cluster `{asked}` is not {place}; known clusters: {}", listed.join(", "));
    if let Some(close) = closest(asked, &known) {
        message.push_str(&format!("; did you mean {close}?"));
    }
    Err(message)
}

/// A cluster the repository knows.
#[derive(Debug, Clone, PartialEq)]
struct Known {
    /// The folder under `clusters/`, as fleet.yaml lists it.
    name: String,
    /// The kOps cluster name, from the Fleet entry.
    kops_name: Option<String>,
}

/// The clusters of fleet.yaml (read alone: the rest of the repository is not needed), else the
/// folders under `clusters/`.
fn known(snapshot: &Snapshot) -> Vec<Known> {
    let mut fleet_only = Snapshot::default();
    for name in ["fleet.yaml", "fleet.yml"] {
        if let Some(bytes) = snapshot.get(name) {
            fleet_only.insert(name, bytes.to_vec());
        }
    }
    if let Some((fleet, _)) = load::load(&fleet_only).fleet {
        return fleet.spec.clusters.into_iter().map(|c| Known { name: c.name, kops_name: Some(c.kops_name) }).collect();
    }
    let mut folders: Vec<String> = snapshot
        .files()
        .filter_map(|(path, _)| path.strip_prefix("clusters/")?.split_once('/').map(|(c, _)| c.to_string()))
        .collect();
    folders.dedup();
    folders.sort();
    folders.dedup();
    folders.into_iter().map(|name| Known { name, kops_name: None }).collect()
}

/// The known name (fleet or kOps) nearest to `asked`, when near enough to be a slip.
fn closest(asked: &str, known: &[Known]) -> Option<String> {
    let names = known.iter().flat_map(|k| std::iter::once(&k.name).chain(k.kops_name.as_ref()));
    let (distance, name) = names.map(|n| (edit_distance(asked, n), n)).min_by_key(|(d, _)| *d)?;
    let limit = (asked.chars().count() / 3).max(2);
    (distance <= limit).then(|| name.clone())
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let here = row[j + 1];
            row[j + 1] = if ca == *cb { prev } else { 1 + prev.min(row[j]).min(here) };
            prev = here;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLEET: &str = "apiVersion: capstan.io/v1alpha1
kind: Fleet
metadata:
  name: test
spec:
  clusters:
    - name: dev
      kopsName: dev.example.com
      stateStore: file:///tmp/store
      region: us-east-1
    - name: prod
      kopsName: prod.example.com
      stateStore: file:///tmp/store
      region: us-east-1
      wave: 1
  waves:
    - wave: 0
      soakTime: 0s
    - wave: 1
      soakTime: 0s
";

    fn snapshot() -> Snapshot {
        let mut s = Snapshot::default();
        s.insert("fleet.yaml", FLEET.as_bytes().to_vec());
        s
    }

    #[test]
    fn a_fleet_name_or_a_kops_name_gives_the_fleet_name() {
        assert_eq!(resolve(&snapshot(), "dev").unwrap(), "dev");
        assert_eq!(resolve(&snapshot(), "prod.example.com").unwrap(), "prod");
    }

    #[test]
    fn an_unknown_name_lists_the_known_and_suggests_the_closest() {
        let e = resolve(&snapshot(), "dve").unwrap_err();
        assert!(e.contains("dev (kOps dev.example.com), prod (kOps prod.example.com)"), "{e}");
        assert!(e.ends_with("did you mean dev?"), "{e}");
        let far = resolve(&snapshot(), "nope").unwrap_err();
        assert!(!far.contains("did you mean"), "{far}");
    }

    #[test]
    fn without_a_fleet_the_cluster_folders_are_known() {
        let mut s = Snapshot::default();
        s.insert("clusters/dev/cluster.yaml", b"kind: Cluster".to_vec());
        s.insert("clusters/dev/nodepools/a.yaml", b"kind: NodePool".to_vec());
        assert_eq!(resolve(&s, "dev").unwrap(), "dev");
        assert!(resolve(&s, "deb").unwrap_err().contains("did you mean dev?"));
        assert_eq!(resolve(&Snapshot::default(), "any").unwrap(), "any");
    }

    #[test]
    fn edit_distance_counts_single_character_edits() {
        assert_eq!(edit_distance("dev", "dev"), 0);
        assert_eq!(edit_distance("dve", "dev"), 2);
        assert_eq!(edit_distance("prd", "prod"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
