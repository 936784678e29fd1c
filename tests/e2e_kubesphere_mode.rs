//! Routing left to KubeSphere: where KubeSphere's controller-manager writes the Service's
//! VirtualService, the plugin writes only what the console writes and waits for the controller.
//! The test plays the controller by writing the DestinationRule and VirtualService under its
//! field manager; `tests/conformance_kubesphere.rs` runs the same against KubeSphere's real
//! controllers where they are at hand.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

fn controller_writes_dr(ns: &str, versions: &[&str]) {
    let subsets: Vec<_> = versions.iter().map(|v| json!({"name": v, "labels": {"version": v}})).collect();
    let dr = json!({
        "apiVersion": "networking.istio.io/v1alpha3", "kind": "DestinationRule",
        "metadata": {"name": "reviews", "labels": {"app": "reviews"}},
        "spec": {"host": "reviews", "subsets": subsets}
    });
    kubectl_stdin(
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=controller-manager",
            "-n",
            ns,
            "-f",
            "-",
        ],
        &dr.to_string(),
    )
    .ok();
}

fn controller_writes_vs(ns: &str, subsets: &[(&str, i64)]) {
    let route: Vec<_> = subsets
        .iter()
        .map(|(s, w)| json!({"destination": {"host": "reviews", "subset": s, "port": {"number": 9080}}, "weight": w}))
        .collect();
    let vs = json!({
        "apiVersion": "networking.istio.io/v1alpha3", "kind": "VirtualService",
        "metadata": {"name": "reviews", "labels": {"app": "reviews"}},
        "spec": {"hosts": ["reviews"], "http": [{"match": [{"port": 9080}], "route": route}]}
    });
    kubectl_stdin(
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=controller-manager",
            "-n",
            ns,
            "-f",
            "-",
        ],
        &vs.to_string(),
    )
    .ok();
}

