//! Grayscale tasks on Gateway API's HTTPRoute (GAMMA: the Service is the route's parent),
//! against the plane's API server with the project's HTTPRoute CRD. Each test asserts the live
//! HTTPRoute and per-version Services after the command.

mod common;

use common::*;
use serde_json::{Value, json};

/// The project's HTTPRoute CRD on the plane (the plane installs it at `up`; a plane started by
/// an older checkout may lack it), established before any test uses it.
fn gateway_api() {
    let crd = repo().join("deploy/crds/gateway-httproutes.yaml");
    kubectl(&["apply", "-f", crd.to_str().unwrap()]).ok();
    kubectl(&[
        "wait",
        "--for=condition=Established",
        "crd/httproutes.gateway.networking.k8s.io",
        "--timeout=60s",
    ])
    .ok();
}

fn route(ns: &str) -> Value {
    get(ns, "httproutes.gateway.networking.k8s.io", "reviews").expect("httproute")
}

/// Per rule: `name:[matches]backend=weight,...`, the way the table tests write them.
fn rules(r: &Value) -> Vec<String> {
    r["spec"]["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|rule| {
            let backends: Vec<String> = rule["backendRefs"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|b| format!("{}@{}={}", b["name"].as_str().unwrap(), b["port"], b["weight"]))
                .collect();
            let name = rule["name"].as_str().unwrap_or("");
            // Every request (what an omitted match defaults to) is left out.
            let all = json!([{"path": {"type": "PathPrefix", "value": "/"}}]);
            let m = if rule["matches"] == all { String::new() } else { rule["matches"].to_string() };
            format!("{name}:{m}{}", backends.join(","))
        })
        .collect()
}

fn gateway_canary(ns: &str, extra: &[&str]) {
    bookinfo(ns);
    let mut args = vec!["create", "canary", "rc", "-n", ns, "--service", "reviews", "--version", "v2"];
    args.extend_from_slice(extra);
    grayscale(&args).ok();
}

fn service(ns: &str, name: &str) -> Option<Value> {
    get(ns, "service", name)
}

#[test]
fn a_canary_on_gateway_api_from_create_to_offline() {
    gateway_api();
    let ns = Namespace::new("gw-canary");
    let n = ns.name.as_str();
    gateway_canary(n, &["--routing", "gateway-api", "--weight", "20"]);
    let task = get(n, "strategies.servicemesh.kubesphere.io", "rc").unwrap();
    assert_eq!(task["metadata"]["annotations"]["grayscale.kubectl.io/routing-api"], "gateway-api");
    let r = route(n);
    assert_eq!(
        r["spec"]["parentRefs"],
        json!([{"group": "", "kind": "Service", "name": "reviews", "port": 9080}])
    );
    assert_eq!(rules(&r), ["grayscale-0:reviews-v1@9080=80,reviews-v2@9080=20"]);
    // One Service per version: the Service's ports, its selector plus the version, owned by
    // the task. No VirtualService or DestinationRule: never both kinds for one Service.
    for v in ["v1", "v2"] {
        let s = service(n, &format!("reviews-{v}")).expect("per-version Service");
        assert_eq!(s["spec"]["selector"]["version"], v);
        assert_eq!(s["spec"]["selector"]["app"], "reviews");
        assert_eq!(s["spec"]["ports"][0]["port"], 9080);
        assert_eq!(s["metadata"]["ownerReferences"][0]["uid"], task["metadata"]["uid"]);
        assert_eq!(s["metadata"]["ownerReferences"][0]["kind"], "Strategy");
    }
    assert!(get(n, "virtualservice", "reviews").is_none());
    assert!(get(n, "destinationrule", "reviews").is_none());

    grayscale(&["shift", "rc", "-n", n, "--weight", "40"]).ok();
    let shifted = ["grayscale-0:reviews-v1@9080=60,reviews-v2@9080=40"];
    assert_eq!(rules(&route(n)), shifted);

    // A hand edit of the route: status names the drift and who made it; sync puts it back.
    let edit = r#"[{"op": "replace", "path": "/spec/rules/0/backendRefs/1/weight", "value": 90}]"#;
    kubectl(&[
        "patch",
        "httproutes.gateway.networking.k8s.io",
        "reviews",
        "-n",
        n,
        "--type",
        "json",
        "-p",
        edit,
    ])
    .ok();
    let st = grayscale(&["status", "rc", "-n", n, "-o", "json"]).ok().json();
    assert_eq!((&st["drift"], &st["driftBy"]), (&json!(true), &json!("kubectl-patch")), "{st}");
    grayscale(&["sync", "rc", "-n", n]).ok();
    assert_eq!(rules(&route(n)), shifted);
    assert_eq!(grayscale(&["status", "rc", "-n", n, "-o", "json"]).ok().json()["drift"], false);

    // Paused: the principal alone, whatever the weights say; resumed: the weights again.
    grayscale(&["pause", "rc", "-n", n]).ok();
    assert_eq!(rules(&route(n)), ["grayscale-0:reviews-v1@9080=100"]);
    grayscale(&["resume", "rc", "-n", n]).ok();
    assert_eq!(rules(&route(n)), shifted);

    // The take-over in the same requests as on a VirtualService: one round of parallel reads
    // (the HTTPRoute and the namespace's Services instead of the VirtualService and the
    // DestinationRule), then the task, the route and the Event together.
    let audit = Audit::mark();
    let mut args = vec!["takeover", "rc", "-n", n, "--version", "v2"];
    args.extend(audit.tag());
    grayscale(&args).ok();
    let reqs = audit.requests();
    show("takeover on gateway-api", &reqs);
    assert_rounds(
        &reqs,
        &[
            &[
                "get strategies",
                "get services",
                "get httproutes",
                "list services",
                "list pods",
                "list rollouts",
            ],
            &["patch strategies", "patch httproutes", "create events"],
        ],
    );
    assert_eq!(rules(&route(n)), ["grayscale-0:reviews-v2@9080=100"]);
    let st = grayscale(&["status", "rc", "-n", n, "-o", "json"]).ok().json();
    assert_eq!(st["routeKind"], "HTTPRoute");
    assert_eq!(st["liveRouting"][0]["weights"], json!([{"version": "v2", "weight": 100}]));

    // Offline keeps v2: the route the plugin made goes, and so do the per-version Services;
    // the Service itself now selects only v2's pods.
    grayscale(&["offline", "rc", "-n", n, "--keep", "v2"]).ok();
    assert!(get(n, "httproutes.gateway.networking.k8s.io", "reviews").is_none());
    assert!(service(n, "reviews-v1").is_none() && service(n, "reviews-v2").is_none());
    assert!(get(n, "deployment", "reviews-v1").is_none());
    assert!(get(n, "strategies.servicemesh.kubesphere.io", "rc").is_none());
    assert!(service(n, "reviews").is_some());
}

