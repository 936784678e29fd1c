//! Who else owns the route: another progressive-delivery controller's route is refused (exit 13,
//! nothing written) unless forced; a GitOps tool's gets one warning pointing at `gitops`;
//! KubeSphere 4.x's is routed through the Strategy only. Each owner is marked as that project
//! marks it, on the live objects.

mod common;

use common::*;
use serde_json::{Value, json};

fn vs(ns: &str) -> Value {
    get(ns, "virtualservice", "reviews").expect("virtualservice")
}

fn weights(ns: &str) -> Value {
    get(ns, "strategies.servicemesh.kubesphere.io", "rc").unwrap()["spec"]["template"]["spec"]["http"][0]["route"]
        .clone()
}

/// A CRD that keeps any field, for another project's kind, installed once and waited for.
fn crd(group: &str, kind: &str, plural: &str) {
    let yaml = format!(
        r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: {plural}.{group}}}
spec:
  group: {group}
  scope: Namespaced
  names: {{kind: {kind}, plural: {plural}, singular: {singular}}}
  versions:
  - name: v1alpha1
    served: true
    storage: true
    schema: {{openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}}}
"#,
        singular = kind.to_lowercase()
    );
    kubectl_stdin(&["apply", "-f", "-"], &yaml).ok();
    kubectl(&[
        "wait",
        "--for",
        "condition=established",
        "--timeout",
        "60s",
        &format!("crd/{plural}.{group}"),
    ])
    .ok();
}

/// Runs `args` tagged for the audit log; asserts the refusal (exit 13, the owner and the
/// evidence named) and that nothing was written while the command's reads were seen.
fn refused(ns: &str, args: &[&str], owner: &str, evidence: &str) {
    let audit = Audit::mark();
    let mut full = args.to_vec();
    full.extend(["-n", ns]);
    full.extend(audit.tag());
    let r = grayscale(&full);
    assert_eq!(r.code, 13, "{args:?}: {}", r.stderr);
    assert!(r.stderr.contains(owner), "{args:?}: {}", r.stderr);
    assert!(r.stderr.contains(evidence), "{args:?}: {}", r.stderr);
    assert!(r.stderr.contains("--force"), "{args:?}: {}", r.stderr);
    let reqs = audit.requests();
    assert!(reqs.iter().any(|e| e.short() == "get virtualservices"), "the command read the route: {reqs:#?}");
    assert!(reqs.iter().all(|e| !e.mutating()), "{args:?} wrote: {reqs:#?}");
}

#[test]
fn create_refuses_a_virtual_service_argo_rollouts_writes() {
    let ns = Namespace::new("own-rollouts");
    let n = ns.name.as_str();
    bookinfo(n);
    let route = r#"apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 100
"#;
    kubectl_stdin(
        &["apply", "-n", n, "--server-side", "--field-manager", "rollouts-controller", "-f", "-"],
        route,
    )
    .ok();
    let create = [
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
    ];
    refused(n, &create, "Argo Rollouts", "field manager rollouts-controller");
    assert!(get(n, "strategies.servicemesh.kubesphere.io", "rc").is_none());
    assert!(get(n, "deployment", "reviews-v2").is_none());
    let mut forced = create.to_vec();
    forced.extend(["-n", n, "--force"]);
    let r = grayscale(&forced).ok();
    assert!(r.stderr.contains("--force: VirtualService reviews is owned by Argo Rollouts"), "{}", r.stderr);
    assert!(r.stderr.contains("put its own routing back"), "{}", r.stderr);
    assert!(get(n, "strategies.servicemesh.kubesphere.io", "rc").is_some());
}

#[test]
fn a_rollout_that_names_the_virtual_service_is_its_owner() {
    crd("argoproj.io", "Rollout", "rollouts");
    let ns = Namespace::new("own-rollout-spec");
    let n = ns.name.as_str();
    canary_task(n, "1", "20");
    let rollout = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "reviews-rollout"},
        "spec": {"strategy": {"canary": {"trafficRouting": {"istio": {"virtualService": {"name": "reviews"}}}}}}});
    kubectl_stdin(&["apply", "-n", n, "-f", "-"], &rollout.to_string()).ok();
    let before = vs(n)["spec"].clone();
    refused(n, &["takeover", "rc", "--version", "v1"], "Argo Rollouts", "Rollout reviews-rollout routes it");
    assert_eq!(vs(n)["spec"], before);
}

