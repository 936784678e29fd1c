use clap::Args;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};

use super::Context;
use crate::cluster::task::get_task;
use crate::error::Result;
use crate::model::istio::VirtualService;
use crate::output::{Format, print};
use crate::plan::identity::RouteApi;
use crate::plan::identity::TaskIdentity;
use crate::plan::pods::pod_view;
use crate::plan::routing;
use crate::view::render;
use crate::view::task::task_view;

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  kubectl grayscale status reviews-canary\n  kubectl grayscale get reviews-canary -n bookinfo -o yaml"
)]
pub struct StatusArgs {
    /// The task's name.
    pub name: String,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
    /// Keep watching: redraw on every change (a terminal) or print one line per change.
    #[arg(short = 'w', long)]
    pub watch: bool,
}

pub async fn run(ctx: &Context, args: StatusArgs) -> Result<()> {
    let kube = ctx.kube().await?;
    let ns = kube.namespace.clone();
    if args.watch {
        return super::watch::run(&kube, &ns, &args.name, ctx.ui.color).await;
    }
    let s = get_task(&kube, &ns, &args.name).await?;
    let svc = kube.get::<Service>(&ns, s.service().unwrap_or_default()).await?;
    let id = TaskIdentity::of(&s, svc.as_ref());
    if svc.is_some() {
        crate::cluster::identity_cache::store(&kube.server, &id);
    }
    let app = id.app.clone();
    // One after the other on the client's kept-alive connection: concurrent requests each open
    // a TLS connection of their own, which measured slower (see BENCHMARKS.md).
    let deployments = kube.list::<Deployment>(Some(&ns), Some(&id.workload_selector())).await?;
    if id.api == RouteApi::GatewayApi {
        return gateway_status(ctx, &kube, &args, s, svc, &id, deployments).await;
    }
    let vs = kube.get::<VirtualService>(&ns, &app).await?;
    let pods = kube.list::<Pod>(Some(&ns), Some(&id.pod_selector())).await?;
    let events = kube.warning_events(&ns).await?;
    let drift = svc.map(|svc| {
        let ready = routing::ready_versions_of_pods(&svc, &pods, s.spec.principal.as_deref());
        crate::plan::drift::drift(&s, &svc, &app, &ready, vs.as_ref())
    });
    let mut pods: Vec<_> = pods.iter().map(pod_view).collect();
    pods.sort_by(|a, b| (&a.version, &a.name).cmp(&(&b.version, &b.name)));
    let recent = crate::view::task::warning_events(&events, &pods, 5);
    let mut view = task_view(&s, &deployments, vs.as_ref(), pods);
    view.events = recent;
    view.drift = drift.as_ref().map(|d| d.drifted);
    view.drift_by = drift.and_then(|d| d.by);
    view.last_change = Some(crate::plan::events::last_change(&s));
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    print(&render::status(&view, args.output, now, ctx.ui.color));
    Ok(())
}

/// A task Gateway API routes: its HTTPRoute's unconditional split, drift against what the task
/// derives, and what the mesh says of the route.
async fn gateway_status(
    ctx: &Context,
    kube: &crate::cluster::Kube,
    args: &StatusArgs,
    s: crate::model::strategy::Strategy,
    svc: Option<Service>,
    id: &TaskIdentity,
    deployments: Vec<Deployment>,
) -> Result<()> {
    use crate::plan::routing::gateway;
    let ns = &id.namespace;
    let route = crate::cluster::gateway::get_route(kube, ns, &id.service).await?;
    let pods = kube.list::<Pod>(Some(ns), Some(&id.pod_selector())).await?;
    let services = kube.list::<Service>(Some(ns), None).await?;
    let events = kube.warning_events(ns).await?;
    let mut drift = None;
    if let Some(svc) = &svc {
        let ready = routing::ready_versions_of_pods(svc, &pods, s.spec.principal.as_deref());
        let inputs = gateway::Inputs {
            svc,
            task: Some(&s),
            ready: &ready,
            existing: route.as_ref(),
            version_services: &services,
            features: gateway::Features::ALL,
        };
        if let Ok(want) = gateway::plan(&inputs) {
            let drifted =
                want.mode != routing::RoutingMode::Empty && gateway::drifted(route.as_ref(), &want.route);
            let by = route
                .as_ref()
                .filter(|_| drifted)
                .and_then(|r| crate::plan::drift::changed_by_other(&r.metadata));
            drift = Some((drifted, by));
        }
    }
    let mut pods: Vec<_> = pods.iter().map(pod_view).collect();
    pods.sort_by(|a, b| (&a.version, &a.name).cmp(&(&b.version, &b.name)));
    let recent = crate::view::task::warning_events(&events, &pods, 5);
    let mut view = task_view(&s, &deployments, None, pods);
    if let Some(r) = &route {
        let port = svc.as_ref().and_then(|svc| gateway::http_port(svc).ok()).unwrap_or(0);
        let (weights, mirror) = gateway::split(r, &id.service);
        view.live_routing = vec![crate::view::task::PortRouting {
            port,
            weights: weights
                .into_iter()
                .map(|(version, weight)| crate::view::task::Weight { version, weight })
                .collect(),
            mirror,
        }];
        view.route_status = gateway::not_accepted(r, &id.service);
    }
    view.route_kind = Some("HTTPRoute".into());
    view.events = recent;
    view.drift = drift.as_ref().map(|d| d.0);
    view.drift_by = drift.and_then(|d| d.1);
    view.last_change = Some(crate::plan::events::last_change(&s));
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    print(&render::status(&view, args.output, now, ctx.ui.color));
    Ok(())
}
