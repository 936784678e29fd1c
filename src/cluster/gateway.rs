//! Gateway API I/O: the Service's HTTPRoute, the served CRD's features, the per-version
//! Services, and the checks `--routing auto` makes before a task is created.

use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::api::Api;

use super::{Kube, Write};
use crate::error::{Error, Result};
use crate::model::gateway::{HTTPROUTE_CRD, HttpRoute};
use crate::plan::routing::gateway::{self, Features, GatewayPlan};

/// The Service's HTTPRoute (named after the Service); None when there is none or the cluster
/// does not serve HTTPRoute.
pub async fn get_route(kube: &Kube, ns: &str, svc: &str) -> Result<Option<HttpRoute>> {
    kube.get::<HttpRoute>(ns, svc).await
}

/// What the served HTTPRoute CRD has; None when the cluster does not serve HTTPRoute.
pub async fn features(kube: &Kube) -> Result<Option<Features>> {
    let Some(crd) = kube.crd(HTTPROUTE_CRD).await? else { return Ok(None) };
    let served =
        crd.spec.versions.iter().find(|v| v.name == crate::model::gateway::GATEWAY_VERSION && v.served);
    let Some(v) = served else { return Ok(None) };
    let schema = v
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .map(|s| serde_json::to_value(s).unwrap_or_default())
        .unwrap_or_default();
    Ok(Some(Features::of_schema(&schema)))
}

fn not_served() -> Error {
    Error::Ineligible {
        what: "this cluster does not serve Gateway API's HTTPRoute (gateway.networking.k8s.io/v1)".into(),
        hint: "install Gateway API's standard CRDs (v1.3 or later for percentage mirrors), or use --routing client".into(),
    }
}

/// Features the plan needs checked: only a mirror share below 100% depends on the CRD (where
/// it is not served, the API server would drop it and mirror everything).
pub async fn checked_plan(
    kube: &Kube,
    plan: impl Fn(Features) -> Result<GatewayPlan>,
) -> Result<GatewayPlan> {
    let p = plan(Features::ALL)?;
    let shares = p.route.spec.rules.iter().flat_map(|r| &r.filters).filter_map(|f| f.request_mirror.as_ref());
    if !shares.into_iter().any(|m| m.percent.is_some() || m.fraction.is_some()) {
        return Ok(p);
    }
    let f = features(kube).await?.ok_or_else(not_served)?;
    plan(f)
}

/// Writes the per-version Services the plan needs (each before the route names it), then the
/// route where it differs, guarded by the resourceVersion it was read at.
pub async fn write(
    kube: &Kube,
    ns: &str,
    p: &GatewayPlan,
    live_route: Option<&HttpRoute>,
    live_services: &[Service],
    write: Write,
) -> Result<Option<HttpRoute>> {
    if p.mode == crate::plan::routing::RoutingMode::Empty {
        return Ok(None);
    }
    for s in &p.services {
        let live = live_services.iter().find(|l| l.metadata.name == s.metadata.name);
        match live {
            Some(l)
                if gateway::service_differs(Some(l), s)
                    || l.metadata.owner_references != s.metadata.owner_references =>
            {
                kube.apply(ns, s, write, true).await?;
            }
            Some(_) => {}
            None => ensure_service(kube, ns, s, write).await?,
        }
    }
    if !gateway::route_differs(live_route, &p.route) {
        return Ok(live_route.cloned());
    }
    let mut r = p.route.clone();
    r.metadata.resource_version = live_route.and_then(|l| l.metadata.resource_version.clone());
    match kube.apply(ns, &r, write, true).await {
        Err(Error::NotFound { .. }) => Err(not_served()),
        other => other.map(Some),
    }
}

/// A per-version Service not seen live: created, never applied over one that appeared since
/// (a user's own is reused as it is; the plugin's is brought up to date).
async fn ensure_service(kube: &Kube, ns: &str, s: &Service, write: Write) -> Result<()> {
    match kube.create(ns, s, write).await {
        Ok(_) => Ok(()),
        Err(Error::Conflict { .. }) => {
            let name = s.metadata.name.clone().unwrap_or_default();
            match kube.get::<Service>(ns, &name).await? {
                Some(l) if gateway::is_ours(&l) => kube.apply(ns, s, write, true).await.map(|_| ()),
                _ => Ok(()),
            }
        }
        Err(e) => Err(e),
    }
}

