//! Hand-written routing cases: KubeSphere's own controller cases, the deliberate differences,
//! user fields, the take-over fast path and drift.

use std::collections::BTreeMap;

use serde_json::json;

use super::fixtures::{Kind, render, svc, task};
use super::*;
use crate::model::strategy::{POLICY_IMMEDIATELY, POLICY_WAIT};

fn ready(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn vs_of(
    ports: &[(&str, u32)],
    s: &Strategy,
    r: &[&str],
    existing: Option<&VirtualService>,
) -> VirtualService {
    plan(&svc(ports), "reviews", Some(s), &ready(r), existing).virtual_service
}

const KS_PORTS: &[(&str, u32)] = &[("HTTP-1", 80), ("grpc-1", 81), ("mysql-1", 82)];

#[test]
fn kubesphere_case_a_governor_takes_every_port_each_on_its_own_port() {
    // KubeSphere 3.3 sends both HTTP ports to port 80 and gives mysql-1 no route when the
    // template has no tcp items; deliberately, every port goes to the governor on its own port.
    let s = task(Kind::Ratio, Some("v2"), POLICY_WAIT, "v1");
    assert_eq!(
        render(&vs_of(KS_PORTS, &s, &["v1", "v2"], None).spec),
        "h80:v2=100 | h81:v2=100 | t82:v2=100"
    );
}

#[test]
fn kubesphere_case_upper_case_http_ports_carry_the_template() {
    let s = task(Kind::Ratio, None, POLICY_WAIT, "v1");
    assert_eq!(render(&vs_of(KS_PORTS, &s, &["v1", "v2"], None).spec), "h80:v1=80,v2=20 | h81:v1=80,v2=20");
}

#[test]
fn kubesphere_case_a_match_with_a_port_is_moved_to_each_port() {
    let mut s = task(Kind::Match, None, POLICY_IMMEDIATELY, "v1");
    s.spec.template.spec.http[0].matches[0].port = Some(9999);
    let got = vs_of(&[("http-a", 80), ("http-b", 81)], &s, &["v1", "v2"], None);
    assert_eq!(render(&got.spec), "h80[x-beta]:v2=100 | h80:v1=100 | h81[x-beta]:v2=100 | h81:v1=100");
}

#[test]
fn a_principal_with_dots_routes_to_its_normalised_subset() {
    let s = task(Kind::Ratio, None, POLICY_WAIT, "v1.0");
    let p = plan(&svc(&[("http", 80)]), "reviews", Some(&s), &ready(&["v1.0", "v2"]), None);
    assert_eq!(p.subsets, ["v10", "v2"]);
    assert_eq!(p.destination_rule.spec.subsets[0].labels["version"], "v1.0");
    assert_eq!(render(&p.virtual_service.spec), "h80:v10=80,v2=20");
}

#[test]
fn the_destination_rule_keeps_the_principal_first_and_drops_duplicates() {
    let dr = destination_rule(&svc(&[("http", 80)]), &ready(&["v1", "v1", "v2"]));
    let names: Vec<_> = dr.spec.subsets.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["v1", "v2"]);
    assert_eq!(dr.spec.host, "reviews");
    assert_eq!(dr.metadata.labels.unwrap()["app.kubernetes.io/name"], "bookinfo");
}

#[test]
fn waiting_for_the_new_version_keeps_the_default_route_on_the_old_one() {
    let s = task(Kind::Ratio, None, POLICY_WAIT, "v1");
    let p = plan(&svc(&[("http-web", 80)]), "reviews", Some(&s), &ready(&["v1"]), None);
    assert_eq!(p.mode, RoutingMode::Default);
    assert_eq!(render(&p.virtual_service.spec), "h80(http-web):v1=100");
}

#[test]
fn no_ready_version_means_nothing_to_write() {
    let s = task(Kind::Ratio, None, POLICY_WAIT, "v1");
    assert_eq!(plan(&svc(&[("http", 80)]), "reviews", Some(&s), &[], None).mode, RoutingMode::Empty);
}

