//! Test gates: with `GRAYSCALE_FAILPOINT_DIR` set, a command that reaches the named point
//! creates `<dir>/<name>.reached` and waits until `<dir>/<name>.release` exists. The race tests
//! use them to hold one command between deriving and writing routing while another runs, so
//! the interleaving is chosen, not hoped for. Without the variable they cost nothing.
//!
//! Switches: with `<dir>/<name>.off` there, the command skips the named behaviour, so a test
//! can show what the cluster does without it (never a flag: users must not turn these off).

use std::path::PathBuf;
use std::time::Duration;

pub const BEFORE_ROUTING_WRITE: &str = "before-routing-write";
pub const BEFORE_TASK_CREATE: &str = "before-task-create";

/// The patch that sets the task's mirror on KubeSphere's VirtualService: the conformance suite
/// turns it off to show that KubeSphere's controller alone drops a new mirror or percentage.
pub const KUBESPHERE_MIRROR_REPAIR: &str = "kubesphere-mirror-repair";

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

/// Whether a test switched off the named behaviour.
pub fn switched_off(name: &str) -> bool {
    std::env::var_os("GRAYSCALE_FAILPOINT_DIR")
        .is_some_and(|dir| PathBuf::from(dir).join(format!("{name}.off")).exists())
}
