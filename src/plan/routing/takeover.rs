//! The take-over fast path: every port to the governor, written without reading the Service
//! or the VirtualService, so a take-over costs three requests (read the task, write its
//! governor, patch the VirtualService).
//!
//! The VirtualService records a stamp of the task state it was derived from: its governor,
//! policy and routes, and the id of the plugin's last write of it (so a change and its undo
//! never stamp alike, while a change put back as it was keeps its stamp). The
//! take-over's JSON patch first tests that stamp against the task state it read: if another
//! command routed another task state in between, the test fails, nothing is written, and the
//! caller falls back to the full derivation from fresh reads. So a delayed take-over never
//! overwrites the routing of a later change.

use serde_json::{Value, json};

use crate::model::istio::{HttpRoute, RouteDestination, TcpRoute, VirtualServiceSpec};
use crate::model::strategy::{Strategy, normalize_version};

/// The stamp of the task state the VirtualService was derived from.
pub const ANN_TASK_STATE: &str = "grayscale.kubectl.io/task-state";

/// Every write of a task by the plugin carries a new id here.
pub const ANN_WRITE_ID: &str = "grayscale.kubectl.io/write-id";

/// A short, stable fingerprint of the part of a task that routing follows, and of the write
/// that made it (FNV-1a; not a security measure, only a change detector).
pub fn task_stamp(s: &Strategy) -> String {
    let state = crate::plan::operate::state_of(s);
    let text = serde_json::to_string(&(state, s.annotation(ANN_WRITE_ID))).expect("task state serialises");
    let mut h: u64 = 0xcbf29ce484222325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

fn pointer(annotation: &str) -> String {
    format!("/metadata/annotations/{}", annotation.replace('~', "~0").replace('/', "~1"))
}

/// Port-less routes to the governor: Istio applies a route without a port to every port of the
/// host and keeps each request on its port.
pub fn governor_spec(s: &Strategy, governor: &str) -> VirtualServiceSpec {
    let svc = s.service().unwrap_or_default();
    let route = vec![RouteDestination::to(svc, &normalize_version(governor), 100)];
    VirtualServiceSpec {
        hosts: vec![svc.to_string()],
        http: vec![HttpRoute { route: route.clone(), ..HttpRoute::default() }],
        tcp: vec![TcpRoute { route, ..TcpRoute::default() }],
        ..VirtualServiceSpec::default()
    }
}

/// The JSON patch of the fast path: valid only while the VirtualService still routes `before`
/// (the task state the take-over changed); it then records `after`. Labels, other annotations
/// and the stash of user fields are left as they are.
pub fn governor_patch(before: &Strategy, after: &Strategy, governor: &str) -> Value {
    let spec = governor_spec(after, governor);
    json!([
        {"op": "test", "path": pointer(ANN_TASK_STATE), "value": task_stamp(before)},
        {"op": "add", "path": "/spec/hosts", "value": spec.hosts},
        {"op": "add", "path": "/spec/http", "value": spec.http},
        {"op": "add", "path": "/spec/tcp", "value": spec.tcp},
        {"op": "add", "path": pointer(ANN_TASK_STATE), "value": task_stamp(after)},
    ])
}