#[test]
fn a_mirror_on_each_http_port_mirrors_to_that_port() {
    // KubeSphere 3.3 mirrors every port to the Service's first port (so port 81's copies reach
    // port 80 of the new version); deliberately, each HTTP port mirrors to itself.
    let mut s = task(Kind::Ratio, None, POLICY_WAIT, "v1");
    s.spec.template.spec.http[0].mirror =
        Some(Destination { host: "reviews".into(), subset: Some("v2".into()), port: None });
    let ports = &[("http-a", 80), ("http-b", 81), ("mysql", 82)];
    let mirror_ports = |flavor| {
        let p = plan_as(flavor, &svc(ports), "reviews", Some(&s), &ready(&["v1", "v2"]), None);
        p.virtual_service
            .spec
            .http
            .iter()
            .map(|h| (h.matches[0].port, h.mirror.as_ref().and_then(|m| m.port.as_ref()).map(|p| p.number)))
            .collect::<Vec<_>>()
    };
    assert_eq!(mirror_ports(Flavor::Client), [(Some(80), Some(80)), (Some(81), Some(81))]);
    assert_eq!(mirror_ports(Flavor::Kubesphere), [(Some(80), Some(80)), (Some(81), Some(80))]);
}

#[test]
fn a_derivation_without_routes_keeps_the_virtual_service_as_kubesphere_does() {
    // HTTP task routes on a Service whose only port is not HTTP-like: no port gets a route.
    // KubeSphere's controller refuses to write such a VirtualService and keeps the old one.
    let s = task(Kind::Ratio, None, POLICY_WAIT, "v1");
    for flavor in [Flavor::Client, Flavor::Kubesphere] {
        let p = plan_as(flavor, &svc(&[("mysql", 3306)]), "reviews", Some(&s), &ready(&["v1", "v2"]), None);
        assert_eq!(p.mode, RoutingMode::NoRoutes, "{flavor:?}");
        assert!(!p.mode.writes_virtual_service());
    }
    // No task and only a UDP port: the default route has no route either.
    let mut udp = svc(&[("dns", 53)]);
    udp.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].protocol = Some("UDP".into());
    assert_eq!(plan(&udp, "reviews", None, &ready(&["v1"]), None).mode, RoutingMode::NoRoutes);
    // And that is no drift: the VirtualService kept is what the task leaves.
    let kept = existing(
        json!([{"name": "http", "route": [{"destination": {"host": "reviews", "subset": "v1"}}]}]),
        json!({}),
    );
    assert!(
        !crate::plan::drift::drift(
            &s,
            &svc(&[("mysql", 3306)]),
            "reviews",
            &ready(&["v1", "v2"]),
            Some(&kept)
        )
        .drifted
    );
    // Routes on any port are written as before.
    for mode in [RoutingMode::Task, RoutingMode::Default, RoutingMode::Paused] {
        assert!(mode.writes_virtual_service(), "{mode:?}");
    }
    assert!(!RoutingMode::Empty.writes_virtual_service());
}

#[test]
fn a_non_tcp_protocol_port_gets_no_default_route() {
    let mut service = svc(&[("http", 80), ("dns", 53)]);
    service.spec.as_mut().unwrap().ports.as_mut().unwrap()[1].protocol = Some("UDP".into());
    let p = plan(&service, "reviews", None, &ready(&["v1"]), None);
    assert_eq!(render(&p.virtual_service.spec), "h80(http):v1=100");
}

#[test]
fn the_virtual_service_is_named_after_the_app_label_and_records_the_task_version() {
    let s = task(Kind::Ratio, None, POLICY_WAIT, "v1");
    let vs =
        plan(&svc(&[("http", 80)]), "reviews-app", Some(&s), &ready(&["v1", "v2"]), None).virtual_service;
    assert_eq!(vs.metadata.name.as_deref(), Some("reviews-app"));
    assert_eq!(vs.metadata.annotations.unwrap()[ANN_TASK_STATE], task_stamp(&s));
    assert_eq!(vs.metadata.labels.unwrap()["app"], "reviews");
}

fn existing(http: serde_json::Value, annotations: serde_json::Value) -> VirtualService {
    serde_json::from_value(json!({"metadata": {"name": "reviews", "annotations": annotations},
        "spec": {"hosts": ["reviews"], "http": http}}))
    .unwrap()
}