#[test]
fn auto_routes_a_service_with_an_httproute_there_keeping_the_users_rules_and_services() {
    gateway_api();
    let ns = Namespace::new("gw-auto");
    let n = ns.name.as_str();
    bookinfo(n);
    let users = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: reviews}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews, port: 9080}]
  rules:
  - name: legacy
    matches: [{path: {type: PathPrefix, value: /legacy}}]
    backendRefs: [{name: reviews, port: 9080}]
---
apiVersion: v1
kind: Service
metadata: {name: reviews-v2, labels: {owner: me}}
spec:
  selector: {app: reviews, version: v2}
  ports: [{name: http, port: 9080}]
"#;
    kubectl_stdin(&["apply", "-n", n, "-f", "-"], users).ok();
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
        "--weight",
        "30",
    ])
    .ok();
    let got = rules(&route(n));
    assert_eq!(got[0], "grayscale-0:reviews-v1@9080=70,reviews-v2@9080=30", "{got:?}");
    assert!(got[1].starts_with("legacy:"), "the user's rule is kept behind the plugin's: {got:?}");
    assert_eq!(got.len(), 2);
    // The user's own per-version Service is reused as it is, not taken over.
    let mine = service(n, "reviews-v2").unwrap();
    assert_eq!(mine["metadata"]["labels"], json!({"owner": "me"}));
    assert!(mine["metadata"]["ownerReferences"].is_null());

    // Offline: the route stays (the user made it) with the user's rule alone; the plugin's
    // per-version Service goes, the user's stays.
    grayscale(&["offline", "rc", "-n", n, "--keep", "v1"]).ok();
    let left = rules(&route(n));
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].starts_with("legacy:"));
    assert!(service(n, "reviews-v1").is_none());
    assert!(service(n, "reviews-v2").is_some());
}

