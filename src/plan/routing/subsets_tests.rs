//! Which Deployments KubeSphere 3.3's DestinationRule controller makes subsets of, one rule
//! per row, against client routing's rule (versions with ready pods).

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use serde_json::{Value, json};

use super::*;

fn mesh_svc() -> Value {
    json!({
        "metadata": {"name": "reviews", "namespace": "demo",
            "labels": {"app": "reviews", "app.kubernetes.io/name": "bookinfo", "app.kubernetes.io/version": "v1"},
            "annotations": {"servicemesh.kubesphere.io/enabled": "true"}},
        "spec": {"selector": {"app": "reviews"}, "ports": [{"name": "http-web", "port": 9080}]}
    })
}

fn labels(version: &str) -> Value {
    json!({"app": "reviews", "app.kubernetes.io/name": "bookinfo", "app.kubernetes.io/version": "v1", "version": version})
}

/// A Deployment of `version` as a composed app has it: app labels on itself and its selector,
/// the mesh annotation, one ready replica.
fn deployment(version: &str) -> Value {
    json!({
        "metadata": {"name": format!("reviews-{version}"), "labels": labels(version),
            "annotations": {"servicemesh.kubesphere.io/enabled": "true"}},
        "spec": {"selector": {"matchLabels": labels(version)},
            "template": {"metadata": {"labels": labels(version)}}},
        "status": {"readyReplicas": 1}
    })
}

fn without(mut v: Value, path: &[&str]) -> Value {
    let (last, parents) = path.split_last().unwrap();
    let mut at = &mut v;
    for p in parents {
        at = &mut at[*p];
    }
    at.as_object_mut().unwrap().remove(*last);
    v
}

fn with(mut v: Value, path: &[&str], value: Value) -> Value {
    let mut at = &mut v;
    for p in path {
        at = &mut at[*p];
    }
    *at = value;
    v
}

fn kubesphere(svc: Value, v2: Value) -> Option<Vec<String>> {
    let svc: Service = serde_json::from_value(svc).unwrap();
    let ds: Vec<Deployment> =
        [deployment("v1"), v2].into_iter().map(|d| serde_json::from_value(d).unwrap()).collect();
    kubesphere_subset_versions(&svc, &ds)
}

#[test]
fn kubesphere_takes_a_version_only_with_app_labels_the_mesh_annotation_and_ready_replicas() {
    let both = Some(vec!["v1".to_string(), "v2".to_string()]);
    let v1 = Some(vec!["v1".to_string()]);
    let d = || deployment("v2");
    let cases: Vec<(&str, Value, Option<Vec<String>>)> = vec![
        ("composed app", d(), both.clone()),
        ("no app label", without(d(), &["metadata", "labels", "app"]), v1.clone()),
        (
            "no app.kubernetes.io/name label",
            without(d(), &["metadata", "labels", "app.kubernetes.io/name"]),
            v1.clone(),
        ),
        (
            "no app.kubernetes.io/version label",
            without(d(), &["metadata", "labels", "app.kubernetes.io/version"]),
            v1.clone(),
        ),
        (
            "an empty app.kubernetes.io/version label (present is enough)",
            with(d(), &["metadata", "labels", "app.kubernetes.io/version"], json!("")),
            both.clone(),
        ),
        (
            "app labels missing from the selector",
            with(d(), &["spec", "selector", "matchLabels"], json!({"app": "reviews", "version": "v2"})),
            v1.clone(),
        ),
        ("no mesh annotation", without(d(), &["metadata", "annotations"]), v1.clone()),
        (
            "mesh annotation not \"true\"",
            with(d(), &["metadata", "annotations", "servicemesh.kubesphere.io/enabled"], json!("false")),
            v1.clone(),
        ),
        ("no ready replicas", with(d(), &["status", "readyReplicas"], json!(0)), v1.clone()),
        ("no status", without(d(), &["status"]), v1.clone()),
        ("no version label", without(d(), &["metadata", "labels", "version"]), v1.clone()),
        ("an empty version label", with(d(), &["metadata", "labels", "version"], json!("")), v1.clone()),
        (
            // The Service selects by the Deployment's own labels, not its pods'.
            "selected by its pod labels only",
            with(d(), &["metadata", "labels", "app"], json!("other")),
            v1.clone(),
        ),
        ("a second Deployment of v1", deployment("v1"), Some(vec!["v1".to_string(), "v1".to_string()])),
    ];
    for (what, v2, want) in cases {
        assert_eq!(kubesphere(mesh_svc(), v2), want, "{what}");
    }
}

#[test]
fn kubesphere_leaves_the_destination_rule_of_a_service_outside_the_mesh_alone() {
    let cases = [
        ("no app label", without(mesh_svc(), &["metadata", "labels", "app"])),
        ("no app.kubernetes.io/name", without(mesh_svc(), &["metadata", "labels", "app.kubernetes.io/name"])),
        ("no mesh annotation", without(mesh_svc(), &["metadata", "annotations"])),
        ("no ports", with(mesh_svc(), &["spec", "ports"], json!([]))),
    ];
    for (what, svc) in cases {
        assert_eq!(kubesphere(svc, deployment("v2")), None, "{what}");
    }
}

#[test]
fn kubesphere_takes_every_deployment_for_a_service_with_an_empty_selector() {
    let svc = with(mesh_svc(), &["spec", "selector"], json!({}));
    let other = with(deployment("v2"), &["metadata", "labels", "app"], json!("other"));
    assert_eq!(kubesphere(svc, other), Some(vec!["v1".to_string(), "v2".to_string()]));
}

#[test]
fn client_routing_takes_a_version_by_its_ready_pods_whatever_its_deployment_says() {
    // Client routing's rule (README, "Routing modes"): versions with ready pods the Service
    // selects, so a Deployment without the mesh annotation still gets a subset.
    let svc: Service = serde_json::from_value(mesh_svc()).unwrap();
    let pod = |version: &str| -> k8s_openapi::api::core::v1::Pod {
        serde_json::from_value(json!({
            "metadata": {"name": format!("reviews-{version}-x"), "labels": {"app": "reviews", "version": version}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .unwrap()
    };
    assert_eq!(ready_versions_of_pods(&svc, &[pod("v2"), pod("v1")], Some("v1")), ["v1", "v2"]);
    let unannotated: Deployment =
        serde_json::from_value(without(deployment("v2"), &["metadata", "annotations"])).unwrap();
    let v1: Deployment = serde_json::from_value(deployment("v1")).unwrap();
    assert_eq!(kubesphere_subset_versions(&svc, &[v1, unannotated]), Some(vec!["v1".to_string()]));
}
