//! Writing the routing a task derives (client routing), or leaving it to KubeSphere.

use k8s_openapi::api::core::v1::{Pod, Service};

use super::read::read_live;
use super::{Kube, Write};
use crate::error::{Error, Result};
use crate::model::istio::{DestinationRule, VirtualService};
use crate::model::service_policy::ServicePolicy;
use crate::plan::identity::{RouteApi, TaskIdentity};
use crate::plan::live::Live;
use crate::plan::routing::gateway::{self, GatewayPlan};
use crate::plan::routing::{self, RoutingChoice, RoutingPlan};

/// Conflicting writers: enough attempts for a handful of concurrent commands on one task.
pub(super) const MAX_ATTEMPTS: usize = 12;

/// Short, growing, jittered pauses between attempts, so that writers that collided do not
/// collide again in lockstep.
pub(super) fn pauses() -> impl Iterator<Item = std::time::Duration> {
    use backon::BackoffBuilder;
    backon::ExponentialBuilder::default()
        .with_min_delay(std::time::Duration::from_millis(10))
        .with_max_delay(std::time::Duration::from_millis(200))
        .with_jitter()
        .without_max_times()
        .build()
}

/// When the app's ServicePolicy is read: right before a DestinationRule write the task's
/// versions call for (every verb), or also when they call for none (`sync`, so that a changed
/// ServicePolicy reaches the DestinationRule without waiting for a version to come or go).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policies {
    WithSubsets,
    Always,
}

pub enum RoutedBy {
    Client(Box<RoutingPlan>),
    /// KubeSphere's controllers route; `mirror_repaired`: the plugin set the task's mirror on
    /// their VirtualService, which they would not carry over by themselves.
    Kubesphere {
        mirror_repaired: bool,
    },
    Gateway(Box<GatewayPlan>),
}

/// Whether KubeSphere's controllers route this Service (then only the Strategy is written).
pub fn kubesphere_routes(choice: RoutingChoice, vs: Option<&VirtualService>) -> bool {
    match choice {
        RoutingChoice::Client => false,
        RoutingChoice::Kubesphere => true,
        RoutingChoice::GatewayApi => false,
        RoutingChoice::Auto => routing::managed_by_kubesphere(vs),
    }
}

/// Brings the routing to what `live.task` derives; on a conflicting routing write, reads
/// everything again and derives from the newest task.
pub async fn route(
    kube: &Kube,
    ns: &str,
    mut live: Live,
    choice: RoutingChoice,
    force: Option<String>,
    policies: Policies,
) -> Result<RoutedBy> {
    let name = live.identity.task.clone();
    check_api(choice, &live)?;
    if live.identity.api == RouteApi::GatewayApi {
        return route_gateway(kube, ns, live, force).await;
    }
    let mut pauses = pauses();
    for attempt in 1..=MAX_ATTEMPTS {
        if kubesphere_routes(choice, live.vs.as_ref()) {
            let Some(vs) = live
                .vs
                .as_ref()
                .filter(|_| !crate::failpoint::switched_off(crate::failpoint::KUBESPHERE_MIRROR_REPAIR))
            else {
                return Ok(RoutedBy::Kubesphere { mirror_repaired: false });
            };
            let Some(patch) = routing::kubesphere_mirror_patch(&live.task, vs) else {
                return Ok(RoutedBy::Kubesphere { mirror_repaired: false });
            };
            // A patch the API server refuses for any reason but a failed guard is returned (the
            // caller reports it); a failed guard means the controller rewrote the VirtualService
            // since it was read: read again and repair the newest one.
            if kube.json_patch::<VirtualService>(ns, &live.identity.app, &patch).await?.is_some() {
                return Ok(RoutedBy::Kubesphere { mirror_repaired: true });
            }
            if attempt == MAX_ATTEMPTS {
                return Err(Error::Conflict {
                    target: crate::cluster::target::<VirtualService>("update", Some(ns), Some(&live.identity.app)),
                    message: "KubeSphere's controller kept rewriting the VirtualService while the task's mirror was being added to it".into(),
                    hint: Some(format!("run: kubectl grayscale sync {name} -n {ns}")),
                });
            }
            if let Some(p) = pauses.next() {
                tokio::time::sleep(p).await;
            }
            live = read_live(kube, ns, &name, false).await?.0;
            continue;
        }
        let plan = plan_of(&live, force.as_deref())?;
        crate::failpoint::gate(crate::failpoint::BEFORE_ROUTING_WRITE).await;
        match write_routing(kube, ns, &plan, &live, Write::Real, policies).await {
            Ok(()) => return Ok(RoutedBy::Client(Box::new(plan))),
            Err(Error::Conflict { .. }) if attempt < MAX_ATTEMPTS => {
                live = after_conflict(kube, ns, &name, &mut pauses).await?;
            }
            Err(e) => return Err(e),
        }
    }
    unreachable!("the last attempt returns")
}

/// Another command routed in between: a short pause, then everything read again.
async fn after_conflict(
    kube: &Kube,
    ns: &str,
    name: &str,
    pauses: &mut impl Iterator<Item = std::time::Duration>,
) -> Result<Live> {
    if let Some(p) = pauses.next() {
        tokio::time::sleep(p).await;
    }
    Ok(read_live(kube, ns, name, false).await?.0)
}

