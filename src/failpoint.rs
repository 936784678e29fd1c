//! Test gates: with `GRAYSCALE_FAILPOINT_DIR` set, a command that reaches the named point
//! creates `<dir>/<name>.reached` and waits until `<dir>/<name>.release` exists. The race tests
//! use them to hold one command between deriving and writing routing while another runs, so
//! the interleaving is chosen, not hoped for. Without the variable they cost nothing.

use std::path::PathBuf;
use std::time::Duration;

pub const BEFORE_ROUTING_WRITE: &str = "before-routing-write";
pub const BEFORE_TASK_CREATE: &str = "before-task-create";

/// Before step N of a gradual shift reads the task for its write: `before-step-N`.
pub fn before_step(n: usize) -> String {
    format!("before-step-{n}")
}

pub async fn gate(name: &str) {
    let Some(dir) = std::env::var_os("GRAYSCALE_FAILPOINT_DIR").map(PathBuf::from) else { return };
    let _ = std::fs::write(dir.join(format!("{name}.reached")), b"");
    let release = dir.join(format!("{name}.release"));
    while !release.exists() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
