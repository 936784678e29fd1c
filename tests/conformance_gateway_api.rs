//! Gateway API's own standard HTTPRoute CRD (v1.6.1, from `../shared/peers/`), served by a
//! plane of its own (`gateway_api_plane`): the routes the plugin writes must be stored as
//! written by the real schema (nothing pruned, every default already written out, every enum
//! and limit respected), and sim-mesh's status must pass it too. Ignored where build.rs did not
//! find the CRD.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

fn route(ns: &PlaneNs) -> Value {
    ns.get("httproute", "reviews").expect("the HTTPRoute")
}

/// The plugin's own rules as it wrote them, from its dry run: what the live route must hold.
fn planned_route(ns: &PlaneNs, create: &[&str]) -> Value {
    let mut a = create.to_vec();
    a.extend(["--dry-run=client", "-o", "json"]);
    let out = ns.gs(&a).ok();
    let items: Vec<Value> = serde_json::from_str::<Value>(&out.stdout)
        .map(|v| v["items"].as_array().cloned().unwrap_or_else(|| vec![v]))
        .unwrap_or_default();
    items.into_iter().find(|o| o["kind"] == "HTTPRoute").expect("the dry run prints the HTTPRoute")
}

#[test]
#[cfg_attr(not(gateway_api_peer), ignore = "no Gateway API CRDs in ../shared/peers/gateway-api-v1.6.1/crds/")]
fn the_upstream_schema_keeps_every_route_the_plugin_writes() {
    let ns = PlaneNs::new(gateway_api_plane(), "gwapi");
    let create = [
        "create",
        "canary",
        "rc",
        "--service",
        "reviews",
        "--version",
        "v2",
        "--routing",
        "gateway-api",
        "--header",
        "x-canary=true",
        "--cookie-regex",
        ".*beta=yes.*",
        "--uri-prefix",
        "/beta",
        "--os",
        "android",
    ];
    let planned = planned_route(&ns, &create);
    ns.gs(&create).ok();
    let live = route(&ns);
    // Stored as planned: the real schema pruned nothing and defaulted nothing the plugin had
    // not written (the request-parameter rule, then the principal's rule).
    assert_eq!(live["spec"]["rules"], planned["spec"]["rules"], "{live}");
    assert_eq!(
        live["spec"]["parentRefs"],
        json!([{"group": "", "kind": "Service", "name": "reviews", "port": 9080}])
    );
    // sim-mesh's status passes the real schema too: the route is Accepted, its refs resolved.
    wait_for("the mesh's status on the route", Duration::from_secs(60), || {
        let r = route(&ns);
        r["status"]["parents"][0]["conditions"][0]["observedGeneration"] == r["metadata"]["generation"]
    });
    let st = ns.gs(&["status", "rc", "-o", "json"]).ok().json();
    assert_eq!(st["routeKind"], "HTTPRoute");
    assert!(st["routeStatus"].is_null(), "the mesh took the route: {st}");

    // A take-over, then a percentage mirror on a mirror task: both kept as written.
    ns.gs(&["takeover", "rc", "--version", "v2"]).ok();
    let rules = route(&ns)["spec"]["rules"].clone();
    assert_eq!(rules.as_array().unwrap().len(), 1, "{rules}");
    assert_eq!(
        rules[0]["backendRefs"],
        json!([{"group": "", "kind": "Service", "name": "reviews-v2", "port": 9080, "weight": 100}])
    );
    ns.gs(&["offline", "rc", "--keep", "v2"]).ok();
    let gone = kubectl_in(ns.p, &["get", "httproute", "reviews", "-n", &ns.name], None);
    assert_ne!(gone.code, 0, "the route the plugin made goes with the task");
}

#[test]
#[cfg_attr(not(gateway_api_peer), ignore = "no Gateway API CRDs in ../shared/peers/gateway-api-v1.6.1/crds/")]
fn a_percentage_mirror_is_kept_by_the_upstream_schema() {
    let ns = PlaneNs::new(gateway_api_plane(), "gwmirror");
    ns.gs(&["create", "mirror", "rm", "--service", "reviews", "--version", "v2", "--routing", "gateway-api"])
        .ok();
    ns.gs(&["mirror", "rm", "--on", "--percent", "20"]).ok();
    let r = route(&ns);
    assert_eq!(
        r["spec"]["rules"][0]["filters"],
        json!([{"type": "RequestMirror", "requestMirror": {
            "backendRef": {"group": "", "kind": "Service", "name": "reviews-v2", "port": 9080}, "percent": 20}}])
    );
}
