//! Steps 8 to 10 of KubeSphere's VirtualService controller: the task's routes per port, the
//! Service's default routes, and what survives from the VirtualService already there.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{Flavor, Port, is_http_like};
use crate::model::istio::*;
use crate::model::strategy::{Strategy, normalize_version};

/// Fields users added to routes (timeouts, retries...), by route name, kept on the
/// VirtualService so that they survive a take-over (whose fast path rewrites the routes without
/// reading them) and come back with the routes they belong to.
pub const ANN_ROUTE_FIELDS: &str = "grayscale.kubectl.io/route-fields";

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

fn port_match(port: u32) -> HttpMatch {
    HttpMatch { port: Some(port), ..HttpMatch::default() }
}

fn l4_match(port: u32) -> L4Match {
    L4Match { port: Some(port), ..L4Match::default() }
}

/// Step 9: each TCP-protocol port to the first subset; HTTP routes are named after their port,
/// so that fields users add to them are kept (step 10).
pub(super) fn default_spec(svc: &str, ports: &[Port], subset: &str) -> VirtualServiceSpec {
    let mut spec = VirtualServiceSpec { hosts: vec![svc.into()], ..VirtualServiceSpec::default() };
    for p in ports.iter().filter(|p| p.tcp_protocol) {
        let route = vec![to_subset(svc, subset, p.number, 100)];
        if is_http_like(&p.name) {
            spec.http.push(HttpRoute {
                name: Some(p.name.clone()),
                matches: vec![port_match(p.number)],
                route,
                ..HttpRoute::default()
            });
        } else {
            spec.tcp.push(TcpRoute { matches: vec![l4_match(p.number)], route, ..TcpRoute::default() });
        }
    }
    spec
}

fn normalise_dest(d: &mut Destination, port: Option<u32>, subset: bool) {
    if subset && let Some(s) = d.subset.as_mut() {
        *s = normalize_version(s);
    }
    if let Some(p) = port {
        d.port = port_sel(p);
    }
}

/// Step 8, with a governor. Client flavor: every port to the governor's subset on its own port.
/// KubeSphere: HTTP routes only for HTTP-like ports and only if the template has HTTP items, TCP
/// routes likewise; every HTTP governor route goes to the Service's first port.
fn governed(
    spec: &mut VirtualServiceSpec,
    t: &VirtualServiceSpec,
    svc: &str,
    ports: &[Port],
    governor: &str,
    flavor: Flavor,
) {
    let gov = match flavor {
        Flavor::Client => normalize_version(governor),
        Flavor::Kubesphere => governor.to_string(),
    };
    let first = ports.first().map_or(0, |p| p.number);
    for p in ports {
        let http = is_http_like(&p.name);
        if flavor == Flavor::Kubesphere && ((http && t.http.is_empty()) || (!http && t.tcp.is_empty())) {
            continue;
        }
        let to_port = if flavor == Flavor::Kubesphere && http { first } else { p.number };
        let route = vec![to_subset(svc, &gov, to_port, 100)];
        if http {
            spec.http.push(HttpRoute { matches: vec![port_match(p.number)], route, ..HttpRoute::default() });
        } else {
            spec.tcp.push(TcpRoute { matches: vec![l4_match(p.number)], route, ..TcpRoute::default() });
        }
    }
}

/// Step 8.
pub(super) fn generated(s: &Strategy, svc: &str, ports: &[Port], flavor: Flavor) -> VirtualServiceSpec {
    let t = &s.spec.template.spec;
    let hosts = if t.hosts.is_empty() { vec![svc.to_string()] } else { t.hosts.clone() };
    let mut spec = VirtualServiceSpec { hosts, tls: t.tls.clone(), ..VirtualServiceSpec::default() };
    if let Some(gov) = s.governor() {
        governed(&mut spec, t, svc, ports, gov, flavor);
        return spec;
    }
    let normalise = flavor == Flavor::Client;
    for p in ports {
        if is_http_like(&p.name) {
            for item in &t.http {
                let mut h = item.clone();
                if h.matches.is_empty() {
                    h.matches.push(port_match(p.number));
                } else {
                    h.matches.iter_mut().for_each(|m| m.port = Some(p.number));
                }
                h.route
                    .iter_mut()
                    .for_each(|r| normalise_dest(&mut r.destination, Some(p.number), normalise));
                // Client flavor: each port mirrors to itself. KubeSphere leaves the mirror's
                // port to the fill below, the Service's first port for every port.
                if let Some(m) = h.mirror.as_mut() {
                    normalise_dest(m, normalise.then_some(p.number), normalise);
                }
                spec.http.push(h);
            }
        } else {
            for item in &t.tcp {
                let mut r = item.clone();
                if r.matches.is_empty() {
                    r.matches.push(l4_match(p.number));
                } else {
                    r.matches.iter_mut().for_each(|m| m.port = Some(p.number));
                }
                r.route
                    .iter_mut()
                    .for_each(|d| normalise_dest(&mut d.destination, Some(p.number), normalise));
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

/// A route's own fields: everything but what routing derives.
fn user_fields(h: &HttpRoute) -> HttpRoute {
    HttpRoute { name: h.name.clone(), extra: h.extra.clone(), ..HttpRoute::default() }
}

/// Step 10: a generated route keeps the fields of the existing route of the same name (the last
/// one, as the controller's lookup does; unnamed routes match unnamed ones) and takes `match` and
/// `route` from the task. KubeSphere takes everything else from the existing route, the mirror
/// included, so an unnamed route's mirror outlives the task's; the client flavor takes the
/// mirror from the task. Fields of named routes the existing VirtualService no longer has (a
/// take-over replaced them) come from the stash annotation (client flavor). Returns the stash.
pub fn keep_user_fields(
    spec: &mut VirtualServiceSpec,
    old: &VirtualServiceSpec,
    meta: &ObjectMeta,
    flavor: Flavor,
) -> String {
    if flavor == Flavor::Kubesphere {
        for h in &mut spec.http {
            if let Some(prev) = old.http.iter().rev().find(|o| o.name == h.name) {
                let mut merged = prev.clone();
                merged.matches = std::mem::take(&mut h.matches);
                merged.route = std::mem::take(&mut h.route);
                *h = merged;
            }
        }
        return String::new();
    }
    let mut stash: BTreeMap<String, HttpRoute> = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANN_ROUTE_FIELDS))
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default();
    for h in old.http.iter().filter(|h| h.name.is_some() && !h.extra.is_empty()) {
        stash.insert(h.name.clone().unwrap_or_default(), user_fields(h));
    }
    for h in &mut spec.http {
        let prev = old
            .http
            .iter()
            .rev()
            .find(|o| o.name == h.name)
            .map(user_fields)
            .or_else(|| h.name.as_ref().and_then(|n| stash.get(n)).cloned());
        if let Some(prev) = prev {
            for (k, v) in prev.extra {
                h.extra.entry(k).or_insert(v);
            }
        }
    }
    for (k, v) in &old.extra {
        spec.extra.entry(k.clone()).or_insert_with(|| v.clone());
    }
    if stash.is_empty() { String::new() } else { serde_json::to_string(&stash).expect("routes serialise") }
}
