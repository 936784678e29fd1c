//! KubeSphere 3.4's Strategy CRD, served by a plane of its own (`kubesphere_34_plane`): its
//! schema prunes `exact`, `prefix` and `regex` from request conditions (kubesphere#3845 back
//! again) and keeps the mirror percentage only as `mirror_percentage`. Ignored where build.rs
//! did not find the CRD in `../shared/peers/kubesphere-3.4/crds/`.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

fn task(ns: &PlaneNs) -> Value {
    ns.get("strategies.servicemesh.kubesphere.io", "rc").expect("task rc")
}

#[test]
#[cfg_attr(not(kubesphere_crds), ignore = "no KubeSphere 3.4 CRD in ../shared/peers/kubesphere-3.4/crds/")]
fn request_conditions_3_4_would_prune_are_refused_and_its_mirror_percentage_is_kept() {
    let ns = PlaneNs::new(kubesphere_34_plane(), "ks34");
    // A canary by URI prefix would be stored as "any URI": refused, nothing written.
    let r = ns.gs(&[
        "create",
        "canary",
        "rc",
        "--service",
        "reviews",
        "--version",
        "v2",
        "--uri-prefix",
        "/beta/",
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("kubesphere/kubesphere#3845") && r.stderr.contains("match[].uri.prefix"),
        "{}",
        r.stderr
    );
    assert!(ns.get("strategies.servicemesh.kubesphere.io", "rc").is_none());
    assert!(ns.get("deployment", "reviews-v2").is_none());

    // A canary by ratio is stored as written; a later cookie match is refused, the task unchanged.
    ns.gs(&["create", "canary", "rc", "--service", "reviews", "--version", "v2", "--weight", "10"]).ok();
    let before = task(&ns);
    let r = ns.gs(&["match", "rc", "--cookie", "beta=yes"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("match[].headers.cookie.exact"), "{}", r.stderr);
    assert_eq!(task(&ns)["metadata"]["resourceVersion"], before["metadata"]["resourceVersion"]);

    // The mirror percentage is written in the spelling 3.4 keeps, and routes as Istio's.
    ns.gs(&["mirror", "rc", "--on", "--percent", "20", "--timeout", "60s"]).ok();
    let http = &task(&ns)["spec"]["template"]["spec"]["http"][0];
    assert_eq!(http["mirror_percentage"], json!({"value": 20}), "{http}");
    assert!(http.get("mirrorPercentage").is_none(), "{http}");
    let start = std::time::Instant::now();
    loop {
        let vs = ns.get("virtualservice", "reviews").expect("the VirtualService");
        if vs["spec"]["http"][0]["mirrorPercentage"] == json!({"value": 20.0})
            || vs["spec"]["http"][0]["mirrorPercentage"] == json!({"value": 20})
        {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no mirror percentage routed: {vs}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // And is read back: the same change again changes nothing.
    let again = ns.gs(&["mirror", "rc", "--on", "--percent", "20"]).ok();
    assert!(again.stdout.contains("unchanged"), "{}", again.stdout);
}
