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
    /// Folders and files that could not be read, with why; only [`Snapshot::from_dir_lenient`]
    /// records them instead of failing.
    unreadable: BTreeMap<String, String>,
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

    /// Paths below the root that could not be read, with why, in path order.
    pub fn unreadable(&self) -> impl Iterator<Item = (&str, &str)> {
        self.unreadable.iter().map(|(p, e)| (p.as_str(), e.as_str()))
    }

    /// Reads the YAML files under `root`, skipping hidden entries such as `.git`. A folder or
    /// file that cannot be read is an error naming it.
    pub fn from_dir(root: &Path) -> io::Result<Snapshot> {
        read_root(root, false)
    }

    /// Like [`Snapshot::from_dir`], but a folder or file below the root that cannot be read is
    /// recorded in [`Snapshot::unreadable`] and skipped, so that the caller decides whether it
    /// matters (validation of one cluster does not need another cluster's folder).
    pub fn from_dir_lenient(root: &Path) -> io::Result<Snapshot> {
        read_root(root, true)
    }
}

fn read_root(root: &Path, lenient: bool) -> io::Result<Snapshot> {
    let mut snapshot = Snapshot::default();
    let meta = std::fs::metadata(root)?;
    if !meta.is_dir() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a directory"));
    }
    let entries = std::fs::read_dir(root).and_then(|d| d.collect::<Result<Vec<_>, _>>())?;
    walk(entries, "", &mut snapshot, lenient)?;
    Ok(snapshot)
}

/// Records `rel` as unreadable, or fails naming it.
fn unreadable(out: &mut Snapshot, rel: &str, e: io::Error, lenient: bool) -> io::Result<()> {
    if !lenient {
        return Err(io::Error::new(e.kind(), format!("{rel}: {e}")));
    }
    out.unreadable.insert(rel.to_string(), e.to_string());
    Ok(())
}

fn walk(mut entries: Vec<std::fs::DirEntry>, prefix: &str, out: &mut Snapshot, lenient: bool) -> io::Result<()> {
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let rel = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
        let kind = match entry.file_type() {
            Ok(kind) => kind,
            Err(e) => {
                unreadable(out, &rel, e, lenient)?;
                continue;
            }
        };
        if kind.is_dir() {
            match std::fs::read_dir(entry.path()).and_then(|d| d.collect::<Result<Vec<_>, _>>()) {
                Ok(children) => walk(children, &rel, out, lenient)?,
                Err(e) => unreadable(out, &rel, e, lenient)?,
            }
        } else if is_yaml(&name) {
            if out.files.len() >= MAX_FILES {
                return Err(io::Error::other(format!("more than {MAX_FILES} YAML files")));
            }
            match std::fs::read(entry.path()) {
                Ok(bytes) => out.insert(rel, bytes),
                Err(e) => unreadable(out, &rel, e, lenient)?,
            }
        }
    }
    Ok(())
}

pub fn is_yaml(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml")
}
