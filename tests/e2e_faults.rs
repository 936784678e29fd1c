//! Faults between the plugin and the API server, injected by the fault proxy: latency, throttling
//! and unavailable answers, lost answers, black holes. Every assertion is on the cluster's state
//! or the command's result; times are printed, never asserted.

mod common;

use std::time::Instant;

use common::*;
use serde_json::json;

fn canary(ns: &str) {
    canary_task(ns, "1", "20");
}

fn weights(ns: &str) -> (i64, i64) {
    let s = get(ns, "strategies.servicemesh.kubesphere.io", "rc").unwrap();
    let r = &s["spec"]["template"]["spec"]["http"][0]["route"];
    (r[0]["weight"].as_i64().unwrap(), r[1]["weight"].as_i64().unwrap())
}

fn journal_len(ns: &str) -> usize {
    grayscale(&["history", "rc", "-n", ns, "-o", "json"]).ok().json().as_array().unwrap().len()
}

#[test]
fn takeover_stays_at_two_rounds_with_300_ms_added_to_every_round_trip() {
    let ns = Namespace::new("f-latency");
    let n = ns.name.as_str();
    canary(n);
    let proxy = Proxy::start("admin");
    // As an on-call engineer would: a look at the task first (which also caches its identity).
    proxy.grayscale(&["status", "rc", "-n", n]).ok();
    let looked = proxy.seen("-> forwarded").len();
    // Every request 300 ms late, and the task's write held until the VirtualService's write has
    // arrived too: a take-over that waited for one answer before sending the next write would
    // be held 20 s and logged so.
    proxy.rules(json!([
        {"method": "PATCH", "path": "/strategies/rc", "latency_ms": 300,
         "until": format!("PATCH /apis/networking.istio.io/v1alpha3/namespaces/{n}/virtualservices/reviews")},
        {"latency_ms": 300}
    ]));
    let audit = Audit::mark();
    let connections = proxy.seen("connection accepted").len();
    let mut args = vec!["takeover", "rc", "-n", n, "--version", "v1"];
    args.extend(audit.tag());
    let start = Instant::now();
    proxy.grayscale(&args).ok();
    eprintln!("takeover through 300 ms of latency: {:?}", start.elapsed());
    assert_rounds(
        &audit.requests(),
        &[READ_ROUND, &["patch strategies", "patch virtualservices", "create events"]],
    );
    let seen = proxy.seen("-> forwarded").len() - looked;
    assert_eq!(seen, 9, "no request outside the nine: {:?}", proxy.seen(""));
    let held = proxy.seen(" -> held");
    assert_eq!(held.len(), 1, "{:?}", proxy.seen(""));
    assert!(held[0].contains("arrived"), "the two writes go out together: {held:?}");
    // Both rounds on one HTTP/2 connection: one TLS handshake for the nine requests.
    assert_eq!(
        proxy.seen("connection accepted")[connections..],
        ["connection accepted (h2)"],
        "{:?}",
        proxy.seen("")
    );
}

#[test]
fn a_write_that_landed_but_answered_500_504_or_503_is_checked_not_applied_twice() {
    let ns = Namespace::new("f-5xx");
    let n = ns.name.as_str();
    canary(n);
    let proxy = Proxy::start("admin");
    // (answer after the write, weight after +10). A 503 is retried by the client: the second
    // PATCH carries the first's resourceVersion and conflicts with the write that landed.
    let cases = [(500, 30), (504, 40), (503, 50)];
    for (status, want) in cases {
        proxy.rules(
            json!([{"method": "PATCH", "path": "/strategies/rc", "after_status": status, "times": 1}]),
        );
        let before = journal_len(n);
        let r = proxy.grayscale(&["shift", "rc", "-n", n, "--by", "+10"]);
        assert_eq!(r.code, 0, "{status}: {}", r.stderr);
        assert_eq!(proxy.seen(&format!("answered {status}")).len(), 1, "{status}: {:?}", proxy.seen(""));
        assert_eq!(weights(n), (100 - want, want), "{status}: +10 once, not twice");
        assert_eq!(journal_len(n), before + 1, "{status}");
        let vs = get(n, "virtualservice", "reviews").unwrap();
        assert_eq!(vs["spec"]["http"][0]["route"][1]["weight"], want, "{status}");
    }
}