/// The task is gone: the route loses the plugin's rules (or goes, if the plugin made it and
/// nothing else is left), then the per-version Services the plugin made go.
pub async fn remove_task_routing(kube: &Kube, ns: &str, svc: &str, task: &str) -> Result<()> {
    if let Some(live) = get_route(kube, ns, svc).await? {
        match gateway::without_task(&live) {
            None => {
                kube.delete::<HttpRoute>(ns, svc).await?;
            }
            Some(r) => {
                kube.apply(ns, &r, Write::Real, true).await?;
            }
        }
    }
    let selector = format!("{}={task}", gateway::LABEL_TASK);
    for s in kube.list::<Service>(Some(ns), Some(&selector)).await? {
        if let Some(name) = s.metadata.name.as_deref() {
            kube.delete::<Service>(ns, name).await?;
        }
    }
    Ok(())
}

/// HTTPRoutes in the namespace whose parent is the Service; None where HTTPRoute is not served.
pub async fn routes_with_parent(kube: &Kube, ns: &str, svc: &str) -> Result<Option<Vec<HttpRoute>>> {
    match kube.list::<HttpRoute>(Some(ns), None).await {
        Ok(routes) => Ok(Some(
            routes.into_iter().filter(|r| r.spec.parent_refs.iter().any(|p| p.is_service(svc))).collect(),
        )),
        Err(Error::NotFound { .. }) => Ok(None),
        // A user whose Role covers VirtualService routing only: taken as no HTTPRoute there
        // (an explicit --routing gateway-api then fails on its first HTTPRoute write, named).
        Err(Error::Forbidden { .. }) => {
            tracing::info!("may not list httproutes in {ns}: taking the Service to have no HTTPRoute");
            Ok(Some(Vec::new()))
        }
        Err(e) => Err(e),
    }
}

/// Whether the namespace is in Istio's ambient mode, and its waypoint label if any.
pub async fn ambient(kube: &Kube, ns: &str) -> Result<(bool, Option<String>)> {
    let api: Api<Namespace> = Api::all(kube.client.clone());
    let n = match api.get_opt(ns).await {
        Ok(n) => n,
        // May not read namespaces: not known to be ambient.
        Err(kube::Error::Api(s)) if s.code == 403 => None,
        Err(e) => return Err(super::classify(super::target::<Namespace>("read", None, Some(ns)), e)),
    };
    let labels = n.and_then(|n| n.metadata.labels).unwrap_or_default();
    Ok((
        labels.get("istio.io/dataplane-mode").map(String::as_str) == Some("ambient"),
        labels.get("istio.io/use-waypoint").cloned(),
    ))
}

/// After a write: what the mesh says of the route, once it has looked at this generation
/// (`status.parents`, Accepted and ResolvedRefs, Istio's ResolvedWaypoints message). Waits a
/// few seconds for the mesh; a mesh that has not answered by then is said so.
pub async fn accepted(kube: &Kube, ns: &str, svc: &str) -> Result<Vec<String>> {
    use kube::runtime::wait::await_condition;
    let api: Api<HttpRoute> = Api::namespaced(kube.client.clone(), ns);
    let name = svc.to_string();
    let seen = move |r: Option<&HttpRoute>| {
        r.is_some_and(|r| {
            let generation = r.metadata.generation;
            r.status.iter().flat_map(|s| &s.parents).filter(|p| p.parent_ref.name == name).any(|p| {
                p.conditions
                    .iter()
                    .any(|c| c.observed_generation.is_some() && c.observed_generation >= generation)
            })
        })
    };
    match tokio::time::timeout(std::time::Duration::from_secs(10), await_condition(api, svc, seen)).await {
        Ok(Ok(Some(r))) => Ok(gateway::not_accepted(&r, svc)),
        Ok(Ok(None)) => Ok(vec!["the HTTPRoute is gone".into()]),
        Ok(Err(e)) => Err(Error::Watch {
            message: format!("could not watch HTTPRoute {ns}/{svc} for the mesh's answer: {e}"),
            hint: format!("see it with: kubectl get httproute {svc} -n {ns} -o yaml"),
        }),
        Err(_) => Ok(vec![format!(
            "no mesh reported on this generation within 10s (status.parents); check that Istio's gateway controller runs: kubectl get httproute {svc} -n {ns} -o yaml"
        )]),
    }
}
