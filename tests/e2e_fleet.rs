//! `takeover` across clusters, end to end on two real planes (the default one and `plane-fleet`):
//! both taken over, a regex selecting both, two contexts of one server merged, a black-holed
//! API server that leaves the other taken over and a retry command that finishes the job, and a
//! dry run that only reads. Assertions are on each plane's objects and the audit log.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use serde_json::{Value, json};

/// The task's namespace on the second plane, deleted with the test.
struct FleetNamespace(String);

impl FleetNamespace {
    fn new(name: &str) -> Self {
        kubectl_in(fleet_plane(), &["create", "namespace", name], None).ok();
        FleetNamespace(name.to_string())
    }
}

impl Drop for FleetNamespace {
    fn drop(&mut self) {
        let _ = kubectl_in(fleet_plane(), &["delete", "namespace", &self.0, "--wait=false"], None);
    }
}

/// The same canary task `rc` (reviews, v2 at 20%) on both planes, in namespace `ns` of each.
fn canary_on_both(ns: &str) -> FleetNamespace {
    let b = FleetNamespace::new(ns);
    canary_task(ns, "1", "20");
    let p = fleet_plane();
    let file = repo().join("deploy/demo/bookinfo.yaml");
    kubectl_in(p, &["apply", "-n", ns, "-f", file.to_str().unwrap()], None).ok();
    for d in ["productpage-v1", "details-v1", "reviews-v1", "ratings-v1"] {
        kubectl_in(
            p,
            &["wait", "-n", ns, &format!("deployment/{d}"), "--for=condition=Available", "--timeout=60s"],
            None,
        )
        .ok();
    }
    // create waits for the new version to roll out.
    grayscale_in(
        p,
        &[
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
            "1",
            "--weight",
            "20",
        ],
    )
    .ok();
    b
}

fn server_of(kubeconfig: &Path) -> String {
    let kc = std::fs::read_to_string(kubeconfig).unwrap();
    kc.lines().find_map(|l| l.trim().strip_prefix("server: ")).expect("a server line").to_string()
}

/// One kubeconfig with several contexts, all in namespace `ns`: `plane-a` and `plane-b` (the two
/// planes), `plane-a-again` (plane A once more, another context name), and `a-proxy` (plane A
/// through the fault proxy) when one is given.
fn fleet_kubeconfig(ns: &str, proxy: Option<&Proxy>) -> PathBuf {
    let (a, b) = (plane(), fleet_plane());
    let cluster = |name: &str, server: &str, state: &Path| {
        format!(
            "- name: {name}\n  cluster:\n    server: {server}\n    certificate-authority: {}\n",
            state.join("pki/ca.crt").display()
        )
    };
    let user = |name: &str, state: &Path| {
        format!(
            "- name: {name}\n  user:\n    client-certificate: {}\n    client-key: {}\n",
            state.join("pki/admin.crt").display(),
            state.join("pki/admin.key").display()
        )
    };
    let context = |name: &str, cluster: &str, user: &str| {
        format!("- name: {name}\n  context: {{cluster: {cluster}, user: {user}, namespace: {ns}}}\n")
    };
    let mut clusters = cluster("a", &server_of(&a.kubeconfig), &a.state)
        + &cluster("b", &server_of(&b.kubeconfig), &b.state);
    let users = user("a-admin", &a.state) + &user("b-admin", &b.state);
    let mut contexts = context("plane-a", "a", "a-admin")
        + &context("plane-b", "b", "b-admin")
        + &context("plane-a-again", "a", "a-admin");
    if let Some(p) = proxy {
        clusters += &cluster("a-proxy", &server_of(&p.kubeconfig), &a.state);
        contexts += &context("a-proxy", "a-proxy", "a-admin");
    }
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n{clusters}users:\n{users}contexts:\n{contexts}current-context: plane-a\n"
    );
    let path = std::env::temp_dir().join(format!("grayscale-fleet-{ns}.kubeconfig"));
    std::fs::write(&path, text).unwrap();
    path
}

fn fleet(kubeconfig: &Path, args: &[&str]) -> Run {
    run_with(kubeconfig, args.iter().map(|s| s.to_string()).collect())
}

fn run_with(kubeconfig: &Path, args: Vec<String>) -> Run {
    let out = Command::new(BIN)
        .args(&args)
        .env("KUBECONFIG", kubeconfig)
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .output()
        .expect("run kubectl-grayscale");
    Run { code: out.status.code().unwrap_or(-1), stdout: s(&out.stdout), stderr: s(&out.stderr) }
}

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The Strategy's governor and the VirtualService's first route on one plane.
fn routed(p: &Plane, ns: &str) -> (String, Value) {
    let get = |kind: &str, name: &str| {
        kubectl_in(p, &["get", kind, name, "-n", ns, "-o", "json"], None).ok().json()
    };
    let s = get("strategies.servicemesh.kubesphere.io", "rc");
    let vs = get("virtualservice", "reviews");
    (s["spec"]["governor"].as_str().unwrap_or("").to_string(), vs["spec"]["http"][0]["route"].clone())
}

