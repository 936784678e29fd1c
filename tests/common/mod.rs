//! The end-to-end harness: one local control plane per test binary (started by
//! `hack/local-cluster.sh up`, reused when it already runs), a fresh namespace per test, the
//! real `kubectl-grayscale` binary, kubectl for setup and checks, and the audit log.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_kubectl-grayscale");

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub struct Plane {
    pub kubeconfig: PathBuf,
    pub state: PathBuf,
}

/// Starts the control plane once per test binary. Never skips: if it cannot start, every test
/// fails with the script's output.
pub fn plane() -> &'static Plane {
    static PLANE: OnceLock<Plane> = OnceLock::new();
    PLANE.get_or_init(|| start_plane(&[]))
}

/// A second plain plane (the state folder `plane-fleet` beside the first), for take-overs across
/// clusters. Started like the first, reused when it already runs.
pub fn fleet_plane() -> &'static Plane {
    static PLANE: OnceLock<Plane> = OnceLock::new();
    PLANE.get_or_init(|| {
        let state = plane().state.with_file_name("plane-fleet");
        start_plane(&[("GRAYSCALE_STATE", state.to_str().unwrap())])
    })
}

/// KubeSphere 3.3's controllers beside the repository (`../shared/peers/kubesphere-3.3/`), as
/// build.rs found them. Where it did not, the conformance suite is compiled as ignored.
pub fn kubesphere_peer() -> Option<PathBuf> {
    option_env!("GRAYSCALE_KUBESPHERE_PEER").map(PathBuf::from)
}

/// A second control plane running KubeSphere's controllers with the upstream CRDs, for the
/// conformance suite (the state folder `plane-ks` beside the first plane's, as `hack/test.sh`
/// starts it). Never skips: without the peer, or if the plane or the peer cannot start, every
/// test that asks for it fails with the reason.
pub fn kubesphere_plane() -> &'static Plane {
    static PLANE: OnceLock<Plane> = OnceLock::new();
    PLANE.get_or_init(|| {
        let peer = kubesphere_peer().expect(
            "this build did not find KubeSphere 3.3's controllers beside the repository \
             (../shared/peers/kubesphere-3.3/); the conformance suite cannot run",
        );
        let manager = peer.join("controller-manager");
        assert!(manager.is_file(), "{} is missing: the conformance peer cannot start", manager.display());
        let state = plane().state.with_file_name("plane-ks");
        let p = start_plane(&[
            ("GRAYSCALE_STATE", state.to_str().unwrap()),
            ("GRAYSCALE_CRDS", peer.join("crds").to_str().unwrap()),
            ("GRAYSCALE_PEER", manager.to_str().unwrap()),
        ]);
        assert_peer_runs(&p);
        p
    })
}

/// Gateway API v1.6.1's standard HTTPRoute CRD beside the repository, as build.rs found it.
pub fn gateway_api_httproute_crd() -> Option<PathBuf> {
    option_env!("GRAYSCALE_GATEWAY_API_HTTPROUTE_CRD").map(PathBuf::from)
}

/// A control plane (state folder `plane-gw`) serving Gateway API's own standard HTTPRoute CRD
/// instead of the project's; the other CRDs are the project's. The API server (1.20) enforces
/// its OpenAPI schema (types, enums, limits, defaults), not its CEL rules.
pub fn gateway_api_plane() -> &'static Plane {
    static PLANE: OnceLock<Plane> = OnceLock::new();
    PLANE.get_or_init(|| {
        let crd = gateway_api_httproute_crd().expect(
            "this build did not find Gateway API's HTTPRoute CRD in ../shared/peers/gateway-api-v1.6.1/crds/",
        );
        let state = plane().state.with_file_name("plane-gw");
        let crds = state.with_file_name("plane-gw-crds");
        std::fs::create_dir_all(&crds).expect("a folder for the CRDs");
        for entry in std::fs::read_dir(repo().join("deploy/crds")).expect("deploy/crds") {
            let path = entry.unwrap().path();
            if path.file_name().is_some_and(|n| n != "gateway-httproutes.yaml") {
                std::fs::copy(&path, crds.join(path.file_name().unwrap())).expect("copy a CRD");
            }
        }
        std::fs::copy(&crd, crds.join("gateway-httproutes.yaml")).expect("copy Gateway API's HTTPRoute CRD");
        start_plane(&[
            ("GRAYSCALE_STATE", state.to_str().unwrap()),
            ("GRAYSCALE_CRDS", crds.to_str().unwrap()),
        ])
    })
}

