//! `plan::create` case by case: every eligibility rule with its message, and what is written.

use serde_json::{Value, json};

use super::*;
use crate::model::strategy::TaskType;
use crate::task::request::{CreateFlags, build};

fn request(t: TaskType, extra: impl FnOnce(&mut CreateFlags)) -> CreateRequest {
    let mut f = CreateFlags {
        name: Some("rc".into()),
        service: Some("reviews".into()),
        version: Some("v2".into()),
        ..CreateFlags::default()
    };
    extra(&mut f);
    build(t, &f, None).expect("a valid request")
}

const KS_LABELS: &str =
    r#"{"app": "reviews", "app.kubernetes.io/name": "bookinfo", "app.kubernetes.io/version": "v1"}"#;

fn labels(extra: Value) -> Value {
    let mut l: Value = serde_json::from_str(KS_LABELS).unwrap();
    for (k, v) in extra.as_object().unwrap() {
        l[k] = v.clone();
    }
    l
}

fn service(port: &str) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": "reviews", "namespace": "demo", "labels": labels(json!({})),
            "annotations": {"servicemesh.kubesphere.io/enabled": "true"}},
        "spec": {"selector": labels(json!({})), "ports": [{"name": port, "port": 9080, "protocol": "TCP"}]}
    }))
    .unwrap()
}

fn deployment(name: &str, version: &str, ready: i32) -> Deployment {
    let l = labels(json!({"version": version}));
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "demo", "labels": l,
            "annotations": {"servicemesh.kubesphere.io/enabled": "true"}},
        "spec": {"replicas": 3, "selector": {"matchLabels": l},
            "template": {"metadata": {"labels": l}, "spec": {"containers": [{"name": "reviews", "image": "reviews:1"}]}}},
        "status": {"readyReplicas": ready}
    }))
    .unwrap()
}

fn application() -> Value {
    json!({"metadata": {"name": "bookinfo", "annotations": {"servicemesh.kubesphere.io/enabled": "true",
        "app.kubernetes.io/icon": "/assets/bookinfo.svg"}}})
}

fn observed() -> Observed {
    Observed {
        namespace: "demo".into(),
        service: service("http-web"),
        deployments: vec![deployment("reviews-v1", "v1", 3)],
        strategies: vec![],
        application: Some(application()),
        virtual_service: None,
        ..Observed::default()
    }
}

#[test]
fn routing_api_follows_what_routes_the_service_and_never_mixes_both_kinds() {
    use super::{RouteApiChoice as A, routing_api};
    let vs: VirtualService = serde_json::from_value(json!({"metadata": {"name": "reviews"}})).unwrap();
    let route = |n: &str| vec![n.to_string()];
    let name = observed().service.metadata.name.clone().unwrap();
    // (--routing, VirtualService, HTTPRoutes with the Service as parent, served, ambient, choice)
    type Case<'a> = (RoutingChoice, Option<&'a VirtualService>, Vec<String>, bool, bool, Result<A, &'a str>);
    let cases: Vec<Case> = vec![
        (RoutingChoice::Auto, None, vec![], true, false, Ok(A::Client)),
        (RoutingChoice::Auto, None, route(&name), true, false, Ok(A::Gateway)),
        (RoutingChoice::Auto, None, vec![], true, true, Ok(A::Gateway)),
        // Ambient, but HTTPRoute not served: the VirtualService is all there is.
        (RoutingChoice::Auto, None, vec![], false, true, Ok(A::Client)),
        (
            RoutingChoice::Auto,
            Some(&vs),
            route(&name),
            true,
            false,
            Err("has both VirtualService reviews and HTTPRoute"),
        ),
        (
            RoutingChoice::GatewayApi,
            Some(&vs),
            vec![],
            true,
            false,
            Err("which VirtualService reviews routes"),
        ),
        (RoutingChoice::GatewayApi, None, vec![], false, false, Err("does not serve Gateway API")),
        (RoutingChoice::Client, None, route(&name), true, false, Err("which HTTPRoute")),
        (RoutingChoice::Auto, None, route("other"), true, false, Err("HTTPRoute other already routes")),
        (RoutingChoice::GatewayApi, None, vec![], true, false, Ok(A::Gateway)),
        (RoutingChoice::Kubesphere, Some(&vs), vec![], true, false, Ok(A::Kubesphere)),
    ];
    // Ambient without a waypoint: the route is written, and the user is told it will not apply.
    let o = Observed { gateway_served: true, ambient: true, ..observed() };
    let p = create(&canary(), o, RoutingChoice::Auto).unwrap();
    assert!(p.gateway && p.warnings.iter().any(|w| w.contains("no waypoint")), "{:?}", p.warnings);
    let o = Observed { gateway_served: true, ambient: true, waypoint: Some("wp".into()), ..observed() };
    assert!(create(&canary(), o, RoutingChoice::Auto).unwrap().warnings.is_empty());
    for (choice, vs, routes, served, ambient, want) in cases {
        let o = Observed {
            virtual_service: vs.cloned(),
            routes_with_parent: routes.clone(),
            gateway_served: served,
            ambient,
            ..observed()
        };
        match (routing_api(choice, &o), want) {
            (Ok(got), Ok(w)) => assert_eq!(got, w, "{choice:?} {routes:?}"),
            (Err(e), Err(w)) => assert!(e.to_string().contains(w), "{e}"),
            (got, want) => panic!("{choice:?} {routes:?}: {got:?} != {want:?}"),
        }
    }
}

