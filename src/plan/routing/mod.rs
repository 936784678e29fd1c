//! Client-side routing: the DestinationRule and VirtualService that KubeSphere's controllers
//! derive from a Service and its task (kubesphere-compat section 8), for clusters where no
//! KubeSphere controller runs. This module tree is the one place routing is decided; `ops`
//! only reads what it needs and writes what it returns.
//!
//! Deliberate differences from KubeSphere 3.3's controllers (README, "Deliberate differences"):
//! destination subsets are normalised like subset names (a principal `v1.0` still routes); a
//! governor sends every port to its own port, and each HTTP port mirrors to itself; a task route
//! takes its mirror from the task, never from an older unnamed route.

mod derive;
pub mod gateway;
mod ready;
mod takeover;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::model::istio::*;
use crate::model::strategy::{LABEL_VERSION, POLICY_PAUSED, POLICY_WAIT, Strategy, normalize_version};

pub use derive::{ANN_ROUTE_FIELDS, keep_user_fields};
pub use ready::{kubesphere_subset_versions, principal_first, ready_versions, ready_versions_of_pods};
pub use takeover::{ANN_TASK_STATE, ANN_WRITE_ID, governor_patch, governor_spec, task_stamp};

/// Whose derivation: the plugin's (client routing), or KubeSphere 3.3's controller exactly,
/// quirks included, for waiting on KubeSphere and for the conformance suite. The differences
/// are the README's "deliberate differences".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    Client,
    Kubesphere,
}

/// Who writes the routing objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoutingChoice {
    /// kubesphere when KubeSphere's controller-manager writes the Service's VirtualService, else client.
    Auto,
    /// The plugin writes the DestinationRule and VirtualService itself.
    Client,
    /// KubeSphere's controllers route; the plugin writes only the Strategy.
    Kubesphere,
    /// The plugin writes a Gateway API HTTPRoute and per-version Services.
    GatewayApi,
}

/// Whether KubeSphere's controller-manager writes this VirtualService (it does for every
/// mesh-enabled Service under KubeSphere). Client routing would fight it.
impl RoutingChoice {
    pub const ALL: [RoutingChoice; 4] =
        [RoutingChoice::Auto, RoutingChoice::Client, RoutingChoice::Kubesphere, RoutingChoice::GatewayApi];

    /// The name `--routing` takes, and what it means.
    pub fn describe(self) -> (&'static str, &'static str) {
        match self {
            RoutingChoice::Auto => (
                "auto",
                "a task keeps the API it was created with; create picks kubesphere when KubeSphere's controller-manager writes the Service's VirtualService, gateway-api when an HTTPRoute has the Service as parent or the namespace is in ambient mode, else client",
            ),
            RoutingChoice::Client => {
                ("client", "the plugin writes the DestinationRule and VirtualService itself")
            }
            RoutingChoice::Kubesphere => {
                ("kubesphere", "KubeSphere's controllers route; the plugin writes only the Strategy")
            }
            RoutingChoice::GatewayApi => (
                "gateway-api",
                "the plugin writes a Gateway API HTTPRoute (parent: the Service) and one Service per version",
            ),
        }
    }
}

pub fn managed_by_kubesphere(vs: Option<&VirtualService>) -> bool {
    // KubeSphere 4.x's service-mesh extension links its VirtualService to the Strategy by a label.
    let ks4 = vs
        .and_then(|v| v.metadata.labels.as_ref())
        .is_some_and(|l| l.contains_key("servicemesh.kubesphere.io/controlled-by-strategy"));
    ks4 || vs
        .and_then(|v| v.metadata.managed_fields.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|m| m.manager.as_deref())
        .any(|m| {
            matches!(m, "controller-manager" | "ks-controller-manager" | "servicemesh-controller-manager")
        })
}

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

/// Ports named `http`, `http2`, `grpc` or starting with those and `-` carry HTTP routes
/// (case-insensitive, as KubeSphere's controller compares them).
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