#[test]
fn one_service_never_gets_both_kinds_of_route() {
    gateway_api();
    let ns = Namespace::new("gw-mix");
    let n = ns.name.as_str();
    bookinfo(n);
    // A VirtualService routes reviews already: gateway-api would add the second kind.
    kubectl_stdin(
        &["apply", "-n", n, "-f", "-"],
        "apiVersion: networking.istio.io/v1alpha3\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http: [{route: [{destination: {host: reviews}}]}]\n",
    )
    .ok();
    let audit = Audit::mark();
    let mut args = vec![
        "create",
        "canary",
        "rc",
        "-n",
        n,
        "--service",
        "reviews",
        "--version",
        "v2",
        "--routing",
        "gateway-api",
    ];
    args.extend(audit.tag());
    let r = grayscale(&args);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("which VirtualService reviews routes"), "{}", r.stderr);
    let reqs = audit.requests();
    assert!(reqs.iter().any(|e| e.short() == "list httproutes"), "the command read the routes: {reqs:#?}");
    assert!(reqs.iter().all(|e| !e.mutating()), "nothing written: {reqs:#?}");
    assert!(get(n, "httproutes.gateway.networking.k8s.io", "reviews").is_none());
    assert!(get(n, "deployment", "reviews-v2").is_none());
}

/// Once sim-mesh has seen the route's current generation: what v1 and v2 answer (200) of the
/// next requests, whole seconds of sim-mesh's cycle of ten request profiles.
fn counts_now(ns: &str) -> (u64, u64) {
    wait_for("sim-mesh to see the route as written", std::time::Duration::from_secs(60), || {
        let r = route(ns);
        let seen = &r["status"]["parents"][0]["conditions"][0]["observedGeneration"];
        seen.as_i64().is_some() && *seen == r["metadata"]["generation"]
    });
    let got = requests_from_now(ns, 200);
    assert!(got.keys().all(|k| k.ends_with(" 200")), "every request answered: {got:?}");
    let n = |v: &str| got.get(&format!("destination reviews {v} 200")).copied().unwrap_or(0);
    (n("v1"), n("v2"))
}

/// `counts_now` as tenths of the requests: (v1, v2).
fn shares_now(ns: &str) -> (u64, u64) {
    let (v1, v2) = counts_now(ns);
    let total = v1 + v2;
    assert!(total > 0 && total.is_multiple_of(10), "{v1} + {v2}");
    (v1 * 10 / total, v2 * 10 / total)
}

#[test]
fn request_parameters_send_exactly_the_matching_requests_to_the_new_version() {
    gateway_api();
    let ns = Namespace::new("gw-match");
    let n = ns.name.as_str();
    // sim-mesh's cycle of ten requests: 2 carry x-canary: true, 2 a cookie with beta=yes, 3 are
    // Android, 2 ask for /beta/...
    gateway_canary(n, &["--routing", "gateway-api", "--header", "x-canary=true"]);
    let r = route(n);
    assert_eq!(
        r["spec"]["rules"][0]["matches"],
        json!([{"headers": [{"type": "Exact", "name": "x-canary", "value": "true"}], "path": {"type": "PathPrefix", "value": "/"}}])
    );
    assert_eq!(shares_now(n), (8, 2));
    grayscale(&["match", "rc", "-n", n, "--cookie-regex", ".*beta=yes.*"]).ok();
    assert_eq!(shares_now(n), (8, 2));
    grayscale(&["match", "rc", "-n", n, "--os", "android"]).ok();
    assert_eq!(shares_now(n), (7, 3));
    grayscale(&["match", "rc", "-n", n, "--uri-prefix", "/beta"]).ok();
    assert_eq!(rules(&route(n)).len(), 2);
    assert_eq!(shares_now(n), (8, 2));
    grayscale(&["match", "rc", "-n", n, "--ratio", "50"]).ok();
    assert_eq!(shares_now(n), (5, 5));
}

#[test]
fn a_twenty_percent_mirror_copies_a_fifth_of_the_requests() {
    gateway_api();
    let ns = Namespace::new("gw-mirror");
    let n = ns.name.as_str();
    bookinfo(n);
    grayscale(&[
        "create",
        "mirror",
        "rc",
        "-n",
        n,
        "--service",
        "reviews",
        "--version",
        "v2",
        "--routing",
        "gateway-api",
    ])
    .ok();
    grayscale(&["mirror", "rc", "-n", n, "--on", "--percent", "20"]).ok();
    let r = route(n);
    assert_eq!(
        r["spec"]["rules"][0]["filters"],
        json!([{"type": "RequestMirror", "requestMirror": {
            "backendRef": {"group": "", "kind": "Service", "name": "reviews-v2", "port": 9080}, "percent": 20}}])
    );
    // v1 answers every request; v2 gets the mirrored copies: 20% ± 3 of them.
    let (v1, v2) = counts_now(n);
    let pct = v2 * 100 / v1;
    assert!((17..=23).contains(&pct), "mirrored {v2} of {v1} requests");
}