#[test]
fn throttled_and_unavailable_answers_are_retried_and_the_change_applied_once() {
    let ns = Namespace::new("f-429");
    let n = ns.name.as_str();
    canary(n);
    let proxy = Proxy::start("admin");
    proxy.rules(json!([
        {"method": "GET", "path": "/strategies/rc", "status": 429, "retry_after": 1, "times": 1},
        {"method": "PATCH", "path": "/strategies/rc", "status": 503, "times": 2},
        {"method": "GET", "path": "/services/reviews", "status": 500, "times": 1},
    ]));
    let before = journal_len(n);
    let r = proxy.grayscale(&["shift", "rc", "-n", n, "--by", "+10"]).ok();
    assert!(r.stdout.contains("v1 70% v2 30%"), "{}", r.stdout);
    assert_eq!(weights(n), (70, 30));
    assert_eq!(journal_len(n), before + 1, "applied once");
    assert_eq!(proxy.seen("answered 429").len(), 1);
    assert_eq!(proxy.seen("answered 503").len(), 2);
    assert_eq!(proxy.seen("answered 500").len(), 1);
}

#[test]
fn a_lost_answer_to_a_task_write_is_checked_not_applied_twice() {
    let ns = Namespace::new("f-lost");
    let n = ns.name.as_str();
    canary(n);
    let proxy = Proxy::start("admin");
    proxy.rules(json!([{"method": "PATCH", "path": "/strategies/rc", "fault": "reset-after", "times": 1}]));
    let before = journal_len(n);
    proxy.grayscale(&["shift", "rc", "-n", n, "--by", "+10"]).ok();
    assert_eq!(proxy.seen("answer lost").len(), 1, "{:?}", proxy.seen(""));
    assert_eq!(weights(n), (70, 30), "+10 once, not twice");
    assert_eq!(journal_len(n), before + 1);
    let vs = get(n, "virtualservice", "reviews").unwrap();
    assert_eq!(vs["spec"]["http"][0]["route"][1]["weight"], 30);
}

