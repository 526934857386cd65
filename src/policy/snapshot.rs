//! A config repository as plain data: relative path → bytes.
//!
//! Loading works on a snapshot so that the same code reads a folder on disk or a commit's tree
//! straight from Git's object database.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

/// Most files read from one repository.
pub const MAX_FILES: usize = 20_000;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    files: BTreeMap<String, Vec<u8>>,
}

impl Snapshot {
    pub fn insert(&mut self, path: impl Into<String>, bytes: impl Into<Vec<u8>>) {
        self.files.insert(path.into(), bytes.into());
    }

    pub fn get(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(Vec::as_slice)
    }

    pub fn files(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.files.iter().map(|(p, b)| (p.as_str(), b.as_slice()))
    }

    /// A digest of every path and its content, for naming a revision read from a folder.
    pub fn digest(&self) -> String {
        let mut all = Vec::new();
        for (path, bytes) in &self.files {
            all.extend_from_slice(path.as_bytes());
            all.push(0);
            all.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            all.extend_from_slice(bytes);
        }
        format!("fnv64:{:016x}", crate::digest::fnv64(&all))
    }

    /// Reads the YAML files under `root`, skipping hidden entries such as `.git`.
    pub fn from_dir(root: &Path) -> io::Result<Snapshot> {
        let mut snapshot = Snapshot::default();
        let meta = std::fs::metadata(root)?;
        if !meta.is_dir() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a directory"));
        }
        walk(root, "", &mut snapshot)?;
        Ok(snapshot)
    }
}

fn walk(dir: &Path, prefix: &str, out: &mut Snapshot) -> io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let rel = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(&entry.path(), &rel, out)?;
        } else if is_yaml(&name) {
            if out.files.len() >= MAX_FILES {
                return Err(io::Error::other(format!("more than {MAX_FILES} YAML files")));
            }
            out.insert(rel, std::fs::read(entry.path())?);
        }
    }
    Ok(())
}

pub fn is_yaml(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml")
}