/// KubeSphere 3.4's Strategy CRD beside the repository, as build.rs found it.
pub fn kubesphere_34_strategy_crd() -> Option<PathBuf> {
    option_env!("GRAYSCALE_KUBESPHERE_34_STRATEGY_CRD").map(PathBuf::from)
}

/// A third control plane (state folder `plane-ks34`) whose Strategy CRD is KubeSphere 3.4's and
/// whose other CRDs are the project's: CRDs are cluster-wide, so the shared plane's is never
/// replaced. No KubeSphere controller runs there (client routing).
pub fn kubesphere_34_plane() -> &'static Plane {
    static PLANE: OnceLock<Plane> = OnceLock::new();
    PLANE.get_or_init(|| {
        let crd = kubesphere_34_strategy_crd().expect(
            "this build did not find KubeSphere 3.4's Strategy CRD in ../shared/peers/kubesphere-3.4/crds/",
        );
        let state = plane().state.with_file_name("plane-ks34");
        let crds = state.with_file_name("plane-ks34-crds");
        std::fs::create_dir_all(&crds).expect("a folder for the CRDs");
        for entry in std::fs::read_dir(repo().join("deploy/crds")).expect("deploy/crds") {
            let path = entry.unwrap().path();
            if path.file_name().is_some_and(|n| n != "servicemesh-strategies.yaml") {
                std::fs::copy(&path, crds.join(path.file_name().unwrap())).expect("copy a CRD");
            }
        }
        std::fs::copy(&crd, crds.join("servicemesh-strategies.yaml")).expect("copy 3.4's Strategy CRD");
        start_plane(&[
            ("GRAYSCALE_STATE", state.to_str().unwrap()),
            ("GRAYSCALE_CRDS", crds.to_str().unwrap()),
        ])
    })
}

/// `hack/local-cluster.sh` starts the peer in the background and does not wait for it; a peer
/// that exits at once (not executable, refused its kubeconfig) leaves the plane's `status`
/// failing. Checked a moment after the start, with the peer's log in the failure.
fn assert_peer_runs(p: &Plane) {
    std::thread::sleep(Duration::from_secs(2));
    let status = Command::new("bash")
        .arg(repo().join("hack/local-cluster.sh"))
        .arg("status")
        .env("GRAYSCALE_STATE", &p.state)
        .stdin(Stdio::null())
        .output()
        .expect("run hack/local-cluster.sh status");
    assert!(
        status.status.success(),
        "KubeSphere's controllers (the conformance peer) are not running on {}: {}\npeer log:\n{}",
        p.state.display(),
        String::from_utf8_lossy(&status.stdout).trim(),
        std::fs::read_to_string(p.state.join("logs/peer.log")).unwrap_or_default()
    );
}

fn start_plane(env: &[(&str, &str)]) -> Plane {
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join("hack/local-cluster.sh")).arg("up").stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    // The script runs cargo: variables cargo set for this test would make it rebuild
    // dependencies whose build scripts watch them (ring watches CARGO_MANIFEST_DIR).
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("CARGO_") && k != "CARGO_HOME" && k != "CARGO_TARGET_DIR" {
            cmd.env_remove(k);
        }
    }
    let out = cmd.output().expect("run hack/local-cluster.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the local control plane did not start:\n{}\n{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout.lines().find_map(|l| l.strip_prefix("export KUBECONFIG=")).expect("kubeconfig line");
    let kubeconfig = PathBuf::from(line.trim());
    let state = kubeconfig.parent().expect("state dir").to_path_buf();
    Plane { kubeconfig, state }
}