fn refused(req: &CreateRequest, o: Observed) -> String {
    let e = create(req, o, RoutingChoice::Client).expect_err("refused");
    assert_eq!(e.exit_code(), 2, "{e}");
    format!("{e} / {}", e.hint().unwrap_or_default())
}

fn canary() -> CreateRequest {
    request(TaskType::Canary, |f| f.weight = Some(20))
}

#[test]
fn an_eligible_canary_plans_the_strategy_and_the_deployment() {
    let p = create(&canary(), observed(), RoutingChoice::Auto).unwrap();
    assert!(p.client_routing);
    assert_eq!(p.principal, "v1");
    assert_eq!(p.deployment.metadata.name.as_deref(), Some("reviews-v2"));
    assert_eq!(p.strategy.annotation(ANN_ICON), Some("/assets/bookinfo.svg"));
    assert_eq!(p.old_ready, ["v1"]);
    let r = p.initial_routing().unwrap();
    assert_eq!(r.subsets, ["v1"]);
}

#[test]
fn an_app_that_is_not_the_services_is_refused() {
    let req = request(TaskType::Canary, |f| f.app = Some("shop".into()));
    assert!(refused(&req, observed()).contains("belongs to the composed app bookinfo, not shop"));
}

#[test]
fn a_named_app_that_does_not_exist_is_refused() {
    let req = request(TaskType::Canary, |f| f.app = Some("bookinfo".into()));
    let o = Observed { application: None, ..observed() };
    assert!(refused(&req, o).contains("the composed app bookinfo does not exist"));
}

#[test]
fn a_task_name_in_use_is_refused() {
    let mut o = observed();
    o.strategies.push(
        serde_json::from_value(
            json!({"metadata": {"name": "rc"}, "spec": {"template": {"spec": {"hosts": ["other"]}}}}),
        )
        .unwrap(),
    );
    assert!(refused(&canary(), o).contains("a task named rc already exists"));
}

#[test]
fn a_second_task_for_the_service_is_refused() {
    let mut o = observed();
    o.strategies.push(
        serde_json::from_value(json!({"metadata": {"name": "first", "labels": {"app": "reviews"}},
        "spec": {"template": {"spec": {"hosts": ["reviews"]}}}}))
        .unwrap(),
    );
    assert!(refused(&canary(), o).contains("already has the grayscale task first (one task per Service)"));
}

#[test]
fn a_taken_deployment_name_is_refused() {
    let mut o = observed();
    let mut other = deployment("reviews-v2", "x", 0);
    other.metadata.labels = Some([("app".to_string(), "other".to_string())].into());
    o.deployments.push(other);
    assert!(refused(&canary(), o).contains("Deployment demo/reviews-v2 already exists"));
}