/// A task keeps the routing API it was created with: never both kinds for one Service.
pub fn check_api(choice: RoutingChoice, live: &Live) -> Result<()> {
    let id = &live.identity;
    let clash = match (choice, id.api) {
        (RoutingChoice::GatewayApi, RouteApi::Istio) => Some(("gateway-api", "Istio's VirtualService")),
        (RoutingChoice::Client | RoutingChoice::Kubesphere, RouteApi::GatewayApi) => {
            Some(("a VirtualService", "Gateway API's HTTPRoute"))
        }
        _ => None,
    };
    match clash {
        None => Ok(()),
        Some((asked, has)) => Err(Error::Ineligible {
            what: format!("task {} is routed by {has}; --routing asked for {asked}", id.task),
            hint: "Istio does not support both kinds of route for one Service: drop --routing (auto keeps the task's own)".into(),
        }),
    }
}

/// Gateway API routing: the plan from the live task, written where it differs; on a conflicting
/// route write, everything is read again and the newest task wins.
async fn route_gateway(kube: &Kube, ns: &str, mut live: Live, force: Option<String>) -> Result<RoutedBy> {
    let name = live.identity.task.clone();
    let mut pauses = pauses();
    for attempt in 1..=MAX_ATTEMPTS {
        let plan = gateway_plan_of(kube, &live, force.as_deref()).await?;
        crate::failpoint::gate(crate::failpoint::BEFORE_ROUTING_WRITE).await;
        let written =
            super::gateway::write(kube, ns, &plan, live.route.as_ref(), &live.version_services, Write::Real)
                .await;
        match written {
            Ok(_) => return Ok(RoutedBy::Gateway(Box::new(plan))),
            Err(Error::Conflict { .. }) if attempt < MAX_ATTEMPTS => {
                live = after_conflict(kube, ns, &name, &mut pauses).await?;
            }
            Err(e) => return Err(e),
        }
    }
    unreachable!("the last attempt returns")
}

/// The Gateway API routing the live task derives.
pub async fn gateway_plan_of(kube: &Kube, live: &Live, force: Option<&str>) -> Result<GatewayPlan> {
    let svc = live_service(live)?;
    let mut ready = live.ready_versions();
    if let Some(v) = force
        && !ready.iter().any(|r| r == v)
    {
        ready.push(v.to_string());
    }
    super::gateway::checked_plan(kube, |features| {
        gateway::plan(&gateway::Inputs {
            svc,
            task: Some(&live.task),
            ready: &ready,
            existing: live.route.as_ref(),
            version_services: &live.version_services,
            features,
        })
    })
    .await
}

fn live_service(live: &Live) -> Result<&Service> {
    live.service.as_ref().ok_or_else(|| {
        Error::missing(
            "Service",
            &live.identity.namespace,
            &live.identity.service,
            "the task's Service is gone: offline the task",
        )
    })
}

/// The routing the live task derives (client routing).
pub fn plan_of(live: &Live, force: Option<&str>) -> Result<RoutingPlan> {
    let svc = live_service(live)?;
    let mut ready = live.ready_versions();
    if let Some(v) = force
        && !ready.iter().any(|r| r == v)
    {
        ready.push(v.to_string());
    }
    let mut plan = routing::plan(svc, &live.identity.app, Some(&live.task), &ready, live.vs.as_ref());
    routing::keep_policies(&mut plan.destination_rule, live.dr.as_ref());
    Ok(plan)
}

/// Reads everything again and brings the routing to what the task derives.
pub async fn converge(kube: &Kube, ns: &str, name: &str, choice: RoutingChoice) -> Result<RoutedBy> {
    let live = read_live(kube, ns, name, false).await?.0;
    route(kube, ns, live, choice, None, Policies::WithSubsets).await
}

/// The DestinationRule as written: with the traffic policies of the ServicePolicy labelled for
/// the app, as KubeSphere's controller gives them. Read only here, right before a DestinationRule
/// write, so the verbs that leave the DestinationRule alone make no extra request. Where the
/// ServicePolicy CRD is not served, or the user may not list ServicePolicies, the live
/// DestinationRule's policies stay as they are.
pub async fn with_service_policy(
    kube: &Kube,
    ns: &str,
    svc: &Service,
    dr: &DestinationRule,
) -> Result<DestinationRule> {
    let mut dr = dr.clone();
    let Some(selector) = routing::service_policy_selector(svc) else { return Ok(dr) };
    let policies = match kube.list::<ServicePolicy>(Some(ns), Some(&selector)).await {
        Ok(p) => p,
        Err(Error::NotFound { .. }) => vec![],
        Err(Error::Forbidden { .. }) => {
            tracing::info!(
                "may not list servicepolicies in {ns}: the DestinationRule keeps its live traffic policy"
            );
            vec![]
        }
        Err(e) => return Err(e),
    };
    routing::apply_service_policy(&mut dr, &policies)?;
    Ok(dr)
}

