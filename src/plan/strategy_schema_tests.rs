use serde_json::{Value, json};

use super::*;
use crate::model::istio::{HttpMatch, Percent, RouteDestination};
use crate::task::matching::{ClientOs, MatchRule};

/// A Strategy CRD with `http` items as given: the path down to them as both KubeSphere CRDs
/// declare it.
fn crd(http_items: Value) -> Value {
    json!({"spec": {"versions": [{"name": "v1alpha2", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": {"template": {"type": "object", "properties": {
            "spec": {"type": "object", "properties": {"http": {"type": "array", "items": http_items}}}}}}}}}}}]}})
}

/// KubeSphere 3.3's http items, cut down to what the plugin writes: StringMatch declares its
/// three fields (the oneOf does not prune), Istio's camelCase mirrorPercentage.
fn ks33() -> StrategySchema {
    let string_match = json!({"type": "object",
        "oneOf": [{"not": {"anyOf": [{"required": ["exact"]}, {"required": ["prefix"]}, {"required": ["regex"]}]}},
            {"required": ["exact"]}, {"required": ["prefix"]}, {"required": ["regex"]}],
        "properties": {"exact": {"type": "string", "format": "string"}, "prefix": {"type": "string", "format": "string"},
            "regex": {"type": "string", "format": "string"}}});
    StrategySchema::of_crd(&crd(json!({"type": "object", "properties": {
        "match": {"type": "array", "items": {"type": "object", "properties": {
            "uri": string_match,
            "headers": {"type": "object", "additionalProperties": string_match},
            "port": {"type": "integer"}}}},
        "route": {"type": "array", "items": {"type": "object"}},
        "mirror": {"type": "object", "properties": {"host": {"type": "string"}, "subset": {"type": "string"}}},
        "mirrorPercentage": {"type": "object", "properties": {"value": {"type": "number", "format": "double"}}},
        "mirror_percent": {"type": "integer"}}})))
}

/// KubeSphere 3.4's http items, cut down likewise: StringMatch is a bare object (generated from
/// Istio's Go oneof), the mirror percentage is spelt in snake case.
fn ks34() -> StrategySchema {
    StrategySchema::of_crd(&crd(json!({"type": "object", "properties": {
        "match": {"type": "array", "items": {"type": "object", "properties": {
            "uri": {"type": "object", "description": "URI to match"},
            "headers": {"type": "object", "additionalProperties": {"type": "object"}},
            "ignore_uri_case": {"type": "boolean"},
            "port": {"type": "integer"}}}},
        "route": {"type": "array", "items": {"type": "object"}},
        "mirror": {"type": "object", "properties": {"host": {"type": "string"}, "subset": {"type": "string"}}},
        "mirror_percentage": {"type": "object", "properties": {"value": {"type": "number"}}},
        "mirror_percent": {"type": "integer"}}})))
}

fn matching(rule: MatchRule) -> Vec<HttpRoute> {
    vec![
        HttpRoute {
            matches: vec![rule.to_http_match()],
            route: vec![RouteDestination::to("reviews", "v2", 100)],
            ..HttpRoute::default()
        },
        HttpRoute { route: vec![RouteDestination::to("reviews", "v1", 100)], ..HttpRoute::default() },
    ]
}

fn every_condition() -> MatchRule {
    MatchRule {
        headers: vec![
            ("x-canary".into(), StringMatch::exact("true")),
            ("x-beta".into(), StringMatch::prefix("1")),
        ],
        cookie: Some(StringMatch::regex("^(.*?;)?(user=jason)(;.*)?$")),
        uri: Some(StringMatch::prefix("/beta/")),
        os: vec![ClientOs::Android],
    }
}

fn mirrored(percent: Option<f64>) -> Vec<HttpRoute> {
    vec![HttpRoute {
        route: vec![RouteDestination::to("reviews", "v1", 100)],
        mirror: Some(crate::model::istio::Destination {
            host: "reviews".into(),
            subset: Some("v2".into()),
            port: None,
        }),
        mirror_percentage: percent.map(|value| Percent { value }),
        ..HttpRoute::default()
    }]
}

#[test]
fn kubesphere_33_keeps_every_request_condition() {
    assert_eq!(ks33().pruned(&matching(every_condition())), Vec::<String>::new());
}

#[test]
fn kubesphere_34_drops_uri_and_header_conditions_each_named_once() {
    assert_eq!(
        ks34().pruned(&matching(every_condition())),
        [
            "match[].uri.prefix",
            "match[].headers.User-Agent.regex",
            "match[].headers.cookie.regex",
            "match[].headers.x-beta.prefix",
            "match[].headers.x-canary.exact",
        ]
    );
    let uri_exact = MatchRule { uri: Some(StringMatch::exact("/v2")), ..MatchRule::default() };
    assert_eq!(ks34().pruned(&matching(uri_exact)), ["match[].uri.exact"]);
    // A ratio canary has nothing to lose.
    assert!(ks34().pruned(&mirrored(None)).is_empty());
}

#[test]
fn the_mirror_percentage_is_spelt_as_the_schema_keeps_it() {
    assert_eq!(ks33().mirror_key(), Some(MirrorKey::Camel));
    assert_eq!(ks34().mirror_key(), Some(MirrorKey::Snake));
    assert!(ks34().pruned(&mirrored(Some(10.0))).is_empty());
    let neither =
        StrategySchema::of_crd(&crd(json!({"type": "object", "properties": {"mirror": {"type": "object"}}})));
    assert_eq!(neither.mirror_key(), None);
    assert_eq!(neither.pruned(&mirrored(Some(10.0))), ["mirrorPercentage"]);
    assert!(neither.pruned(&mirrored(None)).is_empty());
}