/// The plugin against a given plane.
pub fn grayscale_in(p: &Plane, args: &[&str]) -> Run {
    grayscale_in_env(p, args, &[])
}

/// The plugin against a given plane, with extra environment (test gates and switches).
pub fn grayscale_in_env(p: &Plane, args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Run {
    let mut c = Command::new(BIN);
    c.args(args).env("KUBECONFIG", &p.kubeconfig).env_remove("NO_COLOR").stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    Run::from(c.output().expect("run kubectl-grayscale"))
}

/// kubectl against a given plane, with optional standard input.
pub fn kubectl_in(p: &Plane, args: &[&str], input: Option<&str>) -> Run {
    use std::io::Write;
    let mut child = Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", &p.kubeconfig)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kubectl");
    let mut stdin = child.stdin.take().unwrap();
    if let Some(i) = input {
        stdin.write_all(i.as_bytes()).unwrap();
    }
    drop(stdin);
    Run::from(child.wait_with_output().unwrap())
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(self.code, 0, "command failed\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.stdout))
    }
}

/// Runs the plugin against the plane, with no terminal and no colour.
pub fn grayscale(args: &[&str]) -> Run {
    grayscale_env(args, &[])
}

pub fn grayscale_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let p = plane();
    let mut c = Command::new(BIN);
    c.args(args).env("KUBECONFIG", &p.kubeconfig).env_remove("NO_COLOR").stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    Run::from(c.output().expect("run kubectl-grayscale"))
}

/// Runs the plugin with no cluster configured at all (validation and help tests).
pub fn grayscale_offline(args: &[&str]) -> Run {
    let out = Command::new(BIN)
        .args(args)
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .stdin(Stdio::null())
        .output()
        .expect("run kubectl-grayscale");
    Run::from(out)
}

pub fn kubectl(args: &[&str]) -> Run {
    let p = plane();
    let out = Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", &p.kubeconfig)
        .stdin(Stdio::null())
        .output()
        .expect("run kubectl");
    Run::from(out)
}

pub fn kubectl_stdin(args: &[&str], input: &str) -> Run {
    use std::io::Write;
    let p = plane();
    let mut child = Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", &p.kubeconfig)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kubectl");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    Run::from(child.wait_with_output().unwrap())
}

/// `kubectl get -o json` of one object, or None if it does not exist.
pub fn get(ns: &str, kind: &str, name: &str) -> Option<Value> {
    let r = kubectl(&["get", kind, name, "-n", ns, "-o", "json"]);
    (r.code == 0).then(|| r.json())
}

/// A namespace of its own for one test, deleted (without waiting) when the test ends.
pub struct Namespace {
    pub name: String,
}

impl Namespace {
    pub fn new(prefix: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
        kubectl(&["create", "namespace", &name]).ok();
        Namespace { name }
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = kubectl(&["delete", "namespace", &self.name, "--wait=false"]);
    }
}

/// Applies the bookinfo-like composed app and waits for its Deployments.
pub fn bookinfo(ns: &str) {
    let file = repo().join("deploy/demo/bookinfo.yaml");
    kubectl(&["apply", "-n", ns, "-f", file.to_str().unwrap()]).ok();
    for d in ["productpage-v1", "details-v1", "reviews-v1", "ratings-v1"] {
        wait_ready(ns, d, Duration::from_secs(60));
    }
}

/// bookinfo with a canary task `rc` of `reviews`: v2 with `replicas` pods at `weight` percent.
pub fn canary_task(ns: &str, replicas: &str, weight: &str) {
    canary_task_with(ns, replicas, weight, &[]);
}