fn managers(ns: &str) -> Vec<String> {
    let vs = kubectl(&["get", "virtualservice", "reviews", "-n", ns, "-o", "json", "--show-managed-fields"])
        .ok()
        .json();
    vs["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["manager"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn create_leaves_routing_to_kubesphere_and_waits_for_its_controller() {
    let ns = Namespace::new("ksmode");
    let n = ns.name.as_str();
    bookinfo(n);
    controller_writes_vs(n, &[("v1", 100)]);
    let child = spawn_grayscale(&[
        "create",
        "canary",
        "rc",
        "-n",
        n,
        "--service",
        "reviews",
        "--version",
        "v2",
        "--replicas",
        "1",
        "--timeout",
        "60s",
    ]);
    wait_for("create to write the Deployment", Duration::from_secs(30), || {
        get(n, "deployment", "reviews-v2").is_some()
    });
    wait_ready(n, "reviews-v2", Duration::from_secs(60));
    // What KubeSphere's controllers write once v2 is ready: both subsets, then the task's routes.
    controller_writes_dr(n, &["v1", "v2"]);
    controller_writes_vs(n, &[("v1", 50), ("v2", 50)]);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("KubeSphere routed the task"), "{stderr}");
    let dr = kubectl(&["get", "destinationrule", "reviews", "-n", n, "-o", "json", "--show-managed-fields"])
        .ok()
        .json();
    let dr_managers: Vec<&str> = dr["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["manager"].as_str().unwrap())
        .collect();
    assert_eq!(dr_managers, ["controller-manager"], "the plugin wrote no DestinationRule");
    assert!(!managers(n).contains(&"kubectl-grayscale".to_string()), "{:?}", managers(n));
    let s = get(n, "strategies.servicemesh.kubesphere.io", "rc").unwrap();
    assert_eq!(s["spec"]["type"], "Canary");

    // A take-over writes the governor only: KubeSphere's controller owns the routing.
    grayscale(&["takeover", "rc", "-n", n, "--version", "v1"]).ok();
    assert_eq!(get(n, "strategies.servicemesh.kubesphere.io", "rc").unwrap()["spec"]["governor"], "v1");
    assert!(!managers(n).contains(&"kubectl-grayscale".to_string()), "{:?}", managers(n));
    // Other verbs too.
    grayscale(&["shift", "rc", "-n", n, "--weight", "30"]).ok();
    assert!(!managers(n).contains(&"kubectl-grayscale".to_string()), "{:?}", managers(n));
}

#[test]
fn routing_client_overrides_the_detection() {
    let ns = Namespace::new("ksforce");
    let n = ns.name.as_str();
    bookinfo(n);
    controller_writes_vs(n, &[("v1", 100)]);
    grayscale(&[
        "create",
        "canary",
        "rc",
        "-n",
        n,
        "--service",
        "reviews",
        "--version",
        "v2",
        "--replicas",
        "1",
        "--routing",
        "client",
    ])
    .ok();
    assert!(managers(n).contains(&"kubectl-grayscale".to_string()));
    let vs = get(n, "virtualservice", "reviews").unwrap();
    assert_eq!(vs["spec"]["http"][0]["route"][1]["destination"]["subset"], "v2");
}

/// KubeSphere gives a Service's DestinationRule the traffic policy of the ServicePolicy
/// labelled for its app; client routing writes the same.
#[test]
fn client_routing_gives_the_destination_rule_the_apps_service_policy() {
    let ns = Namespace::new("kspolicy");
    let n = ns.name.as_str();
    bookinfo(n);
    let lb = json!({"loadBalancer": {"simple": "LEAST_REQUEST"}});
    let pool = json!({"connectionPool": {"tcp": {"maxConnections": 7}}});
    let policy = json!({
        "apiVersion": "servicemesh.kubesphere.io/v1alpha2", "kind": "ServicePolicy",
        "metadata": {"name": "reviews", "labels": {"app": "reviews"}},
        "spec": {"template": {"spec": {"host": "reviews", "trafficPolicy": lb,
            "subsets": [{"name": "v2", "labels": {"version": "v2"}, "trafficPolicy": pool}]}}}
    });
    kubectl_stdin(&["apply", "-n", n, "-f", "-"], &policy.to_string()).ok();
    grayscale(&[
        "create",
        "canary",
        "rc",
        "-n",
        n,
        "--service",
        "reviews",
        "--version",
        "v2",
        "--replicas",
        "1",
        "--routing",
        "client",
        "--timeout",
        "60s",
    ])
    .ok();
    let dr = get(n, "destinationrule", "reviews").unwrap();
    assert_eq!(dr["spec"]["trafficPolicy"], lb, "{}", dr["spec"]);
    let subsets = dr["spec"]["subsets"].as_array().unwrap();
    assert_eq!(subsets.len(), 2, "{}", dr["spec"]);
    assert_eq!(subsets[0]["name"], "v1");
    assert!(subsets[0].get("trafficPolicy").is_none(), "{}", dr["spec"]);
    assert_eq!(subsets[1]["name"], "v2");
    assert_eq!(subsets[1]["trafficPolicy"], pool, "{}", dr["spec"]);

    // A changed ServicePolicy: a shift writes no DestinationRule (its subsets stay), so the
    // policy waits for the next DestinationRule write; sync reads it and writes it now.
    let rr = json!({"loadBalancer": {"simple": "ROUND_ROBIN"}});
    let mut changed = policy.clone();
    changed["spec"]["template"]["spec"]["trafficPolicy"] = rr.clone();
    kubectl_stdin(&["apply", "-n", n, "-f", "-"], &changed.to_string()).ok();
    grayscale(&["shift", "rc", "-n", n, "--weight", "30", "--routing", "client"]).ok();
    let dr = get(n, "destinationrule", "reviews").unwrap();
    assert_eq!(dr["spec"]["trafficPolicy"], lb, "a shift leaves the DestinationRule alone: {}", dr["spec"]);
    grayscale(&["sync", "rc", "-n", n, "--routing", "client"]).ok();
    let dr = get(n, "destinationrule", "reviews").unwrap();
    assert_eq!(dr["spec"]["trafficPolicy"], rr, "{}", dr["spec"]);
    assert_eq!(dr["spec"]["subsets"][1]["trafficPolicy"], pool, "{}", dr["spec"]);
}
