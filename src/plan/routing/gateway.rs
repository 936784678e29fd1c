//! The Gateway API backend of routing: the HTTPRoute (GAMMA: the Service is the route's parent)
//! and the per-version Services it routes to, derived from the same task as the VirtualService.
//!
//! HTTPRoute routes to Services, not subsets, so each version gets a Service
//! `<service>-<subset>` selecting the Service's pods of that version. The plugin's rules come
//! first, named `grayscale-<n>` where the served CRD keeps rule names (Gateway API v1.4+), and
//! counted in an annotation where it does not; every other rule and field of the route is the
//! user's and is kept as it is.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::{RoutingMode, is_http_like, task_routes_apply};
use crate::error::{Error, Result};
use crate::model::gateway::*;
use crate::model::istio::{self, StringMatch};
use crate::model::strategy::{API_VERSION, KIND, LABEL_VERSION, POLICY_PAUSED, Strategy, normalize_version};

/// How many of the route's first rules are the plugin's, for CRDs that prune rule names.
pub const ANN_RULES: &str = "grayscale.kubectl.io/rules";
/// On a route or per-version Service the plugin created: the task it was made for.
pub const LABEL_TASK: &str = "grayscale.kubectl.io/task";
const RULE_PREFIX: &str = "grayscale-";

/// Gateway API's own limits, which an API server without CRD validation rules does not enforce.
pub const MAX_RULES: usize = 16;
pub const MAX_MATCHES: usize = 64;
pub const MAX_BACKENDS: usize = 16;

/// What the served HTTPRoute CRD has, read from its schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Features {
    /// `rules[].name` (Standard since v1.4).
    pub rule_names: bool,
    /// RequestMirror `percent` and `fraction` (Standard since v1.3).
    pub mirror_percent: bool,
    pub mirror_fraction: bool,
}

impl Features {
    pub const ALL: Features = Features { rule_names: true, mirror_percent: true, mirror_fraction: true };

    /// From the served version's `openAPIV3Schema` of the HTTPRoute CRD.
    pub fn of_schema(schema: &serde_json::Value) -> Features {
        let rule = &schema["properties"]["spec"]["properties"]["rules"]["items"]["properties"];
        let mirror = &rule["filters"]["items"]["properties"]["requestMirror"]["properties"];
        Features {
            rule_names: rule.get("name").is_some(),
            mirror_percent: mirror.get("percent").is_some(),
            mirror_fraction: mirror.get("fraction").is_some(),
        }
    }
}

/// The per-version Service's name for a version.
pub fn version_service(svc: &str, version: &str) -> String {
    format!("{svc}-{}", normalize_version(version).to_ascii_lowercase())
}

/// The one port the route applies to: the Service's only HTTP port. A route on several ports
/// would need one parentRef per port, which the Standard CRD's validation rejects.
pub fn http_port(svc: &Service) -> Result<u32> {
    let ports = super::ports(svc);
    let http: Vec<_> = ports.iter().filter(|p| p.tcp_protocol && is_http_like(&p.name)).collect();
    let name = svc.metadata.name.as_deref().unwrap_or_default();
    match http.as_slice() {
        [p] => Ok(p.number),
        [] => Err(Error::Ineligible {
            what: format!("Service {name} has no HTTP port (a port named http, http2, grpc or http-*)"),
            hint: "Gateway API routing routes HTTP only: name the Service's HTTP port, or use --routing client".into(),
        }),
        many => Err(Error::Ineligible {
            what: format!(
                "Service {name} has {} HTTP ports ({}); Gateway API routing supports one per Service",
                many.len(),
                many.iter().map(|p| p.number.to_string()).collect::<Vec<_>>().join(", ")
            ),
            hint: "Gateway API's standard CRD allows one parentRef per Service; use --routing client for multi-port Services".into(),
        }),
    }
}