#[test]
fn fields_users_add_to_a_named_default_route_are_kept() {
    let old = existing(json!([{"name": "http-web", "timeout": "3s", "route": []}]), json!({}));
    let vs = plan(&svc(&[("http-web", 80)]), "reviews", None, &ready(&["v1"]), Some(&old)).virtual_service;
    assert_eq!(vs.spec.http[0].extra["timeout"], "3s");
    let stash: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(&vs.metadata.annotations.unwrap()[ANN_ROUTE_FIELDS]).unwrap();
    assert_eq!(stash["http-web"]["timeout"], "3s");
}

#[test]
fn fields_of_routes_a_take_over_replaced_come_back_from_the_stash() {
    let stash =
        json!({"http-web": {"name": "http-web", "retries": {"attempts": 3}, "route": []}}).to_string();
    // What the fast path leaves: port-less governor routes, the stash untouched.
    let old = existing(
        json!([{"route": [{"destination": {"host": "reviews", "subset": "v1"}}]}]),
        json!({ANN_ROUTE_FIELDS: stash}),
    );
    let s = task(Kind::Ratio, None, POLICY_WAIT, "v1");
    let paused = {
        let mut p = s.clone();
        p.spec.strategy_policy = Some("Paused".into());
        p
    };
    let vs = vs_of(&[("http-web", 80)], &paused, &["v1", "v2"], Some(&old));
    assert_eq!(vs.spec.http[0].name.as_deref(), Some("http-web"));
    assert_eq!(vs.spec.http[0].extra["retries"]["attempts"], 3);
}

#[test]
fn task_routes_keep_fields_of_the_last_unnamed_route_but_never_its_mirror() {
    let old = existing(
        json!([{"timeout": "1s", "route": []},
               {"timeout": "5s", "route": [], "mirror": {"host": "reviews", "subset": "v2"}}]),
        json!({}),
    );
    let s = task(Kind::Ratio, None, POLICY_WAIT, "v1");
    let vs = vs_of(&[("http", 80)], &s, &["v1", "v2"], Some(&old));
    assert_eq!(vs.spec.http[0].extra["timeout"], "5s");
    assert!(vs.spec.http[0].mirror.is_none(), "KubeSphere would carry the mirror over; the task has none");
}

#[test]
fn the_take_over_patch_tests_the_task_state_before_writing() {
    let before = task(Kind::Ratio, None, POLICY_WAIT, "v1");
    let after = task(Kind::Ratio, Some("v1"), POLICY_WAIT, "v1");
    let p = governor_patch(&before, &after, "v1");
    assert_eq!(
        p[0],
        json!({"op": "test", "path": "/metadata/annotations/grayscale.kubectl.io~1task-state", "value": task_stamp(&before)})
    );
    assert_eq!(p[4]["value"], task_stamp(&after));
    assert_ne!(task_stamp(&before), task_stamp(&after));
    let mut moved = before.clone();
    moved.metadata.resource_version = Some("99".into());
    assert_eq!(task_stamp(&moved), task_stamp(&before), "a task put back keeps its stamp");
    let mut rewritten = before.clone();
    rewritten.metadata.annotations = Some([(ANN_WRITE_ID.to_string(), "2-1".to_string())].into());
    assert_ne!(
        task_stamp(&rewritten),
        task_stamp(&before),
        "the same state written again (an undo) stamps anew"
    );
    assert_eq!(render(&governor_spec(&after, "v1")), "h*:v1=100 | t*:v1=100");
    assert!(p.as_array().unwrap().iter().all(|op| op["path"] != "/metadata/labels"), "labels are left alone");
}

#[test]
fn a_take_over_of_a_dotted_version_names_its_subset() {
    let s = task(Kind::Ratio, None, POLICY_WAIT, "v1.0");
    assert_eq!(render(&governor_spec(&s, "v1.0")), "h*:v10=100 | t*:v10=100");
}

#[test]
fn the_fast_path_routes_are_not_drift() {
    let s = task(Kind::Ratio, Some("v1"), POLICY_WAIT, "v1");
    let want = vs_of(&[("http", 80), ("tcp-db", 82)], &s, &["v1", "v2"], None).spec;
    assert!(!drifted(Some(&governor_spec(&s, "v1")), &want));
    assert!(drifted(Some(&governor_spec(&s, "v2")), &want));
}

