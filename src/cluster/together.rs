//! The take-over's write round: the task, its routing and the Event that records the move go
//! out together, each write guarded by the resourceVersion it was read at. A take-over then
//! costs two round trips after the connection (its reads, its writes) where writing one after
//! the other costs four, which is what an incident pays for on a slow API server.
//!
//! The routing is derived from the task as the change will leave it, so it does not wait for
//! the task's answer. When one write is refused after the other landed, the take-over's intent
//! (this version takes everything) is applied again on fresh state until both agree:
//! - the task landed, the routing met a newer VirtualService or HTTPRoute: read again, route
//!   what the newest task derives (as every verb does after a conflicting routing write);
//! - the routing landed, the task changed under it (or its answer was lost): read again, look
//!   for this write's id, else judge the take-over against the newest task and write it; if it
//!   is now refused, the routing is brought back to what that task derives;
//! - the task write was refused for good (forbidden, invalid, gone): the routing written with
//!   it is brought back to what the task derives, and the error is returned.
//!
//! Only where the routing is the plugin's to write (client or Gateway API routing) and no
//! permission check comes first; anything else keeps the writes in order (`route::attempts`).

use k8s_openapi::jiff::Timestamp;

use super::Kube;
use super::Write;
use super::access::Rules;
use super::route::{
    Judged, Outcome, Progress, Request, attempts, finish, forced, judge, put_back, routing_failed,
};
use super::routing::{
    Policies, RoutedBy, check_api, converge, gateway_plan_of, kubesphere_routes, plan_of, write_routing,
};
use super::task::{change_patch, new_write_id, write_change};
use crate::error::{Error, Result};
use crate::model::strategy::Strategy;
use crate::plan::identity::RouteApi;
use crate::plan::live::Live;
use crate::plan::operate::{self, Change};
use crate::plan::{events, routing};

#[allow(clippy::too_many_arguments)]
pub(super) async fn change(
    kube: &Kube,
    ns: &str,
    name: &str,
    req: &Request<'_>,
    make: &impl Fn(&Strategy) -> Result<Change>,
    progress: &Progress,
    first: (Live, Option<Rules>),
) -> Result<Outcome> {
    let (live, rules) = first;
    if rules.is_some() || kubesphere_routes(req.choice, live.vs.as_ref()) {
        return attempts(kube, ns, name, req, make, progress, Some((live, rules)), None).await;
    }
    check_api(req.choice, &live)?;
    let Judged { change: c, to, warnings } = judge(&live, req, make)?;
    operate::console_warnings(&live.task, &c).iter().chain(&warnings).for_each(|w| (req.warn)(w));
    if to == operate::state_of(&live.task) {
        let before = live.task.clone();
        return finish(kube, ns, live, req, before, (false, false), 0).await;
    }
    let key = kube.check_routes(name, &live.task.spec.template.spec.http, &to.http, req.warn).await?;
    let id = new_write_id();
    let mut patch = change_patch(&live.task, &to, req.journal, &kube.user, &id);
    crate::plan::strategy_schema::spell_mirror_percentage(&mut patch, key);
    // The routing of the task as this write leaves it, planned before anything is written: a
    // plan that cannot be made refuses the take-over with nothing written.
    let mut predicted = operate::with_state(&live.task, &to);
    // The routing's stamp names the write it follows (`routing::task_stamp`).
    predicted.metadata.annotations.get_or_insert_default().insert(routing::ANN_WRITE_ID.into(), id.clone());
    let ahead = Live { task: predicted.clone(), ..live.clone() };
    let force = forced(req, &predicted);
    let planned = match live.identity.api {
        RouteApi::GatewayApi => {
            Planned::Gateway(Box::new(gateway_plan_of(kube, &ahead, force.as_deref()).await?))
        }
        RouteApi::Istio => Planned::Client(Box::new(plan_of(&ahead, force.as_deref())?)),
    };
    let ev = events::change_event(req.journal.verb(), &kube.user, &live.task, &predicted, Timestamp::now());
    crate::failpoint::gate(crate::failpoint::BEFORE_ROUTING_WRITE).await;
    progress.sent.set(true);
    let (task, routed, ()) = tokio::join!(
        async {
            // Told at once, not after the other writes: a deadline may cut those short.
            let written = write_change(kube, ns, name, &patch).await;
            progress.task.set(matches!(written, Ok(Some(_))));
            written
        },
        write_planned(kube, ns, planned, &live),
        super::events::record(kube, &ev, req.warn),
    );
    let result = settle(kube, ns, name, req, make, progress, live.task.clone(), (id, task), routed).await;
    if let Err(e) = &result {
        let failed = events::failed_event(
            req.journal.verb(),
            &kube.user,
            &live.task,
            &e.to_string(),
            Timestamp::now(),
        );
        super::events::record(kube, &failed, req.warn).await;
    }
    result
}

