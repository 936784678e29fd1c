//! `create` when the new version does not come up, when permissions are missing half-way, and
//! when a failure persists: clear reasons, non-zero exits, and no traffic to a version with no
//! ready pods.

mod common;

use common::*;
use serde_json::json;

fn routes_to(ns: &str, subset: &str) -> bool {
    let vs = get(ns, "virtualservice", "reviews").map(|v| v["spec"].to_string()).unwrap_or_default();
    let dr = get(ns, "destinationrule", "reviews").map(|v| v["spec"].to_string()).unwrap_or_default();
    vs.contains(&format!("\"subset\":\"{subset}\"")) || dr.contains(&format!("\"name\":\"{subset}\""))
}

fn create_with_image(ns: &str, image: &str, extra: &[&str]) -> Run {
    let mut args =
        vec!["create", "canary", "rc", "-n", ns, "--service", "reviews", "--version", "v2", "--image", image];
    args.extend_from_slice(extra);
    grayscale(&args)
}

#[test]
fn a_missing_image_fails_create_with_the_pull_error_and_no_traffic_moves() {
    let ns = Namespace::new("pullfail");
    bookinfo(&ns.name);
    let r = create_with_image(&ns.name, "example/nonexistent:2", &["--fail-after", "2s"]);
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert!(r.stderr.contains("ImagePullBackOff") || r.stderr.contains("ErrImagePull"), "{}", r.stderr);
    assert!(r.stderr.contains("no traffic was sent to v2"), "{}", r.stderr);
    assert!(r.stderr.contains("kubectl grayscale offline rc --keep v1"), "{}", r.stderr);
    assert!(get(&ns.name, "strategies.servicemesh.kubesphere.io", "rc").is_some(), "the task stays");
    assert!(!routes_to(&ns.name, "v2"));
    assert!(routes_to(&ns.name, "v1"));
    let status = grayscale(&["status", "rc", "-n", &ns.name]).ok();
    assert!(status.stdout.contains("Recent warnings"), "{}", status.stdout);
    assert!(status.stdout.contains("Failed: rpc error"), "{}", status.stdout);
    assert!(status.stdout.contains("[░░░░░░░░░░] 0/3"), "{}", status.stdout);
}

#[test]
fn a_crashing_image_fails_create_with_crash_loop_back_off() {
    let ns = Namespace::new("crash");
    bookinfo(&ns.name);
    let r = create_with_image(&ns.name, "example/crashloop:2", &["--fail-after", "2s"]);
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert!(r.stderr.contains("CrashLoopBackOff"), "{}", r.stderr);
    assert!(!routes_to(&ns.name, "v2"));
}

#[test]
fn an_image_that_never_gets_ready_times_out_and_no_traffic_moves() {
    let ns = Namespace::new("neverready");
    bookinfo(&ns.name);
    let r = create_with_image(&ns.name, "example/never-ready:2", &["--timeout", "4s"]);
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert!(r.stderr.contains("not ready after"), "{}", r.stderr);
    assert!(r.stderr.contains("0/3 pods ready"), "{}", r.stderr);
    assert!(!routes_to(&ns.name, "v2"));
}

#[test]
fn an_unschedulable_pod_is_reported_as_such() {
    let ns = Namespace::new("unsched");
    let n = ns.name.as_str();
    bookinfo(n);
    let file = "newVersion:\n  version: v2\n";
    let path = std::env::temp_dir().join(format!("unsched-{}.yaml", std::process::id()));
    std::fs::write(&path, file).unwrap();
    // A node selector nothing matches: the simulated node has no gpu label.
    kubectl(&[
        "patch",
        "deployment",
        "reviews-v1",
        "-n",
        n,
        "--type=merge",
        "-p",
        r#"{"spec":{"template":{"spec":{"nodeSelector":{"gpu":"yes"}}}}}"#,
    ])
    .ok();
    let r = grayscale(&[
        "create",
        "canary",
        "rc",
        "-n",
        n,
        "--service",
        "reviews",
        "-f",
        path.to_str().unwrap(),
        "--fail-after",
        "2s",
        "--timeout",
        "20s",
    ]);
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert!(r.stderr.contains("Unschedulable"), "{}", r.stderr);
}

