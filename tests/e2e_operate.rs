//! Operating running tasks end to end: shift, match, takeover, mirror, pause/resume, offline,
//! history/undo, on CLI-created and console-written tasks, checking the Strategy and the
//! client-mode routing afterwards.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

fn strategy(ns: &str, name: &str) -> Option<Value> {
    get(ns, "strategies.servicemesh.kubesphere.io", name)
}

fn vs_spec(ns: &str) -> Value {
    get(ns, "virtualservice", "reviews").expect("vs")["spec"].clone()
}

fn weights(ns: &str, name: &str) -> (i64, i64) {
    let s = strategy(ns, name).unwrap();
    let r = &s["spec"]["template"]["spec"]["http"][0]["route"];
    (r[0]["weight"].as_i64().unwrap(), r[1]["weight"].as_i64().unwrap())
}

fn vs_weights(ns: &str) -> (i64, i64) {
    let r = &vs_spec(ns)["http"][0]["route"];
    (r[0]["weight"].as_i64().unwrap(), r[1]["weight"].as_i64().unwrap_or(0))
}

fn canary(ns: &str, weight: &str) {
    canary_task(ns, "2", weight);
}

#[test]
fn shift_sets_absolute_and_relative_weights_with_the_consoles_governor_rule() {
    let ns = Namespace::new("shift");
    let n = ns.name.as_str();
    canary(n, "20");
    let r = grayscale(&["shift", "rc", "-n", n, "--weight", "30"]).ok();
    assert_eq!(r.stdout, "task rc: v1 80% v2 20% -> v1 70% v2 30%\n");
    assert_eq!(weights(n, "rc"), (70, 30));
    assert_eq!(vs_weights(n), (70, 30));
    assert_eq!(strategy(n, "rc").unwrap()["spec"]["governor"].as_str().unwrap_or(""), "");
    grayscale(&["shift", "rc", "-n", n, "--by", "+15"]).ok();
    assert_eq!(weights(n, "rc"), (55, 45));
    grayscale(&["shift", "rc", "-n", n, "--by", "-45"]).ok();
    assert_eq!(weights(n, "rc"), (100, 0));
    assert_eq!(strategy(n, "rc").unwrap()["spec"]["governor"], "v1");
    grayscale(&["shift", "rc", "-n", n, "--weight", "100"]).ok();
    assert_eq!(strategy(n, "rc").unwrap()["spec"]["governor"], "v2");
    assert_eq!(
        vs_spec(n)["http"][0]["route"],
        json!([{"destination": {"host": "reviews", "subset": "v2", "port": {"number": 9080}}, "weight": 100}])
    );
}

#[test]
fn bad_operations_are_refused_and_write_nothing() {
    let ns = Namespace::new("badop");
    let n = ns.name.as_str();
    canary(n, "20");
    let audit = Audit::mark();
    let cases: Vec<(Vec<&str>, &str, i32)> = vec![
        (vec!["shift", "rc", "--weight", "101"], "--weight", 2),
        (vec!["shift", "rc", "--by", "+90"], "would be 110", 2),
        (vec!["shift", "rc", "--by", "-30"], "would be -10", 2),
        (vec!["shift", "nosuch", "--weight", "10"], "task", 3),
        (vec!["shift", "rc", "--to", "50", "--step", "0"], "--step", 2),
        (vec!["takeover", "rc", "--version", "v9"], "has versions v1 and v2, not v9", 2),
        (vec!["takeover", "rc"], "--version", 2),
        (vec!["match", "rc"], "at least one condition", 2),
        (vec!["match", "rc", "--os", "beos"], "strategy.match.os", 2),
        (vec!["match", "rc", "--ratio", "120"], "--ratio", 2),
        (vec!["mirror", "rc", "--on", "--percent", "150"], "--percent", 2),
        (vec!["resume", "rc"], "is not paused", 2),
        (vec!["offline", "rc"], "select a version to take over all traffic first", 2),
        (vec!["offline", "rc", "--keep", "v7"], "has versions v1 and v2, not v7", 2),
        (vec!["undo", "rc"], "no journaled change", 2),
    ];
    for (args, expect, code) in &cases {
        let mut full = args.clone();
        full.extend(["-n", n]);
        full.extend(audit.tag());
        let r = grayscale(&full);
        assert_eq!(r.code, *code, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(expect), "{args:?}: {}", r.stderr);
    }
    let reqs = audit.requests();
    // The positive control: the refusals that need the task read it, and those reads were seen.
    assert!(reqs.iter().any(|e| e.short() == "get strategies"), "the refusals read the task: {reqs:#?}");
    let writes: Vec<_> = reqs.iter().filter(|e| e.mutating()).collect();
    assert!(writes.is_empty(), "{writes:#?}");
    assert_eq!(weights(n, "rc"), (80, 20));
}