/// `canary_task` with more `create` flags (an image, ...).
pub fn canary_task_with(ns: &str, replicas: &str, weight: &str, extra: &[&str]) {
    bookinfo(ns);
    let mut args = vec![
        "create",
        "canary",
        "rc",
        "-n",
        ns,
        "--service",
        "reviews",
        "--version",
        "v2",
        "--replicas",
        replicas,
        "--weight",
        weight,
    ];
    args.extend_from_slice(extra);
    grayscale(&args).ok();
}

/// A composed app in the KubeSphere shape: Service `svc` and Deployment `svc-v1`.
/// `ports` are (name, port) pairs.
pub fn composed_app(ns: &str, app: &str, svc: &str, ports: &[(&str, u16)], replicas: u32, image: &str) {
    kubectl_stdin(
        &["apply", "-n", ns, "-f", "-"],
        &composed_app_yaml(app, svc, "v1", ports, replicas, image),
    )
    .ok();
    wait_ready(ns, &format!("{svc}-v1"), Duration::from_secs(60));
}

/// The objects of a composed app as the console writes them, with the old version `version`.
pub fn composed_app_yaml(
    app: &str,
    svc: &str,
    version: &str,
    ports: &[(&str, u16)],
    replicas: u32,
    image: &str,
) -> String {
    let port_lines: String = ports
        .iter()
        .map(|(n, p)| format!("  - {{name: {n}, port: {p}, targetPort: {p}, protocol: TCP}}\n"))
        .collect();
    let cport_lines: String = ports
        .iter()
        .map(|(n, p)| format!("        - {{name: {n}, containerPort: {p}, protocol: TCP}}\n"))
        .collect();
    let labels = format!("{{app: {svc}, app.kubernetes.io/name: {app}, app.kubernetes.io/version: v1}}");
    let vlabels = format!(
        "{{app: {svc}, version: {version:?}, app.kubernetes.io/name: {app}, app.kubernetes.io/version: v1}}"
    );
    format!(
        r#"apiVersion: app.k8s.io/v1beta1
kind: Application
metadata:
  name: {app}
  labels: {{app.kubernetes.io/name: {app}, app.kubernetes.io/version: v1}}
  annotations: {{servicemesh.kubesphere.io/enabled: "true"}}
spec:
  selector: {{matchLabels: {{app.kubernetes.io/name: {app}, app.kubernetes.io/version: v1}}}}
---
apiVersion: v1
kind: Service
metadata:
  name: {svc}
  labels: {labels}
  annotations: {{servicemesh.kubesphere.io/enabled: "true"}}
spec:
  selector: {labels}
  ports:
{port_lines}---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {svc}-{workload}
  labels: {vlabels}
  annotations: {{servicemesh.kubesphere.io/enabled: "true"}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {vlabels}}}
  template:
    metadata:
      labels: {vlabels}
      annotations: {{sidecar.istio.io/inject: "true"}}
    spec:
      containers:
      - name: {svc}
        image: {image}
        ports:
{cport_lines}"#,
        workload = version.replace('.', "-")
    )
}

