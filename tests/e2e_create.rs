//! `create` end to end: the objects written for each task type, field by field, on the local
//! control plane with client routing (no KubeSphere controllers run there).

mod common;

use common::*;
use serde_json::{Value, json};

const V2: &str = "docker.io/istio/examples-bookinfo-reviews-v2:1.17.0";

fn strategy(ns: &str, name: &str) -> Value {
    get(ns, "strategies.servicemesh.kubesphere.io", name).expect("strategy exists")
}

fn vs(ns: &str, name: &str) -> Value {
    get(ns, "virtualservices.networking.istio.io", name).expect("virtualservice exists")
}

fn dr(ns: &str, name: &str) -> Value {
    get(ns, "destinationrules.networking.istio.io", name).expect("destinationrule exists")
}

fn dest(subset: &str, weight: i64) -> Value {
    json!({"destination": {"host": "reviews", "subset": subset}, "weight": weight})
}

fn port_dest(host: &str, subset: &str, port: u16, weight: i64) -> Value {
    json!({"destination": {"host": host, "subset": subset, "port": {"number": port}}, "weight": weight})
}

#[test]
fn a_canary_by_traffic_is_written_as_the_console_writes_it() {
    let ns = Namespace::new("canary");
    bookinfo(&ns.name);
    let n = ns.name.as_str();
    grayscale(&[
        "create",
        "canary",
        "reviews-canary",
        "-n",
        n,
        "--service",
        "reviews",
        "--version",
        "v2",
        "--image",
        V2,
        "--weight",
        "20",
    ])
    .ok();

    let s = strategy(n, "reviews-canary");
    assert_eq!(
        s["metadata"]["labels"],
        json!({"app": "reviews", "app.kubernetes.io/name": "bookinfo", "app.kubernetes.io/version": "v1"})
    );
    assert_eq!(
        s["metadata"]["annotations"],
        json!({
            "servicemesh.kubesphere.io/oldWorkloadName": "reviews-v1",
            "servicemesh.kubesphere.io/newWorkloadName": "reviews-v2",
            "servicemesh.kubesphere.io/workloadType": "deployments",
            "servicemesh.kubesphere.io/workloadReplicas": "3",
            "app.kubernetes.io/icon": "https://example.invalid/bookinfo.png",
            // The console's record of who created the task: the plane's admin user.
            "kubesphere.io/creator": "admin",
        })
    );
    let spec = &s["spec"];
    assert_eq!(spec["type"], "Canary");
    assert_eq!(spec["strategyPolicy"], "WaitForWorkloadReady");
    assert_eq!(spec["principal"], "v1");
    assert!(spec.get("governor").is_none());
    assert_eq!(spec["selector"]["matchLabels"], s["metadata"]["labels"]);
    assert_eq!(
        spec["template"]["spec"],
        json!({"hosts": ["reviews"], "http": [{"route": [dest("v1", 80), dest("v2", 20)]}]})
    );

    // The new Deployment: the old one with version v2, the new image, every other setting kept.
    let old = get(n, "deployment", "reviews-v1").unwrap();
    let new = get(n, "deployment", "reviews-v2").unwrap();
    let mut want_labels = old["metadata"]["labels"].clone();
    want_labels["version"] = json!("v2");
    assert_eq!(new["metadata"]["labels"], want_labels);
    assert_eq!(new["spec"]["selector"]["matchLabels"], want_labels);
    assert_eq!(new["spec"]["template"]["metadata"]["labels"], want_labels);
    assert_eq!(
        new["spec"]["template"]["metadata"]["annotations"],
        json!({"sidecar.istio.io/inject": "true", "kubesphere.io/creator": "admin"})
    );
    assert_eq!(new["metadata"]["annotations"]["servicemesh.kubesphere.io/enabled"], "true");
    assert_eq!(new["spec"]["replicas"], 3);
    let (oc, nc) = (
        &old["spec"]["template"]["spec"]["containers"][0],
        &new["spec"]["template"]["spec"]["containers"][0],
    );
    assert_eq!(nc["image"], V2);
    for field in ["name", "ports", "readinessProbe", "resources", "imagePullPolicy"] {
        assert_eq!(nc[field], oc[field], "{field} is kept from the old version");
    }
    assert_eq!(new["status"]["readyReplicas"], 3);

    // Client routing, as KubeSphere's controllers would derive it.
    let d = dr(n, "reviews");
    assert_eq!(d["spec"]["host"], "reviews");
    assert_eq!(
        d["spec"]["subsets"],
        json!([{"name": "v1", "labels": {"version": "v1"}}, {"name": "v2", "labels": {"version": "v2"}}])
    );
    let v = vs(n, "reviews");
    assert_eq!(
        v["metadata"]["labels"],
        json!({"app": "reviews", "app.kubernetes.io/name": "bookinfo", "app.kubernetes.io/version": "v1"})
    );
    assert_eq!(
        v["spec"],
        json!({"hosts": ["reviews"], "http": [{"match": [{"port": 9080}], "route": [port_dest("reviews", "v1", 9080, 80), port_dest("reviews", "v2", 9080, 20)]}]})
    );
}