fn taken_over_to_v1(p: &Plane, ns: &str) -> bool {
    let (governor, route) = routed(p, ns);
    governor == "v1" && route.as_array().map(Vec::len) == Some(1) && route[0]["destination"]["subset"] == "v1"
}

fn untouched(p: &Plane, ns: &str) {
    let (governor, route) = routed(p, ns);
    assert_eq!(governor, "", "no governor");
    assert_eq!(route.as_array().map(Vec::len), Some(2), "{route}");
    assert_eq!(route[1]["weight"], 20, "{route}");
}

/// Result per context from `-o json`.
fn results(r: &Run) -> Vec<(String, String)> {
    r.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["context"].as_str().unwrap().to_string(), i["result"].as_str().unwrap().to_string()))
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

#[test]
fn takeover_across_two_clusters_moves_each_ones_governor_and_routing() {
    let ns = Namespace::new("fleet-two");
    let n = ns.name.as_str();
    let _b = canary_on_both(n);
    let kc = fleet_kubeconfig(n, None);
    let r = fleet(&kc, &["takeover", "rc", "--version", "v1", "--context", "plane-a,plane-b"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let rows: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(rows.len(), 3, "a header and one row per cluster:\n{}", r.stdout);
    assert!(rows[0].starts_with("CONTEXT") && rows[0].contains("BEFORE -> AFTER"), "{}", r.stdout);
    for (row, ctx) in rows[1..].iter().zip(["plane-a", "plane-b"]) {
        assert!(row.starts_with(ctx), "{}", r.stdout);
        assert!(
            row.contains("v1 80% v2 20% -> v1 100% v2 0% (takeover)") && row.contains(" ok "),
            "{}",
            r.stdout
        );
    }
    // Live lines, one per cluster, on stderr (no terminal here).
    assert!(r.stderr.contains("plane-a | reading") && r.stderr.contains("plane-b | writing"), "{}", r.stderr);
    assert!(taken_over_to_v1(plane(), n));
    assert!(taken_over_to_v1(fleet_plane(), n));

    // Idempotent: again, both are unchanged, and -o json carries one entry per context.
    let r = fleet(&kc, &["takeover", "rc", "--version", "v1", "--context", "plane-a,plane-b", "-o", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(results(&r), pairs(&[("plane-a", "unchanged"), ("plane-b", "unchanged")]));
    assert!(!r.stderr.contains(" | "), "no live lines under -o json: {}", r.stderr);

    // --restore across both: the governor goes, the task's own routes (the take-over moved a
    // canary's slider to 0%, as the console does) apply again.
    let r = fleet(&kc, &["takeover", "rc", "--restore", "--context", "plane-a,plane-b", "-o", "yaml"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for p in [plane(), fleet_plane()] {
        let (governor, route) = routed(p, n);
        assert_eq!(governor, "");
        assert_eq!(route.as_array().map(Vec::len), Some(2), "{route}");
    }
}

#[test]
fn a_regex_selects_both_planes_and_an_unknown_name_or_another_verb_sends_nothing() {
    let ns = Namespace::new("fleet-regex");
    let n = ns.name.as_str();
    let _b = canary_on_both(n);
    let kc = fleet_kubeconfig(n, None);

    let audit = Audit::mark();
    let mut refused: Vec<Vec<&str>> = vec![
        vec!["takeover", "rc", "--version", "v1", "--context", "plane-a,nowhere"],
        vec!["takeover", "rc", "--version", "v1", "--context", "/^eu-/"],
        vec!["shift", "rc", "--weight", "50", "--context", "plane-a,plane-b"],
        vec!["status", "rc", "--context", "/plane/"],
    ];
    for args in &mut refused {
        args.extend(audit.tag());
        let r = fleet(&kc, args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("--context"), "{args:?}: {}", r.stderr);
    }
    assert!(audit.requests().is_empty(), "nothing sent: {:#?}", audit.requests());

    // `plane-a-again` matches too, but reaches plane A's server and namespace once more.
    let r = fleet(&kc, &["takeover", "rc", "--version", "v1", "--context", "/^plane-[ab]$/", "-o", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(results(&r), pairs(&[("plane-a", "ok"), ("plane-b", "ok")]));
    assert!(taken_over_to_v1(plane(), n));
    assert!(taken_over_to_v1(fleet_plane(), n));
}

#[test]
fn two_contexts_for_one_server_and_namespace_are_merged_with_a_warning() {
    let ns = Namespace::new("fleet-merge");
    let n = ns.name.as_str();
    let _b = canary_on_both(n);
    let kc = fleet_kubeconfig(n, None);
    let audit = Audit::mark();
    let mut args = vec!["takeover", "rc", "--version", "v1", "--context", "/^plane-/", "-o", "json"];
    args.extend(audit.tag());
    let r = fleet(&kc, &args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(results(&r), pairs(&[("plane-a", "ok"), ("plane-b", "ok")]));
    assert!(
        r.stderr.contains("warning: contexts plane-a and plane-a-again reach the same API server"),
        "{}",
        r.stderr
    );
    // Plane A was taken over once, in two rounds as on one cluster: round 1's reads, then its
    // writes and Event guarded by them.
    let reqs = audit.requests();
    assert_rounds(&reqs, &[READ_ROUND, &["patch strategies", "patch virtualservices", "create events"]]);
    assert!(taken_over_to_v1(plane(), n));
}

#[test]
fn a_black_holed_cluster_costs_its_deadline_the_other_is_taken_over_and_the_retry_finishes() {
    let ns = Namespace::new("fleet-hole");
    let n = ns.name.as_str();
    let _b = canary_on_both(n);
    let proxy = Proxy::start("admin");
    let kc = fleet_kubeconfig(n, Some(&proxy));
    proxy.rules(json!([{"fault": "blackhole"}]));

    // Without --allow-partial a cluster that cannot be read stops every write.
    let r =
        fleet(&kc, &["takeover", "rc", "--version", "v1", "--context", "a-proxy,plane-b", "--timeout", "3s"]);
    assert_eq!(r.code, 14, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("timeout") && r.stdout.contains("skipped"), "{}", r.stdout);
    assert!(!proxy.seen("black hole").is_empty());
    untouched(fleet_plane(), n);

    // --serial stops at the first cluster that fails: plane B is not even read.
    let r = fleet(
        &kc,
        &["takeover", "rc", "--version", "v1", "--context", "a-proxy,plane-b", "--timeout", "2s", "--serial"],
    );
    assert_eq!(r.code, 14, "{}\n{}", r.stdout, r.stderr);
    let b = r.stdout.lines().find(|l| l.starts_with("plane-b")).unwrap_or_else(|| panic!("{}", r.stdout));
    assert!(b.contains("skipped") && b.contains("a-proxy failed first (--serial)"), "{}", r.stdout);
    untouched(fleet_plane(), n);

    // With it, plane B is taken over; the partial outcome names the command for the rest.
    let r = fleet(
        &kc,
        &[
            "takeover",
            "rc",
            "--version",
            "v1",
            "--context",
            "a-proxy,plane-b",
            "--timeout",
            "3s",
            "--allow-partial",
        ],
    );
    assert_eq!(r.code, 14, "{}\n{}", r.stdout, r.stderr);
    assert!(taken_over_to_v1(fleet_plane(), n));
    untouched(plane(), n);
    let retry = r
        .stderr
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("kubectl grayscale takeover"))
        .unwrap_or_else(|| panic!("no retry command in:\n{}", r.stderr))
        .to_string();
    assert_eq!(
        retry, "kubectl grayscale takeover rc --version v1 --context a-proxy --timeout 3s --allow-partial",
        "{}",
        r.stderr
    );

    // The API server answers again: the retry finishes the job on plane A alone.
    proxy.rules(json!([]));
    let words: Vec<String> = retry.split_whitespace().skip(2).map(String::from).collect();
    let r = run_with(&kc, [words, vec!["-o".into(), "json".into()]].concat());
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(results(&r), pairs(&[("a-proxy", "ok")]));
    assert!(taken_over_to_v1(plane(), n));
}

#[test]
fn a_dry_run_reads_every_cluster_and_writes_nothing() {
    let ns = Namespace::new("fleet-dry");
    let n = ns.name.as_str();
    let _b = canary_on_both(n);
    let kc = fleet_kubeconfig(n, None);
    let audit = Audit::mark();
    let mut args = vec!["takeover", "rc", "--version", "v1", "--context", "plane-a,plane-b", "--dry-run"];
    args.extend(audit.tag());
    let r = fleet(&kc, &args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for ctx in ["plane-a", "plane-b"] {
        let row = r.stdout.lines().find(|l| l.starts_with(ctx)).unwrap_or_else(|| panic!("{}", r.stdout));
        assert!(
            row.contains("v1 80% v2 20% -> v1 100% v2 0% (takeover)") && row.contains("planned"),
            "{row}"
        );
    }
    let reqs = audit.requests();
    show("dry run on plane A", &reqs);
    // The positive control: the read round went out...
    for read in READ_ROUND {
        assert!(reqs.iter().any(|e| e.short() == *read), "{read} not seen: {reqs:#?}");
    }
    // ...and nothing that writes.
    assert!(reqs.iter().all(|e| !e.mutating()), "{reqs:#?}");
    for p in [plane(), fleet_plane()] {
        untouched(p, n);
    }
}