#[test]
fn takeover_sends_every_port_to_the_version_in_two_rounds() {
    let ns = Namespace::new("takeover");
    let n = ns.name.as_str();
    composed_app(
        n,
        "shop",
        "cart",
        &[("http-web", 8080), ("grpc-api", 9090), ("tcp-admin", 7000)],
        1,
        "example/cart:1",
    );
    grayscale(&["create", "canary", "cc", "-n", n, "--service", "cart", "--version", "v2", "--weight", "40"])
        .ok();
    let audit = Audit::mark();
    let mut args = vec!["takeover", "cc", "-n", n, "--version", "v1"];
    args.extend(audit.tag());
    let r = grayscale(&args).ok();
    let reqs = audit.requests();
    show("takeover", &reqs);
    // Exactly these: one round of parallel reads (what the checks rely on), then the task, the
    // VirtualService and the Event that records it, together. No discovery (/api, /apis,
    // /version), no other read, no "who am I" under --as; the DestinationRule already has v1's
    // subset, so it is not written.
    assert_rounds(&reqs, &[READ_ROUND, &["patch strategies", "patch virtualservices", "create events"]]);
    // Rollouts are listed whether or not their CRD is installed (404 when it is not, as on a
    // plane where no test installed it yet).
    let fine = |e: &AuditEvent| match (e.verb.as_str(), e.resource.as_str()) {
        ("create", _) => e.code == 201,
        ("list", "rollouts") => e.code == 200 || e.code == 404,
        _ => e.code == 200,
    };
    assert!(reqs.iter().all(fine), "{reqs:#?}");
    assert_eq!(r.stdout, "task cc: v1 60% v2 40% -> v1 100% v2 0% (takeover)\n");
    let s = strategy(n, "cc").unwrap();
    assert_eq!(s["spec"]["governor"], "v1");
    let vs = get(n, "virtualservice", "cart").unwrap();
    let to = |port: u16| json!([{"destination": {"host": "cart", "subset": "v1", "port": {"number": port}}, "weight": 100}]);
    assert_eq!(
        vs["spec"]["http"],
        json!([{"match": [{"port": 8080}], "route": to(8080)}, {"match": [{"port": 9090}], "route": to(9090)}])
    );
    assert_eq!(vs["spec"]["tcp"], json!([{"match": [{"port": 7000}], "route": to(7000)}]));
    // Restore: the task's own routes, per port, again.
    grayscale(&["takeover", "cc", "-n", n, "--restore"]).ok();
    let s = strategy(n, "cc").unwrap();
    assert_eq!(s["spec"]["governor"].as_str().unwrap_or(""), "");
    let vs = get(n, "virtualservice", "cart").unwrap();
    assert_eq!(vs["spec"]["http"].as_array().unwrap().len(), 2, "{}", vs["spec"]);
    assert_eq!(vs["spec"]["http"][1]["match"], json!([{"port": 9090}]));
}

#[test]
fn match_routes_by_request_and_ratio_goes_back() {
    let ns = Namespace::new("matchop");
    let n = ns.name.as_str();
    canary(n, "20");
    grayscale(&["match", "rc", "-n", n, "--header", "x-beta=1", "--os", "windows"]).ok();
    let s = strategy(n, "rc").unwrap();
    let http = &s["spec"]["template"]["spec"]["http"];
    assert_eq!(http[0]["match"][0]["headers"]["x-beta"], json!({"exact": "1"}));
    assert_eq!(
        http[0]["match"][0]["headers"]["User-Agent"],
        json!({"regex": r".*((Windows NT ([\d.])+)).*"})
    );
    assert_eq!(vs_spec(n)["http"][0]["match"][0]["headers"]["x-beta"], json!({"exact": "1"}));
    grayscale(&["match", "rc", "-n", n, "--ratio", "10"]).ok();
    assert_eq!(weights(n, "rc"), (90, 10));
    assert_eq!(vs_weights(n), (90, 10));
}

