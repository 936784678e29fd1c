//! `list` and `status`: tasks written by the console and by the CLI look the same, and the
//! JSON view follows the documented schema.

mod common;

use common::*;
use serde_json::json;

#[test]
fn a_console_canary_appears_in_list_and_status_like_a_cli_task() {
    let ns = Namespace::new("list");
    let n = ns.name.as_str();
    bookinfo(n);
    console_task(n, "console-canary.yaml", "reviews");
    let r = grayscale(&["list", "-n", n]).ok();
    let row = r.stdout.lines().find(|l| l.starts_with("console-canary")).expect("row");
    for cell in ["canary", "reviews", "v1 -> v2", "v1 3/3, v2 3/3", "v1 70% v2 30%", "WaitForWorkloadReady"] {
        assert!(row.contains(cell), "{cell:?} missing in {row:?}");
    }
    let j = grayscale(&["list", "-n", n, "-o", "json"]).ok().json();
    assert_eq!(j["apiVersion"], "grayscale.kubectl.io/v1");
    assert_eq!(j["kind"], "TaskList");
    let t = &j["items"][0];
    assert_eq!(t["name"], "console-canary");
    assert_eq!(t["type"], "canary");
    assert_eq!(t["service"], "reviews");
    assert_eq!(t["app"], "bookinfo");
    assert_eq!(t["oldVersion"], "v1");
    assert_eq!(t["newVersion"], "v2");
    assert_eq!(t["policy"], "WaitForWorkloadReady");
    assert_eq!(
        t["routing"],
        json!({"mode": "ratio", "weights": [{"version": "v1", "weight": 70}, {"version": "v2", "weight": 30}]})
    );
    assert_eq!(
        t["versions"],
        json!([
            {"version": "v1", "role": "old", "workload": "reviews-v1", "replicas": 3, "ready": 3, "available": 3, "exists": true},
            {"version": "v2", "role": "new", "workload": "reviews-v2", "replicas": 3, "ready": 3, "available": 3, "exists": true},
        ])
    );
    let names = grayscale(&["list", "-n", n, "-o", "name"]).ok();
    assert_eq!(names.stdout, "strategy.servicemesh.kubesphere.io/console-canary\n");
}

#[test]
fn status_json_carries_the_task_pods_and_live_routing() {
    let ns = Namespace::new("status");
    let n = ns.name.as_str();
    bookinfo(n);
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
        "2",
        "--weight",
        "25",
    ])
    .ok();
    let j = grayscale(&["status", "rc", "-n", n, "-o", "json"]).ok().json();
    assert_eq!(j["kind"], "Task");
    assert_eq!(
        j["liveRouting"],
        json!([{"port": 9080, "weights": [{"version": "v1", "weight": 75}, {"version": "v2", "weight": 25}]}])
    );
    let pods = j["pods"].as_array().unwrap();
    assert_eq!(pods.len(), 5);
    assert!(pods.iter().all(|p| p["state"] == "Ready" && p["ready"] == true));
    assert_eq!(pods.iter().filter(|p| p["version"] == "v2").count(), 2);
    let y = grayscale(&["get", "rc", "-n", n, "-o", "yaml"]).ok();
    assert!(y.stdout.contains("kind: Task\n"), "{}", y.stdout);
    let table = grayscale(&["status", "rc", "-n", n]).ok();
    assert!(table.stdout.contains("port 9080"), "{}", table.stdout);
    assert!(!table.stdout.contains('\u{1b}'), "no escape codes without a terminal");
}

#[test]
fn an_old_console_os_regex_reads_back_as_the_operating_systems() {
    let ns = Namespace::new("match");
    let n = ns.name.as_str();
    bookinfo(n);
    console_task(n, "console-match.yaml", "reviews");
    let j = grayscale(&["status", "console-match", "-n", n, "-o", "json"]).ok().json();
    assert_eq!(j["routing"]["mode"], "match");
    let m = j["routing"]["match"].as_str().unwrap();
    assert!(m.contains("os=android,ios"), "{m}");
    assert!(m.contains("header x-beta=1"), "{m}");
    assert!(m.contains("-> v2; other requests -> v1"), "{m}");
}

#[test]
fn list_all_namespaces_shows_tasks_of_every_namespace() {
    let a = Namespace::new("lista");
    let b = Namespace::new("listb");
    for ns in [&a, &b] {
        bookinfo(&ns.name);
        console_task(&ns.name, "console-bluegreen.yaml", "reviews");
    }
    let r = grayscale(&["list", "-A", "-o", "wide"]).ok();
    for ns in [&a, &b] {
        let row = r
            .stdout
            .lines()
            .find(|l| l.starts_with(&ns.name))
            .unwrap_or_else(|| panic!("{} missing:\n{}", ns.name, r.stdout));
        assert!(row.contains("bluegreen"), "{row}");
        assert!(row.contains("(takeover)"), "{row}");
        assert!(row.contains("reviews-v1,reviews-v2"), "{row}");
    }
}

#[test]
fn sync_routes_a_console_task_on_a_cluster_without_kubesphere() {
    let ns = Namespace::new("sync");
    let n = ns.name.as_str();
    composed_app(n, "store", "db", &[("tcp-sql", 5432)], 1, "example/db:1");
    console_task(n, "console-tcp-canary.yaml", "db");
    grayscale(&["sync", "console-tcp", "-n", n]).ok();
    let vs = get(n, "virtualservice", "db").unwrap();
    assert_eq!(
        vs["spec"]["tcp"],
        json!([{"match": [{"port": 5432}], "route": [
            {"destination": {"host": "db", "subset": "v1", "port": {"number": 5432}}, "weight": 60},
            {"destination": {"host": "db", "subset": "v2", "port": {"number": 5432}}, "weight": 40}]}])
    );
}

#[test]
fn an_unknown_task_is_a_not_found_error_with_a_hint() {
    let ns = Namespace::new("missing");
    let r = grayscale(&["status", "nosuch", "-n", &ns.name]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("task"), "{}", r.stderr);
    assert!(r.stderr.contains("kubectl grayscale list"), "{}", r.stderr);
}
