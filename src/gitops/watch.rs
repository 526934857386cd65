//! For a repository on this machine: watch its refs, so a commit is fetched the moment it lands.

use std::path::Path;
use std::sync::Arc;

use notify::{RecursiveMode, Watcher};
use tokio::sync::Notify;

/// Watches the Git directory of the repository at `path` (work tree or bare); every change to
/// its refs notifies `trigger`. Keep the returned watcher alive for as long as it should watch.
pub fn watch_refs(path: &Path, trigger: Arc<Notify>) -> Result<notify::RecommendedWatcher, String> {
    let repo = git2::Repository::open(path)
        .map_err(|e| format!("{} is not a Git repository: {}", path.display(), e.message()))?;
    let git_dir = repo.path().to_path_buf();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Reads (a fetch opening the refs) are access events; only changes count.
        if let Ok(e) = event
            && !matches!(e.kind, notify::EventKind::Access(_))
            && e.paths.iter().any(|p| !p.components().any(|c| c.as_os_str() == "objects"))
        {
            trigger.notify_one();
        }
    })
    .map_err(|e| format!("cannot watch {}: {e}", git_dir.display()))?;
    watcher.watch(&git_dir, RecursiveMode::NonRecursive).map_err(|e| e.to_string())?;
    watcher.watch(&git_dir.join("refs"), RecursiveMode::Recursive).map_err(|e| e.to_string())?;
    Ok(watcher)
}