/// Waits (watching through kubectl) until a Deployment reports all replicas ready.
pub fn wait_ready(ns: &str, deploy: &str, timeout: Duration) {
    let r = kubectl(&[
        "wait",
        "-n",
        ns,
        &format!("deployment/{deploy}"),
        "--for=condition=Available",
        &format!("--timeout={}s", timeout.as_secs()),
    ]);
    assert_eq!(r.code, 0, "deployment {ns}/{deploy} not available: {}", r.stderr);
    let start = Instant::now();
    loop {
        let d = get(ns, "deployment", deploy).expect("deployment exists");
        let want = d["spec"]["replicas"].as_i64().unwrap_or(1);
        if d["status"]["readyReplicas"].as_i64().unwrap_or(0) >= want {
            return;
        }
        assert!(start.elapsed() < timeout, "deployment {ns}/{deploy} not ready: {}", d["status"]);
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The API server's audit log. A command run with `audit.tag()` impersonates a user of its own
/// (with the admin's group), so every request it makes is told apart from other tests' in the
/// same log: namespaced, cluster-scoped and non-resource (`/api`, `/apis`, `/version`) alike.
pub struct Audit {
    path: PathBuf,
    offset: u64,
    /// Requests received before the mark (a watch closing late, say) are not counted.
    since: k8s_openapi::jiff::Timestamp,
    pub id: String,
}

#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub verb: String,
    pub uri: String,
    pub namespace: String,
    pub resource: String,
    pub user_agent: String,
    pub impersonated: String,
    pub code: i64,
    pub received: k8s_openapi::jiff::Timestamp,
}

impl AuditEvent {
    /// A request that can change what the cluster stores. Access reviews and "who am I"
    /// (SelfSubjectReview) are `create`s that store nothing: the permission check goes out with
    /// a verb's other reads.
    pub fn mutating(&self) -> bool {
        let review = self.resource.ends_with("accessreviews")
            || self.resource.ends_with("rulesreviews")
            || self.resource == "selfsubjectreviews";
        matches!(self.verb.as_str(), "create" | "update" | "patch" | "delete" | "deletecollection") && !review
    }

    /// `verb resource` (`get strategies`), or `verb /path` for a non-resource request.
    pub fn short(&self) -> String {
        if self.resource.is_empty() {
            format!("{} {}", self.verb, self.uri.split('?').next().unwrap_or_default())
        } else {
            format!("{} {}", self.verb, self.resource)
        }
    }
}

impl Audit {
    /// Marks the current end of the log; later reads see only what comes after.
    pub fn mark() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = plane().state.join("audit.log");
        let offset = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let id = format!("audit-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
        Audit { path, offset, since: k8s_openapi::jiff::Timestamp::now(), id }
    }

    /// Global flags that make a command's requests this audit's own.
    pub fn tag(&self) -> [&str; 4] {
        ["--as", &self.id, "--as-group", "system:masters"]
    }

    /// Waits until the log holds everything sent before now: a request of our own, sent after
    /// the command ended, is logged after the command's.
    fn settle(&self) -> Vec<AuditEvent> {
        let sentinel = format!("{}-end", self.id);
        let r = kubectl(&["get", "--raw", "/version", "--as", &sentinel, "--as-group", "system:masters"]);
        assert_eq!(r.code, 0, "sentinel request failed: {}", r.stderr);
        let start = Instant::now();
        loop {
            let len = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
            assert!(
                len >= self.offset,
                "the audit log was rotated during the test (the plane disables rotation)"
            );
            let events = read_events(&self.path, self.offset);
            if events.iter().any(|e| e.impersonated == sentinel) {
                return events.into_iter().filter(|e| e.received >= self.since).collect();
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the sentinel request never reached the audit log"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every request of the commands run with `tag()`, in the order the log has them.
    pub fn requests(&self) -> Vec<AuditEvent> {
        self.settle().into_iter().filter(|e| e.impersonated == self.id).collect()
    }

    /// Requests by the plugin (user agent kubectl-grayscale/...) in `ns`, or cluster-scoped
    /// when `ns` is empty, for commands not run with `tag()`.
    pub fn plugin_requests(&self, ns: &str) -> Vec<AuditEvent> {
        self.settle()
            .into_iter()
            .filter(|e| e.user_agent.starts_with("kubectl-grayscale/"))
            .filter(|e| ns.is_empty() || e.namespace == ns)
            .collect()
    }
}

/// The read round of every verb that changes a task (and takes no permission check first).
pub const READ_ROUND: &[&str] = &[
    "get strategies",
    "get services",
    "get virtualservices",
    "get destinationrules",
    "list pods",
    "list rollouts",
];

/// Asserts a command's requests, round by round: the requests of one round go out together and
/// may complete in any order, so each round is compared as a sorted list; rounds in order.
pub fn assert_rounds(reqs: &[AuditEvent], rounds: &[&[&str]]) {
    let got: Vec<String> = reqs.iter().map(|e| e.short()).collect();
    let want_len: usize = rounds.iter().map(|r| r.len()).sum();
    assert_eq!(got.len(), want_len, "{got:#?}");
    let mut at = 0;
    for (i, round) in rounds.iter().enumerate() {
        let mut g: Vec<&str> = got[at..at + round.len()].iter().map(String::as_str).collect();
        let mut w: Vec<&str> = round.to_vec();
        g.sort();
        w.sort();
        assert_eq!(g, w, "round {} of {got:#?}", i + 1);
        at += round.len();
    }
}

/// Prints what a command did, for the test log.
pub fn show(what: &str, reqs: &[AuditEvent]) {
    eprintln!("{what}: {} API requests", reqs.len());
    for e in reqs {
        eprintln!("  {} {} -> {}", e.verb, e.uri, e.code);
    }
}

fn read_events(path: &Path, offset: u64) -> Vec<AuditEvent> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).expect("audit log");
    f.seek(SeekFrom::Start(offset)).unwrap();
    let mut text = String::new();
    f.read_to_string(&mut text).unwrap();
    let mut seen = std::collections::HashSet::new();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["stage"] == "ResponseComplete" || e["stage"] == "ResponseStarted")
        .filter(|e| seen.insert(e["auditID"].as_str().unwrap_or_default().to_string()))
        .map(|e| AuditEvent {
            verb: e["verb"].as_str().unwrap_or_default().into(),
            uri: e["requestURI"].as_str().unwrap_or_default().into(),
            namespace: e["objectRef"]["namespace"].as_str().unwrap_or_default().into(),
            resource: e["objectRef"]["resource"].as_str().unwrap_or_default().into(),
            user_agent: e["userAgent"].as_str().unwrap_or_default().into(),
            impersonated: e["impersonatedUser"]["username"].as_str().unwrap_or_default().into(),
            code: e["responseStatus"]["code"].as_i64().unwrap_or(0),
            received: e["requestReceivedTimestamp"].as_str().and_then(|t| t.parse().ok()).unwrap_or_default(),
        })
        .collect()
}

/// Emulates the console: writes a fixture Strategy from `tests/fixtures/` and the new
/// Deployment `<svc>-v2` derived from `<svc>-v1` (version label changed), then waits for it.
pub fn console_task(ns: &str, fixture: &str, svc: &str) {
    let file = repo().join("tests/fixtures").join(fixture);
    kubectl(&["apply", "-n", ns, "-f", file.to_str().unwrap()]).ok();
    let mut d = get(ns, "deployment", &format!("{svc}-v1")).expect("old deployment");
    let meta = d["metadata"].clone();
    d["metadata"] = serde_json::json!({
        "name": format!("{svc}-v2"),
        "labels": meta["labels"],
        "annotations": meta["annotations"],
    });
    d["metadata"]["labels"]["version"] = "v2".into();
    d["spec"]["selector"]["matchLabels"]["version"] = "v2".into();
    d["spec"]["template"]["metadata"]["labels"]["version"] = "v2".into();
    d.as_object_mut().unwrap().remove("status");
    if let Some(a) = d["metadata"]["annotations"].as_object_mut() {
        a.remove("deployment.kubernetes.io/revision");
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
    kubectl_stdin(&["create", "-n", ns, "-f", "-"], &d.to_string()).ok();
    wait_ready(ns, &format!("{svc}-v2"), Duration::from_secs(60));
}

/// Starts the plugin in the background against the plane, stdout and stderr piped.
pub fn spawn_grayscale(args: &[&str]) -> std::process::Child {
    Command::new(BIN)
        .args(args)
        .env("KUBECONFIG", &plane().kubeconfig)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kubectl-grayscale")
}

/// Starts the plugin in the background with `args` tagged for `audit`; stdout discarded,
/// stderr piped.
pub fn spawn_tagged(args: &[&str], audit: &Audit) -> std::process::Child {
    Command::new(BIN)
        .args(args)
        .args(audit.tag())
        .env("KUBECONFIG", &plane().kubeconfig)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kubectl-grayscale")
}

/// Polls `f` (a check of cluster state, read through kubectl) until it holds.
#[track_caller]
pub fn wait_for(what: &str, timeout: Duration, f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A background command's stdout, line by line as it comes.
pub struct Lines {
    rx: std::sync::mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Lines {
    pub fn of(child: &mut std::process::Child) -> Self {
        use std::io::{BufRead, BufReader};
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines { rx, seen: Vec::new() }
    }

    /// Reads until a line satisfies `want`; false if none did within `timeout`.
    pub fn until(&mut self, timeout: Duration, want: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while let Ok(l) = self.rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            let hit = want(&l);
            self.seen.push(l);
            if hit {
                return true;
            }
        }
        false
    }
}

/// The fault-injecting proxy (`fault-proxy/`) in front of the plane's API server, forwarding as
/// `user` (admin or restricted), with its own kubeconfig and a rules file tests rewrite.
pub struct Proxy {
    child: std::process::Child,
    pub kubeconfig: PathBuf,
    rules: PathBuf,
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Proxy {
    pub fn start(user: &str) -> Proxy {
        Proxy::start_with(user, &[])
    }

    /// With extra flags for the proxy (`--http1-only`).
    pub fn start_with(user: &str, flags: &[&str]) -> Proxy {
        use std::io::{BufRead, BufReader};
        let p = plane();
        let pki = p.state.join("pki");
        let kc = std::fs::read_to_string(&p.kubeconfig).unwrap();
        let upstream =
            kc.lines().find_map(|l| l.trim().strip_prefix("server: https://")).unwrap().to_string();
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "grayscale-proxy-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let rules = dir.join("rules.json");
        std::fs::write(&rules, "{}").unwrap();
        // Beside the plugin's own binary: the same build, wherever its target directory is.
        let bin = std::path::Path::new(BIN).with_file_name("fault-proxy");
        let mut child = Command::new(&bin)
            .args(["--upstream", &upstream])
            .arg("--ca")
            .arg(pki.join("ca.crt"))
            .arg("--cert")
            .arg(pki.join(format!("{user}.crt")))
            .arg("--key")
            .arg(pki.join(format!("{user}.key")))
            .arg("--serve-cert")
            .arg(pki.join("apiserver.crt"))
            .arg("--serve-key")
            .arg(pki.join("apiserver.key"))
            .arg("--rules")
            .arg(&rules)
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = out.next().expect("the proxy's first line").unwrap();
        let addr = first.strip_prefix("listening on ").expect("listening line").to_string();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for l in out.map_while(Result::ok) {
                sink.lock().unwrap().push(l);
            }
        });
        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: proxy\n  cluster:\n    server: https://{addr}\n    certificate-authority: {ca}\nusers:\n- name: {user}\n  user:\n    client-certificate: {crt}\n    client-key: {key}\ncontexts:\n- name: proxy\n  context: {{cluster: proxy, user: {user}, namespace: default}}\ncurrent-context: proxy\n",
                ca = pki.join("ca.crt").display(),
                crt = pki.join(format!("{user}.crt")).display(),
                key = pki.join(format!("{user}.key")).display(),
            ),
        )
        .unwrap();
        Proxy { child, kubeconfig, rules, log }
    }

    /// Replaces the rules (the proxy reads them on every request).
    pub fn rules(&self, rules: Value) {
        std::fs::write(&self.rules, serde_json::json!({ "rules": rules }).to_string()).unwrap();
    }

    /// The plugin through the proxy.
    pub fn grayscale(&self, args: &[&str]) -> Run {
        let out = Command::new(BIN)
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env_remove("NO_COLOR")
            .stdin(Stdio::null())
            .output()
            .expect("run kubectl-grayscale");
        Run::from(out)
    }

    /// What the proxy did with requests whose line contains `what`.
    pub fn seen(&self, what: &str) -> Vec<String> {
        self.log.lock().unwrap().iter().filter(|l| l.contains(what)).cloned().collect()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// sim-mesh's request counters for namespace `ns`: (reporter, service, version, code) → count.
pub fn mesh_requests(ns: &str) -> BTreeMap<(String, String, String, String), u64> {
    let url = std::fs::read_to_string(plane().state.join("mesh-url")).expect("mesh-url");
    let out = std::process::Command::new("curl")
        .args(["-fsS", &format!("{}/metrics", url.trim())])
        .output()
        .expect("run curl");
    assert!(out.status.success(), "sim-mesh /metrics: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut counts = BTreeMap::new();
    for line in text.lines().filter_map(|l| l.strip_prefix("istio_requests_total{")) {
        let (labels, n) = line.rsplit_once("} ").unwrap();
        let label = |k: &str| {
            let start = labels.find(&format!("{k}=\"")).unwrap() + k.len() + 2;
            labels[start..].split('"').next().unwrap().to_string()
        };
        if label("destination_service_namespace") == ns {
            let key = (
                label("reporter"),
                label("destination_service_name"),
                label("destination_version"),
                label("response_code"),
            );
            counts.insert(key, n.parse().unwrap());
        }
    }
    counts
}

/// What sim-mesh counted from now until it had counted at least `requests` more, by
/// "reporter service version code".
pub fn requests_from_now(ns: &str, requests: u64) -> BTreeMap<String, u64> {
    let before = mesh_requests(ns);
    let delta = || {
        mesh_requests(ns)
            .into_iter()
            .map(|(k, n)| {
                (format!("{} {} {} {}", k.0, k.1, k.2, k.3), n - before.get(&k).copied().unwrap_or(0))
            })
            .filter(|(_, n)| *n > 0)
            .collect::<BTreeMap<String, u64>>()
    };
    wait_for("sim-mesh to send more requests", Duration::from_secs(60), || {
        delta().values().sum::<u64>() >= requests
    });
    delta()
}

/// A namespace of its own on another plane than the shared one, with bookinfo applied and
/// reviews-v1 available; deleted (without waiting) when the test ends.
pub struct PlaneNs {
    pub p: &'static Plane,
    pub name: String,
}

impl PlaneNs {
    pub fn new(p: &'static Plane, prefix: &str) -> Self {
        let name = format!("{prefix}-{}", std::process::id());
        kubectl_in(p, &["create", "namespace", &name], None).ok();
        let file = repo().join("deploy/demo/bookinfo.yaml");
        kubectl_in(p, &["apply", "-n", &name, "-f", file.to_str().unwrap()], None).ok();
        kubectl_in(
            p,
            &["wait", "-n", &name, "deployment/reviews-v1", "--for=condition=Available", "--timeout=60s"],
            None,
        )
        .ok();
        PlaneNs { p, name }
    }

    /// The plugin on this plane, in this namespace.
    pub fn gs(&self, args: &[&str]) -> Run {
        let mut a = args.to_vec();
        a.extend(["-n", &self.name]);
        grayscale_in(self.p, &a)
    }

    pub fn get(&self, kind: &str, name: &str) -> Option<Value> {
        let r = kubectl_in(self.p, &["get", kind, name, "-n", &self.name, "-o", "json"], None);
        (r.code == 0).then(|| r.json())
    }
}

impl Drop for PlaneNs {
    fn drop(&mut self) {
        let _ = kubectl_in(self.p, &["delete", "namespace", &self.name, "--wait=false"], None);
    }
}
