//! The Strategy object exactly as the console writes it (kubesphere-compat section 2).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::eligibility::{Eligible, Protocol};
use super::new_version::new_workload_name;
use crate::model::istio::{Destination, HttpRoute, RouteDestination, TcpRoute, VirtualServiceSpec};
use crate::model::strategy::*;
use crate::task::request::{CreateRequest, Routing};

pub fn build(req: &CreateRequest, namespace: &str, e: &Eligible, app_icon: Option<String>) -> Strategy {
    let svc = &req.service;
    let mut labels: BTreeMap<String, String> = e.app_labels.clone();
    // The console labels the task with the Service's name (KubeSphere's controller then finds
    // it by the Service's app label, which is the same for Services the console made).
    labels.insert(LABEL_APP.into(), req.service.clone());
    let old_name = e.old.metadata.name.clone().unwrap_or_default();
    let old_replicas = e.old.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let mut annotations = BTreeMap::from([
        (ANN_OLD_WORKLOAD.to_string(), old_name),
        (ANN_NEW_WORKLOAD.to_string(), new_workload_name(&e.app_label, &req.version)),
        (ANN_WORKLOAD_TYPE.to_string(), "deployments".to_string()),
        (ANN_WORKLOAD_REPLICAS.to_string(), old_replicas.to_string()),
    ]);
    if let Some(icon) = app_icon {
        annotations.insert(ANN_ICON.to_string(), icon);
    }
    let (old, new) = (e.principal.as_str(), req.version.as_str());
    let mut governor = None;
    let routes: Vec<HttpRoute> = match &req.routing {
        Routing::BlueGreen { new_takes_over } => {
            governor = Some(if *new_takes_over { new } else { old }.to_string());
            let (wo, wn) = if *new_takes_over { (0, 100) } else { (100, 0) };
            vec![weighted(svc, old, wo, new, wn)]
        }
        Routing::Weight { weight } => {
            vec![weighted(svc, old, 100 - i32::from(*weight), new, i32::from(*weight))]
        }
        Routing::Match { rule } => vec![
            HttpRoute {
                matches: vec![rule.to_http_match()],
                route: vec![RouteDestination::to(svc, new, 100)],
                ..HttpRoute::default()
            },
            HttpRoute { route: vec![RouteDestination::to(svc, old, 100)], ..HttpRoute::default() },
        ],
        Routing::Mirror => vec![HttpRoute {
            route: vec![RouteDestination::to(svc, old, 100)],
            mirror: Some(Destination { host: svc.clone(), subset: Some(new.to_string()), port: None }),
            ..HttpRoute::default()
        }],
    };
    let mut template = VirtualServiceSpec { hosts: vec![svc.clone()], ..VirtualServiceSpec::default() };
    match e.protocol {
        Protocol::Http => template.http = routes,
        Protocol::Tcp => {
            template.tcp = routes
                .into_iter()
                .map(|r| TcpRoute { matches: vec![], route: r.route, ..TcpRoute::default() })
                .collect()
        }
    }
    Strategy {
        api_version: API_VERSION.into(),
        kind: KIND.into(),
        metadata: ObjectMeta {
            name: Some(req.name.clone()),
            namespace: Some(namespace.to_string()),
            labels: Some(labels.clone()),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        },
        spec: StrategySpec {
            kind: Some(req.task_type.as_str().into()),
            principal: Some(e.principal.clone()),
            governor,
            strategy_policy: Some(POLICY_WAIT.into()),
            selector: Some(LabelSelector { match_labels: Some(labels), match_expressions: None }),
            template: RouteTemplate { metadata: None, spec: template },
            extra: Default::default(),
        },
        status: None,
    }
}

/// `[{old, wo}, {new, wn}]`, the console's ratio route.
pub fn weighted(svc: &str, old: &str, wo: i32, new: &str, wn: i32) -> HttpRoute {
    HttpRoute {
        route: vec![RouteDestination::to(svc, old, wo), RouteDestination::to(svc, new, wn)],
        ..HttpRoute::default()
    }
}