#[test]
fn mirror_turns_on_with_a_percentage_and_off() {
    let ns = Namespace::new("mirrorop");
    let n = ns.name.as_str();
    bookinfo(n);
    grayscale(&[
        "create",
        "mirror",
        "rm",
        "-n",
        n,
        "--service",
        "reviews",
        "--version",
        "v2",
        "--replicas",
        "1",
    ])
    .ok();
    grayscale(&["mirror", "rm", "-n", n, "--on", "--percent", "25"]).ok();
    let s = strategy(n, "rm").unwrap();
    assert_eq!(s["spec"]["template"]["spec"]["http"][0]["mirrorPercentage"], json!({"value": 25}));
    assert_eq!(vs_spec(n)["http"][0]["mirrorPercentage"], json!({"value": 25}));
    grayscale(&["mirror", "rm", "-n", n, "--off"]).ok();
    let s = strategy(n, "rm").unwrap();
    assert!(s["spec"]["template"]["spec"]["http"][0].get("mirror").is_none());
    assert!(vs_spec(n)["http"][0].get("mirror").is_none());
}

#[test]
fn pause_sends_routing_back_to_the_default_and_resume_restores_it() {
    let ns = Namespace::new("pause");
    let n = ns.name.as_str();
    canary(n, "30");
    let paused = grayscale(&["pause", "rc", "-n", n]).ok();
    assert!(
        !paused.stderr.contains("first subset"),
        "client routing lists the principal first: {}",
        paused.stderr
    );
    assert_eq!(strategy(n, "rc").unwrap()["spec"]["strategyPolicy"], "Paused");
    assert_eq!(
        vs_spec(n)["http"],
        json!([{"name": "http-web", "match": [{"port": 9080}], "route": [{"destination": {"host": "reviews", "subset": "v1", "port": {"number": 9080}}, "weight": 100}]}])
    );
    grayscale(&["resume", "rc", "-n", n]).ok();
    assert_eq!(strategy(n, "rc").unwrap()["spec"]["strategyPolicy"], "WaitForWorkloadReady");
    assert_eq!(vs_weights(n), (70, 30));
    // Under KubeSphere routing a paused task goes to the controller's first subset, whose
    // order is not stable: the pause says so and names the take-over that holds the old version.
    let ks = grayscale(&["pause", "rc", "-n", n, "--routing", "kubesphere"]).ok();
    assert!(
        ks.stderr.contains("KubeSphere routes a paused task to its DestinationRule's first subset"),
        "{}",
        ks.stderr
    );
    assert!(
        ks.stderr.contains(&format!("kubectl grayscale takeover rc -n {n} --version v1")),
        "{}",
        ks.stderr
    );
}

#[test]
fn offline_keeps_one_version_and_cleans_up_the_other() {
    let ns = Namespace::new("offline");
    let n = ns.name.as_str();
    canary(n, "50");
    let r = grayscale(&["offline", "rc", "-n", n, "--keep", "v2"]).ok();
    assert!(r.stdout.contains("kept v2, deleted reviews-v1"), "{}", r.stdout);
    assert!(strategy(n, "rc").is_none());
    let gone =
        |d: &str| get(n, "deployment", d).is_none_or(|d| !d["metadata"]["deletionTimestamp"].is_null());
    assert!(gone("reviews-v1"));
    assert!(get(n, "deployment", "reviews-v2").is_some());
    assert_eq!(
        get(n, "destinationrule", "reviews").unwrap()["spec"]["subsets"],
        json!([{"name": "v2", "labels": {"version": "v2"}}])
    );
    assert_eq!(
        vs_spec(n)["http"][0]["route"],
        json!([{"destination": {"host": "reviews", "subset": "v2", "port": {"number": 9080}}, "weight": 100}])
    );
}

#[test]
fn a_console_mirror_task_goes_offline_keeping_the_old_version() {
    let ns = Namespace::new("offmirror");
    let n = ns.name.as_str();
    bookinfo(n);
    console_task(n, "console-mirror.yaml", "reviews");
    grayscale(&["sync", "console-mirror", "-n", n]).ok();
    grayscale(&["delete", "console-mirror", "-n", n]).ok();
    assert!(strategy(n, "console-mirror").is_none());
    assert!(get(n, "deployment", "reviews-v2").is_none_or(|d| !d["metadata"]["deletionTimestamp"].is_null()));
    assert!(get(n, "deployment", "reviews-v1").is_some());
}