/// Writes both routing objects of a new task: the DestinationRule, then the VirtualService
/// guarded by the resourceVersion it was read at (`None`: it must not exist yet).
pub async fn write_plan(
    kube: &Kube,
    ns: &str,
    svc: &Service,
    r: &RoutingPlan,
    read_at: Option<&str>,
) -> Result<()> {
    if r.mode == routing::RoutingMode::Empty {
        return Ok(());
    }
    let dr = with_service_policy(kube, ns, svc, &r.destination_rule).await?;
    kube.apply(ns, &dr, Write::Real, true).await?;
    if !r.mode.writes_virtual_service() {
        return Ok(());
    }
    let mut vs = r.virtual_service.clone();
    vs.metadata.resource_version = read_at.map(str::to_string);
    kube.apply(ns, &vs, Write::Real, true).await?;
    Ok(())
}

/// Writes what differs from the live objects: the DestinationRule first, so the VirtualService
/// never names a subset it lacks; the VirtualService guarded by the resourceVersion it was read
/// at. Nothing is written when no version has ready pods.
pub async fn write_routing(
    kube: &Kube,
    ns: &str,
    r: &RoutingPlan,
    live: &Live,
    write: Write,
    policies: Policies,
) -> Result<()> {
    if r.mode == routing::RoutingMode::Empty {
        return Ok(());
    }
    if policies == Policies::Always || routing::dr_differs(live.dr.as_ref(), &r.destination_rule) {
        let dr = with_service_policy(kube, ns, live_service(live)?, &r.destination_rule).await?;
        if routing::dr_differs(live.dr.as_ref(), &dr) {
            kube.apply(ns, &dr, write, true).await?;
        }
    }
    if r.mode.writes_virtual_service() && routing::vs_differs(live.vs.as_ref(), &r.virtual_service) {
        let mut vs = r.virtual_service.clone();
        vs.metadata.resource_version = live.vs.as_ref().and_then(|v| v.metadata.resource_version.clone());
        kube.apply(ns, &vs, write, true).await?;
    }
    Ok(())
}

/// KubeSphere routes: its controller must drop the removed version's subset before the
/// Deployment goes, or traffic may briefly reach deleted pods (kubesphere-compat section 7).
pub async fn wait_routed_away(
    kube: &Kube,
    ns: &str,
    vs_name: &str,
    loser: &str,
    timeout: std::time::Duration,
) -> Result<()> {
    use kube::api::Api;
    use kube::runtime::wait::await_condition;
    let loser_owned = loser.to_string();
    let api: Api<VirtualService> = Api::namespaced(kube.client.clone(), ns);
    let cond =
        move |vs: Option<&VirtualService>| routing::routes_to(vs.map(|v| &v.spec), &loser_owned).is_none();
    match tokio::time::timeout(timeout, await_condition(api, vs_name, cond)).await {
        Ok(Ok(_)) => Ok(()),
        _ => Err(Error::Rollout {
            message: format!("KubeSphere still routes to {loser} after {timeout:?}"),
            hint: "check that ks-controller-manager runs".into(),
        }),
    }
}

/// The task is gone (offline): the Service's default route, to the kept version only.
pub async fn route_without_task(
    kube: &Kube,
    ns: &str,
    id: &TaskIdentity,
    keep: &str,
    loser: &str,
) -> Result<()> {
    if id.api == RouteApi::GatewayApi {
        return super::gateway::remove_task_routing(kube, ns, &id.service, &id.task).await;
    }
    let selector = id.pod_selector();
    let (svc, vs, dr, pods) = tokio::join!(
        kube.get::<Service>(ns, &id.service),
        kube.get::<VirtualService>(ns, &id.app),
        kube.get::<DestinationRule>(ns, &id.service),
        kube.list::<Pod>(Some(ns), Some(&selector)),
    );
    let svc = svc?.ok_or_else(|| Error::missing("Service", ns, &id.service, "the task's Service is gone"))?;
    let (vs, dr, pods) = (vs?, dr?, pods?);
    let ready: Vec<String> =
        routing::ready_versions_of_pods(&svc, &pods, Some(keep)).into_iter().filter(|v| v != loser).collect();
    let mut plan = routing::plan(&svc, &id.app, None, &ready, vs.as_ref());
    routing::keep_policies(&mut plan.destination_rule, dr.as_ref());
    if plan.mode == routing::RoutingMode::Empty {
        return Ok(());
    }
    if plan.mode == routing::RoutingMode::NoRoutes {
        // Nothing to route on any port: the VirtualService stays, the loser's subset too.
        return Ok(());
    }
    // The VirtualService first: it must leave the loser's subset before the subset goes.
    let mut v = plan.virtual_service.clone();
    v.metadata.resource_version = vs.as_ref().and_then(|v| v.metadata.resource_version.clone());
    kube.apply(ns, &v, Write::Real, true).await?;
    if routing::dr_differs(dr.as_ref(), &plan.destination_rule) {
        let want = with_service_policy(kube, ns, &svc, &plan.destination_rule).await?;
        kube.apply(ns, &want, Write::Real, true).await?;
    }
    Ok(())
}
