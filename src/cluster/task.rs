//! Reading a task and writing a change of it: the journal entry, a new write id, and the
//! resourceVersion precondition, so a concurrent change is never overwritten silently.

use super::Kube;
use crate::error::{Error, Result};
use crate::model::strategy::Strategy;
use crate::plan::journal;
use crate::plan::operate::{self, TaskState};
use crate::plan::routing;

pub async fn get_task(kube: &Kube, ns: &str, name: &str) -> Result<Strategy> {
    kube.get::<Strategy>(ns, name).await?.ok_or_else(|| missing_task(ns, name))
}

pub fn missing_task(ns: &str, name: &str) -> Error {
    Error::missing(
        "task",
        ns,
        name,
        format!("list the tasks with: kubectl grayscale list -n {ns} (or -A for every namespace)"),
    )
}

/// How the journal records a change.
#[derive(Clone, Copy, Debug)]
pub enum Journal<'a> {
    Push(&'a str),
    /// Undo: the last entry is consumed, not added to.
    Pop,
}

impl Journal<'_> {
    pub fn verb(&self) -> &str {
        match self {
            Journal::Push(v) => v,
            Journal::Pop => "undo",
        }
    }
}

/// Unique per write: the time and the process.
pub fn new_write_id() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!("{}-{}", now.as_nanos(), std::process::id())
}

/// The merge patch that writes `to` with its journal entry and write id `id`, guarded by the
/// task's resourceVersion.
pub fn change_patch(
    s: &Strategy,
    to: &TaskState,
    journal: Journal<'_>,
    by: &str,
    id: &str,
) -> serde_json::Value {
    let mut entries = journal::read(s);
    match journal {
        Journal::Push(action) => {
            let entry = journal::Entry {
                at: k8s_openapi::jiff::Timestamp::now().to_string(),
                by: by.to_string(),
                action: action.to_string(),
                from: operate::state_of(s),
                to: to.clone(),
            };
            entries = journal::push(entries, entry);
        }
        Journal::Pop => {
            entries.pop();
        }
    }
    let mut annotations = journal::annotation(&entries);
    annotations[routing::ANN_WRITE_ID] = serde_json::Value::String(id.to_string());
    operate::merge_patch(s, to, annotations)
}

/// Writes a change: the task as written, or None when the outcome is not known (a conflict, a
/// lost answer, a 500 or 504): the caller then reads the task again and looks for the write id
/// before it computes anything again.
pub async fn write_change(
    kube: &Kube,
    ns: &str,
    name: &str,
    patch: &serde_json::Value,
) -> Result<Option<Strategy>> {
    match kube.merge_patch::<Strategy>(ns, name, patch).await {
        Ok(after) => Ok(Some(after)),
        // A 503 retried after the write was stored ends in a conflict with itself; a lost
        // answer or a 500/504 may hide a stored write: the write id decides, never a guess.
        Err(e) if e.answer_lost() || matches!(e, Error::Conflict { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}
