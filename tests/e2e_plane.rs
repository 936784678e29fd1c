//! The local control plane itself: real kube-apiserver and kube-controller-manager, the
//! simulated kubelet, and kubectl's plugin discovery.

mod common;

use std::time::{Duration, Instant};

use common::*;

fn pod_of(ns: &str, app: &str) -> serde_json::Value {
    let r = kubectl(&["get", "pods", "-n", ns, "-l", &format!("app={app}"), "-o", "json"]).ok();
    r.json()["items"][0].clone()
}

/// Re-reads the pod until `check` holds or the timeout passes; returns the last pod seen.
fn eventually(
    ns: &str,
    app: &str,
    timeout: Duration,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let p = pod_of(ns, app);
        if check(&p) || start.elapsed() > timeout {
            return p;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_three_replica_deployment_reaches_three_ready_through_the_controller_manager() {
    let ns = Namespace::new("plane");
    kubectl(&["create", "deployment", "web", "-n", &ns.name, "--image=nginx:1.25", "--replicas=3"]).ok();
    wait_ready(&ns.name, "web", Duration::from_secs(60));
    let d = get(&ns.name, "deployment", "web").unwrap();
    assert_eq!(d["status"]["readyReplicas"], 3);
    assert_eq!(d["status"]["availableReplicas"], 3);
    let pods = kubectl(&["get", "pods", "-n", &ns.name, "-o", "json"]).ok().json();
    for p in pods["items"].as_array().unwrap() {
        assert_eq!(p["spec"]["nodeName"], "sim-node");
        assert!(p["status"]["podIP"].as_str().unwrap().starts_with("10.244."));
    }
}

fn waiting_reason(p: &serde_json::Value) -> String {
    p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"].as_str().unwrap_or_default().to_string()
}

#[test]
fn a_missing_image_goes_from_err_image_pull_to_image_pull_back_off() {
    let ns = Namespace::new("plane");
    kubectl(&["create", "deployment", "bad", "-n", &ns.name, "--image=example/nonexistent:1"]).ok();
    let p = eventually(&ns.name, "bad", Duration::from_secs(20), |p| waiting_reason(p) == "ErrImagePull");
    assert_eq!(waiting_reason(&p), "ErrImagePull");
    assert!(
        p["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
            .as_str()
            .unwrap()
            .contains("not found")
    );
    let p = eventually(&ns.name, "bad", Duration::from_secs(20), |p| waiting_reason(p) == "ImagePullBackOff");
    assert_eq!(waiting_reason(&p), "ImagePullBackOff");
    assert_eq!(p["status"]["phase"], "Pending");
}

#[test]
fn a_crashing_image_loops_with_a_growing_restart_count() {
    let ns = Namespace::new("plane");
    kubectl(&["create", "deployment", "crash", "-n", &ns.name, "--image=example/crashloop:1"]).ok();
    let restarts =
        |p: &serde_json::Value| p["status"]["containerStatuses"][0]["restartCount"].as_i64().unwrap_or(0);
    let first =
        eventually(&ns.name, "crash", Duration::from_secs(20), |p| waiting_reason(p) == "CrashLoopBackOff");
    assert_eq!(waiting_reason(&first), "CrashLoopBackOff");
    let later = eventually(&ns.name, "crash", Duration::from_secs(20), |p| restarts(p) > restarts(&first));
    assert!(restarts(&later) > restarts(&first));
}

#[test]
fn a_never_ready_image_runs_but_never_becomes_ready() {
    let ns = Namespace::new("plane");
    kubectl(&["create", "deployment", "nr", "-n", &ns.name, "--image=example/never-ready:1"]).ok();
    let p = eventually(&ns.name, "nr", Duration::from_secs(20), |p| p["status"]["phase"] == "Running");
    assert_eq!(p["status"]["phase"], "Running");
    std::thread::sleep(Duration::from_secs(2));
    let p = pod_of(&ns.name, "nr");
    let ready = p["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    assert!(!ready);
}

#[test]
fn kubectl_discovers_the_plugin_on_its_path() {
    let dir = std::env::temp_dir().join(format!("grayscale-path-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("kubectl-grayscale");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(BIN, &link).unwrap();
    let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap());
    let out = std::process::Command::new("kubectl")
        .args(["grayscale", "version"])
        .env("PATH", path)
        .env("KUBECONFIG", &plane().kubeconfig)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.trim(), format!("kubectl-grayscale v{}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn the_restricted_user_may_do_nothing_until_granted() {
    let ns = Namespace::new("plane");
    let r = kubectl(&["--context", "restricted", "get", "pods", "-n", &ns.name]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("forbidden"), "{}", r.stderr);
}

#[test]
fn misspelt_fields_in_istio_objects_are_pruned_by_the_schema() {
    let ns = Namespace::new("plane");
    let vs = r#"{"apiVersion":"networking.istio.io/v1alpha3","kind":"VirtualService","metadata":{"name":"x"},
      "spec":{"hosts":["x"],"http":[{"route":[{"destination":{"host":"x","subsett":"v1"},"weight":100}]}]}}"#;
    kubectl_stdin(&["apply", "--validate=false", "-n", &ns.name, "-f", "-"], vs).ok();
    let got = get(&ns.name, "virtualservice", "x").unwrap();
    assert!(got["spec"]["http"][0]["route"][0]["destination"].get("subsett").is_none());
    assert_eq!(got["spec"]["http"][0]["route"][0]["destination"]["host"], "x");
}

#[test]
fn empty_strings_in_custom_resources_are_kept() {
    // The console writes `governor: ""`; the plane's build patches kube-openapi for it.
    let ns = Namespace::new("plane");
    let s = r#"{"apiVersion":"servicemesh.kubesphere.io/v1alpha2","kind":"Strategy","metadata":{"name":"x"},
      "spec":{"type":"Canary","principal":"v1","governor":""}}"#;
    kubectl_stdin(&["apply", "-n", &ns.name, "-f", "-"], s).ok();
    assert_eq!(get(&ns.name, "strategies.servicemesh.kubesphere.io", "x").unwrap()["spec"]["governor"], "");
}
