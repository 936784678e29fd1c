//! `create` as one pure function: the request and what was read from the cluster in, every
//! object to write (and in which order) out, or the first rule the Service breaks.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;

use super::eligibility::{self, Protocol};
use super::identity::{ANN_ROUTE_API, GATEWAY_API};
use super::routing::gateway::{Features, GatewayPlan};
use super::routing::{self, RoutingChoice, RoutingPlan};
use super::{new_version, task};
use crate::error::Error;
use crate::model::gateway::HttpRoute;
use crate::model::istio::VirtualService;
use crate::model::strategy::{ANN_ICON, LABEL_APP, LABEL_APP_NAME, Strategy};
use crate::task::request::{CreateRequest, Routing};

/// What to read before planning, decided from the Service alone.
#[derive(Debug, Clone, PartialEq)]
pub struct Keys {
    /// The composed app (`app.kubernetes.io/name`) to read, on the KubeSphere shape.
    pub application: Option<String>,
    /// The VirtualService's name: the Service's app label.
    pub virtual_service: String,
}

/// Everything `create` reads.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub namespace: String,
    pub service: Service,
    /// The whole namespace: the new Deployment's name must be free even if another app uses it.
    pub deployments: Vec<Deployment>,
    pub strategies: Vec<Strategy>,
    pub application: Option<serde_json::Value>,
    pub virtual_service: Option<VirtualService>,
    /// HTTPRoutes whose parent is the Service, by name (empty where none is served).
    pub routes_with_parent: Vec<String>,
    /// The HTTPRoute named after the Service, the one the plugin manages.
    pub route: Option<HttpRoute>,
    /// Whether the cluster serves HTTPRoute.
    pub gateway_served: bool,
    /// Whether the namespace is in Istio's ambient mode.
    pub ambient: bool,
    /// The waypoint that serves the Service (its `istio.io/use-waypoint`, else its namespace's).
    pub waypoint: Option<String>,
}