/// Keeps what users set on the live DestinationRule: its traffic policy and other fields, and
/// each subset's own traffic policy (subsets are matched by name), so that no routing write
/// erases them.
pub fn keep_policies(want: &mut DestinationRule, live: Option<&DestinationRule>) {
    let Some(live) = live else { return };
    if want.spec.traffic_policy.is_none() {
        want.spec.traffic_policy = live.spec.traffic_policy.clone();
    }
    for (k, v) in &live.spec.extra {
        want.spec.extra.entry(k.clone()).or_insert_with(|| v.clone());
    }
    for sub in &mut want.spec.subsets {
        if let Some(old) = live.spec.subsets.iter().find(|o| o.name == sub.name)
            && sub.traffic_policy.is_none()
        {
            sub.traffic_policy = old.traffic_policy.clone();
        }
    }
}

/// The label selector of the ServicePolicies KubeSphere's controller gives a Service's
/// DestinationRule: `app=<the Service's app label>`. None without that label, where KubeSphere
/// takes none either.
pub fn service_policy_selector(svc: &Service) -> Option<String> {
    let app = svc.metadata.labels.as_ref()?.get(crate::model::strategy::LABEL_APP)?;
    Some(format!("{}={app}", crate::model::strategy::LABEL_APP))
}

/// Puts the ServicePolicy labelled for the app on the DestinationRule as KubeSphere's
/// controller does: its traffic policy, and each of its subsets' by name, where set. Over the
/// live DestinationRule's (`keep_policies`), because in KubeSphere the ServicePolicy is where
/// a DestinationRule's policy is declared. KubeSphere refuses to route with more than one, so
/// does the plugin: which one wins would be a guess.
pub fn apply_service_policy(
    dr: &mut DestinationRule,
    policies: &[crate::model::service_policy::ServicePolicy],
) -> Result<(), crate::error::Error> {
    let sp = match policies {
        [] => return Ok(()),
        [sp] => &sp.spec.template.spec,
        more => {
            let names: Vec<&str> = more.iter().filter_map(|p| p.metadata.name.as_deref()).collect();
            return Err(crate::error::Error::Ineligible {
                what: format!(
                    "more than one ServicePolicy is labelled for the app of DestinationRule {} ({}): KubeSphere forbids it, and which traffic policy applies would be a guess",
                    dr.spec.host,
                    names.join(", ")
                ),
                hint: "delete or relabel all but one of them".into(),
            });
        }
    };
    if sp.traffic_policy.is_some() {
        dr.spec.traffic_policy = sp.traffic_policy.clone();
    }
    for from in sp.subsets.iter().filter(|s| s.traffic_policy.is_some()) {
        for to in dr.spec.subsets.iter_mut().filter(|s| s.name == from.name) {
            to.traffic_policy = from.traffic_policy.clone();
        }
    }
    Ok(())
}

/// Whether `want`'s labels or annotations are not all on `live` as they are.
fn meta_differs(live: &ObjectMeta, want: &ObjectMeta) -> bool {
    let missing = |w: &Option<BTreeMap<String, String>>, l: &Option<BTreeMap<String, String>>| {
        w.iter().flatten().any(|(k, v)| l.as_ref().and_then(|l| l.get(k)) != Some(v))
    };
    missing(&want.labels, &live.labels) || missing(&want.annotations, &live.annotations)
}

/// Whether writing `want` would change the live DestinationRule.
pub fn dr_differs(live: Option<&DestinationRule>, want: &DestinationRule) -> bool {
    live.is_none_or(|l| l.spec != want.spec || meta_differs(&l.metadata, &want.metadata))
}

