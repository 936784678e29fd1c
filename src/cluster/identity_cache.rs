//! A cache of task identities on disk, as kubectl caches discovery: with the names of a task's
//! Service, VirtualService and pods known before the first request, every read a verb relies on
//! goes out in one parallel round. Never trusted: the round's own task and Service confirm the
//! names, and a stale entry costs one more round, not a wrong answer.
//!
//! `$GRAYSCALE_CACHE_DIR`, else `~/.kube/cache/grayscale`; one file per cluster, namespace and
//! task. Any failure to read or write it is ignored: the cache only saves a round trip.

use std::path::PathBuf;

use crate::plan::identity::TaskIdentity;

fn root() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("GRAYSCALE_CACHE_DIR") {
        return Some(PathBuf::from(d));
    }
    let home = std::env::var_os("HOME").or_else(|| std::env::var_os("USERPROFILE"))?;
    Some(PathBuf::from(home).join(".kube").join("cache").join("grayscale"))
}

/// Keeps a file name to characters every file system takes.
fn safe(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' }).collect()
}

fn path(server: &str, ns: &str, task: &str) -> Option<PathBuf> {
    Some(root()?.join(safe(server)).join(safe(ns)).join(format!("{}.json", safe(task))))
}

pub fn load(server: &str, ns: &str, task: &str) -> Option<TaskIdentity> {
    let text = std::fs::read(path(server, ns, task)?).ok()?;
    serde_json::from_slice(&text).ok()
}

pub fn store(server: &str, id: &TaskIdentity) {
    let Some(p) = path(server, &id.namespace, &id.task) else { return };
    let Ok(text) = serde_json::to_vec(id) else { return };
    if let Some(dir) = p.parent()
        && std::fs::create_dir_all(dir).is_ok()
    {
        // Written aside and renamed, so a concurrent reader never sees half a file.
        let tmp = p.with_extension(format!("{}.tmp", std::process::id()));
        if std::fs::write(&tmp, text).is_ok() && std::fs::rename(&tmp, &p).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
}
