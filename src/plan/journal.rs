//! The task's journal of routing changes, kept in one annotation on the Strategy (the console
//! keeps annotations it does not know): when, who as far as the client knows, what, from what
//! to what. Bounded to the last `KEEP` entries.

use serde::{Deserialize, Serialize};

use super::operate::TaskState;
use crate::model::strategy::Strategy;

pub const ANN_HISTORY: &str = "grayscale.kubectl.io/history";
pub const KEEP: usize = 20;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Entry {
    pub at: String,
    pub by: String,
    pub action: String,
    pub from: TaskState,
    pub to: TaskState,
}

pub fn read(s: &Strategy) -> Vec<Entry> {
    s.annotation(ANN_HISTORY).and_then(|t| serde_json::from_str(t).ok()).unwrap_or_default()
}

/// The journal after `entry`, oldest first, at most `KEEP` long.
pub fn push(mut entries: Vec<Entry>, entry: Entry) -> Vec<Entry> {
    entries.push(entry);
    let excess = entries.len().saturating_sub(KEEP);
    entries.drain(..excess);
    entries
}

pub fn annotation(entries: &[Entry]) -> serde_json::Value {
    serde_json::json!({ ANN_HISTORY: serde_json::to_string(entries).expect("journal serialises") })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: usize) -> Entry {
        Entry {
            at: n.to_string(),
            by: "me".into(),
            action: "shift".into(),
            from: TaskState::default(),
            to: TaskState::default(),
        }
    }

    #[test]
    fn the_journal_keeps_the_last_twenty_changes() {
        let mut j = Vec::new();
        for n in 0..25 {
            j = push(j, entry(n));
        }
        assert_eq!(j.len(), KEEP);
        assert_eq!(j[0].at, "5");
        assert_eq!(j[KEEP - 1].at, "24");
    }
}
