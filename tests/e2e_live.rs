//! Many hands on one route: every verb acts on the live state it reads and never undoes
//! someone else's move. Each test asserts the live objects after the command.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

fn strategy(ns: &str) -> Value {
    get(ns, "strategies.servicemesh.kubesphere.io", "rc").expect("task")
}

fn vs(ns: &str, name: &str) -> Value {
    get(ns, "virtualservice", name).expect("virtualservice")
}

/// Every (subset, weight) the VirtualService's routes send traffic to, over all routes.
fn destinations(v: &Value) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for kind in ["http", "tcp"] {
        for r in v["spec"][kind].as_array().into_iter().flatten() {
            for d in r["route"].as_array().into_iter().flatten() {
                out.push((
                    d["destination"]["subset"].as_str().unwrap_or("").to_string(),
                    d["weight"].as_i64().unwrap_or(100),
                ));
            }
        }
    }
    out
}

fn subsets(ns: &str, dr: &str) -> Vec<String> {
    let d = get(ns, "destinationrule", dr).expect("destinationrule");
    d["spec"]["subsets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

fn ready_pods(ns: &str, selector: &str) -> usize {
    let pods = kubectl(&["get", "pods", "-n", ns, "-l", selector, "-o", "json"]).ok().json();
    pods["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| {
            p["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
        .count()
}

fn pods(ns: &str, selector: &str) -> usize {
    kubectl(&["get", "pods", "-n", ns, "-l", selector, "-o", "json"]).ok().json()["items"]
        .as_array()
        .map_or(0, |a| a.len())
}

/// A canary `rc` of reviews whose two v2 pods never become ready.
fn unready_canary(ns: &str) {
    canary_task_with(ns, "2", "20", &["--image", "reviews=example/never-ready:1", "--no-wait"]);
    wait_for("the two v2 pods", Duration::from_secs(60), || pods(ns, "app=reviews,version=v2") == 2);
    assert_eq!(ready_pods(ns, "app=reviews,version=v2"), 0);
}

#[test]
fn takeover_refuses_a_version_with_no_ready_pod_and_force_overrides() {
    let ns = Namespace::new("live-unready");
    let n = ns.name.as_str();
    unready_canary(n);
    let before = vs(n, "reviews");
    let audit = Audit::mark();
    let mut args = vec!["takeover", "rc", "-n", n, "--version", "v2"];
    args.extend(audit.tag());
    let r = grayscale(&args);
    assert_eq!(r.code, 11, "{}", r.stderr);
    assert!(r.stderr.contains("v2 has no ready pod (0 of 2 ready)"), "{}", r.stderr);
    assert!(r.stderr.contains("--force"), "the hint names the override: {}", r.stderr);
    let reqs = audit.requests();
    assert!(reqs.iter().any(|e| e.short() == "list pods"), "the check read the pods: {reqs:#?}");
    assert!(reqs.iter().all(|e| !e.mutating()), "nothing written: {reqs:#?}");
    assert_eq!(strategy(n)["spec"]["governor"].as_str().unwrap_or(""), "");
    assert_eq!(vs(n, "reviews")["spec"], before["spec"]);
    assert!(!subsets(n, "reviews").contains(&"v2".to_string()));

    // --force: the user knows better. The DestinationRule gets v2's subset first, so the
    // VirtualService never names a subset that is not defined.
    let r = grayscale(&["takeover", "rc", "-n", n, "--version", "v2", "--force"]).ok();
    assert!(r.stderr.contains("--force: v2 has no ready pod"), "{}", r.stderr);
    assert_eq!(strategy(n)["spec"]["governor"], "v2");
    assert!(subsets(n, "reviews").contains(&"v2".to_string()));
    assert_eq!(destinations(&vs(n, "reviews")), [("v2".to_string(), 100)]);
}

/// Holds a command at a named test gate of the binary until released.
struct Gate {
    dir: PathBuf,
}

impl Gate {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("grayscale-live-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Gate { dir }
    }

    fn spawn(&self, args: &[&str]) -> Child {
        Command::new(BIN)
            .args(args)
            .env("KUBECONFIG", &plane().kubeconfig)
            .env("GRAYSCALE_FAILPOINT_DIR", &self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn release(&self, point: &str) {
        std::fs::write(self.dir.join(format!("{point}.release")), b"").unwrap();
    }

    fn wait_reached(&self, point: &str, child: &mut Child) {
        let start = std::time::Instant::now();
        while !self.dir.join(format!("{point}.reached")).exists() {
            if let Some(status) = child.try_wait().unwrap() {
                let mut err = String::new();
                use std::io::Read;
                child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
                panic!("the command ended ({status}) before {point}: {err}");
            }
            assert!(start.elapsed() < Duration::from_secs(120), "never reached {point}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn a_gradual_shift_yields_to_a_takeover_made_between_its_steps() {
    let ns = Namespace::new("live-yield");
    let n = ns.name.as_str();
    canary_task(n, "1", "10");
    let gate = Gate::new("yield");
    gate.release("before-routing-write");
    gate.release("before-step-1");
    let mut shift = gate.spawn(&["shift", "rc", "-n", n, "--to", "50", "--step", "10", "--interval", "1s"]);
    gate.wait_reached("before-step-2", &mut shift);
    // Step 1 is written; the on-call engineer takes over from another terminal meanwhile.
    assert_eq!(strategy(n)["spec"]["template"]["spec"]["http"][0]["route"][1]["weight"], 20);
    grayscale(&["takeover", "rc", "-n", n, "--version", "v1"]).ok();
    gate.release("before-step-2");
    let out = shift.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(12), "{stderr}");
    assert!(stderr.contains("changed since this shift's last step (takeover by"), "{stderr}");
    assert!(stderr.contains("stopped without writing"), "{stderr}");
    // The take-over won: the task and its routing are as it left them.
    let s = strategy(n);
    assert_eq!(s["spec"]["governor"], "v1");
    assert_eq!(s["spec"]["template"]["spec"]["http"][0]["route"][1]["weight"], 0);
    assert_eq!(destinations(&vs(n, "reviews")), [("v1".to_string(), 100)]);
    let history = grayscale(&["history", "rc", "-n", n, "-o", "json"]).ok().json();
    let actions: Vec<&str> =
        history.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions.last(), Some(&"takeover"), "{actions:?}");
}

#[test]
fn a_paused_task_refuses_weight_changes_and_status_says_why() {
    let ns = Namespace::new("live-paused");
    let n = ns.name.as_str();
    canary_task(n, "1", "20");
    grayscale(&["pause", "rc", "-n", n]).ok();
    let routed = vs(n, "reviews")["spec"].clone();
    let audit = Audit::mark();
    let cases: [&[&str]; 4] = [
        &["shift", "rc", "--weight", "40"],
        &["shift", "rc", "--by", "+10"],
        &["match", "rc", "--header", "x-beta=1"],
        &["takeover", "rc", "--version", "v2"],
    ];
    for args in cases {
        let mut full = args.to_vec();
        full.extend(["-n", n]);
        full.extend(audit.tag());
        let r = grayscale(&full);
        assert_eq!(r.code, 11, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("is paused"), "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("kubectl grayscale resume rc"), "{args:?}: {}", r.stderr);
    }
    let reqs = audit.requests();
    assert!(reqs.iter().any(|e| e.short() == "get strategies"), "{reqs:#?}");
    assert!(reqs.iter().all(|e| !e.mutating()), "{reqs:#?}");
    assert_eq!(strategy(n)["spec"]["template"]["spec"]["http"][0]["route"][1]["weight"], 20);
    assert_eq!(vs(n, "reviews")["spec"], routed);
    let st = grayscale(&["status", "rc", "-n", n]).ok();
    assert!(st.stdout.contains("paused: routing stays on the Service's default route"), "{}", st.stdout);
    assert!(!st.stdout.contains("do not all have ready pods"), "{}", st.stdout);
    grayscale(&["resume", "rc", "-n", n]).ok();
    grayscale(&["shift", "rc", "-n", n, "--weight", "40"]).ok();
    assert_eq!(destinations(&vs(n, "reviews")), [("v1".to_string(), 60), ("v2".to_string(), 40)]);
}

#[test]
fn offline_refuses_to_keep_a_version_with_no_ready_pod_and_keeps_both() {
    let ns = Namespace::new("live-offline");
    let n = ns.name.as_str();
    unready_canary(n);
    let audit = Audit::mark();
    let mut args = vec!["offline", "rc", "-n", n, "--keep", "v2"];
    args.extend(audit.tag());
    let r = grayscale(&args);
    assert_eq!(r.code, 11, "{}", r.stderr);
    assert!(r.stderr.contains("v2 has no ready pod (0 of 2 ready)"), "{}", r.stderr);
    let reqs = audit.requests();
    assert!(reqs.iter().any(|e| e.short() == "list pods"), "{reqs:#?}");
    assert!(reqs.iter().all(|e| !e.mutating()), "{reqs:#?}");
    assert!(get(n, "deployment", "reviews-v1").is_some(), "the old version still takes the traffic");
    assert!(get(n, "deployment", "reviews-v2").is_some());
    assert!(get(n, "strategies.servicemesh.kubesphere.io", "rc").is_some());
    assert!(destinations(&vs(n, "reviews")).iter().all(|(s, _)| s == "v1"));
}

const REVIEWS_API: &str = r#"apiVersion: v1
kind: Service
metadata:
  name: reviews-api
spec:
  selector: {app: reviews}
  ports:
  - {name: http-web, port: 9080, targetPort: 9080, protocol: TCP}
"#;

#[test]
fn a_service_named_apart_from_its_pods_works_for_every_verb() {
    let ns = Namespace::new("live-apart");
    let n = ns.name.as_str();
    bookinfo(n);
    kubectl_stdin(&["apply", "-n", n, "-f", "-"], REVIEWS_API).ok();
    grayscale(&[
        "create",
        "canary",
        "rc",
        "-n",
        n,
        "--service",
        "reviews-api",
        "--version",
        "v2",
        "--replicas",
        "1",
        "--weight",
        "10",
    ])
    .ok();
    // The VirtualService is named after the pods' app (as KubeSphere names it), for the host
    // of the Service; the DestinationRule after the Service.
    let v = vs(n, "reviews");
    assert_eq!(v["spec"]["hosts"], json!(["reviews-api"]));
    assert_eq!(destinations(&v), [("v1".to_string(), 90), ("v2".to_string(), 10)]);
    assert_eq!(subsets(n, "reviews-api"), ["v1", "v2"]);

    grayscale(&["shift", "rc", "-n", n, "--weight", "40"]).ok();
    assert_eq!(destinations(&vs(n, "reviews")), [("v1".to_string(), 60), ("v2".to_string(), 40)]);
    grayscale(&["takeover", "rc", "-n", n, "--version", "v1"]).ok();
    assert_eq!(destinations(&vs(n, "reviews")), [("v1".to_string(), 100)]);
    grayscale(&["takeover", "rc", "-n", n, "--restore"]).ok();
    grayscale(&["match", "rc", "-n", n, "--header", "x-beta=1"]).ok();
    assert_eq!(vs(n, "reviews")["spec"]["http"][0]["match"][0]["headers"]["x-beta"]["exact"], "1");
    let st = grayscale(&["status", "rc", "-n", n, "-o", "json"]).ok().json();
    assert_eq!(st["drift"], false, "{st}");
    assert!(
        get(n, "virtualservice", "reviews-api").is_none(),
        "one VirtualService for the Service, never two"
    );

    grayscale(&["offline", "rc", "-n", n, "--keep", "v2"]).ok();
    assert!(get(n, "deployment", "reviews-v1").is_none());
    assert!(get(n, "deployment", "reviews-v2").is_some());
    assert!(get(n, "strategies.servicemesh.kubesphere.io", "rc").is_none());
    assert!(destinations(&vs(n, "reviews")).iter().all(|(s, _)| s == "v2"));
    assert!(get(n, "virtualservice", "reviews-api").is_none());
}

#[test]
fn fields_set_by_hand_survive_every_verb() {
    let ns = Namespace::new("live-keep");
    let n = ns.name.as_str();
    canary_task(n, "1", "20");
    grayscale(&["mirror", "rc", "-n", n, "--on", "--percent", "20"]).ok();
    // By hand, as a user would with kubectl: a timeout and retries on the task's routes, and
    // traffic policies on the DestinationRule and on one subset.
    let v = vs(n, "reviews");
    let mut http = v["spec"]["http"].clone();
    for r in http.as_array_mut().unwrap() {
        r["timeout"] = json!("5s");
        r["retries"] = json!({"attempts": 3, "perTryTimeout": "2s"});
    }
    kubectl(&[
        "patch",
        "virtualservice",
        "reviews",
        "-n",
        n,
        "--type",
        "merge",
        "-p",
        &json!({"spec": {"http": http}}).to_string(),
    ])
    .ok();
    let mut subs = get(n, "destinationrule", "reviews").unwrap()["spec"]["subsets"].clone();
    subs[1]["trafficPolicy"] = json!({"connectionPool": {"http": {"http1MaxPendingRequests": 7}}});
    let tls = json!({"tls": {"mode": "ISTIO_MUTUAL"}});
    kubectl(&[
        "patch",
        "destinationrule",
        "reviews",
        "-n",
        n,
        "--type",
        "merge",
        "-p",
        &json!({"spec": {"trafficPolicy": tls, "subsets": subs}}).to_string(),
    ])
    .ok();
    let check = |after: &str| {
        let v = vs(n, "reviews");
        for r in v["spec"]["http"].as_array().unwrap() {
            assert_eq!(r["timeout"], "5s", "{after}: {v}");
            assert_eq!(r["retries"]["attempts"], 3, "{after}: {v}");
        }
        let d = get(n, "destinationrule", "reviews").unwrap();
        assert_eq!(d["spec"]["trafficPolicy"], tls, "{after}: {d}");
        let v2 = d["spec"]["subsets"].as_array().unwrap().iter().find(|s| s["name"] == "v2").cloned();
        assert_eq!(
            v2.unwrap()["trafficPolicy"]["connectionPool"]["http"]["http1MaxPendingRequests"],
            7,
            "{after}: {d}"
        );
    };
    let mirrored = |after: &str| {
        let v = vs(n, "reviews");
        let r = &v["spec"]["http"][0];
        assert_eq!(r["mirror"]["subset"], "v2", "{after}: {v}");
        assert_eq!(r["mirrorPercentage"]["value"], 20.0, "{after}: {v}");
    };
    let steps: [&[&str]; 6] = [
        &["shift", "rc", "--weight", "40"],
        &["match", "rc", "--header", "x-beta=1"],
        &["match", "rc", "--ratio", "30"],
        &["undo", "rc"],
        &["takeover", "rc", "--version", "v1"],
        &["takeover", "rc", "--restore"],
    ];
    for args in steps {
        let mut full = args.to_vec();
        full.extend(["-n", n]);
        grayscale(&full).ok();
        let after = args.join(" ");
        check(&after);
        if args[0] != "takeover" || args.contains(&"--restore") {
            mirrored(&after);
        }
    }
}

/// The take-over sends the task's write and the VirtualService's together, each guarded by what
/// was read: held just before them while `meddle` changes one of the two, it has one write
/// refused after the other landed. Its requests, exactly.
fn takeover_meeting(tag: &str, meddle: &[&str]) -> (Namespace, Vec<AuditEvent>) {
    let ns = Namespace::new(tag);
    let n = ns.name.clone();
    canary_task(&n, "1", "20");
    let gate = Gate::new(tag);
    let audit = Audit::mark();
    let mut args = vec!["takeover", "rc", "-n", &n, "--version", "v1"];
    args.extend(audit.tag());
    let mut child = gate.spawn(&args);
    gate.wait_reached("before-routing-write", &mut child);
    let mut meddle = meddle.to_vec();
    meddle.extend(["-n", &n]);
    kubectl(&meddle).ok();
    gate.release("before-routing-write");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("re-applied on fresh state (1 retries)"), "{stderr}");
    // Whichever write was refused, task and routing agree on the take-over, and the other
    // hand's change is kept.
    assert_eq!(strategy(&n)["spec"]["governor"], "v1");
    assert_eq!(destinations(&vs(&n, "reviews")), [("v1".to_string(), 100)]);
    let reqs = audit.requests();
    show(tag, &reqs);
    (ns, reqs)
}

fn codes(reqs: &[AuditEvent], short: &str) -> Vec<i64> {
    reqs.iter().filter(|e| e.short() == short).map(|e| e.code).collect()
}

#[test]
fn a_takeover_whose_task_write_meets_another_change_while_its_routing_lands_applies_it_again() {
    let (ns, reqs) = takeover_meeting(
        "live-task-moved",
        &["annotate", "strategies.servicemesh.kubesphere.io", "rc", "example.com/on-call=paged"],
    );
    // The task's write met the annotation (409) while the VirtualService's landed; read again,
    // the take-over is written on the newest task; the routing already routes it.
    assert_rounds(
        &reqs,
        &[
            READ_ROUND,
            &["patch strategies", "patch virtualservices", "create events"],
            READ_ROUND,
            &["patch strategies"],
        ],
    );
    assert_eq!(codes(&reqs, "patch strategies"), [409, 200]);
    assert_eq!(strategy(&ns.name)["metadata"]["annotations"]["example.com/on-call"], "paged");
}

#[test]
fn a_takeover_whose_routing_write_meets_another_change_while_its_task_lands_routes_it_again() {
    let (ns, reqs) = takeover_meeting(
        "live-route-moved",
        &["label", "virtualservice", "reviews", "example.com/team=payments"],
    );
    // The task landed; the VirtualService's write met the label (409): read again, the routing
    // the task derives is written over the newest VirtualService, the label kept.
    assert_rounds(
        &reqs,
        &[
            READ_ROUND,
            &["patch strategies", "patch virtualservices", "create events"],
            READ_ROUND,
            &["patch virtualservices"],
        ],
    );
    assert_eq!(codes(&reqs, "patch virtualservices"), [409, 200]);
    assert_eq!(vs(&ns.name, "reviews")["metadata"]["labels"]["example.com/team"], "payments");
}