#[test]
fn a_different_weight_is_drift_and_field_order_is_not() {
    let s = task(Kind::Ratio, None, POLICY_WAIT, "v1");
    let want = vs_of(&[("http", 80)], &s, &["v1", "v2"], None).spec;
    let mut live = want.clone();
    assert!(!drifted(Some(&live), &want));
    live.http[0].route.reverse();
    assert!(!drifted(Some(&live), &want));
    live.http[0].route[0].weight = Some(50);
    assert!(drifted(Some(&live), &want));
    assert!(drifted(None, &want));
}

#[test]
fn a_missing_request_match_is_drift() {
    let s = task(Kind::Match, None, POLICY_WAIT, "v1");
    let want = vs_of(&[("http", 80)], &s, &["v1", "v2"], None).spec;
    let mut live = want.clone();
    live.http.remove(0);
    assert!(drifted(Some(&live), &want));
}

#[test]
fn kubesphere_writes_are_recognised_by_their_manager() {
    let vs: VirtualService = serde_json::from_value(json!({"metadata": {"name": "x",
        "managedFields": [{"manager": "controller-manager", "operation": "Update"}]}}))
    .unwrap();
    assert!(managed_by_kubesphere(Some(&vs)));
    assert!(!managed_by_kubesphere(None));
    let ours: VirtualService = serde_json::from_value(json!({"metadata": {"name": "x",
        "managedFields": [{"manager": "kubectl-grayscale", "operation": "Apply"}]}}))
    .unwrap();
    assert!(!managed_by_kubesphere(Some(&ours)));
}

#[test]
fn http_like_port_names_follow_the_controller() {
    for (name, http) in [
        ("http", true),
        ("HTTP-1", true),
        ("http2", true),
        ("grpc-web", true),
        ("https", false),
        ("httpx", false),
        ("tcp-http", false),
        ("", false),
        ("grpc", true),
        ("Http2-x", true),
    ] {
        assert_eq!(is_http_like(name), http, "{name}");
    }
}

#[test]
fn template_subsets_include_the_mirror() {
    assert_eq!(template_subsets(&task(Kind::Mirror, None, POLICY_WAIT, "v1")), ["v1", "v2"]);
    assert_eq!(template_subsets(&task(Kind::Match, None, POLICY_WAIT, "v1.0")), ["v2", "v10"]);
}