/// The per-version Service the plugin writes: the Service's ports, its selector plus the
/// version, owned by the task so that it goes when the task does.
pub fn per_version_service(svc: &Service, version: &str, task: &Strategy) -> Service {
    let name = svc.metadata.name.clone().unwrap_or_default();
    let spec = svc.spec.clone().unwrap_or_default();
    let mut selector = spec.selector.clone().unwrap_or_default();
    selector.insert(LABEL_VERSION.into(), version.into());
    let ports = spec.ports.unwrap_or_default().into_iter().map(|p| ServicePort {
        name: p.name,
        port: p.port,
        target_port: p.target_port,
        protocol: p.protocol,
        app_protocol: p.app_protocol,
        ..ServicePort::default()
    });
    let mut labels = svc.metadata.labels.clone().unwrap_or_default();
    labels.insert(LABEL_VERSION.into(), version.into());
    labels.insert(LABEL_TASK.into(), task.metadata.name.clone().unwrap_or_default());
    Service {
        metadata: ObjectMeta {
            name: Some(version_service(&name, version)),
            namespace: svc.metadata.namespace.clone(),
            labels: Some(labels),
            owner_references: task_owner(task).map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            selector: Some(selector),
            ports: Some(ports.collect()),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

fn task_owner(task: &Strategy) -> Option<OwnerReference> {
    Some(OwnerReference {
        api_version: API_VERSION.into(),
        kind: KIND.into(),
        name: task.metadata.name.clone()?,
        uid: task.metadata.uid.clone()?,
        ..OwnerReference::default()
    })
}

/// Whether a live Service of that name is the plugin's (else a user's own, reused as it is).
pub fn is_ours(svc: &Service) -> bool {
    svc.metadata.labels.as_ref().is_some_and(|l| l.contains_key(LABEL_TASK))
}

/// The routing for a Service and its task on Gateway API.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayPlan {
    pub service: String,
    pub mode: RoutingMode,
    /// The versions the route sends traffic (or a mirror) to, by subset name.
    pub subsets: Vec<String>,
    /// The per-version Services the route needs that are the plugin's to write (missing ones
    /// and the plugin's own); a user's own Service of that name is reused and not listed.
    pub services: Vec<Service>,
    pub route: HttpRoute,
}

/// What the derivation reads.
pub struct Inputs<'a> {
    pub svc: &'a Service,
    pub task: Option<&'a Strategy>,
    /// Versions with ready pods, principal first.
    pub ready: &'a [String],
    pub existing: Option<&'a HttpRoute>,
    /// The live Services of the namespace named like per-version Services.
    pub version_services: &'a [Service],
    pub features: Features,
}

pub fn plan(i: &Inputs<'_>) -> Result<GatewayPlan> {
    let svc_name = i.svc.metadata.name.clone().unwrap_or_default();
    let port = http_port(i.svc)?;
    let subsets: Vec<String> = {
        let mut out: Vec<String> = Vec::new();
        for v in i.ready {
            let s = normalize_version(v);
            if !out.contains(&s) {
                out.push(s);
            }
        }
        out
    };
    let (rules, mode) = match i.task {
        Some(s) if task_routes_apply(s, &subsets, super::Flavor::Client) => {
            (task_rules(s, &svc_name, port, &i.features)?, RoutingMode::Task)
        }
        t => match subsets.first() {
            Some(first) => {
                let paused = t.is_some_and(|s| s.policy() == POLICY_PAUSED);
                let mode = if paused { RoutingMode::Paused } else { RoutingMode::Default };
                (vec![single(&svc_name, first, port)], mode)
            }
            None => (Vec::new(), RoutingMode::Empty),
        },
    };
    let used = referenced(&rules, &svc_name);
    let services = match i.task {
        Some(task) => versions_of(task, i.ready)
            .into_iter()
            .filter(|(sub, _)| used.contains(&sub.to_ascii_lowercase()))
            .filter_map(|(_, v)| {
                let want = per_version_service(i.svc, &v, task);
                let name = want.metadata.name.clone();
                match i.version_services.iter().find(|s| s.metadata.name == name) {
                    Some(live) if !is_ours(live) => None,
                    _ => Some(want),
                }
            })
            .collect(),
        None => Vec::new(),
    };
    let route = with_rules(i.svc, i.task, i.existing, rules, port, &i.features)?;
    Ok(GatewayPlan { service: svc_name, mode, subsets: used, services, route })
}

/// Each version the task names with its subset: the template's subsets, mapped back to the
/// version label values of ready pods (or the task's own versions).
fn versions_of(task: &Strategy, ready: &[String]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let own = [task.spec.principal.clone(), task.new_version()];
    for v in ready.iter().cloned().chain(own.into_iter().flatten()) {
        let sub = normalize_version(&v);
        if !out.iter().any(|(s, _)| *s == sub) {
            out.push((sub, v));
        }
    }
    out
}

fn backend(svc: &str, subset: &str, port: u32, weight: Option<i32>) -> BackendRef {
    BackendRef {
        group: Some(String::new()),
        kind: Some("Service".into()),
        name: version_service(svc, subset),
        port: Some(port),
        weight,
        extra: Default::default(),
    }
}

fn single(svc: &str, subset: &str, port: u32) -> Rule {
    Rule {
        matches: vec![any()],
        backend_refs: vec![backend(svc, subset, port, Some(100))],
        ..Rule::default()
    }
}

/// Every request: what the API server defaults an omitted match (or path) to, written out so
/// that the live route reads back as written.
fn any() -> RouteMatch {
    RouteMatch { path: Some(root()), ..RouteMatch::default() }
}

fn root() -> PathMatch {
    PathMatch { kind: "PathPrefix".into(), value: "/".into() }
}

/// Whether a match takes every request.
pub fn matches_all(m: &RouteMatch) -> bool {
    m.headers.is_empty() && m.path.as_ref().is_none_or(|p| *p == root()) && m.extra.is_empty()
}

/// The subsets a set of rules sends traffic or a mirror to.
fn referenced(rules: &[Rule], svc: &str) -> Vec<String> {
    let prefix = format!("{svc}-");
    let mut out: Vec<String> = Vec::new();
    let names = rules.iter().flat_map(|r| {
        r.backend_refs
            .iter()
            .map(|b| &b.name)
            .chain(r.filters.iter().filter_map(|f| f.request_mirror.as_ref().map(|m| &m.backend_ref.name)))
    });
    for n in names {
        if let Some(sub) = n.strip_prefix(&prefix)
            && !out.iter().any(|o| o == sub)
        {
            out.push(sub.to_string());
        }
    }
    out
}

/// The task's rules: the governor alone, else each template route in the console's order.
fn task_rules(s: &Strategy, svc: &str, port: u32, f: &Features) -> Result<Vec<Rule>> {
    if let Some(gov) = s.governor() {
        return Ok(vec![single(svc, &normalize_version(gov), port)]);
    }
    let t = &s.spec.template.spec;
    let mut rules = Vec::new();
    for h in &t.http {
        let mut matches = h.matches.iter().map(route_match).collect::<Result<Vec<_>>>()?;
        if matches.iter().all(matches_all) {
            matches = vec![any()];
        }
        if matches.len() > MAX_MATCHES {
            return Err(too_many("matches in one rule", matches.len(), MAX_MATCHES));
        }
        let backend_refs: Vec<BackendRef> = h
            .route
            .iter()
            .filter_map(|r| {
                let sub = normalize_version(r.destination.subset.as_deref()?);
                Some(backend(svc, &sub, port, Some(r.weight.unwrap_or(100))))
            })
            .collect();
        if backend_refs.len() > MAX_BACKENDS {
            return Err(too_many("backends in one rule", backend_refs.len(), MAX_BACKENDS));
        }
        if let Some(b) = backend_refs.iter().find(|b| !(0..=1_000_000).contains(&b.weight.unwrap_or(1))) {
            return Err(Error::invalid(
                "weight",
                format!("{} is out of Gateway API's range 0-1000000", b.weight.unwrap_or(1)),
            ));
        }
        if backend_refs.iter().all(|b| b.weight == Some(0)) {
            // Istio answers 500 for a rule whose backends all weigh 0.
            return Err(Error::invalid("weight", "every backend of a route would weigh 0"));
        }
        let mut filters = Vec::new();
        if let Some(m) = h.mirror.as_ref().and_then(|m| m.subset.as_deref()) {
            let (percent, fraction) = mirror_share(h.mirror_percentage.as_ref().map(|p| p.value), f)?;
            filters.push(Filter {
                kind: "RequestMirror".into(),
                request_mirror: Some(RequestMirror {
                    backend_ref: backend(svc, &normalize_version(m), port, None),
                    percent,
                    fraction,
                }),
                extra: Default::default(),
            });
        }
        rules.push(Rule { matches, filters, backend_refs, ..Rule::default() });
    }
    Ok(rules)
}

/// A mirror's share: `percent` when it is whole, else a `fraction` in ten-thousandths; neither
/// for 100% (Gateway API's default).
fn mirror_share(pct: Option<f64>, f: &Features) -> Result<(Option<u32>, Option<Fraction>)> {
    let Some(p) = pct.filter(|p| *p < 100.0) else { return Ok((None, None)) };
    if !(0.0..=100.0).contains(&p) {
        return Err(Error::invalid("mirror percentage", format!("{p} is not between 0 and 100")));
    }
    let whole = p.fract() == 0.0;
    if whole && f.mirror_percent {
        return Ok((Some(p as u32), None));
    }
    if f.mirror_fraction {
        return Ok((
            None,
            Some(Fraction { numerator: (p * 100.0).round() as u32, denominator: Some(10_000) }),
        ));
    }
    Err(Error::Ineligible {
        what: format!(
            "a {p}% mirror needs RequestMirror {} in the cluster's HTTPRoute CRD, which it does not serve",
            if whole { "percent" } else { "fraction" }
        ),
        hint:
            "install Gateway API v1.3 or later (percentage mirroring is Standard since v1.3), or mirror 100%"
                .into(),
    })
}

fn too_many(what: &str, n: usize, max: usize) -> Error {
    Error::invalid("routing", format!("{n} {what}: Gateway API allows at most {max}"))
}

/// Escapes a literal for RE2 (Istio's regex engine).
fn regex_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn header(name: &str, m: &StringMatch) -> HeaderMatch {
    let (kind, value) = match m {
        StringMatch { exact: Some(v), .. } => ("Exact", v.clone()),
        StringMatch { regex: Some(v), .. } => ("RegularExpression", v.clone()),
        // Gateway API has no prefix match for headers.
        StringMatch { prefix: Some(v), .. } => ("RegularExpression", format!("^{}.*", regex_literal(v))),
        _ => ("RegularExpression", ".*".into()),
    };
    HeaderMatch { kind: kind.into(), name: name.into(), value }
}

fn route_match(m: &istio::HttpMatch) -> Result<RouteMatch> {
    if let Some(k) = m.extra.keys().next() {
        return Err(Error::Ineligible {
            what: format!("the task matches requests on `{k}`, which Gateway API routing does not translate"),
            hint: "use --routing client for this task".into(),
        });
    }
    let path = Some(match m.uri.as_ref() {
        Some(StringMatch { exact: Some(v), .. }) => PathMatch { kind: "Exact".into(), value: v.clone() },
        Some(StringMatch { prefix: Some(v), .. }) => {
            PathMatch { kind: "PathPrefix".into(), value: v.clone() }
        }
        Some(StringMatch { regex: Some(v), .. }) => {
            PathMatch { kind: "RegularExpression".into(), value: v.clone() }
        }
        _ => root(),
    });
    let headers = m.headers.iter().map(|(k, v)| header(k, v)).collect();
    Ok(RouteMatch { path, headers, extra: Default::default() })
}

/// Whether a live rule is the plugin's: by name, or among the first `n` the annotation counts.
fn own_rules(existing: Option<&HttpRoute>) -> Vec<bool> {
    let Some(r) = existing else { return Vec::new() };
    let counted: usize = r
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANN_RULES))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    r.spec
        .rules
        .iter()
        .enumerate()
        .map(|(i, rule)| rule.name.as_deref().is_some_and(|n| n.starts_with(RULE_PREFIX)) || i < counted)
        .collect()
}