/// Whether writing `want` would change the live VirtualService.
pub fn vs_differs(live: Option<&VirtualService>, want: &VirtualService) -> bool {
    live.is_none_or(|l| l.spec != want.spec || meta_differs(&l.metadata, &want.metadata))
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoutingMode {
    /// No subset to route to yet.
    Empty,
    /// The Service's default route (no task, or waiting for a subset).
    Default,
    /// The Service's default route because the task is paused.
    Paused,
    /// Generated from the task.
    Task,
    /// What the task (or the default route) derives has no route for any of the Service's
    /// ports, e.g. HTTP routes on a Service whose ports are not HTTP-like: the VirtualService is
    /// kept as it is, as KubeSphere's controller keeps it (it refuses to write one without
    /// routes) rather than leaving the Service with no route at all.
    NoRoutes,
}

impl RoutingMode {
    /// Whether the VirtualService is written (else it is kept as it is).
    pub fn writes_virtual_service(self) -> bool {
        !matches!(self, RoutingMode::Empty | RoutingMode::NoRoutes)
    }
}

/// The routing objects for a Service and its task.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutingPlan {
    pub service: String,
    pub mode: RoutingMode,
    pub subsets: Vec<String>,
    pub destination_rule: DestinationRule,
    pub virtual_service: VirtualService,
}

/// Derives both routing objects from the Service, the task, the versions with ready pods
/// (principal first: the DestinationRule's subset order) and the current VirtualService.
pub fn plan(
    svc: &Service,
    app: &str,
    strategy: Option<&Strategy>,
    ready: &[String],
    existing_vs: Option<&VirtualService>,
) -> RoutingPlan {
    plan_as(Flavor::Client, svc, app, strategy, ready, existing_vs)
}

pub fn plan_as(
    flavor: Flavor,
    svc: &Service,
    app: &str,
    strategy: Option<&Strategy>,
    ready: &[String],
    existing_vs: Option<&VirtualService>,
) -> RoutingPlan {
    let dr = destination_rule(svc, ready);
    let subsets: Vec<String> = dr.spec.subsets.iter().map(|s| s.name.clone()).collect();
    let (vs, mode) = virtual_service_as(flavor, svc, app, strategy, &subsets, existing_vs);
    RoutingPlan {
        service: svc.metadata.name.clone().unwrap_or_default(),
        mode,
        subsets,
        destination_rule: dr,
        virtual_service: vs,
    }
}

/// Whether the task's own routes apply now (step 7 of the controller). KubeSphere compares
/// the template's raw subsets with the DestinationRule's normalised names, so a principal such
/// as `v1.0` never counts as ready there.
pub fn task_routes_apply(s: &Strategy, subsets: &[String], flavor: Flavor) -> bool {
    match s.policy() {
        POLICY_PAUSED => false,
        POLICY_WAIT => match flavor {
            Flavor::Client => template_subsets(s).iter().all(|t| subsets.contains(t)),
            Flavor::Kubesphere => raw_template_subsets(s).iter().all(|t| subsets.contains(t)),
        },
        _ => true,
    }
}

fn raw_template_subsets(s: &Strategy) -> Vec<String> {
    let t = &s.spec.template.spec;
    t.http
        .iter()
        .flat_map(|h| h.route.iter().map(|r| &r.destination).chain(h.mirror.iter()))
        .chain(t.tcp.iter().flat_map(|r| r.route.iter().map(|r| &r.destination)))
        .filter_map(|d| d.subset.clone())
        .collect()
}

/// The VirtualService KubeSphere's controller would write. `subsets` are the DestinationRule's
/// subset names, in order; `existing` keeps fields users added to routes.
pub fn virtual_service(
    svc: &Service,
    app_label: &str,
    strategy: Option<&Strategy>,
    subsets: &[String],
    existing: Option<&VirtualService>,
) -> (VirtualService, RoutingMode) {
    virtual_service_as(Flavor::Client, svc, app_label, strategy, subsets, existing)
}