const ROLE: &str = r#"apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: almost}
rules:
- {apiGroups: [""], resources: [services, pods], verbs: [get, list, watch]}
- {apiGroups: [apps], resources: [deployments], verbs: [get, list, watch, create, delete]}
- {apiGroups: [servicemesh.kubesphere.io], resources: [strategies], verbs: [get, list]}
- {apiGroups: [app.k8s.io], resources: [applications], verbs: [get]}
- {apiGroups: [networking.istio.io], resources: [virtualservices, destinationrules], verbs: [get, list, patch, create]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: almost}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: almost}
subjects: [{kind: User, name: restricted-user, apiGroup: rbac.authorization.k8s.io}]
"#;

#[test]
fn a_missing_permission_to_create_the_task_is_named_before_anything_is_written() {
    let ns = Namespace::new("almost");
    let n = ns.name.as_str();
    bookinfo(n);
    kubectl_stdin(&["apply", "-n", n, "-f", "-"], ROLE).ok();
    let r = grayscale(&[
        "--context",
        "restricted",
        "create",
        "canary",
        "rc",
        "-n",
        n,
        "--service",
        "reviews",
        "--version",
        "v2",
    ]);
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(
        r.stderr.contains("needs create strategies.servicemesh.kubesphere.io; nothing was written"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("kubectl grayscale rbac"), "{}", r.stderr);
    assert!(get(n, "deployment", "reviews-v2").is_none(), "no Deployment was created");
    assert!(get(n, "virtualservice", "reviews").is_none(), "no routing was written");
}

/// A write that fails after the Deployment was created: the Deployment is deleted again and the
/// message says so. The failure is forced: create is held (a test gate in the binary) between
/// the Deployment and the task while a task of the same name appears.
#[test]
fn a_failure_after_the_deployment_was_created_undoes_it_and_says_so() {
    let ns = Namespace::new("undo");
    let n = ns.name.as_str();
    bookinfo(n);
    let gate = std::env::temp_dir().join(format!("grayscale-gate-undo-{}", std::process::id()));
    std::fs::create_dir_all(&gate).unwrap();
    let child = std::process::Command::new(BIN)
        .args(["create", "canary", "rc", "-n", n, "--service", "reviews", "--version", "v2"])
        .env("KUBECONFIG", &plane().kubeconfig)
        .env("GRAYSCALE_FAILPOINT_DIR", &gate)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("create to hold before writing the task", std::time::Duration::from_secs(60), || {
        gate.join("before-task-create.reached").exists()
    });
    let squatter = json!({"apiVersion": "servicemesh.kubesphere.io/v1alpha2", "kind": "Strategy",
        "metadata": {"name": "rc"}, "spec": {"type": "Canary", "template": {"spec": {"hosts": ["other"]}}}});
    kubectl_stdin(&["create", "-n", n, "-f", "-"], &squatter.to_string()).ok();
    std::fs::write(gate.join("before-task-create.release"), b"").unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let _ = std::fs::remove_dir_all(&gate);
    assert_eq!(out.status.code(), Some(7), "{stderr}");
    assert!(stderr.contains("the task could not be created"), "{stderr}");
    assert!(stderr.contains("was deleted again"), "{stderr}");
    assert!(stderr.contains("run the same command again"), "{stderr}");
    // Deleted with background propagation: wait until the delete has landed.
    let start = std::time::Instant::now();
    while get(n, "deployment", "reviews-v2").is_some_and(|d| d["metadata"]["deletionTimestamp"].is_null()) {
        assert!(start.elapsed().as_secs() < 10, "reviews-v2 was not deleted");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn a_user_without_permissions_gets_a_forbidden_error_naming_the_permission() {
    let ns = Namespace::new("forbidden");
    bookinfo(&ns.name);
    let r = grayscale(&[
        "--context",
        "restricted",
        "create",
        "canary",
        "rc",
        "-n",
        &ns.name,
        "--service",
        "reviews",
        "--version",
        "v2",
    ]);
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(r.stderr.contains("forbidden"), "{}", r.stderr);
    assert!(r.stderr.contains("kubectl auth can-i"), "{}", r.stderr);
    assert!(get(&ns.name, "deployment", "reviews-v2").is_none());
}

#[test]
fn init_is_idempotent_and_names_the_missing_permission() {
    grayscale(&["init"]).ok();
    let r = grayscale(&["init"]).ok();
    assert!(r.stderr.contains("already installed"), "{}", r.stderr);
    let crd = kubectl(&["get", "crd", "strategies.servicemesh.kubesphere.io", "-o", "json"]).ok().json();
    assert_eq!(crd["spec"]["versions"][0]["name"], json!("v1alpha2"));
    let dry = grayscale(&["init", "--dry-run"]).ok();
    assert!(dry.stdout.contains("name: strategies.servicemesh.kubesphere.io"));
    let r = grayscale(&["--context", "restricted", "init"]);
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(r.stderr.contains("CustomResourceDefinition"), "{}", r.stderr);
}

#[test]
fn an_old_version_scaled_to_zero_gives_a_new_version_with_nothing_to_wait_for() {
    let ns = Namespace::new("zero");
    let n = ns.name.as_str();
    bookinfo(n);
    kubectl(&["scale", "deployment", "reviews-v1", "-n", n, "--replicas", "0"]).ok();
    let r = grayscale(&["create", "canary", "rc", "-n", n, "--service", "reviews", "--version", "v2"]).ok();
    assert!(r.stderr.contains("reviews-v2 has 0 replicas"), "{}", r.stderr);
    assert!(r.stderr.contains("kubectl grayscale sync rc"), "{}", r.stderr);
    assert_eq!(get(n, "deployment", "reviews-v2").unwrap()["spec"]["replicas"], 0);
}

#[test]
fn a_canary_created_while_the_old_version_is_not_ready_never_routes_to_the_new_one_alone() {
    let ns = Namespace::new("oldstarting");
    let n = ns.name.as_str();
    // The old version's pods run but never become ready.
    let yaml = std::fs::read_to_string(repo().join("deploy/demo/bookinfo.yaml"))
        .unwrap()
        .replace("docker.io/istio/examples-bookinfo-reviews-v1:1.17.0", "example/never-ready:1");
    kubectl_stdin(&["apply", "-n", n, "-f", "-"], &yaml).ok();
    wait_for("the old version's pods to run", std::time::Duration::from_secs(60), || {
        let r = kubectl(&[
            "get",
            "pods",
            "-n",
            n,
            "-l",
            "app=reviews,version=v1",
            "--field-selector",
            "status.phase=Running",
            "-o",
            "name",
        ]);
        r.stdout.lines().count() == 3
    });
    let r = create_with_image(n, "reviews=example/reviews:2", &["--weight", "20", "--timeout", "20s"]);
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert!(r.stderr.contains("the old version v1 has no ready pod"), "{}", r.stderr);
    assert!(!routes_to(n, "v2"), "no route may name v2 while v1 is not ready");
    // Once the old version is ready, sync routes the task as it is: 80/20.
    let good = json!({"spec": {"template": {"spec": {"containers": [{"name": "reviews", "image": "example/reviews:1"}]}}}});
    kubectl(&["patch", "deployment", "reviews-v1", "-n", n, "--type", "strategic", "-p", &good.to_string()])
        .ok();
    wait_ready(n, "reviews-v1", std::time::Duration::from_secs(60));
    grayscale(&["sync", "rc", "-n", n]).ok();
    let vs = get(n, "virtualservice", "reviews").unwrap();
    assert_eq!(vs["spec"]["http"][0]["route"][1]["weight"], 20, "{}", vs["spec"]);
    assert_eq!(vs["spec"]["http"][0]["route"][1]["destination"]["subset"], "v2", "{}", vs["spec"]);
}

#[test]
fn ctrl_c_while_create_follows_the_rollout_exits_130_and_keeps_the_task() {
    let ns = Namespace::new("createint");
    bookinfo(&ns.name);
    let n = ns.name.as_str();
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
        "--image",
        "reviews=example/never-ready:2",
    ]);
    wait_for("the new version's pods to run", std::time::Duration::from_secs(60), || {
        let r = kubectl(&[
            "get",
            "pods",
            "-n",
            n,
            "-l",
            "app=reviews,version=v2",
            "--field-selector",
            "status.phase=Running",
            "-o",
            "name",
        ]);
        r.stdout.lines().count() == 3
    });
    let kill = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("stopped following reviews-v2"), "{stderr}");
    assert!(get(n, "strategies.servicemesh.kubesphere.io", "rc").is_some(), "the task stays");
    assert!(!routes_to(n, "v2"));
}