#[test]
fn a_blue_green_task_keeps_every_port_on_the_governor() {
    let ns = Namespace::new("bluegreen");
    let n = ns.name.as_str();
    composed_app(
        n,
        "shop",
        "cart",
        &[("http-web", 8080), ("grpc-api", 9090), ("tcp-admin", 7000)],
        1,
        "example/cart:1",
    );
    grayscale(&[
        "create",
        "bluegreen",
        "cart-bg",
        "-n",
        n,
        "--service",
        "cart",
        "--version",
        "v2",
        "--image",
        "example/cart:2",
    ])
    .ok();
    let s = strategy(n, "cart-bg");
    assert_eq!(s["spec"]["type"], "Bluegreen");
    assert_eq!(s["spec"]["governor"], "v1");
    let d = |sub: &str, w: i64| json!({"destination": {"host": "cart", "subset": sub}, "weight": w});
    assert_eq!(s["spec"]["template"]["spec"]["http"], json!([{"route": [d("v1", 100), d("v2", 0)]}]));
    let v = vs(n, "cart");
    assert_eq!(
        v["spec"]["http"],
        json!([
            {"match": [{"port": 8080}], "route": [port_dest("cart", "v1", 8080, 100)]},
            {"match": [{"port": 9090}], "route": [port_dest("cart", "v1", 9090, 100)]},
        ])
    );
    assert_eq!(
        v["spec"]["tcp"],
        json!([{"match": [{"port": 7000}], "route": [port_dest("cart", "v1", 7000, 100)]}])
    );
}

#[test]
fn a_blue_green_task_can_start_with_the_new_version_taking_over() {
    let ns = Namespace::new("bluegreen");
    let n = ns.name.as_str();
    composed_app(n, "shop", "cart", &[("http-web", 8080)], 1, "example/cart:1");
    grayscale(&[
        "create",
        "bluegreen",
        "cart-bg",
        "-n",
        n,
        "--service",
        "cart",
        "--version",
        "v2",
        "--takeover",
        "new",
    ])
    .ok();
    let s = strategy(n, "cart-bg");
    assert_eq!(s["spec"]["governor"], "v2");
    assert_eq!(s["spec"]["template"]["spec"]["http"][0]["route"][1]["weight"], 100);
    assert_eq!(vs(n, "cart")["spec"]["http"][0]["route"], json!([port_dest("cart", "v2", 8080, 100)]));
}

