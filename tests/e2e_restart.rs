//! API server restarts in the middle of a command: the real kube-apiserver of the local plane is
//! stopped and started again (`hack/local-cluster.sh stop-apiserver|start-apiserver`). The
//! tests of this file run one at a time: they take the API server away from everything else.

mod common;

use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use common::*;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn apiserver(action: &str) {
    let state = plane().state.clone();
    let out = Command::new("bash")
        .arg(repo().join("hack/local-cluster.sh"))
        .arg(action)
        .env("GRAYSCALE_STATE", &state)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{action}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Starts the API server again and waits until the rest of the plane has reconnected: a fresh
/// Deployment gets a ready pod (the controller manager and the simulated kubelet watch again).
fn restart_apiserver() {
    apiserver("start-apiserver");
    let probe = Namespace::new("rs-probe");
    kubectl(&["create", "deployment", "probe", "--image", "example/probe:1", "-n", &probe.name]).ok();
    let r = kubectl(&[
        "wait",
        "-n",
        &probe.name,
        "deployment/probe",
        "--for=condition=Available",
        "--timeout=180s",
    ]);
    assert_eq!(r.code, 0, "the plane did not recover from the restart: {}", r.stderr);
}

fn canary(ns: &str) {
    canary_task(ns, "1", "20");
}

#[test]
fn status_watch_reconnects_after_an_api_server_restart_and_shows_later_changes() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let ns = Namespace::new("rs-watch");
    let n = ns.name.as_str();
    canary(n);
    let mut child = spawn_grayscale(&["status", "rc", "-n", n, "-w"]);
    let mut lines = Lines::of(&mut child);
    assert!(lines.until(Duration::from_secs(30), |l| l.contains("v1 80% v2 20%")), "{:?}", lines.seen);
    apiserver("stop-apiserver");
    restart_apiserver();
    grayscale(&["shift", "rc", "-n", n, "--weight", "40"]).ok();
    let seen = lines.until(Duration::from_secs(60), |l| l.contains("v1 60% v2 40%"));
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(seen, "the change after the restart was not shown: {:?}\n{stderr}", lines.seen);
    assert!(stderr.contains("reconnecting"), "{stderr}");
}

#[test]
fn create_follows_the_rollout_across_an_api_server_restart() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let ns = Namespace::new("rs-create");
    let n = ns.name.as_str();
    bookinfo(n);
    // The new version becomes ready only after its readiness delay (10 s on the simulated
    // kubelet), so the API server goes away while create is watching its pods.
    let file = std::env::temp_dir().join(format!("grayscale-restart-{}.yaml", std::process::id()));
    std::fs::write(
        &file,
        "newVersion:\n  version: v2\n  replicas: 1\n  containers:\n  - name: reviews\n    readinessProbe: {httpGet: {path: /, port: 9080}, initialDelaySeconds: 100}\n",
    )
    .unwrap();
    let child = spawn_grayscale(&[
        "create",
        "canary",
        "rc",
        "-n",
        n,
        "--service",
        "reviews",
        "-f",
        file.to_str().unwrap(),
        "--weight",
        "20",
    ]);
    wait_for("the new Deployment", Duration::from_secs(60), || get(n, "deployment", "reviews-v2").is_some());
    apiserver("stop-apiserver");
    restart_apiserver();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("routing applied to reviews"), "{stderr}");
    let vs = get(n, "virtualservice", "reviews").unwrap();
    assert_eq!(vs["spec"]["http"][0]["route"][1]["weight"], 20, "{}", vs["spec"]);
}

#[test]
fn a_gradual_shift_survives_an_api_server_restart_between_steps() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let ns = Namespace::new("rs-shift");
    let n = ns.name.as_str();
    canary(n);
    // An interval far longer than the test: the shift is between its first and second step.
    let child =
        spawn_grayscale(&["shift", "rc", "-n", n, "--to", "100", "--step", "30", "--interval", "10m"]);
    let weight = || {
        get(n, "strategies.servicemesh.kubesphere.io", "rc").unwrap()["spec"]["template"]["spec"]["http"][0]["route"][1]
            ["weight"]
            .as_i64()
            .unwrap()
    };
    wait_for("the first step", Duration::from_secs(60), || weight() == 50);
    apiserver("stop-apiserver");
    restart_apiserver();
    // Still running (its pod watch reconnected): Ctrl-C stops it at the step boundary.
    let kill = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("resume with: kubectl grayscale shift rc --to 100"), "{stderr}");
    assert_eq!(weight(), 50);
    let vs = get(n, "virtualservice", "reviews").unwrap();
    assert_eq!(vs["spec"]["http"][0]["route"][1]["weight"], 50, "task and routing agree");
}

#[test]
fn offline_cut_off_by_an_api_server_restart_is_finished_by_running_it_again() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let ns = Namespace::new("rs-offline");
    let n = ns.name.as_str();
    canary(n);
    // Hold offline after its task write, before its routing write; take the API server away.
    let gate = std::env::temp_dir().join(format!("grayscale-offline-gate-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&gate);
    std::fs::create_dir_all(&gate).unwrap();
    let child = Command::new(BIN)
        .args(["offline", "rc", "-n", n, "--keep", "v2"])
        .env("KUBECONFIG", &plane().kubeconfig)
        .env("GRAYSCALE_FAILPOINT_DIR", &gate)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("offline to reach its routing write", Duration::from_secs(60), || {
        gate.join("before-routing-write.reached").exists()
    });
    apiserver("stop-apiserver");
    std::fs::write(gate.join("before-routing-write.release"), b"").unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("error: offline stopped in its first step: task rc was changed but its routing could not be written"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "run the same command again to finish: kubectl grayscale offline rc --keep v2 -n {n}"
        )),
        "says how to finish: {stderr}"
    );
    restart_apiserver();

    // What was written agrees: the task keeps v2 as governor and both versions still run.
    let task = get(n, "strategies.servicemesh.kubesphere.io", "rc").expect("the task is still there");
    assert_eq!(task["spec"]["governor"], "v2");
    assert!(get(n, "deployment", "reviews-v1").is_some());
    // Running the same command again finishes the job.
    let r = grayscale(&["offline", "rc", "-n", n, "--keep", "v2"]).ok();
    assert!(r.stdout.contains("kept v2"), "{}", r.stdout);
    assert!(get(n, "strategies.servicemesh.kubesphere.io", "rc").is_none());
    assert!(get(n, "deployment", "reviews-v1").is_none());
    let vs = get(n, "virtualservice", "reviews").unwrap();
    let subsets: Vec<&str> = vs["spec"]["http"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|h| {
            h["route"].as_array().unwrap().iter().map(|r| r["destination"]["subset"].as_str().unwrap_or(""))
        })
        .collect();
    assert!(subsets.iter().all(|s| *s == "v2"), "{subsets:?}");
    let _ = std::fs::remove_dir_all(&gate);
}