/// The user's rules of a live route (every rule that is not the plugin's).
pub fn user_rules(existing: Option<&HttpRoute>) -> Vec<Rule> {
    let own = own_rules(existing);
    existing
        .map(|r| r.spec.rules.iter().zip(own).filter(|(_, o)| !o).map(|(r, _)| r.clone()).collect())
        .unwrap_or_default()
}

/// The route: the live one (or a new one) with the plugin's rules replaced by `rules`, first.
fn with_rules(
    svc: &Service,
    task: Option<&Strategy>,
    existing: Option<&HttpRoute>,
    mut rules: Vec<Rule>,
    port: u32,
    f: &Features,
) -> Result<HttpRoute> {
    let name = svc.metadata.name.clone().unwrap_or_default();
    let own = rules.len();
    if f.rule_names {
        for (i, r) in rules.iter_mut().enumerate() {
            r.name = Some(format!("{RULE_PREFIX}{i}"));
        }
    }
    rules.extend(user_rules(existing));
    if rules.len() > MAX_RULES {
        return Err(too_many("rules in the HTTPRoute", rules.len(), MAX_RULES));
    }
    let mut route = match existing {
        Some(live) => route_object(kept_meta(&live.metadata), live.spec.clone()),
        None => route_object(
            ObjectMeta {
                name: Some(name.clone()),
                namespace: svc.metadata.namespace.clone(),
                labels: task
                    .and_then(|t| t.metadata.name.clone())
                    .map(|t| BTreeMap::from([(LABEL_TASK.to_string(), t)])),
                ..ObjectMeta::default()
            },
            HttpRouteSpec {
                parent_refs: vec![ParentRef {
                    group: Some(String::new()),
                    kind: Some("Service".into()),
                    name: name.clone(),
                    port: Some(port),
                    ..ParentRef::default()
                }],
                ..HttpRouteSpec::default()
            },
        ),
    };
    route.spec.rules = rules;
    let ann = route.metadata.annotations.get_or_insert_with(BTreeMap::new);
    ann.insert(ANN_RULES.into(), own.to_string());
    Ok(route)
}

