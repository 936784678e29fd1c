//! The Gateway API derivation, case by case: each task kind to its rules, the per-version
//! Services, the user's rules and fields kept, the CRD's features and Gateway API's limits.

use serde_json::json;

use super::super::fixtures::{Kind, svc, task};
use super::*;
use crate::model::strategy::{POLICY_IMMEDIATELY, POLICY_WAIT};

const HTTP: &[(&str, u32)] = &[("http", 9080)];

fn ready(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn with_uid(mut s: Strategy) -> Strategy {
    s.metadata.uid = Some("uid-1".into());
    s
}

fn plan_for(s: Option<&Strategy>, r: &[&str], existing: Option<&HttpRoute>, f: Features) -> GatewayPlan {
    let service = svc(HTTP);
    let ready = ready(r);
    plan(&Inputs { svc: &service, task: s, ready: &ready, existing, version_services: &[], features: f })
        .unwrap()
}

/// `[matches]->backend=weight,... ~mirror(share)` per rule, `|` between rules.
fn render(route: &HttpRoute) -> String {
    route
        .spec
        .rules
        .iter()
        .map(|r| {
            let m: Vec<String> = r
                .matches
                .iter()
                .filter(|m| !matches_all(m))
                .map(|m| {
                    let mut parts: Vec<String> =
                        m.headers.iter().map(|h| format!("{}:{}={}", h.kind, h.name, h.value)).collect();
                    if let Some(p) = m.path.as_ref().filter(|p| **p != root()) {
                        parts.push(format!("path {}={}", p.kind, p.value));
                    }
                    parts.join("&")
                })
                .collect();
            let cond = if m.is_empty() { String::new() } else { format!("[{}]", m.join(" or ")) };
            let b: Vec<String> = r
                .backend_refs
                .iter()
                .map(|b| format!("{}@{}={}", b.name, b.port.unwrap_or(0), b.weight.unwrap_or(-1)))
                .collect();
            let mirror = r
                .filters
                .iter()
                .filter_map(|f| f.request_mirror.as_ref())
                .map(|m| {
                    let share = match (&m.percent, &m.fraction) {
                        (Some(p), _) => format!("{p}%"),
                        (_, Some(f)) => format!("{}/{}", f.numerator, f.denominator.unwrap_or(100)),
                        _ => "all".into(),
                    };
                    format!(" ~{}({share})", m.backend_ref.name)
                })
                .collect::<String>();
            let name = r.name.as_ref().map(|n| format!("{n}:")).unwrap_or_default();
            format!("{name}{cond}{}{mirror}", b.join(","))
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

#[test]
fn each_task_kind_to_its_rules() {
    let cases: &[(Kind, Option<&str>, &str)] = &[
        (Kind::Ratio, None, "grayscale-0:reviews-v1@9080=80,reviews-v2@9080=20"),
        (
            Kind::Match,
            None,
            "grayscale-0:[Exact:x-beta=1]reviews-v2@9080=100 | grayscale-1:reviews-v1@9080=100",
        ),
        (Kind::BlueGreen, None, "grayscale-0:reviews-v1@9080=100,reviews-v2@9080=0"),
        (Kind::Mirror, None, "grayscale-0:reviews-v1@9080=100 ~reviews-v2(all)"),
        // A take-over: one backend, whatever the template says.
        (Kind::Ratio, Some("v2"), "grayscale-0:reviews-v2@9080=100"),
        (Kind::Mirror, Some("v1"), "grayscale-0:reviews-v1@9080=100"),
    ];
    for (kind, gov, want) in cases {
        let s = with_uid(task(*kind, *gov, POLICY_IMMEDIATELY, "v1"));
        let p = plan_for(Some(&s), &["v1", "v2"], None, Features::ALL);
        assert_eq!(render(&p.route), *want, "{kind:?} governor {gov:?}");
        assert_eq!(p.mode, RoutingMode::Task);
    }
}

#[test]
fn request_parameters_map_to_header_and_path_matches() {
    let mut s = with_uid(task(Kind::Match, None, POLICY_IMMEDIATELY, "v1"));
    s.spec.template.spec.http[0].matches = serde_json::from_value(json!([
        {"headers": {"Cookie": {"regex": "^(.*?;)?(user=test)(;.*)?$"}}},
        {"headers": {"User-Agent": {"regex": ".*Android.*"}}},
        {"headers": {"x-tier": {"prefix": "gold."}}},
        {"uri": {"exact": "/api"}},
        {"uri": {"prefix": "/beta"}},
        {"uri": {"regex": "/v[0-9]+/.*"}}
    ]))
    .unwrap();
    let p = plan_for(Some(&s), &["v1", "v2"], None, Features::ALL);
    assert_eq!(
        render(&p.route),
        "grayscale-0:[RegularExpression:Cookie=^(.*?;)?(user=test)(;.*)?$ or RegularExpression:User-Agent=.*Android.* \
         or RegularExpression:x-tier=^gold\\..* or path Exact=/api or path PathPrefix=/beta \
         or path RegularExpression=/v[0-9]+/.*]reviews-v2@9080=100 | grayscale-1:reviews-v1@9080=100"
    );
}

#[test]
fn mirror_share_is_percent_when_whole_else_fraction_and_refused_where_not_served() {
    let mut s = with_uid(task(Kind::Mirror, None, POLICY_IMMEDIATELY, "v1"));
    let cases: &[(f64, Features, Option<&str>)] = &[
        (20.0, Features::ALL, Some("~reviews-v2(20%)")),
        (12.5, Features::ALL, Some("~reviews-v2(1250/10000)")),
        (100.0, Features::ALL, Some("~reviews-v2(all)")),
        (20.0, Features { mirror_percent: false, ..Features::ALL }, Some("~reviews-v2(2000/10000)")),
        (20.0, Features { mirror_percent: false, mirror_fraction: false, rule_names: true }, None),
        (
            100.0,
            Features { mirror_percent: false, mirror_fraction: false, rule_names: true },
            Some("~reviews-v2(all)"),
        ),
    ];
    for (pct, f, want) in cases {
        s.spec.template.spec.http[0].mirror_percentage = Some(crate::model::istio::Percent { value: *pct });
        let service = svc(HTTP);
        let r = ready(&["v1", "v2"]);
        let got = plan(&Inputs {
            svc: &service,
            task: Some(&s),
            ready: &r,
            existing: None,
            version_services: &[],
            features: *f,
        });
        match want {
            Some(w) => assert!(render(&got.unwrap().route).ends_with(w), "{pct} {f:?}"),
            None => {
                let e = got.unwrap_err().to_string();
                assert!(e.contains("does not serve"), "{e}");
            }
        }
    }
}

#[test]
fn waiting_and_paused_tasks_route_to_the_principal_and_no_ready_version_routes_nothing() {
    let s = with_uid(task(Kind::Ratio, None, POLICY_WAIT, "v1"));
    let p = plan_for(Some(&s), &["v1"], None, Features::ALL);
    assert_eq!(
        (p.mode, render(&p.route).as_str()),
        (RoutingMode::Default, "grayscale-0:reviews-v1@9080=100")
    );
    let s = with_uid(task(Kind::Ratio, None, crate::model::strategy::POLICY_PAUSED, "v1"));
    let p = plan_for(Some(&s), &["v1", "v2"], None, Features::ALL);
    assert_eq!((p.mode, render(&p.route).as_str()), (RoutingMode::Paused, "grayscale-0:reviews-v1@9080=100"));
    let p = plan_for(Some(&s), &[], None, Features::ALL);
    assert_eq!((p.mode, render(&p.route).as_str()), (RoutingMode::Empty, ""));
}

#[test]
fn per_version_services_select_the_version_owned_by_the_task() {
    let s = with_uid(task(Kind::Ratio, None, POLICY_IMMEDIATELY, "v1"));
    let p = plan_for(Some(&s), &["v1", "v2"], None, Features::ALL);
    let got: Vec<_> = p
        .services
        .iter()
        .map(|s| {
            let spec = s.spec.as_ref().unwrap();
            (
                s.metadata.name.clone().unwrap(),
                spec.selector.clone().unwrap(),
                spec.ports.as_ref().unwrap()[0].port,
                s.metadata.owner_references.as_ref().unwrap()[0].uid.clone(),
            )
        })
        .collect();
    let sel = |v: &str| {
        std::collections::BTreeMap::from([
            ("app".to_string(), "reviews".to_string()),
            ("version".into(), v.into()),
        ])
    };
    assert_eq!(
        got,
        vec![
            ("reviews-v1".into(), sel("v1"), 9080, "uid-1".into()),
            ("reviews-v2".into(), sel("v2"), 9080, "uid-1".into())
        ]
    );
    // A take-over needs only the governor's Service.
    let s = with_uid(task(Kind::Ratio, Some("v2"), POLICY_IMMEDIATELY, "v1"));
    let p = plan_for(Some(&s), &["v1", "v2"], None, Features::ALL);
    assert_eq!(
        p.services.iter().map(|s| s.metadata.name.clone().unwrap()).collect::<Vec<_>>(),
        ["reviews-v2"]
    );
}

#[test]
fn a_users_own_per_version_service_is_reused_not_written() {
    let s = with_uid(task(Kind::Ratio, None, POLICY_IMMEDIATELY, "v1"));
    let mine: Service = serde_json::from_value(json!({"metadata": {"name": "reviews-v1"}})).unwrap();
    let service = svc(HTTP);
    let r = ready(&["v1", "v2"]);
    let p = plan(&Inputs {
        svc: &service,
        task: Some(&s),
        ready: &r,
        existing: None,
        version_services: std::slice::from_ref(&mine),
        features: Features::ALL,
    })
    .unwrap();
    assert_eq!(
        p.services.iter().map(|s| s.metadata.name.clone().unwrap()).collect::<Vec<_>>(),
        ["reviews-v2"]
    );
    assert!(!is_ours(&mine) && is_ours(&p.services[0]));
}

fn live_route(rules: serde_json::Value, ann: Option<&str>) -> HttpRoute {
    let mut r: HttpRoute = serde_json::from_value(json!({
        "metadata": {"name": "reviews", "namespace": "demo", "resourceVersion": "7"},
        "spec": {"parentRefs": [{"group": "", "kind": "Service", "name": "reviews"}],
                 "hostnames": ["kept.example"], "rules": rules}
    }))
    .unwrap();
    if let Some(n) = ann {
        r.metadata.annotations = Some([(ANN_RULES.to_string(), n.to_string())].into());
    }
    r
}

#[test]
fn the_users_rules_and_fields_are_kept_behind_the_plugins() {
    let user = json!({"name": "legacy", "matches": [{"path": {"type": "PathPrefix", "value": "/old"}}],
                      "backendRefs": [{"name": "legacy", "port": 80}], "timeouts": {"request": "5s"}});
    let live = live_route(
        json!([{"name": "grayscale-0", "backendRefs": [{"name": "reviews-v1", "port": 9080}]}, user]),
        Some("1"),
    );
    let s = with_uid(task(Kind::Ratio, None, POLICY_IMMEDIATELY, "v1"));
    let p = plan_for(Some(&s), &["v1", "v2"], Some(&live), Features::ALL);
    assert_eq!(
        render(&p.route),
        "grayscale-0:reviews-v1@9080=80,reviews-v2@9080=20 | legacy:[path PathPrefix=/old]legacy@80=-1"
    );
    assert_eq!(p.route.spec.rules[1].extra["timeouts"], json!({"request": "5s"}));
    assert_eq!(p.route.spec.extra["hostnames"], json!(["kept.example"]));
    assert_eq!(p.route.spec.parent_refs, live.spec.parent_refs);
    // The task gone: the user's rule alone; a route the plugin made with nothing left goes.
    let left = without_task(&p.route).unwrap();
    assert_eq!(render(&left), "legacy:[path PathPrefix=/old]legacy@80=-1");
    let made = plan_for(Some(&s), &["v1", "v2"], None, Features::ALL).route;
    assert_eq!(without_task(&made), None);
    // Written back with server-side apply: no managedFields, guarded by the version read.
    let mut read = live.clone();
    read.metadata.managed_fields = Some(vec![Default::default()]);
    let back = without_task(&read).unwrap();
    assert!(back.metadata.managed_fields.is_none());
    assert_eq!(back.metadata.resource_version.as_deref(), Some("7"));
}

#[test]
fn without_rule_names_the_plugins_rules_are_counted_in_an_annotation() {
    let f = Features { rule_names: false, ..Features::ALL };
    let live = live_route(
        json!([{"backendRefs": [{"name": "reviews-v1", "port": 9080}]},
               {"backendRefs": [{"name": "reviews-v2", "port": 9080}]},
               {"backendRefs": [{"name": "mine", "port": 80}]}]),
        Some("2"),
    );
    let s = with_uid(task(Kind::Ratio, Some("v2"), POLICY_IMMEDIATELY, "v1"));
    let p = plan_for(Some(&s), &["v1", "v2"], Some(&live), f);
    assert_eq!(render(&p.route), "reviews-v2@9080=100 | mine@80=-1");
    assert_eq!(p.route.metadata.annotations.as_ref().unwrap()[ANN_RULES], "1");
}

#[test]
fn gateway_api_limits_are_checked_by_the_plugin() {
    let mut s = with_uid(task(Kind::Match, None, POLICY_IMMEDIATELY, "v1"));
    s.spec.template.spec.http[0].matches = (0..65)
        .map(|i| crate::model::istio::HttpMatch {
            uri: Some(StringMatch::exact(format!("/{i}"))),
            ..Default::default()
        })
        .collect();
    let service = svc(HTTP);
    let r = ready(&["v1", "v2"]);
    let inputs = |s| Inputs {
        svc: &service,
        task: Some(s),
        ready: &r,
        existing: None,
        version_services: &[],
        features: Features::ALL,
    };
    assert!(plan(&inputs(&s)).unwrap_err().to_string().contains("at most 64"));
    let many: Vec<serde_json::Value> =
        (0..16).map(|i| json!({"backendRefs": [{"name": format!("u{i}"), "port": 80}]})).collect();
    let live = live_route(json!(many), None);
    let s = with_uid(task(Kind::Ratio, None, POLICY_IMMEDIATELY, "v1"));
    let got = plan(&Inputs { existing: Some(&live), ..inputs(&s) });
    assert!(got.unwrap_err().to_string().contains("at most 16"));
}

#[test]
fn only_services_with_one_http_port_route_on_gateway_api() {
    assert_eq!(http_port(&svc(&[("http", 80), ("mysql", 3306)])).unwrap(), 80);
    assert!(
        http_port(&svc(&[("http", 80), ("http-admin", 81)]))
            .unwrap_err()
            .to_string()
            .contains("2 HTTP ports")
    );
    assert!(http_port(&svc(&[("mysql", 3306)])).unwrap_err().to_string().contains("no HTTP port"));
}

#[test]
fn features_come_from_the_served_schema() {
    let schema = |rule: serde_json::Value, mirror: serde_json::Value| {
        json!({"properties": {"spec": {"properties": {"rules": {"items": {"properties": {
            "name": rule, "filters": {"items": {"properties": {"requestMirror": {"properties": mirror}}}}}}}}}}})
    };
    let all = schema(json!({"type": "string"}), json!({"percent": {}, "fraction": {}, "backendRef": {}}));
    assert_eq!(Features::of_schema(&all), Features::ALL);
    let mut old = schema(json!(null), json!({"backendRef": {}}));
    old["properties"]["spec"]["properties"]["rules"]["items"]["properties"]
        .as_object_mut()
        .unwrap()
        .remove("name");
    assert_eq!(
        Features::of_schema(&old),
        Features { rule_names: false, mirror_percent: false, mirror_fraction: false }
    );
}

#[test]
fn status_conditions_explain_a_route_the_mesh_did_not_take() {
    let mut r = live_route(json!([]), None);
    r.metadata.generation = Some(3);
    r.status = serde_json::from_value(json!({"parents": [{
        "parentRef": {"group": "", "kind": "Service", "name": "reviews"},
        "controllerName": "istio.io/gateway-controller",
        "conditions": [
            {"type": "Accepted", "status": "True", "reason": "Accepted", "message": "Route was valid", "observedGeneration": 3},
            {"type": "ResolvedRefs", "status": "False", "reason": "BackendNotFound",
             "message": "backend(reviews-v3.demo.svc.cluster.local) not found", "observedGeneration": 3},
            {"type": "ResolvedWaypoints", "status": "True", "reason": "ResolvedWaypoints",
             "message": "istio.io/use-waypoint label missing from parent and parent namespace; in ambient mode, route will not be respected"}
        ]}]}))
    .unwrap();
    let got = not_accepted(&r, "reviews");
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got[0].contains("BackendNotFound") && got[1].contains("ambient"));
    // A condition about an older generation says nothing about this one.
    r.metadata.generation = Some(4);
    assert_eq!(not_accepted(&r, "reviews").len(), 1);
}

#[test]
fn every_rule_writes_out_what_the_api_server_would_default() {
    // An omitted match (or path) is defaulted to PathPrefix `/` by the CRD: written out, the
    // live route reads back as written and no verb rewrites it for nothing.
    for kind in [Kind::Ratio, Kind::Match, Kind::BlueGreen, Kind::Mirror] {
        let s = with_uid(task(kind, None, POLICY_IMMEDIATELY, "v1"));
        let p = plan_for(Some(&s), &["v1", "v2"], None, Features::ALL);
        for r in &p.route.spec.rules {
            assert!(!r.matches.is_empty(), "{kind:?} {r:?}");
            assert!(r.matches.iter().all(|m| m.path.is_some()), "{kind:?}");
        }
    }
}

#[test]
fn split_reads_the_unconditional_rule() {
    let s = with_uid(task(Kind::Mirror, None, POLICY_IMMEDIATELY, "v1"));
    let p = plan_for(Some(&s), &["v1", "v2"], None, Features::ALL);
    assert_eq!(split(&p.route, "reviews"), (vec![("v1".into(), 100)], Some("v2".into())));
    assert!(!route_differs(Some(&p.route), &p.route));
}
