//! The take-over fast path: every port to the governor, written without reading the Service
//! or the VirtualService, so a take-over costs three requests (read the task, write its
//! governor, patch the VirtualService).
//!
//! The VirtualService records the resourceVersion of the task it was derived from. The
//! take-over's JSON patch first tests that record against the task version it read: if another
//! command routed a newer task state in between, the test fails, nothing is written, and the
//! caller falls back to the full derivation from fresh reads. So a delayed take-over never
//! overwrites the routing of a later change.

use serde_json::{Value, json};

use crate::model::istio::{HttpRoute, RouteDestination, TcpRoute, VirtualServiceSpec};
use crate::model::strategy::{Strategy, normalize_version};

/// The resourceVersion of the task the VirtualService was derived from.
pub const ANN_TASK_VERSION: &str = "grayscale.kubectl.io/task-version";

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

/// The JSON patch of the fast path: valid only while the VirtualService still routes the task
/// state `read_version` (the one the take-over changed); it then records `new_version`. Labels,
/// other annotations and the stash of user fields are left as they are.
pub fn governor_patch(s: &Strategy, governor: &str, read_version: &str, new_version: &str) -> Value {
    let spec = governor_spec(s, governor);
    json!([
        {"op": "test", "path": pointer(ANN_TASK_VERSION), "value": read_version},
        {"op": "add", "path": "/spec/hosts", "value": spec.hosts},
        {"op": "add", "path": "/spec/http", "value": spec.http},
        {"op": "add", "path": "/spec/tcp", "value": spec.tcp},
        {"op": "add", "path": pointer(ANN_TASK_VERSION), "value": new_version},
    ])
}
