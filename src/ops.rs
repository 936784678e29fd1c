//! I/O orchestration shared by commands: fetch what the planning core needs, write what it
//! returns.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;

use crate::cluster::{Kube, Write};
use crate::error::{Error, Result, Target};
use crate::model::istio::{DestinationRule, VirtualService};
use crate::model::strategy::{LABEL_APP, Strategy, normalize_version};
use crate::plan::eligibility::version_of;
use crate::plan::routing::{self, RoutingMode};

pub async fn get_task(kube: &Kube, ns: &str, name: &str) -> Result<Strategy> {
    kube.get::<Strategy>(ns, name).await?.ok_or_else(|| Error::NotFound {
        target: Target {
            action: "read",
            kind: "task".into(),
            namespace: Some(ns.into()),
            name: Some(name.into()),
        },
        message: String::new(),
        hint: Some(format!(
            "list the tasks with: kubectl grayscale list -n {ns} (or -A for every namespace)"
        )),
    })
}

/// The app label that ties Service, Deployments, Strategy and VirtualService together.
pub fn app_label(s: &Strategy) -> String {
    s.labels().get(LABEL_APP).cloned().unwrap_or_else(|| s.service().unwrap_or_default().to_string())
}

/// The task's pods: the Strategy's selector, as the console's detail page uses it.
pub fn selector_of(s: &Strategy) -> String {
    let labels = s
        .spec
        .selector
        .as_ref()
        .and_then(|l| l.match_labels.clone())
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| [(LABEL_APP.to_string(), app_label(s))].into());
    labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

/// Versions with ready pods among the Deployments the Service selects, principal first, as
/// KubeSphere's DestinationRule controller would list them.
pub fn ready_versions(svc: &Service, deployments: &[Deployment], principal: Option<&str>) -> Vec<String> {
    let selector = svc.spec.as_ref().and_then(|s| s.selector.clone()).unwrap_or_default();
    let mut out: Vec<String> = deployments
        .iter()
        .filter(|d| d.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0) > 0)
        .filter(|d| {
            let pl = d
                .spec
                .as_ref()
                .and_then(|s| s.template.metadata.as_ref())
                .and_then(|m| m.labels.clone())
                .unwrap_or_default();
            !selector.is_empty() && selector.iter().all(|(k, v)| pl.get(k) == Some(v))
        })
        .filter_map(version_of)
        .collect();
    out.sort();
    out.dedup();
    if let Some(p) = principal
        && let Some(i) = out.iter().position(|v| v == p)
    {
        let p = out.remove(i);
        out.insert(0, p);
    }
    out
}

pub struct RoutingOutcome {
    pub service: String,
    pub mode: RoutingMode,
    pub subsets: Vec<String>,
    pub destination_rule: DestinationRule,
    pub virtual_service: VirtualService,
}

/// The routing objects for a Service and its task, from objects already fetched.
pub fn plan_routing(
    svc: &Service,
    app: &str,
    strategy: Option<&Strategy>,
    ready: &[String],
    existing_vs: Option<&VirtualService>,
) -> RoutingOutcome {
    let dr = routing::destination_rule(svc, ready);
    let subsets: Vec<String> = ready.iter().map(|v| normalize_version(v)).collect();
    let (vs, mode) = routing::virtual_service(svc, app, strategy, &subsets, existing_vs);
    RoutingOutcome {
        service: svc.metadata.name.clone().unwrap_or_default(),
        mode,
        subsets,
        destination_rule: dr,
        virtual_service: vs,
    }
}

/// Writes DestinationRule then VirtualService, so the VirtualService never names a subset the
/// DestinationRule lacks. Nothing is written when no version has ready pods.
pub async fn write_routing(kube: &Kube, ns: &str, r: &RoutingOutcome, write: Write) -> Result<()> {
    if r.mode == RoutingMode::Empty {
        return Ok(());
    }
    kube.apply(ns, &r.destination_rule, write, true).await?;
    kube.apply(ns, &r.virtual_service, write, true).await?;
    Ok(())
}

/// Fetches the Service, its Deployments and its VirtualService, and re-derives its routing.
pub async fn sync_routing(
    kube: &Kube,
    ns: &str,
    strategy: Option<&Strategy>,
    service: Option<&str>,
    write: Write,
) -> Result<RoutingOutcome> {
    let svc_name = service.or(strategy.and_then(|s| s.service())).unwrap_or_default().to_string();
    let svc = kube.get::<Service>(ns, &svc_name).await?.ok_or_else(|| Error::NotFound {
        target: Target {
            action: "read",
            kind: "Service".into(),
            namespace: Some(ns.into()),
            name: Some(svc_name.clone()),
        },
        message: String::new(),
        hint: Some("the task's Service is gone: offline the task".into()),
    })?;
    let app = strategy.map(app_label).unwrap_or_else(|| svc_name.clone());
    let app_selector = format!("{LABEL_APP}={app}");
    let (deployments, vs) = tokio::try_join!(
        kube.list::<Deployment>(Some(ns), Some(&app_selector)),
        kube.get::<VirtualService>(ns, &app),
    )?;
    let principal = strategy.and_then(|s| s.spec.principal.clone());
    let ready = ready_versions(&svc, &deployments, principal.as_deref());
    let outcome = plan_routing(&svc, &app, strategy, &ready, vs.as_ref());
    write_routing(kube, ns, &outcome, write).await?;
    Ok(outcome)
}

/// Whether KubeSphere's controller-manager writes this VirtualService (it does for every
/// mesh-enabled Service under KubeSphere). Client routing would fight it.
pub fn managed_by_kubesphere(vs: Option<&VirtualService>) -> bool {
    vs.and_then(|v| v.metadata.managed_fields.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|m| m.manager.as_deref())
        .any(|m| m == "controller-manager" || m == "ks-controller-manager")
}