#[test]
fn every_change_is_journaled_and_undo_reverts_the_last() {
    let ns = Namespace::new("history");
    let n = ns.name.as_str();
    canary(n, "10");
    grayscale(&["shift", "rc", "-n", n, "--weight", "40"]).ok();
    grayscale(&["takeover", "rc", "-n", n, "--version", "v2"]).ok();
    let h = grayscale(&["history", "rc", "-n", n, "-o", "json"]).ok().json();
    let entries = h.as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["action"], "shift");
    assert_eq!(entries[0]["by"], "admin");
    assert_eq!(entries[1]["action"], "takeover");
    assert_eq!(entries[1]["to"]["governor"], "v2");
    let table = grayscale(&["history", "rc", "-n", n]).ok();
    assert!(table.stdout.contains("v1 90% v2 10%"), "{}", table.stdout);
    // The table shows ages; -o json keeps the stamps.
    let stamp = entries[0]["at"].as_str().unwrap();
    assert!(stamp.contains('T') && !table.stdout.contains(stamp), "{}", table.stdout);
    assert!(table.stdout.lines().next().unwrap().contains("AGE"), "{}", table.stdout);
    grayscale(&["undo", "rc", "-n", n]).ok();
    assert_eq!(weights(n, "rc"), (60, 40));
    assert_eq!(strategy(n, "rc").unwrap()["spec"]["governor"].as_str().unwrap_or(""), "");
    assert_eq!(vs_weights(n), (60, 40));
    grayscale(&["undo", "rc", "-n", n]).ok();
    assert_eq!(weights(n, "rc"), (90, 10));
    let h = grayscale(&["history", "rc", "-n", n, "-o", "json"]).ok().json();
    assert_eq!(h.as_array().unwrap().len(), 0);
}

#[test]
fn concurrent_relative_shifts_lose_no_update_and_leave_routing_on_the_latest_state() {
    let ns = Namespace::new("concurrent");
    let n = ns.name.as_str();
    canary(n, "20");
    let audit = Audit::mark();
    let run_all = |by: &str, count: usize| {
        let children: Vec<_> =
            (0..count).map(|_| spawn_tagged(&["shift", "rc", "-n", n, "--by", by], &audit)).collect();
        let mut reapplied = 0;
        for c in children {
            let out = c.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{err}");
            reapplied += usize::from(err.contains("re-applied on fresh state"));
        }
        reapplied
    };
    // Rounds of 8 concurrent +5 then 8 concurrent -5, until the runs are seen to overlap
    // (a conflicting write in the audit log); every round must end consistent.
    let mut overlapped = false;
    for round in 0..5 {
        let reapplied = run_all("+5", 8);
        assert_eq!(weights(n, "rc"), (40, 60), "round {round}");
        assert_eq!(vs_weights(n), (40, 60), "round {round}: the VirtualService routes the latest task state");
        if round == 0 {
            let h = grayscale(&["history", "rc", "-n", n, "-o", "json"]).ok().json();
            assert_eq!(h.as_array().unwrap().len(), 8);
        }
        run_all("-5", 8);
        assert_eq!(weights(n, "rc"), (80, 20), "round {round}");
        assert_eq!(vs_weights(n), (80, 20), "round {round}");
        let conflicts = audit.requests().iter().filter(|e| e.code == 409).count();
        eprintln!("round {round}: {conflicts} conflicting writes so far, {reapplied} runs re-applied");
        if conflicts > 0 && reapplied > 0 {
            overlapped = true;
            break;
        }
    }
    assert!(overlapped, "the concurrent runs never overlapped, so this test proved nothing");
}

