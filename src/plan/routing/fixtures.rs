//! Builders for routing tests: Services by port list, tasks by type, and a one-line rendering
//! of a VirtualService that expected values are written in.

use k8s_openapi::api::core::v1::Service;
use serde_json::json;

use crate::model::istio::VirtualServiceSpec;
use crate::model::strategy::Strategy;

pub fn svc(ports: &[(&str, u32)]) -> Service {
    let ports: Vec<_> = ports
        .iter()
        .map(|(n, p)| json!({"name": n, "port": p, "protocol": "TCP", "targetPort": p}))
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": "reviews", "namespace": "demo",
            "labels": {"app": "reviews", "app.kubernetes.io/name": "bookinfo", "app.kubernetes.io/version": "v1"}},
        "spec": {"selector": {"app": "reviews"}, "ports": ports}
    }))
    .unwrap()
}

fn dest(subset: &str, w: i64) -> serde_json::Value {
    json!({"destination": {"host": "reviews", "subset": subset}, "weight": w})
}

/// The task kinds the console writes, by their template.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Ratio,
    Match,
    BlueGreen,
    Mirror,
    TcpRatio,
}

pub fn task(kind: Kind, governor: Option<&str>, policy: &str, principal: &str) -> Strategy {
    let (ty, http, tcp) = match kind {
        Kind::Ratio => ("Canary", json!([{"route": [dest(principal, 80), dest("v2", 20)]}]), json!([])),
        Kind::Match => (
            "Canary",
            json!([{"match": [{"headers": {"x-beta": {"exact": "1"}}}], "route": [dest("v2", 100)]},
                   {"route": [dest(principal, 100)]}]),
            json!([]),
        ),
        Kind::BlueGreen => {
            ("Bluegreen", json!([{"route": [dest(principal, 100), dest("v2", 0)]}]), json!([]))
        }
        Kind::Mirror => (
            "Mirror",
            json!([{"route": [dest(principal, 100)], "mirror": {"host": "reviews", "subset": "v2"}}]),
            json!([]),
        ),
        Kind::TcpRatio => {
            ("Canary", json!([]), json!([{"match": [], "route": [dest(principal, 70), dest("v2", 30)]}]))
        }
    };
    serde_json::from_value(json!({
        "metadata": {"name": "t", "namespace": "demo", "resourceVersion": "42", "labels": {"app": "reviews"}},
        "spec": {"type": ty, "principal": principal, "governor": governor.unwrap_or(""), "strategyPolicy": policy,
            "template": {"spec": {"hosts": ["reviews"], "http": http, "tcp": tcp}}}
    }))
    .unwrap()
}

/// `h80[x-beta]:v2=100 | t82:v1=100 ...`: per route, its kind, port, request conditions,
/// destinations with their port when it differs, and the mirror.
pub fn render(spec: &VirtualServiceSpec) -> String {
    let mut out = Vec::new();
    let dests = |route: &[crate::model::istio::RouteDestination], port: Option<u32>| {
        route
            .iter()
            .map(|r| {
                let p = r.destination.port.as_ref().map(|p| p.number);
                let at = if p != port {
                    format!("@{}", p.map_or("-".into(), |p| p.to_string()))
                } else {
                    String::new()
                };
                format!("{}={}{at}", r.destination.subset.as_deref().unwrap_or("?"), r.weight.unwrap_or(-1))
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    for h in &spec.http {
        let port = h.matches.iter().find_map(|m| m.port);
        let mut cond: Vec<String> = h.matches.iter().flat_map(|m| m.headers.keys().cloned()).collect();
        cond.extend(h.matches.iter().filter_map(|m| m.uri.as_ref()).map(|_| "uri".to_string()));
        let cond = if cond.is_empty() { String::new() } else { format!("[{}]", cond.join("+")) };
        let name = h.name.as_ref().map(|n| format!("({n})")).unwrap_or_default();
        let mirror = h
            .mirror
            .as_ref()
            .map(|m| format!(" ~{}", m.subset.as_deref().unwrap_or("?")))
            .unwrap_or_default();
        out.push(format!(
            "h{}{name}{cond}:{}{mirror}",
            port.map_or("*".into(), |p| p.to_string()),
            dests(&h.route, port)
        ));
    }
    for t in &spec.tcp {
        let port = t.matches.iter().find_map(|m| m.port);
        out.push(format!("t{}:{}", port.map_or("*".into(), |p| p.to_string()), dests(&t.route, port)));
    }
    out.join(" | ")
}
