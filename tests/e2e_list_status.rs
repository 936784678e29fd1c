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
fn list_all_namespaces_judges_each_task_by_its_own_namespace() {
    // The same task, Service and Deployments by name in two namespaces, told apart only by
    // their namespace: `list -A` walks each kind's list along with the tasks, so a row taking
    // another namespace's Deployments or VirtualService would show its readiness or drift.
    let a = Namespace::new("lwa");
    let b = Namespace::new("lwb");
    canary_task(&a.name, "1", "20");
    canary_task(&b.name, "2", "20");
    // `list` judges readiness from the Deployments' status, which lags the pods `create`
    // watched: wait until it counts them, or the rows would show a lag, not the namespaces.
    for ns in [&a, &b] {
        wait_ready(&ns.name, "reviews-v2", std::time::Duration::from_secs(60));
    }
    let patch = json!([{"op": "replace", "path": "/spec/http/0/route/0/weight", "value": 10},
        {"op": "replace", "path": "/spec/http/0/route/1/weight", "value": 90}]);
    kubectl(&[
        "patch",
        "virtualservice",
        "reviews",
        "-n",
        &a.name,
        "--type",
        "json",
        "--field-manager=console-edit",
        "-p",
        &patch.to_string(),
    ])
    .ok();
    let j = grayscale(&["list", "-A", "-o", "json"]).ok().json();
    let items = j["items"].as_array().unwrap();
    let row =
        |ns: &str| items.iter().find(|t| t["namespace"] == ns).unwrap_or_else(|| panic!("{ns} missing: {j}"));
    let (ra, rb) = (row(&a.name), row(&b.name));
    assert_eq!((&ra["drift"], &ra["driftBy"]), (&json!(true), &json!("console-edit")), "{ra}");
    assert_eq!((&rb["drift"], &rb["driftBy"]), (&json!(false), &serde_json::Value::Null), "{rb}");
    assert_eq!((&ra["versions"][1]["replicas"], &ra["versions"][1]["ready"]), (&json!(1), &json!(1)), "{ra}");
    assert_eq!((&rb["versions"][1]["replicas"], &rb["versions"][1]["ready"]), (&json!(2), &json!(2)), "{rb}");
    // In the API server's order, the order `kubectl get -A` shows: no sort on our side.
    let order: Vec<String> = items.iter().map(|t| format!("{}/{}", t["namespace"], t["name"])).collect();
    let kubectl_order: Vec<String> =
        kubectl(&["get", "strategies.servicemesh.kubesphere.io", "-A", "-o", "json"]).ok().json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| format!("{}/{}", t["metadata"]["namespace"], t["metadata"]["name"]))
            .collect();
    let ours: Vec<&String> = order.iter().filter(|k| kubectl_order.contains(k)).collect();
    let theirs: Vec<&String> = kubectl_order.iter().filter(|k| order.contains(k)).collect();
    assert_eq!(ours, theirs);
    let table = grayscale(&["list", "-A"]).ok().stdout;
    let line = |ns: &str| table.lines().find(|l| l.starts_with(ns)).unwrap_or_else(|| panic!("{table}"));
    assert!(
        line(&a.name).contains("v1 3/3, v2 1/1") && line(&a.name).contains("(drift: console-edit)"),
        "{table}"
    );
    assert!(line(&b.name).contains("v1 3/3, v2 2/2") && !line(&b.name).contains("drift"), "{table}");
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

/// `n` console-shaped canary tasks `t-0001`... in `ns`, labelled `page-test=<ns>`, in one
/// `kubectl create`.
fn many_tasks(ns: &str, n: usize) {
    let items: Vec<serde_json::Value> = (1..=n)
        .map(|i| {
            json!({
                "apiVersion": "servicemesh.kubesphere.io/v1alpha2",
                "kind": "Strategy",
                "metadata": {"name": format!("t-{i:04}"), "namespace": ns, "labels": {"app": "reviews", "page-test": ns}},
                "spec": {
                    "type": "Canary", "principal": "v1", "strategyPolicy": "WaitForWorkloadReady",
                    "selector": {"matchLabels": {"app": "reviews"}},
                    "template": {"spec": {"hosts": ["reviews"], "http": [{"route": [
                        {"destination": {"host": "reviews", "subset": "v1"}, "weight": 70},
                        {"destination": {"host": "reviews", "subset": "v2"}, "weight": 30}]}]}}
                }
            })
        })
        .collect();
    kubectl_stdin(
        &["create", "-f", "-"],
        &json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string(),
    )
    .ok();
}

/// `namespace/name` of the items of a list, in its order: `list`'s rows, or (`objects`) the
/// API's objects.
fn keys(items: &serde_json::Value, objects: bool) -> Vec<String> {
    let at = |t: &serde_json::Value| if objects { t["metadata"].clone() } else { t.clone() };
    let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    items
        .as_array()
        .unwrap()
        .iter()
        .map(at)
        .map(|t| format!("{}/{}", s(&t["namespace"]), s(&t["name"])))
        .collect()
}

