//! Requests per run, from the API server's audit log.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

pub struct Event {
    pub user_agent: String,
    pub received_micros: i64,
}

pub fn offset(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn micros(ts: &str) -> Option<i64> {
    let t: k8s_openapi::jiff::Timestamp = ts.parse().ok()?;
    Some(t.as_microsecond())
}

/// Events logged after `from`, one per request.
pub fn events(path: &Path, from: u64) -> Vec<Event> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(_) => return vec![],
    };
    f.seek(SeekFrom::Start(from)).unwrap();
    let mut text = String::new();
    f.read_to_string(&mut text).unwrap();
    let mut seen = std::collections::HashSet::new();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| seen.insert(e["auditID"].as_str().unwrap_or_default().to_string()))
        .filter_map(|e| {
            Some(Event {
                user_agent: e["userAgent"].as_str().unwrap_or_default().to_string(),
                received_micros: micros(e["requestReceivedTimestamp"].as_str()?)?,
            })
        })
        .collect()
}