#[test]
fn concurrent_takeovers_and_shifts_leave_routing_in_agreement_with_the_task() {
    let ns = Namespace::new("racetake");
    let n = ns.name.as_str();
    canary(n, "20");
    let audit = Audit::mark();
    let mut overlapped = false;
    for round in 0..5 {
        let children: Vec<_> = (0..8)
            .map(|i| {
                let args: Vec<&str> = if i % 2 == 0 {
                    vec!["takeover", "rc", "-n", n, "--version", "v1"]
                } else {
                    vec!["shift", "rc", "-n", n, "--weight", "30"]
                };
                spawn_tagged(&args, &audit)
            })
            .collect();
        for c in children {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
        let (task, live) = (weights(n, "rc"), vs_weights(n));
        assert_eq!(task, live, "round {round}: the VirtualService must route the task's latest state");
        let reqs = audit.requests();
        overlapped = reqs.iter().any(|e| e.code == 409 || e.code == 422);
        if overlapped {
            break;
        }
    }
    assert!(overlapped, "the runs never overlapped, so this test proved nothing");
}

#[test]
fn a_gradual_shift_stops_and_reverts_when_the_new_version_loses_a_pod() {
    let ns = Namespace::new("gate");
    let n = ns.name.as_str();
    canary(n, "10");
    // An interval far longer than the test: the gate must trip on the pod's loss, not on time.
    let child =
        spawn_grayscale(&["shift", "rc", "-n", n, "--to", "100", "--step", "30", "--interval", "10m"]);
    wait_for("the first step", Duration::from_secs(60), || weights(n, "rc").1 == 40);
    let pods = kubectl(&["get", "pods", "-n", n, "-l", "app=reviews,version=v2", "-o", "name"]).ok();
    let pod = pods.stdout.lines().next().unwrap().to_string();
    kubectl(&["delete", "-n", n, &pod, "--wait=false"]).ok();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(9), "{stderr}");
    assert!(stderr.contains("lost ready pods"), "{stderr}");
    assert!(stderr.contains("went back to 10%"), "{stderr}");
    assert_eq!(weights(n, "rc"), (90, 10));
    assert_eq!(vs_weights(n), (90, 10));
}

#[test]
fn interrupting_a_gradual_shift_stops_at_a_step_boundary_with_exit_130() {
    let ns = Namespace::new("sigint");
    let n = ns.name.as_str();
    canary(n, "0");
    // The interval is far longer than the test: the shift stops because of the signal, at the
    // first step, which the test sees written before it sends the signal.
    let child =
        spawn_grayscale(&["shift", "rc", "-n", n, "--to", "100", "--step", "25", "--interval", "10m"]);
    wait_for("the first step", Duration::from_secs(60), || weights(n, "rc").1 == 25);
    let kill = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("stopped at a step boundary"), "{stderr}");
    assert!(stderr.contains("resume with: kubectl grayscale shift rc --to 100"), "{stderr}");
    let (s, v) = (weights(n, "rc"), vs_weights(n));
    assert_eq!(s, v, "the task and its routing agree");
    assert_eq!(s, (75, 25));
}

