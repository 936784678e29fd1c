//! The record of who moved traffic, end to end: an Event on the Strategy for every change,
//! naming the user as the cluster sees them (the same user as the journal), the field manager
//! `kubectl-grayscale` on what the plugin wrote, and drift naming the manager that made it.

mod common;

use common::*;
use serde_json::{Value, json};

const STRATEGY: &str = "strategies.servicemesh.kubesphere.io";

/// The Events about task `rc`, oldest first (their names end in the time in hex).
fn events(ns: &str) -> Vec<Value> {
    let r = kubectl(&[
        "get",
        "events",
        "-n",
        ns,
        "--field-selector",
        "involvedObject.kind=Strategy,involvedObject.name=rc",
        "-o",
        "json",
    ])
    .ok();
    let mut items = r.json()["items"].as_array().cloned().unwrap_or_default();
    items.sort_by_key(|e| e["metadata"]["name"].as_str().unwrap_or_default().to_string());
    items
}

fn reasons(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| e["reason"].as_str().unwrap_or_default().to_string()).collect()
}

/// An object with its managedFields (kubectl hides them unless asked).
fn with_fields(ns: &str, kind: &str, name: &str) -> Value {
    kubectl(&["get", kind, name, "-n", ns, "-o", "json", "--show-managed-fields"]).ok().json()
}

/// The fields `manager` owns, or None when it owns none.
fn owned_by(obj: &Value, manager: &str) -> Option<Value> {
    let fields = obj["metadata"]["managedFields"].as_array()?;
    let mut owned: Vec<&Value> = fields.iter().filter(|f| f["manager"] == manager).collect();
    owned.pop().map(|f| f["fieldsV1"].clone())
}

fn journal(ns: &str) -> Vec<Value> {
    grayscale(&["history", "rc", "-n", ns, "-o", "json"]).ok().json().as_array().cloned().unwrap_or_default()
}

/// The kubeconfig's user name for its current context: who a change names where the cluster
/// cannot tell.
fn kubeconfig_user() -> String {
    kubectl(&["config", "view", "--minify", "-o", "jsonpath={.contexts[0].context.user}"]).ok().stdout
}

fn tagged<'a>(args: &[&'a str], audit: &'a Audit) -> Vec<&'a str> {
    let mut a = args.to_vec();
    a.extend(audit.tag());
    a
}

#[test]
fn a_shift_under_as_records_an_event_naming_that_user_and_the_routing_before_and_after() {
    let ns = Namespace::new("ev-shift");
    let n = ns.name.as_str();
    canary_task(n, "1", "20");
    // Positive control: before the shift, only the creation is recorded, by the kubeconfig
    // user (this plane serves no SelfSubjectReview).
    let before = events(n);
    assert_eq!(reasons(&before), ["Created"], "{before:#?}");
    assert_eq!(before[0]["message"], format!("create by {}: (no task) -> v1 80% v2 20%", kubeconfig_user()));

    let audit = Audit::mark();
    grayscale(&tagged(&["shift", "rc", "-n", n, "--weight", "30"], &audit)).ok();
    let after = events(n);
    assert_eq!(reasons(&after), ["Created", "TrafficShifted"], "{after:#?}");
    let e = &after[1];
    assert_eq!(e["message"], format!("shift by {}: v1 80% v2 20% -> v1 70% v2 30%", audit.id));
    assert_eq!(e["type"], "Normal");
    assert_eq!(e["source"]["component"], "kubectl-grayscale");
    assert_eq!(e["reportingComponent"], "kubectl-grayscale");
    assert_eq!(e["count"], 1);
    let s = get(n, STRATEGY, "rc").unwrap();
    assert_eq!(
        e["involvedObject"],
        json!({
            "apiVersion": "servicemesh.kubesphere.io/v1alpha2",
            "kind": "Strategy",
            "name": "rc",
            "namespace": n,
            "uid": s["metadata"]["uid"],
            "resourceVersion": s["metadata"]["resourceVersion"],
        })
    );
    // The journal names the same user.
    let last = journal(n).pop().expect("a journal entry");
    assert_eq!((&last["by"], &last["action"]), (&json!(audit.id), &json!("shift")));
    let table = grayscale(&["history", "rc", "-n", n]).ok();
    assert!(table.stdout.lines().last().unwrap().contains(&audit.id), "{}", table.stdout);
    // Under --as the cluster is not asked who the user is; the Event goes after the routing.
    let reqs = audit.requests();
    let at = |short: &str| reqs.iter().position(|e| e.short() == short);
    assert_eq!(at("create selfsubjectreviews"), None, "{reqs:#?}");
    let (vs, ev) = (at("patch virtualservices").expect("routing"), at("create events").expect("event"));
    assert!(vs < ev, "the Event after the routing: {reqs:#?}");

    // A change that changes nothing moved no traffic: no Event.
    grayscale(&tagged(&["shift", "rc", "-n", n, "--weight", "30"], &audit)).ok();
    assert_eq!(reasons(&events(n)), ["Created", "TrafficShifted"]);
}

