//! The read round of every verb: the task, its Service, VirtualService, DestinationRule and
//! pods (and the user's permissions when asked), all at once, named from the identity cache.

use k8s_openapi::api::core::v1::{Pod, Service};

use super::access::Rules;
use super::task::{get_task, missing_task};
use super::{Kube, identity_cache};
use crate::error::{Error, Result};
use crate::model::gateway::HttpRoute;
use crate::model::istio::{DestinationRule, VirtualService};
use crate::model::strategy::Strategy;
use crate::plan::identity::{Names, RouteApi, TaskIdentity};
use crate::plan::live::Live;
use crate::plan::owners;

/// One parallel round of reads by the names given.
async fn read_round(
    kube: &Kube,
    ns: &str,
    name: &str,
    n: &Names,
    rules: bool,
) -> Result<(Live, Option<Rules>)> {
    let selector = n.pod_selector();
    let (task, svc, routing, pods, rollouts, rules) = tokio::join!(
        kube.get::<Strategy>(ns, name),
        kube.get::<Service>(ns, &n.service),
        routing_objects(kube, ns, n),
        kube.list::<Pod>(Some(ns), Some(&selector)),
        kube.rollouts(ns),
        async {
            match rules {
                true => kube.rules_review(ns).await.map(Some),
                false => Ok(None),
            }
        },
    );
    let task = task?.ok_or_else(|| missing_task(ns, name))?;
    let service = svc?;
    let identity = TaskIdentity::of(&task, service.as_ref());
    let rollouts = owners::rollouts_naming(&rollouts?.unwrap_or_default(), &identity.app, ns);
    let Routing { vs, dr, route, version_services } = routing?;
    let live = Live { identity, task, service, vs, dr, pods: pods?, rollouts, route, version_services };
    Ok((live, rules?))
}

#[derive(Default)]
struct Routing {
    vs: Option<VirtualService>,
    dr: Option<DestinationRule>,
    route: Option<HttpRoute>,
    version_services: Vec<Service>,
}

/// Two requests in parallel either way: the VirtualService and DestinationRule, or the
/// HTTPRoute and the namespace's Services (the per-version ones among them).
async fn routing_objects(kube: &Kube, ns: &str, n: &Names) -> Result<Routing> {
    match n.api {
        RouteApi::Istio => {
            let (vs, dr) = tokio::join!(
                kube.get::<VirtualService>(ns, &n.app),
                kube.get::<DestinationRule>(ns, &n.service)
            );
            Ok(Routing { vs: vs?, dr: dr?, ..Routing::default() })
        }
        RouteApi::GatewayApi => {
            let (route, services) = tokio::join!(
                super::gateway::get_route(kube, ns, &n.service),
                kube.list::<Service>(Some(ns), None)
            );
            Ok(Routing { route: route?, version_services: services?, ..Routing::default() })
        }
    }
}

/// Everything a verb relies on about a task, in one round when its identity is cached (two on
/// the first command about a task on this machine, three if the task's guess was wrong).
pub async fn read_live(kube: &Kube, ns: &str, name: &str, rules: bool) -> Result<(Live, Option<Rules>)> {
    let cached = identity_cache::load(&kube.server, ns, name);
    let mut names = match &cached {
        Some(id) => id.names(),
        None => TaskIdentity::guess(&get_task(kube, ns, name).await?).names(),
    };
    let mut rules = rules;
    let mut kept = None;
    for _ in 0..3 {
        let (live, r) = read_round(kube, ns, name, &names, rules).await?;
        if r.is_some() {
            (kept, rules) = (r, false);
        }
        if live.identity.names() == names {
            if cached.as_ref() != Some(&live.identity) && live.service.is_some() {
                identity_cache::store(&kube.server, &live.identity);
            }
            return Ok((live, kept));
        }
        names = live.identity.names();
    }
    Err(Error::Conflict {
        target: Default::default(),
        message: format!("task {name}'s Service kept changing while it was read"),
        hint: Some("run the command again".into()),
    })
}