/// An HTTPRoute to write: what server-side apply takes (no status, no managed fields).
fn route_object(metadata: ObjectMeta, spec: HttpRouteSpec) -> HttpRoute {
    HttpRoute {
        api_version: Some(format!("{GATEWAY_GROUP}/{GATEWAY_VERSION}")),
        kind: Some("HTTPRoute".into()),
        metadata,
        spec,
        status: None,
    }
}

/// The live route's identity and marks, kept on a rewrite.
fn kept_meta(live: &ObjectMeta) -> ObjectMeta {
    ObjectMeta {
        name: live.name.clone(),
        namespace: live.namespace.clone(),
        labels: live.labels.clone(),
        annotations: live.annotations.clone(),
        ..ObjectMeta::default()
    }
}

/// Whether writing `want` would change the live route (its spec or the plugin's annotation).
pub fn route_differs(live: Option<&HttpRoute>, want: &HttpRoute) -> bool {
    live.is_none_or(|l| {
        l.spec != want.spec
            || l.metadata.annotations.as_ref().and_then(|a| a.get(ANN_RULES))
                != want.metadata.annotations.as_ref().and_then(|a| a.get(ANN_RULES))
    })
}

/// Whether the live route's rules of the plugin's route differently from what the task
/// derives (names and the user's rules aside).
pub fn drifted(live: Option<&HttpRoute>, want: &HttpRoute) -> bool {
    let own = |r: &HttpRoute| -> Vec<Rule> {
        r.spec
            .rules
            .iter()
            .zip(own_rules(Some(r)))
            .filter(|(_, o)| *o)
            .map(|(r, _)| Rule { name: None, extra: Default::default(), ..r.clone() })
            .collect()
    };
    live.is_none_or(|l| own(l) != own(want))
}

