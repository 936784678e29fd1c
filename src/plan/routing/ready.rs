//! Which versions can take traffic: those with ready pods among what the Service selects, in
//! the DestinationRule's subset order (principal first), which decides the default route.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};

use crate::model::strategy::LABEL_VERSION;

/// Sorted, deduplicated, the principal moved to the front.
pub fn principal_first(mut versions: Vec<String>, principal: Option<&str>) -> Vec<String> {
    versions.sort();
    versions.dedup();
    if let Some(p) = principal
        && let Some(i) = versions.iter().position(|v| v == p)
    {
        let p = versions.remove(i);
        versions.insert(0, p);
    }
    versions
}

fn selects(svc: &Service, labels: Option<&std::collections::BTreeMap<String, String>>) -> bool {
    let selector = svc.spec.as_ref().and_then(|s| s.selector.as_ref());
    match (selector, labels) {
        (Some(sel), Some(l)) => !sel.is_empty() && sel.iter().all(|(k, v)| l.get(k) == Some(v)),
        _ => false,
    }
}

/// Versions of the Deployments the Service selects that report ready replicas.
pub fn ready_versions(svc: &Service, deployments: &[Deployment], principal: Option<&str>) -> Vec<String> {
    let out = deployments
        .iter()
        .filter(|d| d.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0) > 0)
        .filter(|d| {
            selects(
                svc,
                d.spec.as_ref().and_then(|s| s.template.metadata.as_ref()).and_then(|m| m.labels.as_ref()),
            )
        })
        .filter_map(|d| d.metadata.labels.as_ref()?.get(LABEL_VERSION).cloned())
        .filter(|v| !v.is_empty())
        .collect();
    principal_first(out, principal)
}

/// Versions with ready pods among the pods the Service selects. Pods, not Deployment status:
/// the status lags the pods by up to a controller sync, and a command that routes right after
/// a rollout must see the version it just watched become ready.
pub fn ready_versions_of_pods(svc: &Service, pods: &[Pod], principal: Option<&str>) -> Vec<String> {
    let out = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| selects(svc, p.metadata.labels.as_ref()))
        .filter(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .filter_map(|p| p.metadata.labels.as_ref()?.get(LABEL_VERSION).cloned())
        .filter(|v| !v.is_empty())
        .collect();
    principal_first(out, principal)
}
