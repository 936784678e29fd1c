//! Client-side routing: the DestinationRule and VirtualService that KubeSphere's controllers
//! derive from a Service and its task (kubesphere-compat section 8), for clusters where no
//! KubeSphere controller runs. Pure: every input is passed in.
//!
//! Deliberate differences from the controllers, each fixing a reported or inferred bug:
//! destination subsets are normalised like subset names (a principal `v1.0` still routes), and
//! a governor sends every port to its own port (kubesphere#4490).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::model::istio::*;
use crate::model::strategy::{LABEL_VERSION, POLICY_PAUSED, POLICY_WAIT, Strategy, normalize_version};

/// One Service port as routing sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Port {
    pub number: u32,
    pub name: String,
    pub tcp_protocol: bool,
}

pub fn ports(svc: &Service) -> Vec<Port> {
    svc.spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .into_iter()
        .flatten()
        .map(|p| Port {
            number: p.port as u32,
            name: p.name.clone().unwrap_or_default(),
            tcp_protocol: p.protocol.as_deref().unwrap_or("TCP") == "TCP",
        })
        .collect()
}

/// Ports named `http`, `http2`, `grpc` or starting with those and `-` carry HTTP routes.
pub fn is_http_like(port_name: &str) -> bool {
    let n = port_name.to_ascii_lowercase();
    ["http", "http2", "grpc"].iter().any(|p| n == *p || n.starts_with(&format!("{p}-")))
}

fn svc_meta(svc: &Service, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: svc.metadata.namespace.clone(),
        labels: svc.metadata.labels.clone(),
        ..ObjectMeta::default()
    }
}

/// One subset per version that has ready pods, named as KubeSphere names them.
pub fn destination_rule(svc: &Service, ready_versions: &[String]) -> DestinationRule {
    let name = svc.metadata.name.clone().unwrap_or_default();
    let mut subsets: Vec<Subset> = Vec::new();
    for v in ready_versions {
        let sub = normalize_version(v);
        if !subsets.iter().any(|s| s.name == sub) {
            subsets.push(Subset {
                name: sub,
                labels: BTreeMap::from([(LABEL_VERSION.to_string(), v.clone())]),
                traffic_policy: None,
            });
        }
    }
    DestinationRule {
        api_version: Some(format!("{ISTIO_GROUP}/{ISTIO_VERSION}")),
        kind: Some("DestinationRule".into()),
        metadata: svc_meta(svc, name.clone()),
        spec: DestinationRuleSpec { host: name, subsets, traffic_policy: None, extra: Default::default() },
    }
}

