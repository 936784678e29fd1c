//! The stable, documented view of a task that `list`, `status` and `-o json|yaml` show. It is
//! built from the Strategy (console- or CLI-written) and the cluster objects around it.

use k8s_openapi::api::apps::v1::Deployment;
use serde::Serialize;

use super::pods::PodView;
use crate::model::istio::{RouteDestination, VirtualService};
use crate::model::strategy::*;
use crate::plan::routing::split_by_port;
use crate::task::matching::MatchRule;

pub const VIEW_API_VERSION: &str = "grayscale.kubectl.io/v1";

#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TaskView {
    pub name: String,
    pub namespace: String,
    /// bluegreen, canary or mirror (or the raw spec.type if unknown).
    #[serde(rename = "type")]
    pub task_type: String,
    pub service: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    pub old_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_version: Option<String>,
    /// The version taking all traffic, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub governor: Option<String>,
    pub policy: String,
    pub routing: RoutingView,
    pub versions: Vec<VersionView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// Per port, what the VirtualService in the cluster does now (status only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub live_routing: Vec<PortRouting>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pods: Vec<PodView>,
    /// Status and list: whether the live VirtualService routes differently from what the task
    /// derives (`kubectl grayscale sync` repairs it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift: Option<bool>,
    /// Status and list, with drift: the field manager that changed the VirtualService after the
    /// plugin last wrote it (the console, `kubectl edit`, a controller), from its managedFields.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift_by: Option<String>,
    /// Status only: the task's last change and who made it (the journal, or the field manager
    /// of a change made outside the plugin).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_change: Option<String>,
    /// Status only: `HTTPRoute` when Gateway API routes the task (else its VirtualService does).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route_kind: Option<String>,
    /// Status only, Gateway API: what the mesh says of the route when it does not take it
    /// (`status.parents` conditions).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub route_status: Vec<String>,
    /// Status only: the latest Warning events of the task's pods.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<EventView>,
}

#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    pub at: String,
    pub object: String,
    pub reason: String,
    pub message: String,
    pub count: i32,
}

/// The `keep` latest Warning events about the given pods, newest last.
pub fn warning_events(
    events: &[k8s_openapi::api::core::v1::Event],
    pods: &[PodView],
    keep: usize,
) -> Vec<EventView> {
    let mut out: Vec<EventView> = events
        .iter()
        .filter(|e| pods.iter().any(|p| Some(&p.name) == e.involved_object.name.as_ref()))
        .map(|e| EventView {
            at: e
                .last_timestamp
                .as_ref()
                .or(e.first_timestamp.as_ref())
                .map(|t| t.0.to_string())
                .unwrap_or_default(),
            object: format!("pod/{}", e.involved_object.name.clone().unwrap_or_default()),
            reason: e.reason.clone().unwrap_or_default(),
            message: e.message.clone().unwrap_or_default(),
            count: e.count.unwrap_or(1),
        })
        .collect();
    out.sort_by(|a, b| a.at.cmp(&b.at));
    let skip = out.len().saturating_sub(keep);
    out.split_off(skip)
}

#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RoutingView {
    /// ratio, match, mirror or takeover.
    pub mode: String,
    pub weights: Vec<Weight>,
    #[serde(rename = "match", skip_serializing_if = "Option::is_none")]
    pub matches: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror: Option<String>,
}

#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Weight {
    pub version: String,
    pub weight: i32,
}

#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VersionView {
    pub version: String,
    /// old or new.
    pub role: String,
    pub workload: String,
    pub replicas: i32,
    pub ready: i32,
    pub available: i32,
    pub exists: bool,
}

#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct PortRouting {
    pub port: u32,
    pub weights: Vec<Weight>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror: Option<String>,
}

fn lower_type(s: &Strategy) -> String {
    match s.task_type() {
        Some(TaskType::BlueGreen) => "bluegreen".into(),
        Some(TaskType::Canary) => "canary".into(),
        Some(TaskType::Mirror) => "mirror".into(),
        None => s.spec.kind.clone().unwrap_or_default(),
    }
}

/// The new version: the template subset that is not the principal (routes first, then mirror).
/// The version the task's routes or mirror name besides the principal.
pub fn new_version(s: &Strategy) -> Option<String> {
    s.new_version()
}

fn weights_of(route: &[RouteDestination]) -> Vec<Weight> {
    route
        .iter()
        .map(|r| Weight {
            version: r.destination.subset.clone().unwrap_or_default(),
            weight: r.weight.unwrap_or(if route.len() == 1 { 100 } else { 0 }),
        })
        .collect()
}

