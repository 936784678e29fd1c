//! The on-call user: `kubectl grayscale rbac VERB` printed, bound to the plane's restricted user,
//! lets the verb run; with any one of its permissions taken away, the verb fails with exit 5
//! naming that permission, and the task is left as it was.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

fn canary(ns: &str) {
    canary_task(ns, "1", "20");
}

/// The Role `rbac` prints for `verb` (client routing), as JSON.
fn role(ns: &str, verb: &str) -> Value {
    let r = grayscale(&["rbac", verb, "--routing", "client", "-n", ns, "-o", "json"]).ok();
    let items = r.json()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1, "{verb}: one Role, no ClusterRole: {items:?}");
    items[0].clone()
}

fn bind(ns: &str, role: &Value) {
    kubectl(&["delete", "role", "kubectl-grayscale", "-n", ns, "--ignore-not-found"]).ok();
    kubectl_stdin(&["apply", "-n", ns, "-f", "-"], &role.to_string()).ok();
    let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "oncall"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "kubectl-grayscale"},
        "subjects": [{"kind": "User", "name": "restricted-user", "apiGroup": "rbac.authorization.k8s.io"}]});
    kubectl_stdin(&["apply", "-n", ns, "-f", "-"], &binding.to_string()).ok();
    // RBAC changes reach the authorizer through a watch: wait until the last rule is seen. A
    // required one: an optional rule may name a kind this plane does not serve (Argo Rollouts),
    // which `auth can-i` always denies.
    let opt = optional(role);
    let rules = role["rules"].as_array().unwrap();
    let last = (0..rules.len())
        .rev()
        .find(|&i| !opt.contains(&named(role, i, rules[i]["verbs"][0].as_str().unwrap())))
        .map(|i| rules[i].clone());
    if let Some(rule) = last {
        let verb = rule["verbs"][0].as_str().unwrap();
        let group = rule["apiGroups"][0].as_str().unwrap();
        let res = rule["resources"][0].as_str().unwrap();
        let resource = if group.is_empty() { res.to_string() } else { format!("{res}.{group}") };
        wait_for("the role to take effect", Duration::from_secs(30), || {
            kubectl(&["auth", "can-i", verb, &resource, "-n", ns, "--as", "restricted-user"]).stdout.trim()
                == "yes"
        });
    }
}

/// The permissions a Role marks optional (not checked before a change), as `rbac` names them:
/// `list rollouts.argoproj.io`.
fn optional(role: &Value) -> Vec<String> {
    role["metadata"]["annotations"]["grayscale.kubectl.io/optional-rules"]
        .as_str()
        .map(|a| a.split(", ").map(str::to_string).collect())
        .unwrap_or_default()
}

fn named(role: &Value, rule: usize, verb: &str) -> String {
    let r = &role["rules"][rule];
    let (group, res) = (r["apiGroups"][0].as_str().unwrap(), r["resources"][0].as_str().unwrap());
    if group.is_empty() { format!("{verb} {res}") } else { format!("{verb} {res}.{group}") }
}

/// The Role without its optional rules.
fn required_only(role: &Value) -> Value {
    let opt = optional(role);
    let mut r = role.clone();
    let rules = r["rules"].as_array_mut().unwrap();
    let keep: Vec<Value> = rules
        .iter()
        .enumerate()
        .filter(|(i, rule)| {
            rule["verbs"]
                .as_array()
                .unwrap()
                .iter()
                .any(|v| !opt.contains(&named(role, *i, v.as_str().unwrap())))
        })
        .map(|(_, rule)| rule.clone())
        .collect();
    *rules = keep;
    r
}

/// Every (rule index, verb) of a Role.
fn each_permission(role: &Value) -> Vec<(usize, String)> {
    role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .flat_map(|(i, r)| {
            r["verbs"].as_array().unwrap().iter().map(move |v| (i, v.as_str().unwrap().to_string()))
        })
        .collect()
}

fn without(role: &Value, rule: usize, verb: &str) -> (Value, String) {
    let mut r = role.clone();
    let rules = r["rules"].as_array_mut().unwrap();
    let resource = rules[rule]["resources"][0].as_str().unwrap().to_string();
    let verbs = rules[rule]["verbs"].as_array_mut().unwrap();
    verbs.retain(|v| v != verb);
    if verbs.is_empty() {
        rules.remove(rule);
    }
    (r, resource)
}

fn restricted(ns: &str, args: &[&str]) -> Run {
    let mut a = vec!["--context", "restricted", "-n", ns];
    a.extend_from_slice(args);
    grayscale(&a)
}

/// The task as a user sees it: its spec and its journal (a take-over that was put back has a
/// new resourceVersion but is otherwise as it was), and the routing of its VirtualService (a
/// take-over's routing written with a task write that was refused is brought back).
fn task_state(ns: &str) -> Option<Value> {
    let routing = get(ns, "virtualservice", "reviews").map(|v| v["spec"].clone());
    get(ns, "strategies.servicemesh.kubesphere.io", "rc")
        .map(|s| json!([s["spec"], s["metadata"]["annotations"], routing]))
}