#[test]
fn ready_versions_come_from_ready_selected_pods_principal_first() {
    let pod = |name: &str, version: &str, ready: bool, app: &str| -> k8s_openapi::api::core::v1::Pod {
        serde_json::from_value(json!({"metadata": {"name": name, "labels": {"app": app, "version": version}},
            "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}}))
        .unwrap()
    };
    let pods = [
        pod("a", "v2", true, "reviews"),
        pod("b", "v1", true, "reviews"),
        pod("c", "v3", false, "reviews"),
        pod("d", "v4", true, "other"),
    ];
    assert_eq!(ready_versions_of_pods(&svc(&[("http", 80)]), &pods, Some("v1")), ["v1", "v2"]);
    assert_eq!(principal_first(ready(&["b", "a", "c"]), Some("c")), ["c", "a", "b"]);
}

fn ks_vs(
    ports: &[(&str, u32)],
    s: &Strategy,
    r: &[&str],
    existing: Option<&VirtualService>,
) -> VirtualService {
    plan_as(Flavor::Kubesphere, &svc(ports), "reviews", Some(s), &ready(r), existing).virtual_service
}

#[test]
fn kubesphere_flavor_sends_governed_http_ports_to_the_first_port_and_skips_the_other_protocol() {
    let s = task(Kind::Ratio, Some("v2"), POLICY_WAIT, "v1");
    assert_eq!(render(&ks_vs(KS_PORTS, &s, &["v1", "v2"], None).spec), "h80:v2=100 | h81:v2=100@80");
    let tcp = task(Kind::TcpRatio, Some("v1"), POLICY_WAIT, "v1");
    assert_eq!(render(&ks_vs(KS_PORTS, &tcp, &["v1", "v2"], None).spec), "t82:v1=100");
}

#[test]
fn kubesphere_flavor_never_routes_a_dotted_principal() {
    let s = task(Kind::Ratio, None, POLICY_WAIT, "v1.0");
    let p = plan_as(
        Flavor::Kubesphere,
        &svc(&[("http", 80)]),
        "reviews",
        Some(&s),
        &ready(&["v1.0", "v2"]),
        None,
    );
    assert_eq!(p.mode, RoutingMode::Default);
    assert!(kubesphere_never_routes(&s).unwrap().contains("v1.0"));
    assert!(kubesphere_never_routes(&task(Kind::Ratio, None, POLICY_WAIT, "v1")).is_none());
    let immediately = task(Kind::Ratio, None, POLICY_IMMEDIATELY, "v1.0");
    let p = plan_as(
        Flavor::Kubesphere,
        &svc(&[("http", 80)]),
        "reviews",
        Some(&immediately),
        &ready(&["v1.0", "v2"]),
        None,
    );
    assert_eq!(render(&p.virtual_service.spec), "h80:v1.0=80,v2=20", "destinations keep the raw version");
}

#[test]
fn kubesphere_flavor_carries_an_old_mirror_into_task_routes() {
    let old = existing(json!([{"route": [], "mirror": {"host": "reviews", "subset": "v2"}}]), json!({}));
    let s = task(Kind::Ratio, None, POLICY_WAIT, "v1");
    assert_eq!(render(&ks_vs(&[("http", 80)], &s, &["v1", "v2"], Some(&old)).spec), "h80:v1=80,v2=20 ~v2");
    assert_eq!(render(&vs_of(&[("http", 80)], &s, &["v1", "v2"], Some(&old)).spec), "h80:v1=80,v2=20");
    let on = task(Kind::Mirror, None, POLICY_WAIT, "v1");
    let none = existing(json!([{"route": []}]), json!({}));
    assert_eq!(
        render(&ks_vs(&[("http", 80)], &on, &["v1", "v2"], Some(&none)).spec),
        "h80:v1=100",
        "KubeSphere drops the task's new mirror"
    );
}

#[test]
fn kubesphere_routing_is_in_place_when_its_virtual_service_routes_the_task() {
    let s = task(Kind::BlueGreen, Some("v1"), POLICY_WAIT, "v1");
    let service = svc(&[("http-web", 80)]);
    let dr = destination_rule(&service, &ready(&["v1", "v2"]));
    let routed = ks_vs(&[("http-web", 80)], &s, &["v1", "v2"], None);
    assert!(kubesphere_routed(&service, "reviews", &s, Some(&dr), Some(&routed)));
    let only_old = destination_rule(&service, &ready(&["v1"]));
    assert!(
        !kubesphere_routed(&service, "reviews", &s, Some(&only_old), Some(&routed)),
        "the new subset must exist"
    );
    let canary = task(Kind::Ratio, None, POLICY_WAIT, "v1");
    assert!(!kubesphere_routed(&service, "reviews", &canary, Some(&dr), Some(&routed)), "still all on v1");
    assert!(!kubesphere_routed(&service, "reviews", &s, Some(&dr), None));
}

#[test]
fn the_mirror_repair_gives_kubesphere_routes_the_tasks_mirror() {
    let live = |mirror: serde_json::Value| -> VirtualService {
        serde_json::from_value(json!({"metadata": {"name": "reviews", "resourceVersion": "9"},
            "spec": {"hosts": ["reviews"], "http": [{"name": "http-web", "route": []}, mirror]}}))
        .unwrap()
    };
    let off = task(Kind::Ratio, None, POLICY_WAIT, "v1");
    let mirrored =
        live(json!({"route": [], "mirror": {"host": "reviews", "subset": "v2", "port": {"number": 80}}}));
    let p = kubesphere_mirror_patch(&off, &mirrored).unwrap();
    assert_eq!(p[0], json!({"op": "test", "path": "/metadata/resourceVersion", "value": "9"}));
    assert_eq!(p[1], json!({"op": "remove", "path": "/spec/http/1/mirror"}));
    let on = task(Kind::Mirror, None, POLICY_WAIT, "v1");
    assert!(kubesphere_mirror_patch(&on, &mirrored).is_none(), "already mirroring v2");
    let plain = live(json!({"route": []}));
    assert_eq!(kubesphere_mirror_patch(&on, &plain).unwrap()[1]["op"], "add");
    assert!(kubesphere_mirror_patch(&off, &plain).is_none());
}
