//! Shifts gated on metrics, against the plane's real Prometheus scraping the simulated data
//! plane (sim-mesh), which sends 100 requests a second through each VirtualService and answers
//! as each version's image says (`errors-5pct`, `slow-800ms`).
//!
//! Prometheus is shared by the whole plane: tests that stop it hold the lock for writing.

mod common;

use std::sync::RwLock;
use std::time::Duration;

use common::*;
use serde_json::Value;

static PROMETHEUS: RwLock<()> = RwLock::new(());

fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    PROMETHEUS.read().unwrap_or_else(|e| e.into_inner())
}

fn exclusive() -> std::sync::RwLockWriteGuard<'static, ()> {
    PROMETHEUS.write().unwrap_or_else(|e| e.into_inner())
}

fn prometheus_url() -> String {
    std::fs::read_to_string(plane().state.join("prometheus-url")).expect("prometheus-url").trim().to_string()
}

fn local_cluster(verb: &str) {
    let out = std::process::Command::new("bash")
        .arg(repo().join("hack/local-cluster.sh"))
        .arg(verb)
        .output()
        .expect("run local-cluster.sh");
    assert!(out.status.success(), "{verb}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Starts Prometheus again when the test ends, even if it failed.
struct Restart;
impl Drop for Restart {
    fn drop(&mut self) {
        local_cluster("start-prometheus");
    }
}

/// bookinfo with a canary `rc` of reviews: v2 runs `image`, at `weight` percent.
fn canary_with(ns: &str, image: &str, weight: &str) {
    canary_task_with(ns, "1", weight, &["--image", &format!("reviews={image}")]);
}

/// A test of its own on the shared Prometheus: its namespace, with a canary of `image` at 10%.
fn canary_test(prefix: &str, image: &str) -> (std::sync::RwLockReadGuard<'static, ()>, Namespace) {
    let guard = shared();
    let ns = Namespace::new(prefix);
    canary_with(&ns.name, image, "10");
    (guard, ns)
}

const HEALTHY: &str = "docker.io/istio/examples-bookinfo-reviews-v2:1.17.0";

fn task(ns: &str) -> Value {
    get(ns, "strategies.servicemesh.kubesphere.io", "rc").expect("task")
}

fn task_weights(ns: &str) -> (i64, i64) {
    let r = &task(ns)["spec"]["template"]["spec"]["http"][0]["route"];
    (r[0]["weight"].as_i64().unwrap(), r[1]["weight"].as_i64().unwrap())
}

fn vs_weights(ns: &str) -> Vec<(String, i64)> {
    let vs = get(ns, "virtualservice", "reviews").expect("vs");
    vs["spec"]["http"][0]["route"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (r["destination"]["subset"].as_str().unwrap().to_string(), r["weight"].as_i64().unwrap_or(100))
        })
        .collect()
}

fn gated(ns: &str, extra: &[&str]) -> Run {
    let mut a = vec!["shift", "rc", "-n", ns, "--to", "100", "--step", "45", "--interval", "3s"];
    a.extend_from_slice(extra);
    grayscale(&a)
}

/// Polls `f` until it returns a value.
#[track_caller]
fn poll<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `analyze -o json` once Prometheus has both versions' traffic over the window.
fn analysis(ns: &str, extra: &[&str]) -> Value {
    let mut a = vec!["analyze", "rc", "-n", ns, "--window", "10s", "-o", "json"];
    a.extend_from_slice(extra);
    poll("both versions' metrics in Prometheus", Duration::from_secs(60), || {
        let v = grayscale(&a).ok().json();
        let both = v["versions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["requestsPerSecond"].as_f64().unwrap_or(0.0) > 0.0);
        both.then_some(v)
    })
}

#[test]
fn a_healthy_version_is_shifted_to_100_with_every_gate_recorded() {
    let (_p, ns) = canary_test("g-healthy", HEALTHY);
    let n = ns.name.as_str();
    let r =
        gated(n, &["--gate", "success-rate>=99", "--gate", "p99<=500ms", "--gate", "success-rate-delta>=-1"])
            .ok();
    assert!(
        r.stderr.contains("gates read from Prometheus at service istio-system/prometheus:9090"),
        "{}",
        r.stderr
    );
    // Every step has a row, every gate a verdict; the delta has nothing to compare at 100%.
    let rows: Vec<&str> = r.stdout.lines().skip_while(|l| !l.starts_with("STEP")).skip(1).collect();
    assert_eq!(rows.len(), 2, "{}", r.stdout);
    for (row, w) in rows.iter().zip(["55%", "100%"]) {
        assert_eq!(row.split_whitespace().nth(1), Some(w), "{row}");
    }
    assert_eq!(rows[0].matches(" ok").count(), 3, "{}", rows[0]);
    assert_eq!(rows[1].matches(" ok").count(), 2, "{}", rows[1]);
    assert!(rows[1].ends_with("skipped"), "{}", rows[1]);
    assert_eq!(vs_weights(n), [("v2".to_string(), 100)]);
}

#[test]
fn a_version_answering_5pct_errors_stops_at_the_first_step_and_goes_back() {
    let (_p, ns) = canary_test("g-errors", "registry.example.com/reviews:errors-5pct");
    let n = ns.name.as_str();
    let r = gated(n, &["--gate", "success-rate>=99", "--gate", "p99<=500ms"]);
    assert_eq!(r.code, 9, "{}", r.stderr);
    assert!(r.stderr.contains("step 1 (v2 at 55%): gate success-rate>=99: 9"), "{}", r.stderr);
    assert!(
        r.stderr.contains("(needs >= 99%) FAIL; the shift stopped and went back to 10% for v2"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("kubectl grayscale analyze rc -n"), "{}", r.stderr);
    assert_eq!(task_weights(n), (90, 10));
    assert_eq!(vs_weights(n), [("v1".to_string(), 90), ("v2".to_string(), 10)]);
}

#[test]
fn the_latency_gate_stops_a_slow_version() {
    let (_p, ns) = canary_test("g-slow", "registry.example.com/reviews:slow-800ms");
    let n = ns.name.as_str();
    let r = gated(n, &["--gate", "success-rate>=99", "--gate", "p99<=500ms"]);
    assert_eq!(r.code, 9, "{}", r.stderr);
    assert!(r.stderr.contains("gate p99<=500ms: 9"), "{}", r.stderr);
    // The failing step's readings are in the message: success held, latency did not.
    let row = r.stderr.lines().find(|l| l.starts_with("1 ")).expect("the step's row");
    assert!(row.contains("100% ok") && row.ends_with("FAIL"), "{row}");
    assert_eq!(task_weights(n), (90, 10));
}

#[test]
fn on_failure_takeover_sends_all_traffic_to_the_old_version() {
    let (_p, ns) = canary_test("g-takeover", "registry.example.com/reviews:errors-5pct");
    let n = ns.name.as_str();
    let r = gated(n, &["--gate", "success-rate>=99", "--on-failure", "takeover"]);
    assert_eq!(r.code, 9, "{}", r.stderr);
    assert!(r.stderr.contains("sent all traffic to v1 (take-over)"), "{}", r.stderr);
    assert_eq!(task(n)["spec"]["governor"], "v1");
    assert_eq!(vs_weights(n), [("v1".to_string(), 100)]);
}

#[test]
fn too_little_traffic_waits_one_more_interval_then_fails() {
    let (_p, ns) = canary_test("g-quiet", HEALTHY);
    let n = ns.name.as_str();
    // Two requests a second: far fewer than 20 in a 3 s window at any weight.
    kubectl(&["annotate", "service", "reviews", "-n", n, "sim-mesh.grayscale.kubectl.io/rps=2"]).ok();
    let r = gated(n, &["--gate", "success-rate>=99"]);
    assert_eq!(r.code, 9, "{}", r.stderr);
    assert!(r.stderr.contains("no verdict one interval after the step"), "{}", r.stderr);
    assert!(r.stderr.contains("fewer than --min-requests 20"), "{}", r.stderr);
    assert_eq!(task_weights(n), (90, 10));
    // With a threshold the traffic meets, the same shift goes through.
    grayscale(&[
        "shift",
        "rc",
        "-n",
        n,
        "--to",
        "100",
        "--step",
        "90",
        "--interval",
        "3s",
        "--gate",
        "success-rate>=99",
        "--min-requests",
        "1",
    ])
    .ok();
    assert_eq!(vs_weights(n), [("v2".to_string(), 100)]);
}

#[test]
fn a_custom_gate_from_an_analysis_file_reads_prometheus_at_the_given_url() {
    let (_p, ns) = canary_test("g-custom", "registry.example.com/reviews:errors-5pct");
    let n = ns.name.as_str();
    let file = std::env::temp_dir().join(format!("{n}-analysis.yaml"));
    std::fs::write(
        &file,
        r#"gates:
- name: server-errors-per-second
  query: |
    sum(rate(istio_requests_total{reporter="destination", destination_service_namespace="{{namespace}}",
      destination_service_name="{{service}}", destination_version="{{ version }}", response_code=~"5.."}[{{interval}}]))
    or vector(0)
  max: 0.5
"#,
    )
    .unwrap();
    let url = prometheus_url();
    let r = grayscale_env(
        &[
            "shift",
            "rc",
            "-n",
            n,
            "--to",
            "100",
            "--step",
            "45",
            "--interval",
            "3s",
            "--analysis",
            file.to_str().unwrap(),
        ],
        &[("GRAYSCALE_PROMETHEUS", &url)],
    );
    assert_eq!(r.code, 9, "{}", r.stderr);
    assert!(r.stderr.contains(&format!("gates read from Prometheus at {url}")), "{}", r.stderr);
    assert!(r.stderr.contains("gate server-errors-per-second: "), "{}", r.stderr);
    assert!(r.stderr.contains("(needs <= 0.50) FAIL"), "{}", r.stderr);
    assert_eq!(task_weights(n), (90, 10));
}

#[test]
fn analyze_shows_both_versions_side_by_side_as_text_and_json() {
    let _p = shared();
    let ns = Namespace::new("g-analyze");
    let n = ns.name.as_str();
    canary_with(n, "registry.example.com/reviews:errors-5pct", "30");
    let gates = ["--gate", "success-rate>=99", "--gate", "p99-delta<=100ms"];
    let v = analysis(n, &gates);
    let (old, new) = (&v["versions"][0], &v["versions"][1]);
    assert_eq!(
        (old["version"].as_str(), old["role"].as_str(), old["weight"].as_i64()),
        (Some("v1"), Some("old"), Some(70))
    );
    assert_eq!(
        (new["version"].as_str(), new["role"].as_str(), new["weight"].as_i64()),
        (Some("v2"), Some("new"), Some(30))
    );
    assert_eq!(old["successRatePercent"], 100.0);
    let sr = new["successRatePercent"].as_f64().unwrap();
    assert!((90.0..99.0).contains(&sr), "5% errors: {sr}");
    let (a, b) = (old["requestsPerSecond"].as_f64().unwrap(), new["requestsPerSecond"].as_f64().unwrap());
    assert!((a / (a + b) - 0.7).abs() < 0.1, "70/30 split: {a} {b}");
    assert!(new["p99Ms"].as_f64().unwrap() < 100.0);
    assert_eq!(v["verdict"], "fail");
    assert_eq!(v["gates"][0]["verdict"], "fail");
    assert_eq!(v["gates"][1]["verdict"], "pass");

    let text = grayscale(&["analyze", "rc", "-n", n, "--window", "10s"]).ok().stdout;
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with(&format!("Task rc in {n}: last 10s, from Prometheus at service istio-system")),
        "{text}"
    );
    assert!(
        lines[2].split_whitespace().eq(["VERSION", "ROLE", "WEIGHT", "RPS", "SUCCESS", "P50", "P90", "P99"])
    );
    assert!(lines[3].starts_with("v1") && lines[4].starts_with("v2"), "{text}");
    assert!(!text.contains("GATE"), "no gates asked for: {text}");
}

#[test]
fn analyze_right_after_a_create_waits_for_the_first_window_with_data() {
    let _p = shared();
    let ns = Namespace::new("g-first");
    let n = ns.name.as_str();
    canary_with(n, HEALTHY, "30");
    let args = ["analyze", "rc", "-n", n, "--window", "10s", "--wait-for-data", "60s", "-o", "json"];
    let v = grayscale(&args).ok().json();
    for s in v["versions"].as_array().unwrap() {
        assert!(s["requestsPerSecond"].as_f64().is_some(), "{} waited for data: {v}", s["version"]);
    }
    assert!(v.get("noData").is_none(), "{v}");
}

#[test]
fn analyze_says_why_a_version_has_no_data_and_when_it_will() {
    let _p = shared();
    let ns = Namespace::new("g-nodata");
    let n = ns.name.as_str();
    // v2 at 0%: no request ever reaches it.
    canary_with(n, HEALTHY, "0");
    let analyze = |extra: &[&str]| {
        let mut a = vec!["analyze", "rc", "-n", n, "-o", "json"];
        a.extend_from_slice(extra);
        grayscale(&a).ok().json()
    };
    let v = poll("v1's data in Prometheus", Duration::from_secs(60), || {
        let v = analyze(&["--window", "10s"]);
        v["versions"][0]["requestsPerSecond"].as_f64().is_some().then_some(v)
    });
    assert_eq!(v["versions"][1]["requestsPerSecond"], Value::Null, "{v}");
    assert_eq!(v["noData"].as_array().unwrap().len(), 1, "only v2: {v}");
    let why = v["noData"][0].as_str().unwrap();
    assert!(why.starts_with("v2: no request to it has reached Prometheus yet"), "{why}");
    assert!(why.contains("one scrape interval (1s)"), "the plane scrapes every second: {why}");

    // A window no longer than the scrape interval never holds two samples: said for both.
    let v = analyze(&["--window", "1s"]);
    let notes: Vec<&str> = v["noData"].as_array().unwrap().iter().map(|x| x.as_str().unwrap()).collect();
    assert_eq!(notes.len(), 2, "{v}");
    assert!(
        notes.iter().all(|x| x.contains("Prometheus scrapes every 1s") && x.contains("at least 2s")),
        "{notes:?}"
    );

    // Waiting gives up at its bound, and still says why.
    let v = analyze(&["--window", "10s", "--wait-for-data", "2s"]);
    assert!(v["versions"][0]["requestsPerSecond"].as_f64().is_some(), "{v}");
    assert!(v["noData"][0].as_str().unwrap().starts_with("v2: no request"), "{v}");
    let text = grayscale(&["analyze", "rc", "-n", n, "--window", "10s"]).ok().stdout;
    assert!(text.contains("\nNo data: v2: no request to it has reached Prometheus yet"), "{text}");
}

#[test]
fn a_request_matched_canary_receives_only_the_matching_requests() {
    let (_p, ns) = canary_test("g-match", HEALTHY);
    let n = ns.name.as_str();
    // sim-mesh's cycle of ten request profiles: two carry x-canary: true, three are Android.
    grayscale(&["match", "rc", "-n", n, "--header", "x-canary=true"]).ok();
    wait_for("the VirtualService to match", Duration::from_secs(30), || {
        get(n, "virtualservice", "reviews").is_some_and(|v| v["spec"]["http"][0]["match"].is_array())
    });
    let share = |v: &Value| {
        let a = v["versions"][0]["requestsPerSecond"].as_f64().unwrap_or(0.0);
        let b = v["versions"][1]["requestsPerSecond"].as_f64().unwrap_or(0.0);
        b / (a + b)
    };
    // Once a whole window ran under the new routing, v2 has exactly the matching share.
    poll("v2 to carry the x-canary share (20%)", Duration::from_secs(60), || {
        let s = share(&analysis(n, &[]));
        ((s - 0.2).abs() < 0.02).then_some(s)
    });
    grayscale(&["match", "rc", "-n", n, "--os", "android"]).ok();
    poll("v2 to carry the Android share (30%)", Duration::from_secs(60), || {
        let s = share(&analysis(n, &[]));
        ((s - 0.3).abs() < 0.02).then_some(s)
    });
}

/// The plugin tagged for `audit`, run to the end.
fn tagged(audit: &Audit, args: &[&str]) -> Run {
    let mut a: Vec<&str> = args.to_vec();
    a.extend(audit.tag());
    grayscale(&a)
}

#[track_caller]
fn nothing_written_but_read(audit: &Audit, what: &str) {
    let reqs = audit.requests();
    show(what, &reqs);
    assert!(
        reqs.iter().any(|e| e.verb == "get" && e.resource == "strategies"),
        "the command's own read was seen"
    );
    // A SelfSubjectRulesReview is a question, not a write.
    assert!(reqs.iter().all(|e| !e.mutating() || e.resource == "selfsubjectrulesreviews"), "nothing written");
}

#[test]
fn prometheus_down_before_the_first_step_refuses_with_nothing_written() {
    let _p = exclusive();
    let ns = Namespace::new("g-down");
    let n = ns.name.as_str();
    canary_with(n, HEALTHY, "10");
    let _restart = Restart;
    local_cluster("stop-prometheus");
    let before = task(n)["metadata"]["resourceVersion"].clone();

    let audit = Audit::mark();
    let r = tagged(
        &audit,
        &["shift", "rc", "-n", n, "--to", "100", "--interval", "3s", "--gate", "success-rate>=99"],
    );
    assert_eq!(r.code, 10, "{}", r.stderr);
    assert!(
        r.stderr.contains("error: metrics: no Prometheus found: istio-system/prometheus:9090: "),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("kubesphere-monitoring-system/prometheus-k8s:9090: "), "{}", r.stderr);
    assert!(
        r.stderr.contains("hint: check that Prometheus is up, or give its address with --prometheus URL"),
        "{}",
        r.stderr
    );
    nothing_written_but_read(&audit, "shift with Prometheus down");

    let audit = Audit::mark();
    let url = prometheus_url();
    let r =
        tagged(&audit, &["shift", "rc", "-n", n, "--to", "100", "--gate", "p99<=1s", "--prometheus", &url]);
    assert_eq!(r.code, 10, "{}", r.stderr);
    assert!(r.stderr.contains(&format!("error: metrics: Prometheus at {url}: ")), "{}", r.stderr);
    nothing_written_but_read(&audit, "shift with Prometheus down, by URL");
    assert_eq!(task(n)["metadata"]["resourceVersion"], before);
}

/// The shift in the background, its stderr line by line.
fn spawn_shift(ns: &str, interval: &str) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead, BufReader};
    let mut child = spawn_grayscale(&[
        "shift",
        "rc",
        "-n",
        ns,
        "--to",
        "100",
        "--step",
        "45",
        "--interval",
        interval,
        "--gate",
        "success-rate>=99",
    ]);
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

fn wait_line(rx: &std::sync::mpsc::Receiver<String>, seen: &mut Vec<String>, want: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while let Ok(l) = rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())) {
        seen.push(l.clone());
        if l.contains(want) {
            return;
        }
    }
    panic!("no line with {want:?}; seen:\n{}", seen.join("\n"));
}