#[test]
fn the_verbs_work_on_console_written_tasks() {
    let ns = Namespace::new("console");
    let n = ns.name.as_str();
    bookinfo(n);
    console_task(n, "console-bluegreen.yaml", "reviews");
    grayscale(&["takeover", "console-bluegreen", "-n", n, "--version", "v2"]).ok();
    let s = strategy(n, "console-bluegreen").unwrap();
    assert_eq!(s["spec"]["governor"], "v2");
    assert_eq!(
        s["spec"]["template"]["spec"]["http"][0]["route"][0]["weight"], 100,
        "blue-green take-over leaves weights"
    );
    assert_eq!(vs_spec(n)["http"][0]["route"][0]["destination"]["subset"], "v2");
    grayscale(&["offline", "console-bluegreen", "-n", n]).ok();
    assert!(strategy(n, "console-bluegreen").is_none());

    let ns2 = Namespace::new("console");
    let n2 = ns2.name.as_str();
    bookinfo(n2);
    console_task(n2, "console-match.yaml", "reviews");
    grayscale(&["match", "console-match", "-n", n2, "--ratio", "20"]).ok();
    assert_eq!(weights(n2, "console-match"), (80, 20));
    assert_eq!(vs_weights(n2), (80, 20));

    let ns3 = Namespace::new("console");
    let n3 = ns3.name.as_str();
    composed_app(n3, "store", "db", &[("tcp-sql", 5432)], 1, "example/db:1");
    console_task(n3, "console-tcp-canary.yaml", "db");
    grayscale(&["shift", "console-tcp", "-n", n3, "--weight", "90"]).ok();
    let s = strategy(n3, "console-tcp").unwrap();
    assert_eq!(s["spec"]["template"]["spec"]["tcp"][0]["match"], json!([]));
    assert_eq!(s["spec"]["template"]["spec"]["tcp"][0]["route"][1]["weight"], 90);
    let vs = get(n3, "virtualservice", "db").unwrap();
    assert_eq!(vs["spec"]["tcp"][0]["route"][1]["weight"], 90);
    let r = grayscale(&["mirror", "console-tcp", "-n", n3, "--on"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("mirroring is HTTP only"), "{}", r.stderr);
}

#[test]
fn status_watch_prints_one_line_per_change_without_a_terminal() {
    let ns = Namespace::new("watch");
    let n = ns.name.as_str();
    canary(n, "20");
    let mut child = spawn_grayscale(&["get", "rc", "-n", n, "-w"]);
    let mut lines = Lines::of(&mut child);
    let mut wait_line = |want: &str| {
        let found = lines.until(Duration::from_secs(20), |l| l.contains(want));
        assert!(found, "no line with {want:?}; saw:\n{}", lines.seen.join("\n"));
    };
    wait_line("routing port 9080 v1 80% v2 20%");
    grayscale(&["shift", "rc", "-n", n, "--weight", "50"]).ok();
    wait_line("routing port 9080 v1 50% v2 50%");
    kubectl(&["scale", "deployment", "reviews-v2", "-n", n, "--replicas", "3"]).ok();
    wait_line("version v2 reviews-v2 ready 3/3");
    child.kill().unwrap();
    let _ = child.wait();
    let seen = &lines.seen;
    assert!(seen.iter().all(|l| !l.contains('\u{1b}')), "no escape codes in line mode");
    assert!(seen.iter().all(|l| l.as_bytes()[2] == b':'), "lines start with a time: {seen:?}");
}

#[test]
fn status_watch_reports_warning_events_of_the_tasks_pods() {
    let ns = Namespace::new("watchwarn");
    let n = ns.name.as_str();
    bookinfo(n);
    let image = "example/nonexistent:2";
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
        "--image",
        image,
        "--no-wait",
    ])
    .ok();
    let mut child = spawn_grayscale(&["status", "rc", "-n", n, "--watch"]);
    let mut lines = Lines::of(&mut child);
    let warned = |l: &str| l.contains("warning pod/reviews-v2-") && l.contains("Failed:");
    let found = lines.until(Duration::from_secs(20), warned);
    child.kill().unwrap();
    let _ = child.wait();
    assert!(found, "{}", lines.seen.join("\n"));
}

#[test]
fn a_verb_that_changes_nothing_still_brings_routing_back_to_the_task() {
    let ns = Namespace::new("converge");
    let n = ns.name.as_str();
    canary(n, "20");
    kubectl(&["delete", "virtualservice", "reviews", "-n", n]).ok();
    let r = grayscale(&["shift", "rc", "-n", n, "--weight", "20"]).ok();
    assert!(r.stdout.contains("unchanged"), "{}", r.stdout);
    assert_eq!(vs_weights(n), (80, 20));
    // A hand edit of the weights is drift that `sync` (and any verb) repairs.
    let mut spec = vs_spec(n);
    spec["http"][0]["route"][0]["weight"] = json!(10);
    spec["http"][0]["route"][1]["weight"] = json!(90);
    let patch = json!({"spec": {"http": spec["http"]}}).to_string();
    kubectl(&["patch", "virtualservice", "reviews", "-n", n, "--type", "merge", "-p", &patch]).ok();
    let st = grayscale(&["status", "rc", "-n", n, "-o", "json"]).ok().json();
    assert_eq!(st["drift"], true, "{st}");
    let text = grayscale(&["status", "rc", "-n", n]).ok();
    assert!(text.stdout.contains("kubectl grayscale sync rc"), "{}", text.stdout);
    grayscale(&["sync", "rc", "-n", n]).ok();
    assert_eq!(vs_weights(n), (80, 20));
    let st = grayscale(&["status", "rc", "-n", n, "-o", "json"]).ok().json();
    assert_eq!(st["drift"], false, "{st}");
}