/// Whether a live per-version Service differs from the plugin's (selector or ports).
pub fn service_differs(live: Option<&Service>, want: &Service) -> bool {
    let key = |s: &Service| {
        let spec = s.spec.clone().unwrap_or_default();
        let ports: Vec<_> =
            spec.ports.unwrap_or_default().into_iter().map(|p| (p.name, p.port, p.target_port)).collect();
        (spec.selector, ports)
    };
    live.is_none_or(|l| key(l) != key(want))
}

/// The route without the plugin's rules (the task is gone): None when nothing is left of it
/// and the plugin made it, so it is deleted; else the user's rules alone.
pub fn without_task(existing: &HttpRoute) -> Option<HttpRoute> {
    let rules = user_rules(Some(existing));
    let made = existing.metadata.labels.as_ref().is_some_and(|l| l.contains_key(LABEL_TASK));
    if rules.is_empty() && made {
        return None;
    }
    // Guarded: a route someone changed since it was read is not overwritten.
    let meta = ObjectMeta {
        resource_version: existing.metadata.resource_version.clone(),
        ..kept_meta(&existing.metadata)
    };
    let mut r = route_object(meta, existing.spec.clone());
    r.spec.rules = rules;
    r.metadata.annotations.get_or_insert_with(BTreeMap::new).insert(ANN_RULES.into(), "0".into());
    Some(r)
}

