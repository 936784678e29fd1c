//! What `create` tells a user whose rollout stopped: how to look, fix, finish or undo.

use crate::plan::create::Plan;
use crate::task::request::CreateRequest;

pub(super) fn interrupted_hint(p: &Plan, req: &CreateRequest) -> String {
    let ns = &p.namespace;
    format!(
        "follow it with: kubectl grayscale status {n} -n {ns}; when the new version is ready, route it with: kubectl grayscale sync {n} -n {ns}",
        n = req.name
    )
}

pub(super) fn failure_hint(p: &Plan, req: &CreateRequest, pod: &str) -> String {
    let ns = &p.namespace;
    let deploy = p.deployment.metadata.name.clone().unwrap_or_default();
    let inspect = if pod.is_empty() {
        format!("kubectl describe deployment {deploy} -n {ns}")
    } else {
        format!("kubectl describe pod {pod} -n {ns}")
    };
    format!(
        "the task {n} stays and traffic stays on {old}. Inspect: {inspect}. Fix the image: kubectl set image deployment/{deploy} CONTAINER=IMAGE -n {ns}, then kubectl grayscale sync {n} -n {ns}. Or end the task keeping {old}: kubectl grayscale offline {n} --keep {old} -n {ns}",
        n = req.name,
        old = p.principal
    )
}
