//! `create`'s writes: pin routing, the Deployment, the task; undone or recovered on failure.

use k8s_openapi::api::apps::v1::Deployment;
use serde::Serialize;

use super::{json, ready_with_new};
use crate::cluster::{Kube, Write};
use crate::commands::Context;
use crate::error::{Error, Result};
use crate::model::istio::VirtualService;
use crate::model::strategy::Strategy;
use crate::plan::create::Plan;
use crate::plan::routing::RoutingMode;

/// Pins routing to the old version, creates the Deployment, then the Strategy. A failure after
/// the Deployment was created deletes it again, so the cluster is as before (routing pinned to
/// the old version is what it served anyway). Returns the objects written and the
/// VirtualService as written, whose resourceVersion guards the next routing write.
pub(super) async fn write_objects(
    ctx: &Context,
    kube: &Kube,
    p: &Plan,
    write: Write,
) -> Result<(Vec<serde_json::Value>, Strategy, Option<VirtualService>)> {
    let ns = &p.namespace;
    let mut written = Vec::new();
    let mut vs = p.existing_vs.clone();
    if p.gateway {
        // Pinned to the old version before the new one exists; the per-version Services are
        // owned by the task once it exists.
        let features = crate::plan::routing::gateway::Features::ALL;
        let g = p.gateway_routing(&p.strategy, &p.old_ready, p.existing_route.as_ref(), features)?;
        let live = p.existing_route.as_ref();
        crate::cluster::gateway::write(kube, ns, &g, live, &[], write).await?;
    }
    if let Some(r) = p.initial_routing() {
        if r.mode == RoutingMode::Empty {
            ctx.ui.warn(&format!(
                "the old version {} has no ready pods: routing is left as it is until it has",
                p.principal
            ));
        } else {
            let dr =
                crate::cluster::route::with_service_policy(kube, ns, &p.service, &r.destination_rule).await?;
            kube.apply(ns, &dr, write, true).await?;
            if r.mode.writes_virtual_service() {
                let mut v = r.virtual_service.clone();
                v.metadata.resource_version = vs.as_ref().and_then(|v| v.metadata.resource_version.clone());
                vs = Some(kube.apply(ns, &v, write, true).await?);
            }
        }
    }
    let deployment = match kube.create(ns, &p.deployment, write).await {
        Err(e) if e.answer_lost() => {
            recover(kube, ns, &p.deployment, e, |d: &Deployment| {
                d.spec.as_ref().map(|s| &s.template.metadata)
                    == p.deployment.spec.as_ref().map(|s| &s.template.metadata)
            })
            .await?
        }
        other => other?,
    };
    written.push(json(&deployment));
    crate::failpoint::gate(crate::failpoint::BEFORE_TASK_CREATE).await;
    let created = match kube.create(ns, &p.strategy, write).await {
        Err(e) if e.answer_lost() => {
            recover(kube, ns, &p.strategy, e, |s: &Strategy| s.spec == p.strategy.spec).await
        }
        other => other,
    };
    let strategy = match created {
        Ok(s) => s,
        Err(e) => {
            if write == Write::DryRun {
                return Err(e);
            }
            let name = p.deployment.metadata.name.clone().unwrap_or_default();
            let undone = match kube.delete::<Deployment>(ns, &name).await {
                Ok(_) => {
                    format!("the new Deployment {ns}/{name} was deleted again; nothing is left to clean up")
                }
                Err(u) => format!(
                    "deleting the new Deployment {ns}/{name} also failed ({u}): delete it with kubectl delete deployment {name} -n {ns}"
                ),
            };
            return Err(Error::Partial {
                message: "the task could not be created".into(),
                hint: format!("{undone}; then run the same command again"),
                source: Some(Box::new(e)),
            });
        }
    };
    written.insert(0, json(&strategy));
    if p.gateway && write == Write::Real {
        own_version_services(kube, p, &strategy).await?;
    }
    if write == Write::DryRun
        && let Some(r) = p.routing_when_ready(&p.strategy, &ready_with_new(p), p.existing_vs.as_ref())
    {
        let dr =
            crate::cluster::route::with_service_policy(kube, ns, &p.service, &r.destination_rule).await?;
        written.push(json(&kube.apply(ns, &dr, write, true).await?));
        written.push(json(&kube.apply(ns, &r.virtual_service, write, true).await?));
    }
    Ok((written, strategy, vs))
}

/// The per-version Services written before the task existed become the task's, so that they
/// go when it does.
async fn own_version_services(kube: &Kube, p: &Plan, strategy: &Strategy) -> Result<()> {
    use k8s_openapi::api::core::v1::Service;
    let ns = &p.namespace;
    for v in [&p.principal, &p.new_version] {
        let want = crate::plan::routing::gateway::per_version_service(&p.service, v, strategy);
        let name = want.metadata.name.clone().unwrap_or_default();
        if let Some(live) = kube.get::<Service>(ns, &name).await?
            && crate::plan::routing::gateway::is_ours(&live)
        {
            kube.apply(ns, &want, Write::Real, true).await?;
        }
    }
    Ok(())
}

/// A create whose answer was lost: the object is read back and taken as created by this
/// command if it is what this command wrote; if it is not there, the create is sent again; if
/// something else has that name, the original error stands.
async fn recover<K>(kube: &Kube, ns: &str, obj: &K, lost: Error, ours: impl Fn(&K) -> bool) -> Result<K>
where
    K: kube::Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + serde::de::DeserializeOwned
        + Serialize
        + Clone
        + std::fmt::Debug,
{
    let name = obj.meta().name.clone().unwrap_or_default();
    match kube.get::<K>(ns, &name).await? {
        Some(found) if ours(&found) => Ok(found),
        Some(_) => Err(lost),
        None => kube.create(ns, obj, Write::Real).await,
    }
}