/// Where the route's unconditional rule sends traffic, as `(subset, weight)`, and its mirror.
pub fn split(route: &HttpRoute, svc: &str) -> (Vec<(String, i32)>, Option<String>) {
    let prefix = format!("{svc}-");
    let sub = |n: &str| n.strip_prefix(&prefix).unwrap_or(n).to_string();
    let Some(rule) = route.spec.rules.iter().find(|r| r.matches.iter().all(matches_all)) else {
        return (Vec::new(), None);
    };
    let one = rule.backend_refs.len() == 1;
    let weights = rule
        .backend_refs
        .iter()
        .map(|b| (sub(&b.name), b.weight.unwrap_or(if one { 100 } else { 1 })))
        .collect();
    let mirror =
        rule.filters.iter().find_map(|f| f.request_mirror.as_ref()).map(|m| sub(&m.backend_ref.name));
    (weights, mirror)
}

/// A rule of the plugin's that still sends traffic (or a mirror) to `version`, described.
pub fn routes_to(route: &HttpRoute, svc: &str, version: &str) -> Option<String> {
    let target = version_service(svc, version);
    let own = own_rules(Some(route));
    for (r, _) in route.spec.rules.iter().zip(own).filter(|(_, o)| *o) {
        if let Some(b) = r.backend_refs.iter().find(|b| b.name == target && b.weight.unwrap_or(1) > 0) {
            return Some(format!("a rule at weight {}", b.weight.unwrap_or(1)));
        }
        if r.filters.iter().filter_map(|f| f.request_mirror.as_ref()).any(|m| m.backend_ref.name == target) {
            return Some("a mirror".into());
        }
    }
    None
}

/// In ambient mode, HTTPRoute rules apply only where a waypoint serves the Service (its
/// `istio.io/use-waypoint` label, or its namespace's; `none` opts out): ztunnel routes L4 only.
pub fn waypoint_warning(ambient: bool, use_waypoint: Option<&str>) -> Option<String> {
    match (ambient, use_waypoint) {
        (true, None | Some("none")) => Some(
            "the namespace is in Istio's ambient mode and no waypoint serves this Service (label istio.io/use-waypoint on the Service or its namespace): HTTPRoute rules, and so the task's weights and matches, do not apply until one does".into(),
        ),
        _ => None,
    }
}

/// Why the mesh does not route as written, from the route's `status.parents` for the Service.
pub fn not_accepted(route: &HttpRoute, svc: &str) -> Vec<String> {
    let Some(st) = &route.status else { return Vec::new() };
    let mut out = Vec::new();
    for p in st.parents.iter().filter(|p| p.parent_ref.name == svc) {
        for c in &p.conditions {
            let stale = c.observed_generation.zip(route.metadata.generation).is_some_and(|(o, g)| o < g);
            match c.kind.as_str() {
                "Accepted" | "ResolvedRefs" if c.status != "True" && !stale => {
                    out.push(format!("{} is {} ({}): {}", c.kind, c.status, c.reason, c.message))
                }
                // Istio always writes this one True; only its message says a waypoint is missing.
                "ResolvedWaypoints" if c.message.contains("missing") || c.message.contains("not found") => {
                    out.push(format!("{}: {}", c.kind, c.message))
                }
                _ => {}
            }
        }
    }
    out
}

#[cfg(test)]
#[path = "gateway_tests.rs"]
mod tests;