/// The task's intended routing, read as the console reads it (kubesphere-compat section 3).
pub fn routing_view(s: &Strategy) -> RoutingView {
    let old = s.spec.principal.clone().unwrap_or_default();
    let new = new_version(s).unwrap_or_default();
    let t = &s.spec.template.spec;
    if let Some(g) = s.governor() {
        let other = if g == old { new.clone() } else { old.clone() };
        return RoutingView {
            mode: "takeover".into(),
            weights: vec![
                Weight { version: g.to_string(), weight: 100 },
                Weight { version: other, weight: 0 },
            ],
            matches: None,
            mirror: None,
        };
    }
    if let Some(h) = t.http.iter().find(|h| !h.matches.is_empty()) {
        let rule = MatchRule::from_http_match(&h.matches[0]);
        return RoutingView {
            mode: "match".into(),
            weights: vec![],
            matches: Some(format!("{rule} -> {new}; other requests -> {old}")),
            mirror: None,
        };
    }
    if let Some(h) = t.http.iter().find(|h| h.mirror.is_some()) {
        return RoutingView {
            mode: "mirror".into(),
            weights: weights_of(&h.route),
            matches: None,
            mirror: h.mirror.as_ref().and_then(|m| m.subset.clone()),
        };
    }
    let route = t
        .http
        .first()
        .map(|h| h.route.as_slice())
        .or(t.tcp.first().map(|r| r.route.as_slice()))
        .unwrap_or(&[]);
    let mut weights = weights_of(route);
    weights.sort_by_key(|w| if w.version == old { 0 } else { 1 });
    RoutingView { mode: "ratio".into(), weights, matches: None, mirror: None }
}

fn workload_name(s: &Strategy, ann: &str, version: &str) -> String {
    s.annotation(ann)
        .map(str::to_string)
        .unwrap_or_else(|| format!("{}-{version}", s.service().unwrap_or_default()))
}

pub fn task_view(
    s: &Strategy,
    deployments: &[Deployment],
    vs: Option<&VirtualService>,
    pods: Vec<PodView>,
) -> TaskView {
    let ns = s.metadata.namespace.clone().unwrap_or_default();
    let old = s.spec.principal.clone().unwrap_or_default();
    let new = new_version(s);
    let mut versions = vec![(old.clone(), "old", workload_name(s, ANN_OLD_WORKLOAD, &old))];
    if let Some(n) = &new {
        versions.push((n.clone(), "new", workload_name(s, ANN_NEW_WORKLOAD, n)));
    }
    let versions = versions
        .into_iter()
        .map(|(version, role, workload)| {
            let d = deployments.iter().find(|d| {
                d.metadata.name.as_deref() == Some(workload.as_str())
                    && d.metadata.namespace.as_deref() == Some(ns.as_str())
            });
            let st = d.and_then(|d| d.status.clone()).unwrap_or_default();
            VersionView {
                version,
                role: role.into(),
                replicas: d.and_then(|d| d.spec.as_ref()).and_then(|s| s.replicas).unwrap_or(0),
                ready: st.ready_replicas.unwrap_or(0),
                available: st.available_replicas.unwrap_or(0),
                exists: d.is_some(),
                workload,
            }
        })
        .collect();
    let live_routing = vs
        .map(|vs| {
            split_by_port(&vs.spec)
                .into_iter()
                .map(|(port, w, mirror)| PortRouting {
                    port,
                    weights: w.into_iter().map(|(version, weight)| Weight { version, weight }).collect(),
                    mirror,
                })
                .collect()
        })
        .unwrap_or_default();
    TaskView {
        name: s.metadata.name.clone().unwrap_or_default(),
        namespace: ns,
        task_type: lower_type(s),
        service: s.service().unwrap_or_default().to_string(),
        app: s.labels().get(LABEL_APP_NAME).cloned(),
        old_version: old,
        new_version: new,
        governor: s.governor().map(str::to_string),
        policy: s.policy().to_string(),
        routing: routing_view(s),
        versions,
        created_at: s.metadata.creation_timestamp.as_ref().map(|t| t.0.to_string()),
        live_routing,
        pods,
        events: vec![],
        drift: None,
        drift_by: None,
        last_change: None,
        route_kind: None,
        route_status: vec![],
    }
}

/// A task's intended traffic in one line, as `history`, the before/after report and the task's
/// Events print it: `v1 70% v2 30%`, with ` [paused]` when the task is paused.
pub fn task_summary(s: &Strategy) -> String {
    let mut t = traffic_summary(&routing_view(s));
    if s.policy() == POLICY_PAUSED {
        t.push_str(" [paused]");
    }
    t
}

/// A one-cell summary of the traffic split: `v1 70% v2 30%`, `v1 100% (takeover)`...
pub fn traffic_summary(r: &RoutingView) -> String {
    let w = r.weights.iter().map(|w| format!("{} {}%", w.version, w.weight)).collect::<Vec<_>>().join(" ");
    match r.mode.as_str() {
        "match" => "by request".into(),
        "mirror" => format!("{w} +mirror {}", r.mirror.clone().unwrap_or_default()),
        "takeover" => format!("{w} (takeover)"),
        _ => w,
    }
}