#[test]
fn a_mirror_task_copies_live_traffic_to_the_new_version() {
    let ns = Namespace::new("mirror");
    bookinfo(&ns.name);
    let n = ns.name.as_str();
    grayscale(&[
        "create",
        "mirror",
        "reviews-shadow",
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
    let s = strategy(n, "reviews-shadow");
    assert_eq!(s["spec"]["type"], "Mirror");
    assert_eq!(
        s["spec"]["template"]["spec"]["http"],
        json!([{"route": [dest("v1", 100)], "mirror": {"host": "reviews", "subset": "v2"}}])
    );
    assert_eq!(get(n, "deployment", "reviews-v2").unwrap()["spec"]["replicas"], 1);
    let v = vs(n, "reviews");
    assert_eq!(
        v["spec"]["http"],
        json!([{"match": [{"port": 9080}], "route": [port_dest("reviews", "v1", 9080, 100)],
                "mirror": {"host": "reviews", "subset": "v2", "port": {"number": 9080}}}])
    );
}

#[test]
fn a_canary_by_request_parameters_sends_matching_requests_to_the_new_version() {
    let ns = Namespace::new("match");
    bookinfo(&ns.name);
    let n = ns.name.as_str();
    grayscale(&[
        "create",
        "canary",
        "reviews-beta",
        "-n",
        n,
        "--service",
        "reviews",
        "--version",
        "v2",
        "--header",
        "x-beta=1",
        "--cookie-regex",
        "^(.*?;)?(user=jason)(;.*)?$",
        "--uri-prefix",
        "/api",
        "--os",
        "android,ios",
    ])
    .ok();
    let s = strategy(n, "reviews-beta");
    let http = &s["spec"]["template"]["spec"]["http"];
    assert_eq!(
        http[0]["match"],
        json!([{
            "uri": {"prefix": "/api"},
            "headers": {
                "x-beta": {"exact": "1"},
                "cookie": {"regex": "^(.*?;)?(user=jason)(;.*)?$"},
                "User-Agent": {"regex": r".*((Android)|(OS [\d.]+)).*"},
            },
        }])
    );
    assert_eq!(http[0]["route"], json!([dest("v2", 100)]));
    assert_eq!(http[1], json!({"route": [dest("v1", 100)]}));
    let v = vs(n, "reviews");
    assert_eq!(v["spec"]["http"][0]["match"][0]["port"], 9080);
    assert_eq!(v["spec"]["http"][0]["match"][0]["headers"]["x-beta"], json!({"exact": "1"}));
    assert_eq!(v["spec"]["http"][0]["route"], json!([port_dest("reviews", "v2", 9080, 100)]));
    assert_eq!(v["spec"]["http"][1]["match"], json!([{"port": 9080}]));
    assert_eq!(v["spec"]["http"][1]["route"], json!([port_dest("reviews", "v1", 9080, 100)]));
}

#[test]
fn a_tcp_service_gets_tcp_template_routes_with_empty_matches() {
    let ns = Namespace::new("tcp");
    let n = ns.name.as_str();
    composed_app(n, "store", "db", &[("tcp-sql", 5432)], 1, "example/db:1");
    grayscale(&[
        "create",
        "canary",
        "db-canary",
        "-n",
        n,
        "--service",
        "db",
        "--version",
        "v2",
        "--weight",
        "30",
    ])
    .ok();
    let s = strategy(n, "db-canary");
    let d = |sub: &str, w: i64| json!({"destination": {"host": "db", "subset": sub}, "weight": w});
    assert_eq!(
        s["spec"]["template"]["spec"]["tcp"],
        json!([{"match": [], "route": [d("v1", 70), d("v2", 30)]}])
    );
    assert!(s["spec"]["template"]["spec"].get("http").is_none());
    assert_eq!(
        vs(n, "db")["spec"]["tcp"],
        json!([{"match": [{"port": 5432}], "route": [port_dest("db", "v1", 5432, 70), port_dest("db", "v2", 5432, 30)]}])
    );
}

#[test]
fn a_plain_istio_service_without_kubesphere_labels_works() {
    let ns = Namespace::new("istio");
    let n = ns.name.as_str();
    let yaml = r#"apiVersion: v1
kind: Service
metadata: {name: web, labels: {app: web}}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web-v1, labels: {app: web, version: v1}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web, version: v1}}
  template:
    metadata: {labels: {app: web, version: v1}}
    spec:
      containers: [{name: web, image: nginx:1.25}]
"#;
    kubectl_stdin(&["apply", "-n", n, "-f", "-"], yaml).ok();
    wait_ready(n, "web-v1", std::time::Duration::from_secs(60));
    grayscale(&[
        "create",
        "canary",
        "web-canary",
        "-n",
        n,
        "--service",
        "web",
        "--version",
        "v2",
        "--image",
        "nginx:1.27",
    ])
    .ok();
    let s = strategy(n, "web-canary");
    assert_eq!(s["metadata"]["labels"], json!({"app": "web"}));
    assert_eq!(
        get(n, "deployment", "web-v2").unwrap()["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );
    let v = vs(n, "web");
    assert_eq!(v["spec"]["http"][0]["route"][1], port_dest("web", "v2", 80, 50));
}

#[test]
fn dry_runs_print_every_object_and_write_nothing() {
    let ns = Namespace::new("dryrun");
    bookinfo(&ns.name);
    let n = ns.name.as_str();
    for mode in ["--dry-run=client", "--dry-run=server"] {
        let audit = Audit::mark();
        let r = grayscale(&[
            "create",
            "canary",
            "rc",
            "-n",
            n,
            "--service",
            "reviews",
            "--version",
            "v2",
            mode,
            "-o",
            "json",
            "--as",
            &audit.id,
            "--as-group",
            "system:masters",
        ])
        .ok();
        let kinds: Vec<String> = r.json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["kind"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(kinds, ["Strategy", "Deployment", "DestinationRule", "VirtualService"], "{mode}");
        let reqs = audit.requests();
        assert!(reqs.iter().any(|e| e.short() == "get services"), "{mode}: reads seen: {reqs:#?}");
        let writes: Vec<_> = reqs.iter().filter(|e| e.mutating() && !e.uri.contains("dryRun")).collect();
        assert!(writes.is_empty(), "{mode} wrote {writes:?}");
    }
    assert!(get(n, "strategies.servicemesh.kubesphere.io", "rc").is_none());
    assert!(get(n, "deployment", "reviews-v2").is_none());
    assert!(get(n, "virtualservice", "reviews").is_none());
}

#[test]
fn no_wait_leaves_routing_on_the_old_version_until_sync() {
    let ns = Namespace::new("nowait");
    bookinfo(&ns.name);
    let n = ns.name.as_str();
    grayscale(&["create", "canary", "rc", "-n", n, "--service", "reviews", "--version", "v2", "--no-wait"])
        .ok();
    let v = vs(n, "reviews");
    assert_eq!(
        v["spec"]["http"],
        json!([{"name": "http-web", "match": [{"port": 9080}], "route": [port_dest("reviews", "v1", 9080, 100)]}])
    );
    assert_eq!(dr(n, "reviews")["spec"]["subsets"], json!([{"name": "v1", "labels": {"version": "v1"}}]));
    wait_ready(n, "reviews-v2", std::time::Duration::from_secs(60));
    grayscale(&["sync", "rc", "-n", n]).ok();
    assert_eq!(vs(n, "reviews")["spec"]["http"][0]["route"][1], port_dest("reviews", "v2", 9080, 50));
}

#[test]
fn a_canary_create_on_a_one_port_service_makes_exactly_twenty_requests() {
    let ns = Namespace::new("requests");
    bookinfo(&ns.name);
    let n = ns.name.as_str();
    let audit = Audit::mark();
    let mut args =
        vec!["create", "canary", "rc", "-n", n, "--service", "reviews", "--version", "v2", "--weight", "10"];
    args.extend(audit.tag());
    grayscale(&args).ok();
    let reqs = audit.requests();
    show("canary create", &reqs);
    let mut got: Vec<String> = reqs.iter().map(|e| e.short()).collect();
    got.sort();
    // The README's budget: 5 reads, what routes the Service (its HTTPRoutes, the namespace's
    // ambient mode), who else owns the route (2), the permission check, pin routing (3: the
    // app's ServicePolicies before the DestinationRule), 2 creates, the task's Event, 1 watch,
    // route (3). No "who am I" under --as.
    assert_eq!(
        got,
        [
            "create deployments",
            "create events",
            "create selfsubjectrulesreviews",
            "create strategies",
            "get applications",
            "get destinationrules",
            "get namespaces",
            "get services",
            "get virtualservices",
            "list deployments",
            "list httproutes",
            "list rollouts",
            "list servicepolicies",
            "list servicepolicies",
            "list strategies",
            "patch destinationrules",
            "patch destinationrules",
            "patch virtualservices",
            "patch virtualservices",
            "watch pods",
        ],
        "{reqs:#?}"
    );
    // The console's creator annotation names who created the task (here the --as user), on
    // the task, the new Deployment and its pod template.
    let creator = |v: &Value| v["metadata"]["annotations"]["kubesphere.io/creator"].clone();
    let d = get(n, "deployment", "reviews-v2").expect("the new Deployment");
    for (what, v) in [
        ("task", get(n, "strategies.servicemesh.kubesphere.io", "rc").expect("the task")),
        ("deployment", d.clone()),
        ("pod template", d["spec"]["template"].clone()),
    ] {
        assert_eq!(creator(&v), json!(audit.id), "{what}: {v}");
    }
}