#[test]
fn preserved_unknown_fields_and_missing_schemas_keep_everything() {
    let preserving = StrategySchema::of_crd(&crd(json!({"type": "object", "properties": {
        "match": {"type": "array", "items": {"type": "object", "properties": {
            "uri": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "headers": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}})));
    assert!(preserving.pruned(&matching(every_condition())).is_empty());
    let whole =
        StrategySchema::of_crd(&crd(json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})));
    assert!(whole.pruned(&matching(every_condition())).is_empty());
    assert_eq!(whole.mirror_key(), Some(MirrorKey::Camel));
    for keeps in [
        StrategySchema::keeps_all(),
        StrategySchema::of_crd(&json!({"spec": {"versions": [{"name": "v1alpha2"}]}})),
    ] {
        assert!(keeps.pruned(&matching(every_condition())).is_empty());
    }
    let legacy = json!({"spec": {"preserveUnknownFields": true, "versions": [{"name": "v1alpha2"}]}});
    assert_eq!(StrategySchema::of_crd(&legacy), StrategySchema::keeps_all());
}

#[test]
fn the_projects_own_crd_keeps_every_condition_and_istios_spelling() {
    let own = serde_json::to_value(crate::commands::init::strategy_crd()).unwrap();
    let s = StrategySchema::of_crd(&own);
    assert!(s.pruned(&matching(every_condition())).is_empty());
    assert_eq!(s.mirror_key(), Some(MirrorKey::Camel));
}

#[test]
fn the_schema_is_asked_only_when_conditions_change_or_a_percentage_is_written() {
    let canary = matching(every_condition());
    let ratio = mirrored(None);
    assert!(needs_schema(&ratio, &canary), "a new match");
    assert!(!needs_schema(&canary, &canary), "stored conditions survived the schema already");
    let other = MatchRule { uri: Some(StringMatch::prefix("/gamma/")), ..MatchRule::default() };
    assert!(needs_schema(&canary, &matching(other)));
    assert!(!needs_schema(&canary, &ratio), "back to a ratio");
    assert!(!needs_schema(&[], &ratio), "a ratio or plain mirror");
    assert!(needs_schema(&ratio, &mirrored(Some(5.0))));
    // Port-only matches (a governor's routes) are no request conditions.
    let port_only = vec![HttpRoute {
        matches: vec![HttpMatch { port: Some(9080), ..HttpMatch::default() }],
        ..HttpRoute::default()
    }];
    assert!(!needs_schema(&[], &port_only));
}

#[test]
fn a_patch_is_respelt_both_ways() {
    let mut patch = json!({"spec": {"governor": "", "template": {"spec": {"http": [
        {"route": [], "mirrorPercentage": {"value": 10.0}}, {"route": []}]}}}});
    spell_mirror_percentage(&mut patch, MirrorKey::Snake);
    assert_eq!(
        patch["spec"]["template"]["spec"]["http"][0],
        json!({"route": [], "mirror_percentage": {"value": 10.0}})
    );
    spell_mirror_percentage(&mut patch, MirrorKey::Camel);
    assert_eq!(
        patch["spec"]["template"]["spec"]["http"][0],
        json!({"route": [], "mirrorPercentage": {"value": 10.0}})
    );
    let mut tcp = json!({"spec": {"template": {"spec": {"tcp": [{"route": []}]}}}});
    let before = tcp.clone();
    spell_mirror_percentage(&mut tcp, MirrorKey::Snake);
    assert_eq!(tcp, before);
}

#[test]
fn a_stored_snake_case_percentage_reads_as_istios() {
    let h: HttpRoute =
        serde_json::from_value(json!({"route": [], "mirror_percentage": {"value": 20}})).unwrap();
    assert_eq!(h.mirror_percentage, Some(Percent { value: 20.0 }));
    assert!(h.extra.is_empty(), "{:?}", h.extra);
}

#[test]
fn the_refusal_cites_the_upstream_issue_and_the_fix_and_exits_as_refused_input() {
    let e = refusal("rc", &["match[].uri.prefix".into()]);
    assert_eq!(e.exit_code(), 2);
    let text = e.to_string();
    for want in
        ["kubesphere/kubesphere#3845", "PR #3848", "match[].uri.prefix", "nothing was written", "task rc"]
    {
        assert!(text.contains(want), "{want}: {text}");
    }
    assert!(e.hint().unwrap().contains("under match[].uri"), "{:?}", e.hint());
}

/// KubeSphere's own CRD files, where the team keeps them beside the repository.
fn shared(var: Option<&str>) -> StrategySchema {
    let path = var.expect("build.rs found the CRD");
    let text = std::fs::read_to_string(path).unwrap();
    let crd: Value = serde_yaml_ng::from_str(&text).unwrap();
    StrategySchema::of_crd(&crd)
}

#[test]
#[cfg_attr(not(kubesphere_crds), ignore = "no KubeSphere CRDs in ../shared/peers/kubesphere-3.{3,4}/crds/")]
fn the_shared_kubesphere_crds_behave_as_the_fixtures() {
    let ks33_file = shared(option_env!("GRAYSCALE_KUBESPHERE_33_STRATEGY_CRD"));
    let ks34_file = shared(option_env!("GRAYSCALE_KUBESPHERE_34_STRATEGY_CRD"));
    let canary = matching(every_condition());
    assert_eq!(ks33_file.pruned(&canary), ks33().pruned(&canary));
    assert_eq!(ks34_file.pruned(&canary), ks34().pruned(&canary));
    assert_eq!(ks33_file.mirror_key(), Some(MirrorKey::Camel));
    assert_eq!(ks34_file.mirror_key(), Some(MirrorKey::Snake));
}