/// A gated shift of a healthy canary in the background, with Prometheus stopped after its
/// first step and the shift seen holding its weight; Prometheus comes back when `restart` drops.
fn shift_losing_prometheus(
    ns: &Namespace,
    interval: &str,
) -> (std::process::Child, std::sync::mpsc::Receiver<String>, Vec<String>) {
    let n = ns.name.as_str();
    canary_with(n, HEALTHY, "10");
    let (child, rx) = spawn_shift(n, interval);
    let mut seen = Vec::new();
    wait_line(&rx, &mut seen, "step: new version at 55%");
    local_cluster("stop-prometheus");
    wait_line(&rx, &mut seen, "holding at 55%");
    (child, rx, seen)
}

#[test]
fn prometheus_lost_during_a_shift_holds_the_weight_then_goes_back() {
    let _p = exclusive();
    let ns = Namespace::new("g-lost");
    let n = ns.name.as_str();
    let _restart = Restart;
    // The interval outlasts the client's own retries of the failing query (about 6 s).
    let (mut child, rx, mut seen) = shift_losing_prometheus(&ns, "15s");
    assert_eq!(task_weights(n), (45, 55), "the weight holds while Prometheus is away");
    let status = child.wait().unwrap();
    seen.extend(rx.iter());
    let all = seen.join("\n");
    assert_eq!(status.code(), Some(9), "{all}");
    assert!(all.contains("step 1 (v2 at 55%): no verdict one interval after the step: metrics: Prometheus at service istio-system/prometheus:9090"), "{all}");
    assert!(all.contains("went back to 10% for v2"), "{all}");
    assert_eq!(task_weights(n), (90, 10));
    assert_eq!(vs_weights(n), [("v1".to_string(), 90), ("v2".to_string(), 10)]);
}