#[test]
fn every_change_leaves_its_event_with_its_reason_and_user() {
    let ns = Namespace::new("ev-verbs");
    let n = ns.name.as_str();
    canary_task(n, "1", "20");
    let audit = Audit::mark();
    let steps: [(&[&str], &str); 10] = [
        (&["shift", "rc", "--weight", "30"], "TrafficShifted"),
        (&["undo", "rc"], "Undone"),
        (&["pause", "rc"], "Paused"),
        (&["resume", "rc"], "Resumed"),
        (&["takeover", "rc", "--version", "v1"], "TakenOver"),
        (&["takeover", "rc", "--restore"], "Restored"),
        (&["mirror", "rc", "--on"], "MirrorChanged"),
        (&["mirror", "rc", "--off"], "MirrorChanged"),
        (&["match", "rc", "--header", "x-beta=1"], "MatchChanged"),
        (&["offline", "rc", "--keep", "v1"], "Offline"),
    ];
    let mut want = vec!["Created".to_string()];
    for (args, reason) in steps {
        let mut full = args.to_vec();
        full.extend(["-n", n]);
        grayscale(&tagged(&full, &audit)).ok();
        want.push(reason.to_string());
        // offline records its take-over, then the deletion.
        if args[0] == "offline" {
            want.push("Offline".to_string());
        }
        let got = events(n);
        assert_eq!(reasons(&got), want, "after {args:?}: {got:#?}");
        let last = got.last().unwrap()["message"].as_str().unwrap().to_string();
        assert!(last.contains(&format!(" by {}: ", audit.id)), "{args:?}: {last}");
    }
    let got = events(n);
    let offline = got.last().unwrap()["message"].as_str().unwrap();
    assert!(offline.ends_with("-> v1 100%; deleted the Deployment reviews-v2 and the task"), "{offline}");
    assert!(get(n, STRATEGY, "rc").is_none(), "the task is gone, its record stays");
}

#[test]
fn the_plugin_owns_what_it_wrote_and_drift_names_the_manager_that_changed_the_route() {
    let ns = Namespace::new("ev-drift");
    let n = ns.name.as_str();
    canary_task(n, "1", "20");
    let audit = Audit::mark();
    grayscale(&tagged(&["shift", "rc", "-n", n, "--weight", "30"], &audit)).ok();
    // managedFields: the Strategy's routes and journal, and the VirtualService's routes, are
    // the plugin's.
    let s = with_fields(n, STRATEGY, "rc");
    let ours = owned_by(&s, "kubectl-grayscale").expect("the plugin's entry on the Strategy");
    assert!(ours["f:spec"]["f:template"].is_object(), "{ours}");
    assert!(ours["f:metadata"]["f:annotations"]["f:grayscale.kubectl.io/history"].is_object(), "{ours}");
    let vs = with_fields(n, "virtualservice", "reviews");
    let ours = owned_by(&vs, "kubectl-grayscale").expect("the plugin's entry on the VirtualService");
    assert!(ours["f:spec"]["f:http"].is_object(), "{ours}");

    // Positive control: no drift while the plugin wrote last, and the last change is the
    // shift by the impersonated user.
    let st = grayscale(&["status", "rc", "-n", n, "-o", "json"]).ok().json();
    assert_eq!((&st["drift"], &st["driftBy"]), (&json!(false), &Value::Null), "{st}");
    let last = st["lastChange"].as_str().unwrap();
    assert!(last.starts_with(&format!("shift by {} at ", audit.id)), "{last}");
    // `list` judges readiness from the Deployments' status, which kube-controller-manager
    // updates a moment after the pods: wait until it counts the new version's pod.
    wait_for("reviews-v2's status to count its ready pod", std::time::Duration::from_secs(60), || {
        get(n, "deployment", "reviews-v2").is_some_and(|d| d["status"]["readyReplicas"] == 1)
    });
    let row = grayscale(&["list", "-n", n]).ok().stdout;
    assert!(!row.contains("drift"), "{row}");
    assert!(owned_by(&vs, "console-edit").is_none());

    // Another manager changes the weights, as the console or kubectl edit would.
    let patch = json!([
        {"op": "replace", "path": "/spec/http/0/route/0/weight", "value": 10},
        {"op": "replace", "path": "/spec/http/0/route/1/weight", "value": 90},
    ]);
    kubectl(&[
        "patch",
        "virtualservice",
        "reviews",
        "-n",
        n,
        "--type",
        "json",
        "--field-manager=console-edit",
        "-p",
        &patch.to_string(),
    ])
    .ok();
    let vs = with_fields(n, "virtualservice", "reviews");
    assert!(owned_by(&vs, "console-edit").is_some(), "{}", vs["metadata"]);

    let st = grayscale(&["status", "rc", "-n", n, "-o", "json"]).ok().json();
    assert_eq!((&st["drift"], &st["driftBy"]), (&json!(true), &json!("console-edit")), "{st}");
    let table = grayscale(&["status", "rc", "-n", n]).ok().stdout;
    assert!(
        table.contains(
            "drift: the VirtualService does not route what the task says (changed by console-edit)"
        ),
        "{table}"
    );
    let list = grayscale(&["list", "-n", n]).ok().stdout;
    let row = list.lines().find(|l| l.starts_with("rc ")).expect("row");
    assert!(row.contains("v1 70% v2 30% (drift: console-edit)"), "{list}");
    let j = grayscale(&["list", "-n", n, "-o", "json"]).ok().json();
    assert_eq!((&j["items"][0]["drift"], &j["items"][0]["driftBy"]), (&json!(true), &json!("console-edit")));

    // sync writes the task's routing again: the plugin wrote last, no drift.
    grayscale(&["sync", "rc", "-n", n]).ok();
    let st = grayscale(&["status", "rc", "-n", n, "-o", "json"]).ok().json();
    assert_eq!((&st["drift"], &st["driftBy"]), (&json!(false), &Value::Null), "{st}");
}

