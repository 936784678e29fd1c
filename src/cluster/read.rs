//! The read round of every verb: the task, its Service, VirtualService, DestinationRule and
//! pods (and the user's permissions when asked), all at once, named from the identity cache.

use k8s_openapi::api::core::v1::{Pod, Service};

use super::access::Rules;
use super::task::{get_task, missing_task};
use super::{Kube, identity_cache};
use crate::error::{Error, Result};
use crate::model::istio::{DestinationRule, VirtualService};
use crate::model::strategy::Strategy;
use crate::plan::identity::{Names, TaskIdentity};
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
    let (task, svc, vs, dr, pods, rollouts, rules) = tokio::join!(
        kube.get::<Strategy>(ns, name),
        kube.get::<Service>(ns, &n.service),
        kube.get::<VirtualService>(ns, &n.app),
        kube.get::<DestinationRule>(ns, &n.service),
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
    let live = Live { identity, task, service, vs: vs?, dr: dr?, pods: pods?, rollouts };
    Ok((live, rules?))
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