/// Holds a command just before its routing write (a test gate in the binary), lets a later
/// change run to completion, then releases it: the held command must not put back routing of
/// the older task state. The interleaving is forced, so this fails whenever the routing write
/// is not guarded (the precondition of the full path, the `test` of take-over's fast path).
#[test]
fn a_command_held_before_its_routing_write_never_overwrites_a_later_change() {
    let ns = Namespace::new("held");
    let n = ns.name.as_str();
    canary(n, "20");
    for (i, held) in
        [["shift", "rc", "-n", n, "--weight", "30"], ["takeover", "rc", "-n", n, "--version", "v1"]]
            .iter()
            .enumerate()
    {
        let gate = std::env::temp_dir().join(format!("grayscale-gate-{}-{i}", std::process::id()));
        std::fs::create_dir_all(&gate).unwrap();
        let mut child = std::process::Command::new(BIN)
            .args(held)
            .env("KUBECONFIG", &plane().kubeconfig)
            .env("GRAYSCALE_FAILPOINT_DIR", &gate)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        while !gate.join("before-routing-write.reached").exists() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("{held:?} ended ({status}) before its routing write");
            }
            assert!(start.elapsed() < Duration::from_secs(60), "{held:?} never reached its routing write");
            std::thread::sleep(Duration::from_millis(20));
        }
        // Another terminal changes the task meanwhile (each time a change: 60, then 50).
        let later = if held[0] == "shift" { "60" } else { "50" };
        grayscale(&["shift", "rc", "-n", n, "--weight", later]).ok();
        std::fs::write(gate.join("before-routing-write.release"), b"").unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{held:?}: {stderr}");
        if held[0] == "shift" {
            // Held after its task write: the later shift wins, task and routing alike.
            assert_eq!(weights(n, "rc"), (40, 60), "{held:?}");
            assert_eq!(vs_weights(n), (40, 60), "{held:?}: the VirtualService must route the later change");
        } else {
            // The take-over is held before its write round (task and routing together): both
            // guarded writes meet the shift's, and the take-over is applied again on top of it.
            assert!(stderr.contains("re-applied on fresh state (1 retries)"), "{stderr}");
            assert_eq!(strategy(n, "rc").unwrap()["spec"]["governor"], "v1");
            assert_eq!(weights(n, "rc"), (100, 0));
            assert_eq!(vs_weights(n), (100, 0), "the VirtualService routes the take-over");
            let history = grayscale(&["history", "rc", "-n", n, "-o", "json"]).ok().json();
            let actions: Vec<&str> =
                history.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
            assert_eq!(actions[actions.len() - 2..], ["shift", "takeover"], "{actions:?}");
        }
        let _ = std::fs::remove_dir_all(&gate);
    }
}

#[test]
fn verbosity_six_logs_every_request_and_eight_their_bodies() {
    let ns = Namespace::new("verbose");
    let n = ns.name.as_str();
    canary(n, "20");
    let audit = Audit::mark();
    let mut args = vec!["shift", "rc", "-n", n, "--weight", "30", "-v", "6"];
    args.extend(audit.tag());
    let r = grayscale(&args).ok();
    let reqs = audit.requests();
    let lines: Vec<&str> = r.stderr.lines().filter(|l| l.contains(" in ") && l.ends_with(" ms")).collect();
    assert_eq!(lines.len(), reqs.len(), "one line per request:\n{}\n{reqs:#?}", r.stderr);
    assert!(
        lines.iter().any(|l| l.starts_with("PATCH /apis/servicemesh.kubesphere.io/v1alpha2/namespaces/")
            && l.contains(" 200 OK ")),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("request body"), "bodies only at 8");
    let r = grayscale(&["shift", "rc", "-n", n, "--weight", "40", "--v=8"]).ok();
    assert!(r.stderr.contains("request body: {\"metadata\""), "{}", r.stderr);
    assert!(
        r.stderr.contains("response body: {\"apiVersion\":\"servicemesh.kubesphere.io/v1alpha2\""),
        "{}",
        r.stderr
    );
    let quiet = grayscale(&["shift", "rc", "-n", n, "--weight", "50"]).ok();
    assert!(!quiet.stderr.contains(" ms"), "{}", quiet.stderr);
}

#[test]
fn a_shift_makes_exactly_the_nine_requests_the_readme_lists() {
    let ns = Namespace::new("budget");
    let n = ns.name.as_str();
    canary(n, "20");
    let audit = Audit::mark();
    let mut args = vec!["shift", "rc", "-n", n, "--weight", "30"];
    args.extend(audit.tag());
    grayscale(&args).ok();
    let reqs = audit.requests();
    show("shift", &reqs);
    assert_rounds(
        &reqs,
        &[
            &[
                "get strategies",
                "get services",
                "get virtualservices",
                "get destinationrules",
                "list pods",
                "list rollouts",
                "create selfsubjectrulesreviews",
            ],
            &["patch strategies"],
            &["patch virtualservices"],
            &["create events"],
        ],
    );
}