/// For `verb`: each required permission removed in turn fails with exit 5 naming it and writes
/// nothing; then the Role without its optional rules (owner detection's lists, a take-over's
/// Event) lets the verb succeed (the whole Role only adds to it).
/// A canary made by the plugin, with one journaled change (for undo to revert).
fn cli_task(n: &str) {
    canary(n);
    grayscale(&["shift", "rc", "-n", n, "--weight", "25"]).ok();
}

/// A canary made by the console on a cluster without KubeSphere: no routing objects yet.
fn console_made(n: &str) {
    bookinfo(n);
    console_task(n, "console-canary.yaml", "reviews");
}

fn drill(prefix: &str, verb: &str, args: &[&str], setup: fn(&str)) {
    let ns = Namespace::new(prefix);
    let n = ns.name.as_str();
    setup(n);
    let needs_task = get(n, "deployment", "reviews-v2").is_some();
    let full = role(n, verb);
    let opt = optional(&full);
    for (rule, v) in each_permission(&full) {
        if opt.contains(&named(&full, rule, &v)) {
            continue;
        }
        let (cut, resource) = without(&full, rule, &v);
        bind(n, &cut);
        let before = task_state(n);
        let r = restricted(n, args);
        assert_eq!(r.code, 5, "{verb} without {v} {resource}: exit {}\n{}", r.code, r.stderr);
        assert!(
            r.stderr.contains(&resource) && r.stderr.contains(&v),
            "{verb} without {v} {resource} must name it:\n{}",
            r.stderr
        );
        // A take-over checks nothing up front; refused the VirtualService's patch after the
        // task's, it puts the task back (README, "Permissions and the on-call user").
        assert_eq!(task_state(n), before, "{verb} without {v} {resource} changed the task or its routing");
        assert!(
            get(n, "deployment", "reviews-v2").is_some() == needs_task,
            "{verb} without {v} {resource}: Deployments as before"
        );
    }
    let required = required_only(&full);
    if !opt.is_empty() {
        assert!(required["rules"].as_array().unwrap().len() < full["rules"].as_array().unwrap().len());
    }
    bind(n, &required);
    let r = restricted(n, args);
    assert_eq!(r.code, 0, "{verb} with the printed Role less its optional rules {opt:?}:\n{}", r.stderr);
}

#[test]
fn create_runs_with_its_role_and_names_each_missing_permission() {
    drill(
        "rbac-create",
        "create",
        &[
            "create",
            "canary",
            "rc",
            "--service",
            "reviews",
            "--version",
            "v2",
            "--replicas",
            "1",
            "--weight",
            "20",
        ],
        bookinfo,
    );
}

#[test]
fn shift_runs_with_its_role_and_names_each_missing_permission() {
    drill("rbac-shift", "shift", &["shift", "rc", "--weight", "30"], cli_task);
}

#[test]
fn takeover_runs_with_its_role_and_names_each_missing_permission() {
    drill("rbac-takeover", "takeover", &["takeover", "rc", "--version", "v1"], cli_task);
}

#[test]
fn offline_runs_with_its_role_and_names_each_missing_permission() {
    drill("rbac-offline", "offline", &["offline", "rc", "--keep", "v2"], cli_task);
}

#[test]
fn sync_status_undo_and_list_run_with_their_roles_and_name_each_missing_permission() {
    drill("rbac-sync", "sync", &["sync", "console-canary"], console_made);
    drill("rbac-status", "status", &["status", "rc"], cli_task);
    drill("rbac-undo", "undo", &["undo", "rc"], cli_task);
    // Without its optional rules (Services, VirtualServices) `list` shows the rows without drift.
    drill("rbac-list", "list", &["list"], cli_task);
}

#[test]
fn the_whole_role_for_every_verb_prints_prometheus_roles_and_a_cluster_role_for_list_all_and_init() {
    let r = grayscale_offline(&["rbac", "-n", "demo", "-o", "json"]).ok();
    let kinds: Vec<(String, String)> = r.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let ns = o["metadata"]["namespace"].as_str().unwrap_or("-");
            (o["kind"].as_str().unwrap().to_string(), ns.to_string())
        })
        .collect();
    // Gated shifts and analyze read Prometheus through the service proxy, in its namespace:
    // Istio's addon (client routing) or KubeSphere's monitoring (KubeSphere routing).
    let want = [
        ("Role", "demo"),
        ("Role", "istio-system"),
        ("Role", "kubesphere-monitoring-system"),
        ("ClusterRole", "-"),
    ];
    assert_eq!(kinds, want.map(|(k, n)| (k.to_string(), n.to_string())));
    let yaml = grayscale_offline(&["rbac", "takeover", "-n", "demo"]).ok();
    assert!(yaml.stdout.contains("kind: Role") && !yaml.stdout.contains("ClusterRole"), "{}", yaml.stdout);
}