#[test]
fn without_as_the_cluster_is_asked_who_once_and_a_plane_that_cannot_tell_names_the_kubeconfig_user() {
    let ns = Namespace::new("ev-who");
    let n = ns.name.as_str();
    canary_task(n, "1", "20");
    let proxy = Proxy::start("admin");
    proxy.grayscale(&["status", "rc", "-n", n]).ok();
    assert!(proxy.seen("selfsubjectreviews").is_empty(), "a read asks nothing: {:?}", proxy.seen(""));
    proxy.grayscale(&["shift", "rc", "-n", n, "--weight", "30"]).ok();
    let asked = proxy.seen("selfsubjectreviews");
    assert_eq!(asked.len(), 1, "{:?}", proxy.seen(""));
    assert!(asked[0].starts_with("POST /apis/authentication.k8s.io/v1/selfsubjectreviews"), "{asked:?}");
    assert!(asked[0].contains("404"), "Kubernetes 1.20 serves none: {asked:?}");
    // The proxy's kubeconfig names its user admin.
    let last = journal(n).pop().unwrap();
    assert_eq!(last["by"], "admin");
    let e = events(n).pop().unwrap();
    assert_eq!(e["message"], "shift by admin: v1 80% v2 20% -> v1 70% v2 30%");
    // Under --as, nothing is asked.
    let audit = Audit::mark();
    proxy.grayscale(&tagged(&["takeover", "rc", "-n", n, "--version", "v1"], &audit)).ok();
    assert_eq!(proxy.seen("selfsubjectreviews").len(), 1, "{:?}", proxy.seen(""));
    assert_eq!(journal(n).pop().unwrap()["by"], json!(audit.id));
}

#[test]
fn a_failed_event_write_warns_once_and_the_change_still_happens() {
    let ns = Namespace::new("ev-fail");
    let n = ns.name.as_str();
    canary_task(n, "1", "20");
    let proxy = Proxy::start("admin");
    proxy.rules(json!([{"method": "POST", "path": "/events", "status": 403}]));
    // Two steps, each refused its Event.
    let r = proxy.grayscale(&["shift", "rc", "-n", n, "--to", "40", "--step", "10", "--interval", "1s"]).ok();
    let posts = proxy.seen("/events?");
    assert_eq!(posts.len(), 2, "{:?}", proxy.seen(""));
    assert!(posts.iter().all(|l| l.ends_with("-> answered 403")), "{posts:?}");
    let warned = r.stderr.matches("its Event could not be recorded").count();
    assert_eq!(warned, 1, "{}", r.stderr);
    let s = get(n, STRATEGY, "rc").unwrap();
    assert_eq!(s["spec"]["template"]["spec"]["http"][0]["route"][1]["weight"], 40);
    assert_eq!(reasons(&events(n)), ["Created"]);
}

#[test]
fn an_event_stored_although_its_answer_was_503_is_kept_once_without_a_warning() {
    let ns = Namespace::new("ev-503");
    let n = ns.name.as_str();
    canary_task(n, "1", "20");
    let proxy = Proxy::start("admin");
    proxy.rules(json!([{"method": "POST", "path": "/events", "after_status": 503, "times": 1}]));
    let r = proxy.grayscale(&["shift", "rc", "-n", n, "--weight", "30"]).ok();
    // The client retried the 503; the second attempt found the Event stored (its name is the
    // change's own).
    let posts = proxy.seen("/events?");
    assert_eq!(posts.len(), 2, "{:?}", proxy.seen(""));
    assert!(posts[0].ends_with("-> forwarded (201 Created), answered 503"), "{posts:?}");
    assert!(posts[1].ends_with("-> forwarded (409 Conflict)"), "{posts:?}");
    assert!(!r.stderr.contains("could not be recorded"), "{}", r.stderr);
    assert_eq!(reasons(&events(n)), ["Created", "TrafficShifted"]);
}