#[test]
fn request_parameters_on_a_tcp_service_are_refused() {
    let req = request(TaskType::Canary, |f| f.headers = vec!["x-beta=1".into()]);
    let o = Observed { service: service("mysql"), ..observed() };
    assert!(refused(&req, o).contains("is TCP (its first port is not named http-, http2- or grpc-)"));
}

#[test]
fn mirroring_a_tcp_service_is_refused() {
    let req = request(TaskType::Mirror, |_| {});
    let o = Observed { service: service("tcp-db"), ..observed() };
    assert!(refused(&req, o).contains("traffic mirroring is HTTP only"));
}

#[test]
fn a_tcp_canary_by_ratio_is_planned() {
    let o = Observed { service: service("mysql"), ..observed() };
    let p = create(&canary(), o, RoutingChoice::Client).unwrap();
    assert!(p.strategy.spec.template.spec.http.is_empty());
    assert_eq!(p.strategy.spec.template.spec.tcp[0].route[1].weight, Some(20));
}

#[test]
fn a_service_without_ports_is_refused() {
    let mut o = observed();
    o.service.spec.as_mut().unwrap().ports = Some(vec![]);
    assert!(refused(&canary(), o).contains("has no ports"));
}

#[test]
fn a_service_without_the_mesh_annotation_is_refused() {
    let mut o = observed();
    o.service.metadata.annotations = None;
    assert!(refused(&canary(), o).contains("servicemesh.kubesphere.io/enabled"));
}

#[test]
fn an_app_without_governance_is_refused() {
    let o = Observed {
        application: Some(json!({"metadata": {"name": "bookinfo", "annotations": {}}})),
        ..observed()
    };
    assert!(refused(&canary(), o).contains("does not have application governance enabled"));
}

#[test]
fn a_half_labelled_kubesphere_service_is_refused() {
    let mut o = observed();
    o.service.metadata.labels.as_mut().unwrap().remove("app.kubernetes.io/version");
    assert!(refused(&canary(), o).contains("lacks app.kubernetes.io/version"));
}

#[test]
fn a_service_selecting_no_deployment_is_refused() {
    let o = Observed { deployments: vec![], ..observed() };
    assert!(refused(&canary(), o).contains("selects no Deployment labelled app=reviews"));
}

#[test]
fn an_existing_version_is_refused() {
    let o = Observed { deployments: vec![deployment("reviews-v1", "v2", 3)], ..observed() };
    assert!(refused(&canary(), o).contains("version v2 of reviews already exists"));
}

#[test]
fn two_serving_versions_without_a_task_are_refused() {
    let mut o = observed();
    o.deployments.push(deployment("reviews-v3", "v3", 1));
    assert!(refused(&canary(), o).contains("already serves several versions (v1, v3) with no task"));
}

#[test]
fn a_deployment_without_the_app_labels_in_its_selector_is_refused() {
    let mut o = observed();
    let d = &mut o.deployments[0];
    d.spec.as_mut().unwrap().selector.match_labels.as_mut().unwrap().remove("app.kubernetes.io/name");
    assert!(
        refused(&canary(), o)
            .contains("lacks the label app.kubernetes.io/name in its labels or its selector")
    );
}

#[test]
fn a_plain_istio_service_needs_no_app_and_no_annotation() {
    let mut o = observed();
    o.service.metadata.labels = Some([("app".to_string(), "reviews".to_string())].into());
    o.service.metadata.annotations = None;
    o.service.spec.as_mut().unwrap().selector = Some([("app".to_string(), "reviews".to_string())].into());
    o.application = None;
    let p = create(&canary(), o, RoutingChoice::Auto).unwrap();
    assert_eq!(p.strategy.labels().get("app").map(String::as_str), Some("reviews"));
    assert!(p.strategy.annotation(ANN_ICON).is_none());
}

