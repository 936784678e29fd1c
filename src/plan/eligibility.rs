//! Whether a Service can get a grayscale task, and what the task is built from
//! (kubesphere-compat section 1). Two shapes are accepted:
//! - KubeSphere: the Service carries `app`, `app.kubernetes.io/name`, `app.kubernetes.io/version`
//!   and `servicemesh.kubesphere.io/enabled: "true"`, as composed apps do;
//! - plain Istio: no KubeSphere labels; the Service has an `app` label or selects pods by `app`,
//!   and the Deployment's pods are labelled `app` and `version`.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use serde::Serialize;

use crate::error::Error;
use crate::model::strategy::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    Kubesphere,
    Istio,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Http,
    Tcp,
}

/// What an eligible Service gives the new task.
#[derive(Clone, Debug)]
pub struct Eligible {
    pub shape: Shape,
    pub app_label: String,
    /// `app.kubernetes.io/name` and `app.kubernetes.io/version`, on the KubeSphere shape.
    pub app_labels: BTreeMap<String, String>,
    pub old: Deployment,
    pub principal: String,
    pub protocol: Protocol,
}

fn labels(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> BTreeMap<String, String> {
    meta.labels.clone().unwrap_or_default()
}

fn ineligible(what: String, hint: impl Into<String>) -> Error {
    Error::Ineligible { what, hint: hint.into() }
}

/// The console's rule: the first port's name cut at the first `-`.
pub fn service_protocol(svc: &Service) -> Protocol {
    let first = svc.spec.as_ref().and_then(|s| s.ports.as_ref()).and_then(|p| p.first());
    let name = first.and_then(|p| p.name.as_deref()).unwrap_or("");
    if crate::plan::routing::is_http_like(name) { Protocol::Http } else { Protocol::Tcp }
}

pub fn version_of(d: &Deployment) -> Option<String> {
    labels(&d.metadata).get(LABEL_VERSION).cloned().filter(|v| !v.is_empty())
}

/// Checks the Service, its Deployments (those labelled `app=<the Service's app>`), the
/// Application when there is one, and the existing tasks.
pub fn check(
    svc: &Service,
    deployments: &[Deployment],
    application: Option<&serde_json::Value>,
    strategies: &[Strategy],
    new_version: &str,
) -> Result<Eligible, Error> {
    let name = svc.metadata.name.clone().unwrap_or_default();
    let ns = svc.metadata.namespace.clone().unwrap_or_default();
    let svc_labels = labels(&svc.metadata);
    let spec = svc.spec.clone().unwrap_or_default();
    if spec.ports.as_ref().is_none_or(|p| p.is_empty()) {
        return Err(ineligible(
            format!("Service {ns}/{name} has no ports"),
            "add the port the app serves to the Service",
        ));
    }
    let selector = spec.selector.clone().unwrap_or_default();
    let shape = if svc_labels.contains_key(LABEL_APP_NAME) { Shape::Kubesphere } else { Shape::Istio };
    let app_label = match svc_labels.get(LABEL_APP).or(selector.get(LABEL_APP)) {
        Some(a) => a.clone(),
        None => {
            return Err(ineligible(
                format!("Service {ns}/{name} has no `app` label and does not select pods by `app`"),
                format!("label it: kubectl label service {name} -n {ns} app={name}"),
            ));
        }
    };
    let mut app_labels = BTreeMap::new();
    if shape == Shape::Kubesphere {
        for l in [LABEL_APP, LABEL_APP_NAME, LABEL_APP_VERSION] {
            match svc_labels.get(l) {
                Some(v) => {
                    if l != LABEL_APP {
                        app_labels.insert(l.to_string(), v.clone());
                    }
                }
                None => {
                    return Err(ineligible(
                        format!(
                            "Service {ns}/{name} has the label {LABEL_APP_NAME} of a composed app but lacks {l}"
                        ),
                        format!(
                            "label it like the other services of the app: kubectl label service {name} -n {ns} {l}=..."
                        ),
                    ));
                }
            }
        }
        let enabled = svc.metadata.annotations.as_ref().and_then(|a| a.get(ANN_SERVICEMESH_ENABLED));
        if enabled.map(String::as_str) != Some("true") {
            return Err(ineligible(
                format!(
                    "Service {ns}/{name} does not have the annotation {ANN_SERVICEMESH_ENABLED}: \"true\""
                ),
                format!(
                    "enable application governance for it in the console, or: kubectl annotate service {name} -n {ns} {ANN_SERVICEMESH_ENABLED}=true"
                ),
            ));
        }
        if let Some(app) = application {
            let ann = &app["metadata"]["annotations"][ANN_SERVICEMESH_ENABLED];
            if ann.as_str() != Some("true") {
                let app_name = app["metadata"]["name"].as_str().unwrap_or("");
                return Err(ineligible(
                    format!("the composed app {app_name} does not have application governance enabled"),
                    format!("kubectl annotate application {app_name} -n {ns} {ANN_SERVICEMESH_ENABLED}=true"),
                ));
            }
        }
    }
    let selected = |d: &&Deployment| {
        let pod_labels =
            d.spec.as_ref().and_then(|s| s.template.metadata.as_ref()).map(labels).unwrap_or_default();
        !selector.is_empty() && selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v))
    };
    let workloads: Vec<&Deployment> = deployments.iter().filter(selected).collect();
    if workloads.is_empty() {
        return Err(ineligible(
            format!("Service {ns}/{name} selects no Deployment labelled app={app_label}"),
            "a grayscale release needs the current version as a Deployment whose labels include app and version, and whose pods the Service selects",
        ));
    }
    let versions: Vec<String> = workloads.iter().filter_map(|d| version_of(d)).collect();
    if versions.iter().any(|v| v == new_version) {
        return Err(ineligible(
            format!("version {new_version} of {app_label} already exists"),
            "choose another --version",
        ));
    }
    if let Some(s) = strategies
        .iter()
        .find(|s| s.service() == Some(name.as_str()) || s.labels().get(LABEL_APP) == Some(&app_label))
    {
        let task = s.metadata.name.clone().unwrap_or_default();
        return Err(ineligible(
            format!("Service {ns}/{name} already has the grayscale task {task} (one task per Service)"),
            format!("end it first: kubectl grayscale offline {task} -n {ns} --keep VERSION"),
        ));
    }
    if workloads.len() > 1 {
        return Err(ineligible(
            format!(
                "Service {ns}/{name} already serves several versions ({}) with no task",
                versions.join(", ")
            ),
            "scale the extra versions away or delete them so that one current version remains",
        ));
    }
    let old = workloads[0].clone();
    let old_name = old.metadata.name.clone().unwrap_or_default();
    let Some(principal) = version_of(&old) else {
        return Err(ineligible(
            format!("Deployment {ns}/{old_name} has no `version` label"),
            format!(
                "label the Deployment and its pod template with version, e.g. version=v1 (kubectl label deployment {old_name} -n {ns} version=v1, and the same under spec.template.metadata.labels)"
            ),
        ));
    };
    let tmpl_labels =
        old.spec.as_ref().and_then(|s| s.template.metadata.as_ref()).map(labels).unwrap_or_default();
    if tmpl_labels.get(LABEL_VERSION) != Some(&principal) {
        return Err(ineligible(
            format!("the pods of Deployment {ns}/{old_name} are not labelled version={principal}"),
            "add the version label to spec.template.metadata.labels so that Istio subsets can select the pods",
        ));
    }
    if shape == Shape::Kubesphere {
        let enabled = old.metadata.annotations.as_ref().and_then(|a| a.get(ANN_SERVICEMESH_ENABLED));
        if enabled.map(String::as_str) != Some("true") {
            return Err(ineligible(
                format!(
                    "Deployment {ns}/{old_name} does not have the annotation {ANN_SERVICEMESH_ENABLED}: \"true\", so KubeSphere would never route its versions"
                ),
                format!(
                    "enable application governance for it in the console, or: kubectl annotate deployment {old_name} -n {ns} {ANN_SERVICEMESH_ENABLED}=true"
                ),
            ));
        }
        let sel = old.spec.as_ref().and_then(|s| s.selector.match_labels.clone()).unwrap_or_default();
        let dl = labels(&old.metadata);
        for l in [LABEL_APP, LABEL_APP_NAME, LABEL_APP_VERSION] {
            if !dl.contains_key(l) || !sel.contains_key(l) {
                return Err(ineligible(
                    format!("Deployment {ns}/{old_name} lacks the label {l} in its labels or its selector"),
                    "KubeSphere only manages Deployments labelled like their composed app; recreate it from the console or add the label",
                ));
            }
        }
    }
    Ok(Eligible { shape, app_label, app_labels, old, principal, protocol: service_protocol(svc) })
}
