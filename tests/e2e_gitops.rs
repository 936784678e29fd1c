//! `gitops`: the printed Argo CD and Flux configuration, checked against the live objects with
//! the tools' own semantics. Argo CD turns each jqPathExpression into `del(EXPR)` before it
//! diffs: run with the real `jq`, the expressions must take away exactly what the plugin writes,
//! so that what Argo CD compares does not move when the plugin shifts, mirrors or takes over.
//! The Flux patches must give each object the IfNotPresent policy under the real kustomize.

mod common;

use std::process::{Command, Stdio};

use common::*;
use serde_json::{Value, json};

fn need_jq() {
    let found = Command::new("sh").args(["-c", "command -v jq"]).output().is_ok_and(|o| o.status.success());
    assert!(found, "jq is not installed: `bash hack/local-cluster.sh deps` installs it (Debian package jq)");
}

/// `jq -c FILTER` on `input`: its one output.
fn jq(filter: &str, input: &Value) -> Value {
    use std::io::Write;
    let mut child = Command::new("jq")
        .args(["-c", filter])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run jq");
    child.stdin.take().unwrap().write_all(input.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "jq {filter}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("jq {filter}: {e}"))
}

/// The object as Argo CD compares it: without what the expressions select.
fn ignored(obj: &Value, exprs: &[String]) -> Value {
    exprs.iter().fold(obj.clone(), |o, e| jq(&format!("del({e})"), &o))
}

/// Every value the expressions select (absent fields select nothing).
fn selected(obj: &Value, exprs: &[String]) -> Value {
    let all: Vec<Value> = exprs.iter().map(|e| jq(&format!("[{e}] | map(select(. != null))"), obj)).collect();
    Value::Array(all.into_iter().flat_map(|v| v.as_array().unwrap().clone()).collect())
}

/// Every `key` number or string anywhere in `v`, sorted.
fn all(key: &str, v: &Value) -> Vec<Value> {
    let mut out = jq(&format!("[.. | objects | .{key}? | select(. != null)]"), v).as_array().unwrap().clone();
    out.sort_by_key(|x| x.to_string());
    out
}

fn entry<'a>(app: &'a Value, kind: &str) -> &'a Value {
    app["spec"]["ignoreDifferences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == kind)
        .unwrap_or_else(|| panic!("no ignoreDifferences entry for {kind}: {app}"))
}

fn exprs(e: &Value) -> Vec<String> {
    e["jqPathExpressions"].as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect()
}

fn strategy(ns: &str) -> Value {
    get(ns, "strategies.servicemesh.kubesphere.io", "rc").expect("task")
}

#[test]
fn argocd_ignore_differences_take_away_exactly_what_the_plugin_writes() {
    need_jq();
    let ns = Namespace::new("gitops-argo");
    let n = ns.name.as_str();
    canary_task(n, "1", "20");
    grayscale(&["shift", "rc", "-n", n, "--weight", "30"]).ok();

    let text = grayscale(&["gitops", "rc", "-n", n, "--tool", "argocd", "-o", "yaml"]).ok().stdout;
    let app: Value = serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("not YAML ({e}):\n{text}"));
    assert_eq!(app["apiVersion"], "argoproj.io/v1alpha1", "{text}");
    assert_eq!(app["kind"], "Application");
    let sync = app["spec"]["syncPolicy"]["syncOptions"].as_array().unwrap();
    assert!(sync.contains(&json!("RespectIgnoreDifferences=true")), "{text}");
    assert!(text.contains("gatewayapi-plugin #208"), "says why there is no condition:\n{text}");
    let as_json = grayscale(&["gitops", "rc", "-n", n, "--tool", "argocd", "-o", "json"]).ok().json();
    assert_eq!(as_json, app, "-o json is the same object");

    let (vs_e, dr_e, task_e) =
        (entry(&app, "VirtualService"), entry(&app, "DestinationRule"), entry(&app, "Strategy"));
    for (e, group, name) in [
        (vs_e, "networking.istio.io", "reviews"),
        (dr_e, "networking.istio.io", "reviews"),
        (task_e, "servicemesh.kubesphere.io", "rc"),
    ] {
        assert_eq!(
            (e["group"].as_str(), e["name"].as_str(), e["namespace"].as_str()),
            (Some(group), Some(name), Some(n))
        );
        for x in exprs(e) {
            assert!(!x.contains("select") && !x.contains('|'), "unconditional: {x}");
        }
    }
    let (vs_x, dr_x, task_x) = (exprs(vs_e), exprs(dr_e), exprs(task_e));

    // After the shift: the weights the plugin wrote are selected, and nothing of them is left.
    let vs = get(n, "virtualservice", "reviews").unwrap();
    assert_eq!(all("weight", &selected(&vs, &vs_x)), [json!(30), json!(70)]);
    assert_eq!(all("subset", &selected(&vs, &vs_x)), [json!("v1"), json!("v2")]);
    let compared = ignored(&vs, &vs_x);
    assert_eq!(all("weight", &compared), Vec::<Value>::new(), "{compared}");
    assert_eq!(all("subset", &compared), Vec::<Value>::new(), "{compared}");
    assert_eq!(compared["spec"]["hosts"], json!(["reviews"]), "the hosts are not selected: {compared}");
    assert_eq!(compared["metadata"]["name"], "reviews");
    let dr = get(n, "destinationrule", "reviews").unwrap();
    assert_eq!(jq("[.[].name] | sort", &selected(&dr, &dr_x)[0]), json!(["v1", "v2"]));
    assert_eq!(ignored(&dr, &dr_x)["spec"]["host"], "reviews", "the host is not selected");
    let task = strategy(n);
    assert_eq!(all("weight", &selected(&task, &task_x)), [json!(30), json!(70)]);
    assert_eq!(ignored(&task, &task_x)["spec"]["principal"], "v1", "the principal is not selected");

    // What Argo CD compares stays put through a mirror and a take-over, while the objects change.
    let compared = |o: &Value, x: &[String]| ignored(o, x)["spec"].clone();
    let (vs_a, dr_a, task_a) = (compared(&vs, &vs_x), compared(&dr, &dr_x), compared(&task, &task_x));
    grayscale(&["mirror", "rc", "-n", n, "--on"]).ok();
    let vs_m = get(n, "virtualservice", "reviews").unwrap();
    assert_ne!(vs_m["spec"], vs["spec"], "the mirror changed the VirtualService");
    assert_eq!(all("mirror", &selected(&vs_m, &vs_x)).len(), 1, "the mirror is selected");
    assert_eq!(compared(&vs_m, &vs_x), vs_a, "Argo CD sees no change after a mirror");
    assert_eq!(compared(&strategy(n), &task_x), task_a);

    grayscale(&["takeover", "rc", "-n", n, "--version", "v2"]).ok();
    let (vs_t, dr_t, task_t) = (
        get(n, "virtualservice", "reviews").unwrap(),
        get(n, "destinationrule", "reviews").unwrap(),
        strategy(n),
    );
    assert_eq!(all("weight", &selected(&vs_t, &vs_x)), [json!(100)], "every route to one version");
    assert_eq!(all("subset", &selected(&vs_t, &vs_x)).iter().filter(|s| **s != json!("v2")).count(), 0);
    assert_eq!(compared(&vs_t, &vs_x), vs_a, "Argo CD sees no change after a take-over");
    assert_eq!(compared(&dr_t, &dr_x), dr_a);
    assert_eq!(jq(".spec.governor", &task_t), json!("v2"));
    assert_eq!(selected(&task_t, &task_x)[0], json!("v2"), "the governor is selected");
    assert_eq!(compared(&task_t, &task_x), task_a, "Argo CD sees no change of the task");
}