#[test]
fn a_flagger_canary_and_a_kruise_rollout_own_their_routes_until_forced() {
    crd("flagger.app", "Canary", "canaries");
    let ns = Namespace::new("own-flagger");
    let n = ns.name.as_str();
    canary_task(n, "1", "20");
    let canary = json!({"apiVersion": "flagger.app/v1alpha1", "kind": "Canary", "metadata": {"name": "reviews"}, "spec": {}});
    kubectl_stdin(&["apply", "-n", n, "-f", "-"], &canary.to_string()).ok();
    let uid =
        get(n, "canaries.flagger.app", "reviews").unwrap()["metadata"]["uid"].as_str().unwrap().to_string();
    let owner = json!({"metadata": {"ownerReferences": [{"apiVersion": "flagger.app/v1alpha1", "kind": "Canary",
        "name": "reviews", "uid": uid, "controller": true}]}});
    kubectl(&["patch", "virtualservice", "reviews", "-n", n, "--type", "merge", "-p", &owner.to_string()])
        .ok();
    let before = weights(n);
    refused(n, &["shift", "rc", "--weight", "40"], "Flagger", "ownerReference to Canary reviews");
    assert_eq!(weights(n), before);
    let clear = json!({"metadata": {"ownerReferences": null, "annotations": {"rollouts.kruise.io/original-spec-configuration": "{}"}}});
    kubectl(&["patch", "virtualservice", "reviews", "-n", n, "--type", "merge", "-p", &clear.to_string()])
        .ok();
    refused(
        n,
        &["shift", "rc", "--weight", "40"],
        "OpenKruise Rollouts",
        "rollouts.kruise.io/original-spec-configuration",
    );
    let r = grayscale(&["shift", "rc", "-n", n, "--weight", "40", "--force"]).ok();
    assert!(
        r.stderr.contains("--force: VirtualService reviews is owned by OpenKruise Rollouts"),
        "{}",
        r.stderr
    );
    assert_eq!(weights(n)[1]["weight"], 40);
    assert_eq!(vs(n)["spec"]["http"][0]["route"][1]["weight"], 40);
}

#[test]
fn kubesphere_4_routes_through_the_strategy_and_client_routing_is_refused() {
    let ns = Namespace::new("own-ks4");
    let n = ns.name.as_str();
    canary_task(n, "1", "20");
    kubectl(&[
        "label",
        "virtualservice",
        "reviews",
        "-n",
        n,
        "servicemesh.kubesphere.io/controlled-by-strategy=rc",
    ])
    .ok();
    refused(
        n,
        &["shift", "rc", "--weight", "40", "--routing", "client"],
        "KubeSphere 4.x",
        "controlled-by-strategy: rc",
    );
    // auto: KubeSphere routes; the plugin writes the Strategy only, never the VirtualService.
    let before = vs(n)["spec"].clone();
    let audit = Audit::mark();
    let mut args = vec!["shift", "rc", "-n", n, "--weight", "40"];
    args.extend(audit.tag());
    let r = grayscale(&args).ok();
    assert!(r.stderr.contains("KubeSphere's controllers apply the routing"), "{}", r.stderr);
    let writes: Vec<String> = audit.requests().iter().filter(|e| e.mutating()).map(|e| e.short()).collect();
    assert_eq!(writes, ["patch strategies", "create events"], "the task and its record, never the route");
    assert_eq!(weights(n)[1]["weight"], 40);
    assert_eq!(vs(n)["spec"], before);
}

#[test]
fn a_gitops_route_is_changed_with_one_warning_that_points_at_gitops() {
    let ns = Namespace::new("own-argocd");
    let n = ns.name.as_str();
    canary_task(n, "1", "20");
    let id = format!("shop:networking.istio.io/VirtualService:{n}/reviews");
    kubectl(&[
        "annotate",
        "virtualservice",
        "reviews",
        "-n",
        n,
        &format!("argocd.argoproj.io/tracking-id={id}"),
    ])
    .ok();
    let r = grayscale(&["shift", "rc", "-n", n, "--weight", "40"]).ok();
    let warnings: Vec<&str> = r.stderr.lines().filter(|l| l.contains("managed by Argo CD")).collect();
    assert_eq!(warnings.len(), 1, "{}", r.stderr);
    assert!(warnings[0].contains("kubectl grayscale gitops rc --tool argocd"), "{}", r.stderr);
    assert_eq!(vs(n)["spec"]["http"][0]["route"][1]["weight"], 40);
    assert_eq!(
        vs(n)["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"],
        id.as_str(),
        "the tool's mark kept"
    );
}