/// Which API routes a new task, from `--routing` and what routes the Service today. Never both
/// kinds for one Service: Istio does not merge them.
pub fn routing_api(choice: RoutingChoice, o: &Observed) -> Result<RouteApiChoice, Error> {
    let svc = o.service.metadata.name.clone().unwrap_or_default();
    let vs = o.virtual_service.as_ref().and_then(|v| v.metadata.name.clone());
    let route = o.routes_with_parent.first().cloned();
    let both = |what: String| {
        ineligible(
            what,
            "Istio does not support a VirtualService and an HTTPRoute for one Service: remove one of them, or choose --routing to match the one that stays",
        )
    };
    if let Some(r) = o.routes_with_parent.iter().find(|r| **r != svc) {
        return Err(ineligible(
            format!(
                "HTTPRoute {r} already routes Service {svc}; the plugin routes a Service with the HTTPRoute named after it ({svc})"
            ),
            format!("rename or merge HTTPRoute {r} into one named {svc}, then run the same command again"),
        ));
    }
    Ok(match (choice, vs, route) {
        (RoutingChoice::Auto, Some(v), Some(r)) => {
            return Err(both(format!("Service {svc} has both VirtualService {v} and HTTPRoute {r}")));
        }
        (RoutingChoice::GatewayApi, Some(v), _) => {
            return Err(both(format!(
                "--routing gateway-api would add an HTTPRoute to Service {svc}, which VirtualService {v} routes"
            )));
        }
        (RoutingChoice::Client | RoutingChoice::Kubesphere, _, Some(r)) => {
            return Err(both(format!(
                "--routing would add a VirtualService to Service {svc}, which HTTPRoute {r} routes"
            )));
        }
        (RoutingChoice::GatewayApi, None, _) if !o.gateway_served => {
            return Err(ineligible(
                "this cluster does not serve Gateway API's HTTPRoute (gateway.networking.k8s.io/v1)".into(),
                "install Gateway API's standard CRDs, or use --routing client",
            ));
        }
        (RoutingChoice::GatewayApi, None, _) | (RoutingChoice::Auto, None, Some(_)) => {
            RouteApiChoice::Gateway
        }
        (RoutingChoice::Auto, None, None) if o.ambient && o.gateway_served => RouteApiChoice::Gateway,
        (RoutingChoice::Kubesphere, _, None) => RouteApiChoice::Kubesphere,
        (RoutingChoice::Client, _, None) => RouteApiChoice::Client,
        (RoutingChoice::Auto, vs, None) => {
            if vs.is_some() && routing::managed_by_kubesphere(o.virtual_service.as_ref()) {
                RouteApiChoice::Kubesphere
            } else {
                RouteApiChoice::Client
            }
        }
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteApiChoice {
    Client,
    Kubesphere,
    Gateway,
}

/// Everything `create` writes, in order.
#[derive(Debug, Clone)]
pub struct Plan {
    pub namespace: String,
    pub service: Service,
    pub app_label: String,
    pub strategy: Strategy,
    pub deployment: Deployment,
    pub client_routing: bool,
    /// Gateway API routing (then `client_routing` is false: no VirtualService is written).
    pub gateway: bool,
    pub existing_vs: Option<VirtualService>,
    pub existing_route: Option<HttpRoute>,
    pub principal: String,
    pub new_version: String,
    /// Versions with ready pods when the plan was made (principal first).
    pub old_ready: Vec<String>,
    /// Said before anything is written.
    pub warnings: Vec<String>,
}

fn ineligible(what: String, hint: impl Into<String>) -> Error {
    Error::Ineligible { what, hint: hint.into() }
}

fn svc_app_label(svc: &Service) -> Option<String> {
    let labels = svc.metadata.labels.as_ref();
    labels.and_then(|l| l.get(LABEL_APP)).cloned().or_else(|| {
        svc.spec.as_ref().and_then(|s| s.selector.as_ref()).and_then(|s| s.get(LABEL_APP).cloned())
    })
}

/// What to read next, and the first rule that needs only the Service: an `--app` that is not
/// the Service's composed app.
pub fn keys(svc: &Service, req: &CreateRequest) -> Result<Keys, Error> {
    let ns = svc.metadata.namespace.clone().unwrap_or_default();
    let actual = svc.metadata.labels.as_ref().and_then(|l| l.get(LABEL_APP_NAME)).cloned();
    if let (Some(given), Some(actual)) = (&req.app, &actual)
        && given != actual
    {
        return Err(ineligible(
            format!("Service {ns}/{} belongs to the composed app {actual}, not {given}", req.service),
            format!("use --app {actual}, or leave --app out"),
        ));
    }
    Ok(Keys {
        application: actual,
        virtual_service: svc_app_label(svc).unwrap_or_else(|| req.service.clone()),
    })
}

/// Request parameters and mirroring need an HTTP Service.
fn check_protocol(req: &CreateRequest, ns: &str, protocol: Protocol) -> Result<(), Error> {
    if protocol != Protocol::Tcp {
        return Ok(());
    }
    match req.routing {
        Routing::Match { .. } => Err(ineligible(
            format!(
                "Service {ns}/{} is TCP (its first port is not named http-, http2- or grpc-): request parameters need HTTP",
                req.service
            ),
            "route by traffic ratio with --weight, or name the port http-... if it serves HTTP",
        )),
        Routing::Mirror => Err(ineligible(
            format!("Service {ns}/{} is TCP: traffic mirroring is HTTP only", req.service),
            "use a canary with a small --weight instead",
        )),
        _ => Ok(()),
    }
}

pub fn create(req: &CreateRequest, o: Observed, choice: RoutingChoice) -> Result<Plan, Error> {
    let ns = o.namespace.clone();
    let keys = keys(&o.service, req)?;
    let kubesphere_shape = keys.application.is_some();
    if req.app.is_some() && kubesphere_shape && o.application.is_none() {
        return Err(ineligible(
            format!(
                "the composed app {} does not exist in namespace {ns}",
                keys.application.clone().unwrap_or_default()
            ),
            format!("list the apps with: kubectl get applications.app.k8s.io -n {ns}"),
        ));
    }
    if o.strategies.iter().any(|s| s.metadata.name.as_deref() == Some(req.name.as_str())) {
        return Err(ineligible(
            format!("a task named {} already exists in namespace {ns}", req.name),
            format!("choose another name, or look at it: kubectl grayscale status {} -n {ns}", req.name),
        ));
    }
    let app_deployments: Vec<Deployment> = o
        .deployments
        .iter()
        .filter(|d| d.metadata.labels.as_ref().and_then(|l| l.get(LABEL_APP)) == Some(&keys.virtual_service))
        .cloned()
        .collect();
    let e = eligibility::check(
        &o.service,
        &app_deployments,
        o.application.as_ref(),
        &o.strategies,
        &req.version,
    )?;
    let new_name = new_version::new_workload_name(&e.app_label, &req.version);
    if o.deployments.iter().any(|d| d.metadata.name.as_deref() == Some(new_name.as_str())) {
        return Err(ineligible(
            format!("Deployment {ns}/{new_name} already exists"),
            "choose another --version, or delete that Deployment if it is left over",
        ));
    }
    check_protocol(req, &ns, e.protocol)?;
    let deployment = new_version::derive(&e.old, &e.app_label, req)?;
    // The console takes the icon from the app's descriptor (older apps carry it as an annotation).
    let icon = o.application.as_ref().and_then(|a| {
        a["spec"]["descriptor"]["icons"][0]["src"]
            .as_str()
            .or(a["metadata"]["annotations"][ANN_ICON].as_str())
            .map(str::to_string)
    });
    let mut strategy = task::build(req, &ns, &e, icon);
    let api = routing_api(choice, &o)?;
    let mut warnings = Vec::new();
    if api == RouteApiChoice::Gateway {
        warnings.extend(routing::gateway::waypoint_warning(o.ambient, o.waypoint.as_deref()));
        routing::gateway::http_port(&o.service)?;
        strategy
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(ANN_ROUTE_API.into(), GATEWAY_API.into());
    }
    let old_ready = routing::ready_versions(&o.service, &app_deployments, Some(&e.principal));
    Ok(Plan {
        namespace: ns,
        service: o.service,
        app_label: e.app_label,
        strategy,
        deployment,
        client_routing: api == RouteApiChoice::Client,
        gateway: api == RouteApiChoice::Gateway,
        existing_vs: o.virtual_service,
        existing_route: o.route,
        principal: e.principal,
        new_version: req.version.clone(),
        old_ready,
        warnings,
    })
}

/// The annotation KubeSphere's console writes on what a user creates: the task, the new
/// Deployment and its pod template.
pub const ANN_CREATOR: &str = "kubesphere.io/creator";

impl Plan {
    /// KubeSphere's controllers route the task; the plugin writes only the Strategy.
    pub fn kubesphere(&self) -> bool {
        !self.client_routing && !self.gateway
    }

    /// Names `user` (the impersonated or kubeconfig user, as the cluster sees them) as the
    /// creator of the task, the new Deployment and its pods, where the old version's creator
    /// was copied.
    pub fn created_by(&mut self, user: &str) {
        let stamp = |m: &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
            m.annotations.get_or_insert_with(Default::default).insert(ANN_CREATOR.into(), user.into());
        };
        stamp(&mut self.strategy.metadata);
        stamp(&mut self.deployment.metadata);
        if let Some(spec) = self.deployment.spec.as_mut() {
            stamp(spec.template.metadata.get_or_insert_with(Default::default));
        }
    }

    /// Routing written before the new version exists: the task with only the old version's
    /// subsets, which pins traffic to the old version.
    pub fn initial_routing(&self) -> Option<RoutingPlan> {
        self.client_routing.then(|| {
            routing::plan(
                &self.service,
                &self.app_label,
                Some(&self.strategy),
                &self.old_ready,
                self.existing_vs.as_ref(),
            )
        })
    }

    /// Routing once versions are ready: `None` while the principal has no ready pod, so the
    /// new version never gets more than the task gives it.
    pub fn routing_when_ready(
        &self,
        strategy: &Strategy,
        ready: &[String],
        existing: Option<&VirtualService>,
    ) -> Option<RoutingPlan> {
        if !ready.contains(&self.principal) {
            return None;
        }
        Some(routing::plan(&self.service, &self.app_label, Some(strategy), ready, existing))
    }

    /// Gateway API routing for the task's versions with ready pods (`strategy` without a uid:
    /// the per-version Services are not owned by the task yet).
    pub fn gateway_routing(
        &self,
        strategy: &Strategy,
        ready: &[String],
        existing: Option<&HttpRoute>,
        features: Features,
    ) -> Result<GatewayPlan, Error> {
        routing::gateway::plan(&routing::gateway::Inputs {
            svc: &self.service,
            task: Some(strategy),
            ready,
            existing,
            version_services: &[],
            features,
        })
    }
}

#[cfg(test)]
#[path = "create_tests.rs"]
mod tests;