/// Every subset the task's template sends traffic to, normalised.
pub fn template_subsets(s: &Strategy) -> Vec<String> {
    let t = &s.spec.template.spec;
    let mut out: Vec<String> = Vec::new();
    let dests = t
        .http
        .iter()
        .flat_map(|h| h.route.iter().map(|r| &r.destination).chain(h.mirror.iter()))
        .chain(t.tcp.iter().flat_map(|r| r.route.iter().map(|r| &r.destination)));
    for d in dests {
        if let Some(sub) = &d.subset {
            let n = normalize_version(sub);
            if !out.contains(&n) {
                out.push(n);
            }
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoutingMode {
    /// No subset to route to yet.
    Empty,
    /// The Service's default route (no task, paused, or waiting for a subset).
    Default,
    /// Generated from the task.
    Task,
}

/// The VirtualService KubeSphere's controller would write. `subsets` are the DestinationRule's
/// subset names, in order; `existing` keeps fields users added to named routes.
pub fn virtual_service(
    svc: &Service,
    app_label: &str,
    strategy: Option<&Strategy>,
    subsets: &[String],
    existing: Option<&VirtualService>,
) -> (VirtualService, RoutingMode) {
    let svc_name = svc.metadata.name.clone().unwrap_or_default();
    let ports = ports(svc);
    let generate = match strategy {
        None => false,
        Some(s) => match s.policy() {
            POLICY_PAUSED => false,
            POLICY_WAIT => template_subsets(s).iter().all(|t| subsets.contains(t)),
            _ => true,
        },
    };
    let (mut spec, mode) = match strategy {
        Some(s) if generate => (generated(s, &svc_name, &ports), RoutingMode::Task),
        _ => match subsets.first() {
            Some(first) => (default_spec(&svc_name, &ports, first), RoutingMode::Default),
            None => (VirtualServiceSpec::default(), RoutingMode::Empty),
        },
    };
    if let Some(old) = existing {
        keep_user_fields(&mut spec, &old.spec);
    }
    let vs = VirtualService {
        api_version: Some(format!("{ISTIO_GROUP}/{ISTIO_VERSION}")),
        kind: Some("VirtualService".into()),
        metadata: svc_meta(svc, app_label.to_string()),
        spec,
    };
    (vs, mode)
}

fn port_sel(n: u32) -> Option<PortSelector> {
    Some(PortSelector { number: n })
}

fn to_subset(host: &str, subset: &str, port: u32, weight: i32) -> RouteDestination {
    RouteDestination {
        destination: Destination { host: host.into(), subset: Some(subset.into()), port: port_sel(port) },
        weight: Some(weight),
        extra: Default::default(),
    }
}

/// Step 9: each TCP-protocol port to the first subset.
fn default_spec(svc: &str, ports: &[Port], subset: &str) -> VirtualServiceSpec {
    let mut spec = VirtualServiceSpec { hosts: vec![svc.into()], ..VirtualServiceSpec::default() };
    for p in ports.iter().filter(|p| p.tcp_protocol) {
        let route = vec![to_subset(svc, subset, p.number, 100)];
        if is_http_like(&p.name) {
            spec.http.push(HttpRoute { matches: vec![port_match(p.number)], route, ..HttpRoute::default() });
        } else {
            spec.tcp.push(TcpRoute {
                matches: vec![L4Match { port: Some(p.number), ..L4Match::default() }],
                route,
                ..TcpRoute::default()
            });
        }
    }
    spec
}

fn port_match(port: u32) -> HttpMatch {
    HttpMatch { port: Some(port), ..HttpMatch::default() }
}

fn normalise_dest(d: &mut Destination, port: Option<u32>) {
    if let Some(s) = d.subset.as_mut() {
        *s = normalize_version(s);
    }
    if let Some(p) = port {
        d.port = port_sel(p);
    }
}

/// Step 8.
fn generated(s: &Strategy, svc: &str, ports: &[Port]) -> VirtualServiceSpec {
    let t = &s.spec.template.spec;
    let hosts = if t.hosts.is_empty() { vec![svc.to_string()] } else { t.hosts.clone() };
    let mut spec = VirtualServiceSpec { hosts, tls: t.tls.clone(), ..VirtualServiceSpec::default() };
    if let Some(gov) = s.governor() {
        let gov = normalize_version(gov);
        for p in ports {
            let route = vec![to_subset(svc, &gov, p.number, 100)];
            if is_http_like(&p.name) {
                spec.http.push(HttpRoute {
                    matches: vec![port_match(p.number)],
                    route,
                    ..HttpRoute::default()
                });
            } else {
                spec.tcp.push(TcpRoute {
                    matches: vec![L4Match { port: Some(p.number), ..L4Match::default() }],
                    route,
                    ..TcpRoute::default()
                });
            }
        }
        return spec;
    }
    for p in ports {
        if is_http_like(&p.name) {
            for item in &t.http {
                let mut h = item.clone();
                if h.matches.is_empty() {
                    h.matches.push(port_match(p.number));
                } else {
                    h.matches.iter_mut().for_each(|m| m.port = Some(p.number));
                }
                h.route.iter_mut().for_each(|r| normalise_dest(&mut r.destination, Some(p.number)));
                if let Some(m) = h.mirror.as_mut() {
                    normalise_dest(m, None);
                }
                spec.http.push(h);
            }
        } else {
            for item in &t.tcp {
                let mut r = item.clone();
                if r.matches.is_empty() {
                    r.matches.push(L4Match { port: Some(p.number), ..L4Match::default() });
                } else {
                    r.matches.iter_mut().for_each(|m| m.port = Some(p.number));
                }
                r.route.iter_mut().for_each(|d| normalise_dest(&mut d.destination, Some(p.number)));
                spec.tcp.push(r);
            }
        }
    }
    if let Some(first) = ports.first() {
        for h in &mut spec.http {
            for r in &mut h.route {
                r.destination.port.get_or_insert(PortSelector { number: first.number });
            }
            if let Some(m) = h.mirror.as_mut() {
                m.port.get_or_insert(PortSelector { number: first.number });
            }
        }
        for t in &mut spec.tcp {
            for r in &mut t.route {
                r.destination.port.get_or_insert(PortSelector { number: first.number });
            }
        }
    }
    spec
}

/// Step 10: a route whose name matches an existing one keeps the existing route's other fields
/// (timeouts, retries...) and takes only `match` and `route` (and the mirror) from the task.
fn keep_user_fields(spec: &mut VirtualServiceSpec, old: &VirtualServiceSpec) {
    for h in &mut spec.http {
        let Some(name) = h.name.clone() else { continue };
        if let Some(prev) = old.http.iter().find(|o| o.name.as_deref() == Some(name.as_str())) {
            let mut merged = prev.clone();
            merged.matches = std::mem::take(&mut h.matches);
            merged.route = std::mem::take(&mut h.route);
            if h.mirror.is_some() {
                merged.mirror = h.mirror.take();
                merged.mirror_percentage = h.mirror_percentage.take();
            }
            *h = merged;
        }
    }
    for (k, v) in &old.extra {
        spec.extra.entry(k.clone()).or_insert_with(|| v.clone());
    }
}

/// Where each port's traffic goes, for display: `(port, [(subset, weight)], mirror)`.
pub type PortSplit = (u32, Vec<(String, i32)>, Option<String>);

pub fn split_by_port(vs: &VirtualServiceSpec) -> Vec<PortSplit> {
    let mut out: Vec<PortSplit> = Vec::new();
    let mut add = |port: u32, dests: Vec<(String, i32)>, mirror: Option<String>| {
        if !out.iter().any(|(p, _, _)| *p == port) {
            out.push((port, dests, mirror));
        }
    };
    let weights = |route: &[RouteDestination]| {
        route
            .iter()
            .map(|r| {
                (
                    r.destination.subset.clone().unwrap_or_default(),
                    r.weight.unwrap_or(if route.len() == 1 { 100 } else { 0 }),
                )
            })
            .collect::<Vec<_>>()
    };
    for h in &vs.http {
        let port = h
            .matches
            .iter()
            .find_map(|m| m.port)
            .or(h.route.first().and_then(|r| r.destination.port.as_ref().map(|p| p.number)));
        // Request-matched routes are conditional; the split shown is the unconditional one.
        // A route with no port applies to every port: shown as port 0.
        let conditional = h.matches.iter().any(|m| m.uri.is_some() || !m.headers.is_empty());
        if let (Some(p), false) = (port.or(Some(0)), conditional) {
            add(p, weights(&h.route), h.mirror.as_ref().and_then(|m| m.subset.clone()));
        }
    }
    for t in &vs.tcp {
        let port = t
            .matches
            .iter()
            .find_map(|m| m.port)
            .or(t.route.first().and_then(|r| r.destination.port.as_ref().map(|p| p.number)));
        add(port.unwrap_or(0), weights(&t.route), None);
    }
    out
}