pub fn virtual_service_as(
    flavor: Flavor,
    svc: &Service,
    app_label: &str,
    strategy: Option<&Strategy>,
    subsets: &[String],
    existing: Option<&VirtualService>,
) -> (VirtualService, RoutingMode) {
    let svc_name = svc.metadata.name.clone().unwrap_or_default();
    let ports = ports(svc);
    let (mut spec, mode) = match strategy {
        Some(s) if task_routes_apply(s, subsets, flavor) => {
            (derive::generated(s, &svc_name, &ports, flavor), RoutingMode::Task)
        }
        _ => match subsets.first() {
            Some(first) if strategy.is_some_and(|s| s.policy() == POLICY_PAUSED) => {
                (derive::default_spec(&svc_name, &ports, first), RoutingMode::Paused)
            }
            Some(first) => (derive::default_spec(&svc_name, &ports, first), RoutingMode::Default),
            None => (VirtualServiceSpec::default(), RoutingMode::Empty),
        },
    };
    let no_routes = spec.http.is_empty() && spec.tcp.is_empty() && spec.tls.is_empty();
    let mode = if no_routes && mode != RoutingMode::Empty { RoutingMode::NoRoutes } else { mode };
    let mut metadata = svc_meta(svc, app_label.to_string());
    let mut annotations = BTreeMap::new();
    if let Some(stash) = existing.map(|old| keep_user_fields(&mut spec, &old.spec, &old.metadata, flavor))
        && !stash.is_empty()
    {
        annotations.insert(ANN_ROUTE_FIELDS.to_string(), stash);
    }
    if let Some(s) = strategy.filter(|_| flavor == Flavor::Client) {
        annotations.insert(ANN_TASK_STATE.to_string(), task_stamp(s));
    }
    metadata.annotations = (!annotations.is_empty()).then_some(annotations);
    let vs = VirtualService {
        api_version: Some(format!("{ISTIO_GROUP}/{ISTIO_VERSION}")),
        kind: Some("VirtualService".into()),
        metadata,
        spec,
    };
    (vs, mode)
}

/// Whether KubeSphere's controller has put the task's own routes in place: its
/// DestinationRule has every subset the task needs and its VirtualService routes what
/// KubeSphere derives from them (as traffic, see `drifted`).
pub fn kubesphere_routed(
    svc: &Service,
    app: &str,
    s: &Strategy,
    dr: Option<&DestinationRule>,
    vs: Option<&VirtualService>,
) -> bool {
    let subsets: Vec<String> =
        dr.map(|d| d.spec.subsets.iter().map(|s| s.name.clone()).collect()).unwrap_or_default();
    if !task_routes_apply(s, &subsets, Flavor::Kubesphere) || vs.is_none() {
        return false;
    }
    let (want, _) = virtual_service_as(Flavor::Kubesphere, svc, app, Some(s), &subsets, vs);
    !drifted(vs.map(|v| &v.spec), &want.spec)
}

/// KubeSphere's controller takes an unnamed route's mirror from the route already there, so a
/// task's mirror change never reaches its VirtualService by itself. The JSON patch that gives
/// the live unnamed routes the task's mirror (the controller then carries it), guarded by the
/// VirtualService's resourceVersion; None when they already agree.
pub fn kubesphere_mirror_patch(s: &Strategy, vs: &VirtualService) -> Option<serde_json::Value> {
    let first = s.spec.template.spec.http.first().filter(|_| s.governor().is_none());
    let want = first.and_then(|h| h.mirror.as_ref());
    let want_pct = first.and_then(|h| h.mirror_percentage.as_ref());
    // KubeSphere fills a mirror's port with the Service's first port: the port a mirror there
    // already has, else the first route's.
    let port =
        vs.spec.http.iter().find_map(|h| h.mirror.as_ref().and_then(|m| m.port.clone())).or_else(|| {
            vs.spec.http.iter().find_map(|h| h.route.first().and_then(|r| r.destination.port.clone()))
        });
    let want = want.map(|m| Destination { port: port.clone(), ..m.clone() });
    let want = want.as_ref();
    let mut ops = vec![serde_json::json!({"op": "test", "path": "/metadata/resourceVersion",
        "value": vs.metadata.resource_version.clone().unwrap_or_default()})];
    for (i, h) in vs.spec.http.iter().enumerate().filter(|(_, h)| h.name.is_none()) {
        let same = h.mirror.as_ref().map(|m| &m.subset) == want.map(|m| &m.subset)
            && h.mirror_percentage == want_pct.cloned();
        if same {
            continue;
        }
        match want {
            None => {
                if h.mirror.is_some() {
                    ops.push(serde_json::json!({"op": "remove", "path": format!("/spec/http/{i}/mirror")}));
                }
                if h.mirror_percentage.is_some() {
                    ops.push(serde_json::json!({"op": "remove", "path": format!("/spec/http/{i}/mirrorPercentage")}));
                }
            }
            Some(m) => {
                ops.push(
                    serde_json::json!({"op": "add", "path": format!("/spec/http/{i}/mirror"), "value": m}),
                );
                if let Some(p) = want_pct {
                    ops.push(serde_json::json!({"op": "add", "path": format!("/spec/http/{i}/mirrorPercentage"), "value": p}));
                }
            }
        }
    }
    (ops.len() > 1).then_some(serde_json::Value::Array(ops))
}

