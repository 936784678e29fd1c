//! A ServicePolicy labelled for the app carries the DestinationRule's traffic policies, as
//! KubeSphere's DestinationRule controller applies them.

use serde_json::json;

use super::fixtures::svc;
use super::*;
use crate::model::service_policy::ServicePolicy;

fn policy(name: &str, spec: serde_json::Value) -> ServicePolicy {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "reviews"}},
        "spec": {"template": {"spec": spec}}
    }))
    .unwrap()
}

fn dr() -> DestinationRule {
    destination_rule(&svc(&[("http", 80)]), &["v1".to_string(), "v2".to_string()])
}

#[test]
fn the_service_policy_of_the_services_app_label_is_the_one_read() {
    assert_eq!(service_policy_selector(&svc(&[("http", 80)])).as_deref(), Some("app=reviews"));
    let mut unlabelled = svc(&[("http", 80)]);
    unlabelled.metadata.labels = None;
    assert_eq!(service_policy_selector(&unlabelled), None);
}

#[test]
fn a_service_policy_gives_the_destination_rule_and_its_subsets_their_traffic_policy() {
    let lb = json!({"loadBalancer": {"simple": "ROUND_ROBIN"}});
    let pool = json!({"connectionPool": {"tcp": {"maxConnections": 10}}});
    let sp = policy(
        "reviews",
        json!({"host": "reviews", "trafficPolicy": lb,
            "subsets": [{"name": "v2", "labels": {"version": "v2"}, "trafficPolicy": pool},
                        {"name": "v9", "labels": {"version": "v9"}, "trafficPolicy": pool}]}),
    );
    let mut got = dr();
    apply_service_policy(&mut got, &[sp]).unwrap();
    let mut want = dr();
    want.spec.traffic_policy = Some(lb);
    want.spec.subsets[1].traffic_policy = Some(pool);
    assert_eq!(got, want, "a subset the DestinationRule lacks (v9) is not added");
}

#[test]
fn a_service_policy_without_a_traffic_policy_leaves_the_live_one() {
    let live_policy = json!({"tls": {"mode": "ISTIO_MUTUAL"}});
    let mut live = dr();
    live.spec.traffic_policy = Some(live_policy.clone());
    let mut got = dr();
    keep_policies(&mut got, Some(&live));
    apply_service_policy(&mut got, &[policy("reviews", json!({"host": "reviews"}))]).unwrap();
    assert_eq!(got.spec.traffic_policy, Some(live_policy));
}

#[test]
fn a_service_policy_wins_over_the_live_destination_rules_policy() {
    let mut live = dr();
    live.spec.traffic_policy = Some(json!({"tls": {"mode": "DISABLE"}}));
    let mut got = dr();
    keep_policies(&mut got, Some(&live));
    let lb = json!({"loadBalancer": {"simple": "LEAST_REQUEST"}});
    apply_service_policy(&mut got, &[policy("reviews", json!({"trafficPolicy": lb}))]).unwrap();
    assert_eq!(got.spec.traffic_policy, Some(lb));
}

#[test]
fn no_service_policy_changes_nothing_and_two_are_refused() {
    let mut got = dr();
    apply_service_policy(&mut got, &[]).unwrap();
    assert_eq!(got, dr());
    let two = [policy("a", json!({})), policy("b", json!({}))];
    let err = apply_service_policy(&mut got, &two).unwrap_err();
    assert!(err.to_string().contains("a, b"), "{err}");
    assert_eq!(got, dr(), "nothing applied");
}
