//! Which versions can take traffic: those with ready pods among what the Service selects, in
//! the DestinationRule's subset order (principal first), which decides the default route.
//! KubeSphere's own rule is narrower (`kubesphere_subset_versions`); client routing keeps the
//! pods' rule, because a version whose pods are ready takes traffic the moment a route names it.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};

use std::collections::BTreeMap;

use crate::model::strategy::{
    ANN_SERVICEMESH_ENABLED, LABEL_APP, LABEL_APP_NAME, LABEL_APP_VERSION, LABEL_VERSION,
};

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

const APP_LABELS: [&str; 3] = [LABEL_APP, LABEL_APP_NAME, LABEL_APP_VERSION];

fn app_component(labels: Option<&BTreeMap<String, String>>) -> bool {
    APP_LABELS.iter().all(|l| labels.is_some_and(|m| m.contains_key(*l)))
}

fn mesh_enabled(annotations: Option<&BTreeMap<String, String>>) -> bool {
    annotations.and_then(|a| a.get(ANN_SERVICEMESH_ENABLED)).is_some_and(|v| v == "true")
}

/// The versions KubeSphere 3.3's DestinationRule controller makes subsets of, one per
/// Deployment in the order given (KubeSphere's follows its cache, so it is not deterministic;
/// two Deployments of one version give the same subset twice). None: the controller leaves the
/// Service's DestinationRule alone (the Service lacks an app label, the mesh annotation or
/// ports). Unlike client routing it looks at Deployments, not pods: the Service's selector
/// against the Deployment's own labels (an empty selector takes every Deployment), the app
/// labels on those labels and on its selector (present, even empty), the mesh annotation on the
/// Deployment, and ready replicas in its status, which lag the pods.
pub fn kubesphere_subset_versions(svc: &Service, deployments: &[Deployment]) -> Option<Vec<String>> {
    let has_ports = svc.spec.as_ref().and_then(|s| s.ports.as_ref()).is_some_and(|p| !p.is_empty());
    if !app_component(svc.metadata.labels.as_ref())
        || !mesh_enabled(svc.metadata.annotations.as_ref())
        || !has_ports
    {
        return None;
    }
    let selector = svc.spec.as_ref().and_then(|s| s.selector.clone()).unwrap_or_default();
    let versions = deployments
        .iter()
        .filter(|d| {
            let labels = d.metadata.labels.as_ref();
            selector.iter().all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
                && app_component(labels)
                && app_component(d.spec.as_ref().and_then(|s| s.selector.match_labels.as_ref()))
                && d.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0) != 0
                && mesh_enabled(d.metadata.annotations.as_ref())
        })
        .filter_map(|d| d.metadata.labels.as_ref()?.get(LABEL_VERSION).cloned())
        .filter(|v| !v.is_empty())
        .collect();
    Some(versions)
}