/// Why KubeSphere 3.3 would never route this task, if it would not.
pub fn kubesphere_never_routes(s: &Strategy) -> Option<String> {
    let principal = s.spec.principal.clone().unwrap_or_default();
    (s.policy() == POLICY_WAIT && normalize_version(&principal) != principal).then(|| {
        format!(
            "KubeSphere 3.3 never routes a task whose old version contains `.`, `_` or `-` ({principal}): its controller looks for subset {principal} while the DestinationRule names it {}",
            normalize_version(&principal)
        )
    })
}

/// A destination of the live routes that still sends traffic (or a mirror) to `version`'s
/// subset, described; None when there is none.
pub fn routes_to(live: Option<&VirtualServiceSpec>, version: &str) -> Option<String> {
    let sub = normalize_version(version);
    let live = live?;
    let is = |d: &Destination| d.subset.as_deref() == Some(sub.as_str());
    for h in &live.http {
        if let Some(r) = h.route.iter().find(|r| is(&r.destination) && r.weight.unwrap_or(100) > 0) {
            return Some(format!("an HTTP route at weight {}", r.weight.unwrap_or(100)));
        }
        if h.mirror.as_ref().is_some_and(is) {
            return Some("a mirror".into());
        }
    }
    live.tcp
        .iter()
        .flat_map(|t| &t.route)
        .find(|r| is(&r.destination) && r.weight.unwrap_or(100) > 0)
        .map(|r| format!("a TCP route at weight {}", r.weight.unwrap_or(100)))
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
        if !conditional {
            add(port.unwrap_or(0), weights(&h.route), h.mirror.as_ref().and_then(|m| m.subset.clone()));
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

/// Whether the live VirtualService routes differently from what the task derives: compared
/// as traffic (per port: weights by subset, mirror, and the request-matched routes), not as
/// text, so field order and user additions do not count as drift. A port-less route (the
/// take-over fast path) applies to every port.
pub fn drifted(live: Option<&VirtualServiceSpec>, want: &VirtualServiceSpec) -> bool {
    type Split = (Vec<(String, i32)>, Option<String>);
    fn by_port(spec: &VirtualServiceSpec) -> BTreeMap<u32, Split> {
        split_by_port(spec)
            .into_iter()
            .map(|(p, mut w, m)| {
                w.retain(|(_, weight)| *weight > 0);
                w.sort();
                (p, (w, m))
            })
            .collect()
    }
    fn matched(spec: &VirtualServiceSpec) -> Vec<String> {
        spec.http
            .iter()
            .filter(|h| h.matches.iter().any(|m| m.uri.is_some() || !m.headers.is_empty()))
            .map(|h| {
                let m: Vec<_> = h.matches.iter().map(|m| (m.uri.clone(), m.headers.clone())).collect();
                let d: Vec<_> = h.route.iter().map(|r| r.destination.subset.clone()).collect();
                format!("{m:?}{d:?}")
            })
            .collect()
    }
    let Some(live) = live else { return !want.http.is_empty() || !want.tcp.is_empty() };
    let (l, w) = (by_port(live), by_port(want));
    let every = l.get(&0);
    let ports_differ = w.iter().any(|(p, want)| l.get(p).or(every) != Some(want))
        || l.keys().any(|p| *p != 0 && !w.contains_key(p));
    let mut lm = matched(live);
    let mut wm = matched(want);
    lm.dedup();
    wm.dedup();
    ports_differ || lm != wm
}

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod matrix_tests;
#[cfg(test)]
mod service_policy_tests;
#[cfg(test)]
mod subsets_tests;
#[cfg(test)]
mod tests;