#[test]
fn a_virtual_service_written_by_kubesphere_selects_kubesphere_routing() {
    let vs: VirtualService = serde_json::from_value(json!({"metadata": {"name": "reviews",
        "managedFields": [{"manager": "controller-manager", "operation": "Update"}]}}))
    .unwrap();
    let o = Observed { virtual_service: Some(vs), ..observed() };
    let p = create(&canary(), o.clone(), RoutingChoice::Auto).unwrap();
    assert!(!p.client_routing);
    assert!(p.initial_routing().is_none());
    assert!(create(&canary(), o, RoutingChoice::Client).unwrap().client_routing);
}

#[test]
fn routing_waits_while_the_old_version_has_no_ready_pod() {
    let o = Observed { deployments: vec![deployment("reviews-v1", "v1", 0)], ..observed() };
    let p = create(&canary(), o, RoutingChoice::Client).unwrap();
    assert!(p.old_ready.is_empty());
    assert_eq!(p.initial_routing().unwrap().mode, routing::RoutingMode::Empty);
    let s = p.strategy.clone();
    assert!(p.routing_when_ready(&s, &["v2".to_string()], None).is_none(), "never 100% to the new version");
    let r = p.routing_when_ready(&s, &["v1".to_string(), "v2".to_string()], None).unwrap();
    assert_eq!(r.mode, routing::RoutingMode::Task);
}

#[test]
fn keys_name_what_to_read_next() {
    let k = keys(&service("http"), &canary()).unwrap();
    assert_eq!(k, Keys { application: Some("bookinfo".into()), virtual_service: "reviews".into() });
}

#[test]
fn a_kubesphere_deployment_without_the_mesh_annotation_is_refused() {
    let mut o = observed();
    o.deployments[0].metadata.annotations = None;
    assert!(refused(&canary(), o).contains("KubeSphere would never route its versions"));
}

#[test]
fn the_task_is_labelled_with_the_service_name_and_the_apps_descriptor_icon() {
    let mut o = observed();
    o.application = Some(
        json!({"metadata": {"name": "bookinfo", "annotations": {"servicemesh.kubesphere.io/enabled": "true"}},
        "spec": {"descriptor": {"icons": [{"src": "/assets/from-descriptor.svg"}]}}}),
    );
    let p = create(&canary(), o, RoutingChoice::Client).unwrap();
    assert_eq!(p.strategy.annotation(ANN_ICON), Some("/assets/from-descriptor.svg"));
    assert_eq!(p.strategy.labels().get("app").map(String::as_str), Some("reviews"));
}

#[test]
fn several_headers_warn_that_the_console_keeps_only_the_first() {
    let req = request(TaskType::Canary, |f| f.headers = vec!["a=1".into(), "b=2".into()]);
    assert!(
        req.warnings.iter().any(|w| w.contains("keeps only the first custom header")),
        "{:?}",
        req.warnings
    );
    let one = request(TaskType::Canary, |f| f.headers = vec!["a=1".into()]);
    assert!(one.warnings.is_empty());
}

#[test]
fn the_user_who_creates_is_the_creator_of_the_task_the_deployment_and_its_pods() {
    let mut o = observed();
    // The old version's creator, as the console wrote it on the Deployment and its pods.
    let old = &mut o.deployments[0];
    old.metadata.annotations.as_mut().unwrap().insert(ANN_CREATOR.into(), "alice".into());
    let t = &mut old.spec.as_mut().unwrap().template.metadata;
    t.as_mut().unwrap().annotations = Some([(ANN_CREATOR.to_string(), "alice".to_string())].into());
    let mut p = create(&canary(), o, RoutingChoice::Auto).unwrap();
    p.created_by("bob");
    let creator = |m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
        m.annotations.as_ref().and_then(|a| a.get(ANN_CREATOR)).cloned()
    };
    assert_eq!(creator(&p.strategy.metadata).as_deref(), Some("bob"));
    assert_eq!(creator(&p.deployment.metadata).as_deref(), Some("bob"));
    let template = p.deployment.spec.as_ref().unwrap().template.metadata.as_ref().unwrap();
    assert_eq!(creator(template).as_deref(), Some("bob"));
    // The console's other annotations stay.
    assert_eq!(p.strategy.annotation(ANN_ICON), Some("/assets/bookinfo.svg"));
}