enum Planned {
    Client(Box<routing::RoutingPlan>),
    Gateway(Box<routing::gateway::GatewayPlan>),
}

async fn write_planned(kube: &Kube, ns: &str, planned: Planned, live: &Live) -> Result<RoutedBy> {
    match planned {
        Planned::Client(plan) => {
            write_routing(kube, ns, &plan, live, Write::Real, Policies::WithSubsets).await?;
            Ok(RoutedBy::Client(plan))
        }
        Planned::Gateway(plan) => {
            super::gateway::write(kube, ns, &plan, live.route.as_ref(), &live.version_services, Write::Real)
                .await?;
            Ok(RoutedBy::Gateway(plan))
        }
    }
}

/// What the two answers make of the take-over (see the module's comment).
#[allow(clippy::too_many_arguments)]
async fn settle(
    kube: &Kube,
    ns: &str,
    name: &str,
    req: &Request<'_>,
    make: &impl Fn(&Strategy) -> Result<Change>,
    progress: &Progress,
    before: Strategy,
    (id, task): (String, Result<Option<Strategy>>),
    routed: Result<RoutedBy>,
) -> Result<Outcome> {
    match (task, routed) {
        (Ok(Some(after)), Ok(routed)) => {
            progress.task.set(true);
            Ok(Outcome { before, after, changed: true, retries: 0, routed })
        }
        (Ok(Some(after)), Err(Error::Conflict { .. })) => {
            progress.task.set(true);
            let routed =
                converge(kube, ns, name, req.choice).await.map_err(|e| routing_failed(e, name, ns))?;
            Ok(Outcome { before, after, changed: true, retries: 1, routed })
        }
        (Ok(Some(after)), Err(e @ Error::Forbidden { .. })) => {
            progress.task.set(true);
            Err(put_back(kube, ns, name, &before, &after, e).await)
        }
        (Ok(Some(_)), Err(e)) => {
            progress.task.set(true);
            Err(routing_failed(e, name, ns))
        }
        (Ok(None), routed) => {
            let again = attempts(kube, ns, name, req, make, progress, None, Some((id, before))).await;
            match again {
                Err(e) if routed.is_ok() => Err(bring_back(kube, ns, name, req, e).await),
                other => other,
            }
        }
        (Err(e), Ok(_)) => Err(bring_back(kube, ns, name, req, e).await),
        (Err(e), Err(_)) => Err(e),
    }
}

/// The routing landed but the task does not carry the take-over: the routing goes back to what
/// the task derives (guarded by the resourceVersion this command's write left), so task and
/// routing agree again.
async fn bring_back(kube: &Kube, ns: &str, name: &str, req: &Request<'_>, e: Error) -> Error {
    match converge(kube, ns, name, req.choice).await {
        Ok(_) => e,
        Err(again) => Error::Partial {
            message: format!(
                "the take-over's routing was written but task {name} was not ({e}), and putting the routing back failed"
            ),
            hint: format!("bring the routing back to the task with: kubectl grayscale sync {name} -n {ns}"),
            source: Some(Box::new(again)),
        },
    }
}
