//! One line of truth per pod: what state it is in and whether that state is a failure. Pure:
//! the rollout display, the health gate and the task view all classify pods here.

use k8s_openapi::api::core::v1::Pod;
use serde::Serialize;

/// Waiting reasons that do not resolve by themselves.
pub const FAILURE_REASONS: [&str; 8] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
    "Unschedulable",
];

#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PodView {
    pub name: String,
    pub version: String,
    pub phase: String,
    /// The most telling state: Ready, Running, ContainerCreating, ImagePullBackOff...
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub ready: bool,
    pub restarts: i32,
    pub failing: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

pub fn pod_view(p: &Pod) -> PodView {
    let name = p.metadata.name.clone().unwrap_or_default();
    let version = p.metadata.labels.as_ref().and_then(|l| l.get("version")).cloned().unwrap_or_default();
    let status = p.status.clone().unwrap_or_default();
    let phase = status.phase.clone().unwrap_or_else(|| "Pending".into());
    let ready = status.conditions.iter().flatten().any(|c| c.type_ == "Ready" && c.status == "True");
    let statuses: Vec<_> = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten())
        .collect();
    let restarts = statuses.iter().map(|s| s.restart_count).sum();
    let waiting = statuses
        .iter()
        .filter_map(|s| s.state.as_ref().and_then(|st| st.waiting.as_ref()))
        .find(|w| w.reason.is_some());
    let unschedulable =
        status.conditions.iter().flatten().find(|c| c.type_ == "PodScheduled" && c.status == "False");
    let (state, message) = if p.metadata.deletion_timestamp.is_some() {
        ("Terminating".to_string(), None)
    } else if let Some(c) = unschedulable {
        (c.reason.clone().unwrap_or_else(|| "Pending".into()), c.message.clone())
    } else if let Some(w) = waiting {
        (w.reason.clone().unwrap_or_default(), w.message.clone())
    } else if ready {
        ("Ready".to_string(), None)
    } else if phase == "Running" {
        ("Running".to_string(), Some("not ready yet".into()))
    } else {
        (phase.clone(), None)
    };
    let failing = FAILURE_REASONS.contains(&state.as_str());
    PodView {
        name,
        version,
        phase,
        state,
        message,
        ready,
        restarts,
        failing,
        created_at: p.metadata.creation_timestamp.as_ref().map(|t| t.0.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(
            json!({"metadata": {"name": "p", "labels": {"version": "v2"}}, "status": status}),
        )
        .unwrap()
    }

    #[test]
    fn a_waiting_reason_names_the_state_and_marks_failures() {
        let v = pod_view(&pod(json!({"phase": "Pending", "containerStatuses": [{
            "name": "c", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"x\""}}}]})));
        assert_eq!(v.state, "ImagePullBackOff");
        assert!(v.failing);
        assert_eq!(v.version, "v2");
    }

    #[test]
    fn a_ready_pod_is_ready() {
        let v =
            pod_view(&pod(json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]})));
        assert_eq!(v.state, "Ready");
        assert!(v.ready && !v.failing);
    }

    #[test]
    fn an_unschedulable_pod_says_why() {
        let v = pod_view(&pod(
            json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
            "reason": "Unschedulable", "message": "0/1 nodes are available"}]}),
        ));
        assert_eq!(v.state, "Unschedulable");
        assert!(v.failing);
    }
}