#[test]
fn list_all_past_its_first_page_lists_namespace_by_namespace_in_kubectls_order() {
    // 810 tasks in two namespaces that sort after the other tests' ("zz"): the first page of
    // 500 ends in the first of them at the latest, so the rest is listed namespace by
    // namespace, from that one (listed again, whole) on.
    let a = Namespace::new("zz-pages-a");
    let b = Namespace::new("zz-pages-b");
    many_tasks(&a.name, 510);
    many_tasks(&b.name, 300);
    let ours = |ns: &str| ns == a.name || ns == b.name;
    let want: Vec<String> = [(&a.name, 510), (&b.name, 300)]
        .iter()
        .flat_map(|(ns, n)| (1..=*n).map(move |i| format!("{ns}/t-{i:04}")))
        .collect();

    let audit = Audit::mark();
    let mut args = vec!["list", "-A", "-o", "json"];
    args.extend(audit.tag());
    let j = grayscale(&args).ok().json();
    let all = keys(&j["items"], false);
    let got: Vec<String> = all.iter().filter(|k| ours(k.split('/').next().unwrap())).cloned().collect();
    assert_eq!(got, want, "every task once, in key order");
    // The same order as kubectl's for every task both saw (other tests come and go meanwhile).
    let theirs = keys(
        &kubectl(&["get", "strategies.servicemesh.kubesphere.io", "-A", "-o", "json"]).ok().json()["items"],
        true,
    );
    let both =
        |x: &Vec<String>, y: &Vec<String>| x.iter().filter(|k| y.contains(k)).cloned().collect::<Vec<_>>();
    assert_eq!(both(&all, &theirs), both(&theirs, &all));
    // The first page across namespaces, the namespaces, then a's two pages (510 tasks) and
    // b's one.
    let reqs = audit.requests();
    let count = |verb: &str, resource: &str, ns: &str| {
        reqs.iter().filter(|e| e.verb == verb && e.resource == resource && e.namespace == ns).count()
    };
    assert_eq!(count("list", "strategies", ""), 1, "{reqs:#?}");
    assert_eq!(count("list", "namespaces", ""), 1, "{reqs:#?}");
    assert_eq!(
        (count("list", "strategies", &a.name), count("list", "strategies", &b.name)),
        (2, 1),
        "{reqs:#?}"
    );

    // With a label selector the server counts nothing past the page: one chain of pages, and
    // no namespaces read.
    let audit = Audit::mark();
    let selector = format!("page-test in ({},{})", a.name, b.name);
    let mut args = vec!["list", "-A", "-o", "json", "-l", &selector];
    args.extend(audit.tag());
    let j = grayscale(&args).ok().json();
    assert_eq!(keys(&j["items"], false), want);
    let reqs = audit.requests();
    let lists: Vec<(String, String)> = reqs
        .iter()
        .filter(|e| e.resource == "strategies")
        .map(|e| (e.verb.clone(), e.namespace.clone()))
        .collect();
    assert_eq!(
        lists,
        [("list".to_string(), String::new()), ("list".to_string(), String::new())],
        "{reqs:#?}"
    );
    assert_eq!(reqs.iter().filter(|e| e.resource == "namespaces").count(), 0, "{reqs:#?}");

    // Without permission to list namespaces: the same rows, from the one chain of pages.
    let proxy = Proxy::start("admin");
    proxy.rules(json!([{"method": "GET", "path": "/api/v1/namespaces", "status": 403}]));
    let r = proxy.grayscale(&["list", "-A", "-o", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rows = keys(&serde_json::from_str::<serde_json::Value>(&r.stdout).unwrap()["items"], false);
    let pages = rows.len().div_ceil(500);
    assert_eq!(rows.into_iter().filter(|k| ours(k.split('/').next().unwrap())).collect::<Vec<_>>(), want);
    assert_eq!(proxy.seen("answered 403").len(), 1, "{:?}", proxy.seen(""));
    assert_eq!(proxy.seen("/v1alpha2/namespaces/").len(), 0, "{:?}", proxy.seen(""));
    assert_eq!(proxy.seen("/v1alpha2/strategies").len(), pages, "{:?}", proxy.seen(""));

    // A list that fails part way (b's list refused) prints every task it read (all of a's,
    // past the first 500 rows), then says what failed and exits non-zero; the JSON is left
    // unclosed, for a parser to refuse.
    let proxy = Proxy::start("admin");
    proxy.rules(
        json!([{"method": "GET", "path": format!("/namespaces/{}/strategies", b.name), "status": 403}]),
    );
    let r = proxy.grayscale(&["list", "-A", "-o", "json"]);
    assert_eq!(proxy.seen("answered 403").len(), 1, "{:?}", proxy.seen(""));
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(r.stderr.contains(&b.name), "{}", r.stderr);
    let rows_of = |ns: &str| r.stdout.matches(&format!("\"namespace\": \"{ns}\"")).count();
    assert_eq!((rows_of(&a.name), rows_of(&b.name)), (510, 0));
    assert!(
        serde_json::from_str::<serde_json::Value>(&r.stdout).is_err(),
        "{}",
        &r.stdout[r.stdout.len() - 200..]
    );
}