#[test]
fn flux_patches_give_the_tasks_objects_the_if_not_present_policy_under_kustomize() {
    let ns = Namespace::new("gitops-flux");
    let n = ns.name.as_str();
    canary_task(n, "1", "20");
    let text = grayscale(&["gitops", "rc", "-n", n, "--tool", "flux", "-o", "yaml"]).ok().stdout;
    let k: Value = serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("not YAML ({e}):\n{text}"));
    assert_eq!(k["apiVersion"], "kustomize.toolkit.fluxcd.io/v1", "{text}");
    assert_eq!(k["kind"], "Kustomization");
    assert!(text.contains("IfNotPresent") && text.contains("starts with"), "says why:\n{text}");
    let patches = k["spec"]["patches"].as_array().unwrap().clone();

    // The live objects as a Git repository would hold them, built by kustomize with and
    // without the printed patches.
    let dir = std::env::temp_dir().join(format!("grayscale-{n}"));
    std::fs::create_dir_all(&dir).unwrap();
    let objects = [
        ("vs.yaml", get(n, "virtualservice", "reviews").unwrap()),
        ("dr.yaml", get(n, "destinationrule", "reviews").unwrap()),
        ("task.yaml", strategy(n)),
    ];
    for (file, o) in &objects {
        let manifest = json!({"apiVersion": o["apiVersion"], "kind": o["kind"],
            "metadata": {"name": o["metadata"]["name"], "namespace": n}, "spec": o["spec"]});
        std::fs::write(dir.join(file), serde_yaml_ng::to_string(&manifest).unwrap()).unwrap();
    }
    let build = |patches: &[Value]| -> Vec<Value> {
        let kustomization = json!({"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            "resources": ["vs.yaml", "dr.yaml", "task.yaml"], "patches": patches});
        std::fs::write(dir.join("kustomization.yaml"), serde_yaml_ng::to_string(&kustomization).unwrap())
            .unwrap();
        let out = kubectl(&["kustomize", dir.to_str().unwrap()]).ok().stdout;
        out.split("\n---\n").map(|d| serde_yaml_ng::from_str(d).unwrap()).collect()
    };
    let policy = |o: &Value| o["metadata"]["annotations"]["kustomize.toolkit.fluxcd.io/ssa"].clone();
    let plain = build(&[]);
    assert_eq!(plain.len(), 3);
    assert!(plain.iter().all(|o| policy(o).is_null()), "no policy without the patches");
    let patched = build(&patches);
    std::fs::remove_dir_all(&dir).ok();
    let mut kinds: Vec<String> = patched
        .iter()
        .map(|o| {
            assert_eq!(policy(o), "IfNotPresent", "{o}");
            format!("{}/{}", o["kind"].as_str().unwrap(), o["metadata"]["name"].as_str().unwrap())
        })
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["DestinationRule/reviews", "Strategy/rc", "VirtualService/reviews"]);
    let spec = |v: &[Value], kind: &str| v.iter().find(|o| o["kind"] == kind).unwrap()["spec"].clone();
    assert_eq!(
        spec(&patched, "VirtualService"),
        spec(&plain, "VirtualService"),
        "only the annotation is added"
    );
}