#[test]
fn prometheus_back_within_the_interval_lets_the_shift_go_on() {
    let _p = exclusive();
    let ns = Namespace::new("g-back");
    let restart = Restart;
    let (mut child, rx, mut seen) = shift_losing_prometheus(&ns, "20s");
    drop(restart);
    let status = child.wait().unwrap();
    seen.extend(rx.iter());
    assert_eq!(status.code(), Some(0), "{}", seen.join("\n"));
    assert_eq!(vs_weights(&ns.name), [("v2".to_string(), 100)]);
}

#[test]
fn bad_gates_are_refused_before_any_request() {
    let _p = shared();
    let ns = Namespace::new("g-input");
    let n = ns.name.as_str();
    let audit = Audit::mark();
    let r = tagged(
        &audit,
        &["shift", "rc", "-n", n, "--to", "100", "--gate", "p95<=1s", "--gate", "success-rate=99"],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--gate: unknown metric \"p95\""), "{}", r.stderr);
    assert!(r.stderr.contains("--gate: \"success-rate=99\" has no comparison"), "{}", r.stderr);
    let r = tagged(&audit, &["shift", "rc", "-n", n, "--weight", "30", "--gate", "p99<=1s"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("gates judge the steps of a gradual shift: add --to W"), "{}", r.stderr);
    let r = tagged(&audit, &["analyze", "rc", "-n", n, "--analysis", "/nonexistent/gates.yaml"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--analysis: /nonexistent/gates.yaml: "), "{}", r.stderr);
    // A command that was sent (the sentinel's own request is not counted) would show here.
    assert_eq!(audit.requests().len(), 0);
    let r = tagged(&audit, &["analyze", "rc", "-n", n]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert_eq!(audit.requests().len(), 1, "the last command's one read is seen");
}

#[test]
fn the_on_call_role_for_analyze_reads_prometheus_through_the_proxy_and_only_that() {
    let (_p, ns) = canary_test("g-rbac", HEALTHY);
    let n = ns.name.as_str();
    let name = format!("gs-{n}");
    let roles =
        grayscale(&["rbac", "analyze", "--routing", "client", "--name", &name, "-n", n, "-o", "json"])
            .ok()
            .json();
    let items = roles["items"].as_array().unwrap();
    assert_eq!(
        items.iter().map(|r| r["metadata"]["namespace"].as_str().unwrap()).collect::<Vec<_>>(),
        [n, "istio-system"]
    );
    for role in items {
        let rns = role["metadata"]["namespace"].as_str().unwrap();
        kubectl_stdin(&["apply", "-f", "-"], &role.to_string()).ok();
        let binding = serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": rns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "User", "name": "restricted-user", "apiGroup": "rbac.authorization.k8s.io"}]});
        kubectl_stdin(&["apply", "-f", "-"], &binding.to_string()).ok();
    }
    let analyze =
        || grayscale(&["--context", "restricted", "analyze", "rc", "-n", n, "--window", "10s", "-o", "json"]);
    poll("the restricted user's analyze to work", Duration::from_secs(30), || {
        (analyze().code == 0).then_some(())
    });
    kubectl(&["delete", "rolebinding", &name, "-n", "istio-system"]).ok();
    kubectl(&["delete", "role", &name, "-n", "istio-system"]).ok();
    let r = poll("the proxy permission to be gone", Duration::from_secs(30), || {
        let r = analyze();
        (r.code != 0).then_some(r)
    });
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(r.stderr.contains("get services/proxy istio-system/prometheus:9090: forbidden"), "{}", r.stderr);
    assert!(r.stderr.contains("kubectl auth can-i get services/proxy"), "{}", r.stderr);
}

fn tmux(args: &[&str]) -> String {
    let out = std::process::Command::new("tmux").args(args).output().expect("tmux");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn on_a_terminal_the_bar_shows_each_gates_latest_value() {
    let (_p, ns) = canary_test("g-tty", HEALTHY);
    let n = ns.name.as_str();
    let session = format!("gates-{}", std::process::id());
    let cmd = format!(
        "unset CI NO_COLOR; export KUBECONFIG={}; {BIN} shift rc -n {n} --to 100 --step 45 --interval 4s \
         --gate 'success-rate>=99' --gate 'p99<=500ms'; echo EXIT=$?; sleep 60",
        plane().kubeconfig.display()
    );
    tmux(&["new-session", "-d", "-s", &session, "-x", "250", "-y", "40", &cmd]);
    let bar_with_gates = poll("the bar with the gates' values", Duration::from_secs(90), || {
        let screen = tmux(&["capture-pane", "-p", "-t", &session]);
        screen
            .lines()
            .find(|l| {
                l.contains('█') && l.contains("| success-rate>=99: 100% (needs >= 99%) ok, p99<=500ms: ")
            })
            .map(str::to_string)
    });
    let screen = poll("the shift to end", Duration::from_secs(90), || {
        let s = tmux(&["capture-pane", "-p", "-t", &session]);
        s.contains("EXIT=").then_some(s)
    });
    tmux(&["kill-session", "-t", &session]);
    assert!(bar_with_gates.contains("rc new version ["), "{bar_with_gates}");
    assert!(screen.contains("EXIT=0"), "{screen}");
}

#[test]
fn a_gateway_api_canary_is_shifted_to_100_on_its_gates() {
    // The metrics are the same whichever API routes: sim-mesh reports each request under the
    // version behind the HTTPRoute's backend Service.
    let _guard = shared();
    let ns = Namespace::new("g-gateway");
    let n = ns.name.as_str();
    canary_task_with(n, "1", "10", &["--image", &format!("reviews={HEALTHY}"), "--routing", "gateway-api"]);
    let r = gated(n, &["--gate", "success-rate>=99", "--gate", "p99<=500ms"]).ok();
    let rows: Vec<&str> = r.stdout.lines().skip_while(|l| !l.starts_with("STEP")).skip(1).collect();
    assert_eq!(rows.len(), 2, "{}", r.stdout);
    assert!(rows.iter().all(|row| row.matches(" ok").count() == 2), "{}", r.stdout);
    let route = get(n, "httproutes.gateway.networking.k8s.io", "reviews").expect("httproute");
    let weights: Vec<(String, i64)> = route["spec"]["rules"][0]["backendRefs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["name"].as_str().unwrap().to_string(), b["weight"].as_i64().unwrap()))
        .collect();
    assert_eq!(weights, [("reviews-v2".to_string(), 100)]);
    assert_eq!(task_weights(n), (0, 100));
}
