//! The simulated data plane (sim-mesh) on the local plane, for Gateway API HTTPRoutes: the
//! project's CRD keeps the route the plugin writes, sim-mesh routes the Service's requests
//! through it and writes the route's `status.parents` as Istio does.
//!
//! sim-mesh sends 100 requests a second to the Service, a whole second at a time, and its
//! counters are read between seconds: so the shares below are exact, not statistical.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

fn app(ns: &str) -> String {
    let mut out = String::new();
    for (name, version) in [("reviews", None), ("reviews-v1", Some("v1")), ("reviews-v2", Some("v2"))] {
        let mut selector = json!({"app": "reviews"});
        if let Some(v) = version {
            selector["version"] = v.into();
        }
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": selector, "ports": [{"name": "http", "port": 9080}]}});
        out.push_str(&format!("---\n{svc}\n"));
    }
    for v in ["v1", "v2"] {
        let labels = json!({"app": "reviews", "version": v});
        let image = format!("docker.io/istio/examples-bookinfo-reviews-{v}:1.17.0");
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": format!("reviews-{v}"), "namespace": ns, "labels": labels},
            "spec": {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels},
                "spec": {"containers": [{"name": "reviews", "image": image}]}}}});
        out.push_str(&format!("---\n{d}\n"));
    }
    out
}

fn to(name: &str) -> Value {
    json!({"group": "", "kind": "Service", "name": name, "port": 9080})
}

/// The HTTPRoute the plugin writes for a cookie canary, 80/20 weights and a 20% mirror.
fn the_plugins_route(ns: &str) -> Value {
    let weighted = |name: &str, w: i64| {
        let mut b = to(name);
        b["weight"] = w.into();
        b
    };
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "reviews", "namespace": ns, "annotations": {"grayscale.kubectl.io/rules": "2"}},
        "spec": {
            "parentRefs": [to("reviews")],
            "rules": [
                {"name": "grayscale-match-0",
                 "matches": [{"headers": [{"type": "RegularExpression", "name": "Cookie", "value": "^(.*?;)?(user=test)(;.*)?$"}],
                              "path": {"type": "PathPrefix", "value": "/"}}],
                 "backendRefs": [weighted("reviews-v2", 100)]},
                {"name": "grayscale-weights",
                 "backendRefs": [weighted("reviews-v1", 80), weighted("reviews-v2", 20)],
                 "filters": [{"type": "RequestMirror", "requestMirror": {"backendRef": to("reviews-v2"), "percent": 20}}]}
            ]
        }
    })
}

/// The route's conditions once sim-mesh has seen `generation`: (type, status, reason, message).
fn conditions_at(ns: &str, generation: i64) -> Vec<[String; 4]> {
    let seen = |r: &Value| r["status"]["parents"][0]["conditions"][0]["observedGeneration"] == generation;
    wait_for("sim-mesh to write the route's status", Duration::from_secs(30), || {
        seen(&get(ns, "httproute", "reviews").expect("route"))
    });
    // sim-mesh writes a generation's status once: what it wrote is still there.
    let last = get(ns, "httproute", "reviews").expect("route");
    let parent = &last["status"]["parents"][0];
    assert_eq!(parent["controllerName"], "istio.io/gateway-controller");
    assert_eq!(parent["parentRef"], to("reviews"));
    parent["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| ["type", "status", "reason", "message"].map(|k| c[k].as_str().unwrap().to_string()))
        .collect()
}

fn cond(t: &str, s: &str, r: &str, m: &str) -> [String; 4] {
    [t, s, r, m].map(String::from)
}

#[test]
fn an_http_route_on_a_service_splits_its_requests_and_reports_a_missing_backend() {
    let ns = Namespace::new("mesh");
    let n = ns.name.as_str();
    kubectl_stdin(&["apply", "-f", "-"], &app(n)).ok();
    wait_ready(n, "reviews-v1", Duration::from_secs(60));
    wait_ready(n, "reviews-v2", Duration::from_secs(60));
    let route = the_plugins_route(n);
    kubectl_stdin(&["apply", "-f", "-"], &route.to_string()).ok();

    // Stored as written; the API server only adds upstream's default match to the weighted rule.
    let stored = get(n, "httproute", "reviews").expect("route");
    let mut want = route["spec"].clone();
    want["rules"][1]["matches"] = json!([{"path": {"type": "PathPrefix", "value": "/"}}]);
    assert_eq!(stored["spec"], want);
    assert_eq!(stored["metadata"]["annotations"]["grayscale.kubectl.io/rules"], "2");

    assert_eq!(
        conditions_at(n, 1),
        [
            cond("Accepted", "True", "Accepted", "Route was valid"),
            cond("ResolvedRefs", "True", "ResolvedRefs", "All references resolved")
        ]
    );
    // No request carries the cookie: all go 80/20, and 20% are mirrored to v2 as well.
    let got = requests_from_now(n, 200);
    let v1 = got["destination reviews v1 200"];
    assert!(v1 > 0 && v1.is_multiple_of(80), "{got:?}");
    assert_eq!(
        got,
        [("destination reviews v1 200".to_string(), v1), ("destination reviews v2 200".into(), v1 / 2)]
            .into()
    );

    // v2's Service goes from the weighted rule: its share is answered 500 by the mesh.
    kubectl(&[
        "patch",
        "httproute",
        "reviews",
        "-n",
        n,
        "--type",
        "json",
        "-p",
        r#"[{"op": "replace", "path": "/spec/rules/1/backendRefs/1/name", "value": "reviews-v3"}]"#,
    ])
    .ok();
    assert_eq!(
        conditions_at(n, 2),
        [
            cond("Accepted", "True", "Accepted", "Route was valid"),
            cond(
                "ResolvedRefs",
                "False",
                "BackendNotFound",
                &format!("backend(reviews-v3.{n}.svc.cluster.local) not found")
            )
        ]
    );
    let got = requests_from_now(n, 200);
    let v1 = got["destination reviews v1 200"];
    assert!(v1 > 0 && v1.is_multiple_of(80), "{got:?}");
    assert_eq!(
        got,
        [
            ("destination reviews v1 200".to_string(), v1),
            ("destination reviews v2 200".into(), v1 / 4),
            ("source reviews-v3 unknown 500".into(), v1 / 4),
        ]
        .into()
    );
}