#[test]
fn a_lost_answer_to_a_create_is_recognised_as_the_task_it_made() {
    let ns = Namespace::new("f-create");
    let n = ns.name.as_str();
    bookinfo(n);
    let proxy = Proxy::start("admin");
    proxy.rules(json!([
        {"method": "POST", "path": "/deployments", "fault": "reset-after", "times": 1},
        {"method": "POST", "path": "/strategies", "fault": "reset-after", "times": 1},
    ]));
    let r = proxy.grayscale(&[
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
        "--weight",
        "20",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(proxy.seen("answer lost").len(), 2, "{:?}", proxy.seen(""));
    assert_eq!(weights(n), (80, 20));
}

#[test]
fn a_black_hole_ends_at_the_request_timeout_and_writes_nothing() {
    let ns = Namespace::new("f-hole");
    let n = ns.name.as_str();
    canary(n);
    let proxy = Proxy::start("admin");
    proxy.rules(json!([{"method": "GET", "path": "/virtualservices/", "fault": "blackhole"}]));
    let start = Instant::now();
    let r = proxy.grayscale(&["shift", "rc", "-n", n, "--weight", "50", "--request-timeout", "1s"]);
    eprintln!("ended after {:?}", start.elapsed());
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("VirtualService"), "{}", r.stderr);
    assert!(!proxy.seen("black hole").is_empty());
    assert_eq!(weights(n), (80, 20), "nothing was written");
}

#[test]
fn a_takeover_past_its_deadline_says_what_was_applied_and_how_to_finish() {
    let ns = Namespace::new("f-deadline");
    let n = ns.name.as_str();
    canary(n);
    let proxy = Proxy::start("admin");
    proxy.rules(json!([{"method": "PATCH", "path": "/virtualservices/", "fault": "blackhole"}]));
    let r = proxy.grayscale(&["takeover", "rc", "-n", n, "--version", "v1", "--timeout", "3s"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "did not finish within 3s: task rc has governor v1, but its routing may not be written"
        ),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("kubectl grayscale sync rc"), "{}", r.stderr);
    // As the message says: the task has the governor, and sync finishes the job.
    assert_eq!(get(n, "strategies.servicemesh.kubesphere.io", "rc").unwrap()["spec"]["governor"], "v1");
    grayscale(&["sync", "rc", "-n", n]).ok();
    let vs = get(n, "virtualservice", "reviews").unwrap();
    assert_eq!(vs["spec"]["http"][0]["route"][0]["destination"]["subset"], "v1");
    assert_eq!(vs["spec"]["http"][0]["route"].as_array().unwrap().len(), 1);

    proxy.rules(json!([{"method": "GET", "path": "/strategies/rc", "fault": "blackhole"}]));
    let r = proxy.grayscale(&["takeover", "rc", "-n", n, "--version", "v2", "--timeout", "2s"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("nothing was written"), "{}", r.stderr);
    assert_eq!(get(n, "strategies.servicemesh.kubesphere.io", "rc").unwrap()["spec"]["governor"], "v1");
}

#[test]
fn a_change_past_its_deadline_says_what_was_applied_and_how_to_finish() {
    let ns = Namespace::new("f-change-deadline");
    let n = ns.name.as_str();
    canary(n);
    let proxy = Proxy::start("admin");
    // The routing write never answers: the task was written, its routing was not.
    proxy.rules(json!([{"method": "PATCH", "path": "/virtualservices/", "fault": "blackhole"}]));
    let r = proxy.grayscale(&["shift", "rc", "-n", n, "--weight", "50", "--timeout", "3s"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("shift did not finish within 3s: task rc was changed, but its routing was not written"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains(&format!("kubectl grayscale sync rc -n {n}")), "{}", r.stderr);
    assert!(!proxy.seen("black hole").is_empty());
    assert_eq!(weights(n), (50, 50), "as the message says, the task was written");
    grayscale(&["sync", "rc", "-n", n]).ok();
    let vs = get(n, "virtualservice", "reviews").unwrap();
    assert_eq!(vs["spec"]["http"][0]["route"][1]["weight"], 50, "and sync finishes the job");

    // The task's write never answers: nothing was confirmed, and nothing was written.
    proxy.rules(json!([{"method": "PATCH", "path": "/strategies/", "fault": "blackhole"}]));
    let journal = journal_len(n);
    let r = proxy.grayscale(&["mirror", "rc", "-n", n, "--on", "--timeout", "2s"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("mirror did not finish within 2s: no change to task rc was confirmed"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains(&format!("kubectl grayscale history rc -n {n}")), "{}", r.stderr);
    assert_eq!(journal_len(n), journal, "nothing was written");
}

#[test]
fn a_kubesphere_mirror_repair_the_api_server_refuses_is_reported_not_taken_for_a_conflict() {
    let ns = Namespace::new("f-mirror-422");
    let n = ns.name.as_str();
    canary(n);
    let proxy = Proxy::start("admin");
    // Under KubeSphere routing the plugin patches the task's mirror onto the controller's
    // VirtualService; a 422 that is not a failed guard (here injected, as for a value its
    // schema refuses) is the command's failure, with the server's reason.
    proxy.rules(json!([{"method": "PATCH", "path": "virtualservices", "status": 422, "times": 1}]));
    let r = proxy.grayscale(&["mirror", "rc", "-n", n, "--on", "--routing", "kubesphere"]);
    assert_eq!(r.code, 7, "the task changed, its routing not: {}", r.stderr);
    assert!(r.stderr.contains("injected by fault-proxy"), "{}", r.stderr);
    assert!(r.stderr.contains(&format!("kubectl grayscale sync rc -n {n}")), "{}", r.stderr);
    let s = get(n, "strategies.servicemesh.kubesphere.io", "rc").unwrap();
    assert!(s["spec"]["template"]["spec"]["http"][0]["mirror"].is_object(), "the task has its mirror: {s}");
    // As the hint says, sync repairs it, and says what it wrote.
    let r = proxy.grayscale(&["sync", "rc", "-n", n, "--routing", "kubesphere"]).ok();
    assert!(r.stderr.contains("only its mirror was set on their VirtualService"), "{}", r.stderr);
    let vs = get(n, "virtualservice", "reviews").unwrap();
    assert_eq!(vs["spec"]["http"][0]["mirror"]["subset"], "v2", "{vs}");
    // Nothing left to repair: nothing written, and said so.
    let r = proxy.grayscale(&["sync", "rc", "-n", n, "--routing", "kubesphere"]).ok();
    assert!(r.stderr.contains("nothing written"), "{}", r.stderr);
}

#[test]
fn a_server_that_speaks_only_http1_gets_a_connection_per_parallel_request() {
    let ns = Namespace::new("f-http1");
    let n = ns.name.as_str();
    canary(n);
    let proxy = Proxy::start_with("admin", &["--http1-only"]);
    proxy.grayscale(&["status", "rc", "-n", n]).ok();
    let connections = proxy.seen("connection accepted").len();
    let mut args = vec!["takeover", "rc", "-n", n, "--version", "v1"];
    let audit = Audit::mark();
    args.extend(audit.tag());
    proxy.grayscale(&args).ok();
    assert_rounds(
        &audit.requests(),
        &[READ_ROUND, &["patch strategies", "patch virtualservices", "create events"]],
    );
    // HTTP/1.1, as offered: the six reads each on a connection of their own (the first made
    // alone, to learn the protocol), the three writes on three of those, kept alive.
    let made = &proxy.seen("connection accepted")[connections..];
    assert_eq!(made, vec!["connection accepted (http/1.1)"; 6], "{:?}", proxy.seen(""));
    assert_eq!(get(n, "strategies.servicemesh.kubesphere.io", "rc").unwrap()["spec"]["governor"], "v1");
}
