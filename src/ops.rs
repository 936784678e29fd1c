//! I/O orchestration shared by commands: fetch what the planning core needs, write what it
//! returns.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};

use crate::cluster::{Kube, Write};
use crate::error::{Error, Result, Target};
use crate::model::istio::{DestinationRule, VirtualService};
use crate::model::strategy::{LABEL_APP, Strategy, normalize_version};
use crate::plan::eligibility::version_of;
use crate::plan::journal;
use crate::plan::operate::{self, Change};
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

/// Sorted, deduplicated, the principal moved to the front: the DestinationRule's subset order,
/// which decides the default route.
fn principal_first(mut versions: Vec<String>, principal: Option<&str>) -> Vec<String> {
    versions.sort();
    versions.dedup();
    if let Some(p) = principal
        && let Some(i) = versions.iter().position(|v| v == p)
    {
        let p = versions.remove(i);
        versions.insert(0, p);
    }
    versions
}

/// Versions with ready pods among the Deployments the Service selects, principal first, as
/// KubeSphere's DestinationRule controller would list them.
pub fn ready_versions(svc: &Service, deployments: &[Deployment], principal: Option<&str>) -> Vec<String> {
    let selector = svc.spec.as_ref().and_then(|s| s.selector.clone()).unwrap_or_default();
    let out: Vec<String> = deployments
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
    principal_first(out, principal)
}

/// Versions with ready pods among the pods the Service selects, principal first. Pods, not
/// Deployment status: the status lags the pods by up to a controller sync, and a command that
/// routes right after a rollout must see the version it just watched become ready.
pub fn ready_versions_of_pods(svc: &Service, pods: &[Pod], principal: Option<&str>) -> Vec<String> {
    let selector = svc.spec.as_ref().and_then(|s| s.selector.clone()).unwrap_or_default();
    let out: Vec<String> = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            let l = p.metadata.labels.clone().unwrap_or_default();
            !selector.is_empty() && selector.iter().all(|(k, v)| l.get(k) == Some(v))
        })
        .filter(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .filter_map(|p| p.metadata.labels.as_ref()?.get(crate::model::strategy::LABEL_VERSION).cloned())
        .filter(|v| !v.is_empty())
        .collect();
    principal_first(out, principal)
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

/// Whether KubeSphere's controller-manager writes this VirtualService (it does for every
/// mesh-enabled Service under KubeSphere). Client routing would fight it.
pub fn managed_by_kubesphere(vs: Option<&VirtualService>) -> bool {
    vs.and_then(|v| v.metadata.managed_fields.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|m| m.manager.as_deref())
        .any(is_kubesphere_manager)
}

/// How the journal records a change.
pub enum Journal<'a> {
    Push(&'a str),
    /// Undo: the last entry is consumed, not added to.
    Pop,
}

pub struct Updated {
    pub before: Strategy,
    pub after: Strategy,
    pub changed: bool,
    /// Conflicting writes that were retried on fresh state.
    pub retries: u32,
}

const MAX_ATTEMPTS: u32 = 5;

/// Read, change, write with a resourceVersion precondition; on a conflict, read again and
/// re-apply the change to the fresh state, so concurrent updates are never lost.
pub async fn update_task(
    kube: &Kube,
    ns: &str,
    name: &str,
    journal: Journal<'_>,
    make: impl Fn(&Strategy) -> Result<Change>,
) -> Result<Updated> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let s = get_task(kube, ns, name).await?;
        let change = make(&s)?;
        let to = operate::apply(&s, &change)?;
        let from = operate::state_of(&s);
        if to == from {
            return Ok(Updated { before: s.clone(), after: s, changed: false, retries: attempt - 1 });
        }
        let mut entries = journal::read(&s);
        match journal {
            Journal::Push(action) => {
                let entry = journal::Entry {
                    at: k8s_openapi::jiff::Timestamp::now().to_string(),
                    by: kube.user.clone(),
                    action: action.to_string(),
                    from,
                    to: to.clone(),
                };
                entries = journal::push(entries, entry);
            }
            Journal::Pop => {
                entries.pop();
            }
        }
        let patch = operate::merge_patch(&s, &to, journal::annotation(&entries));
        match kube.merge_patch::<Strategy>(ns, name, &patch).await {
            Ok(after) => return Ok(Updated { before: s, after, changed: true, retries: attempt - 1 }),
            Err(Error::Conflict { .. }) if attempt < MAX_ATTEMPTS => continue,
            Err(Error::Conflict { target, message, .. }) => {
                return Err(Error::Conflict {
                    target,
                    message,
                    hint: Some(format!(
                        "the task kept changing under this command ({MAX_ATTEMPTS} attempts); see who else operates it: kubectl grayscale history {name} -n {ns}"
                    )),
                });
            }
            Err(e) => return Err(e),
        }
    }
}

/// Routing after a task changed. Client mode re-derives and writes the routing objects;
/// kubesphere mode leaves it to KubeSphere's controllers.
pub async fn route_task(kube: &Kube, ns: &str, s: &Strategy, choice: RoutingChoice) -> Result<RoutedBy> {
    let app = app_label(s);
    let (svc, pods, vs) = fetch_routing(kube, ns, s.service().unwrap_or_default(), &app).await?;
    let kubesphere = match choice {
        RoutingChoice::Client => false,
        RoutingChoice::Kubesphere => true,
        RoutingChoice::Auto => managed_by_kubesphere(vs.as_ref()),
    };
    if kubesphere {
        return Ok(RoutedBy::Kubesphere);
    }
    let ready = ready_versions_of_pods(&svc, &pods, s.spec.principal.as_deref());
    let outcome = plan_routing(&svc, &app, Some(s), &ready, vs.as_ref());
    write_routing(kube, ns, &outcome, Write::Real).await?;
    Ok(RoutedBy::Client(Box::new(outcome)))
}

/// What routing is derived from: the Service, the app's pods (readiness per version) and the
/// current VirtualService (fields users added, and who writes it).
pub async fn fetch_routing(
    kube: &Kube,
    ns: &str,
    svc_name: &str,
    app: &str,
) -> Result<(Service, Vec<Pod>, Option<VirtualService>)> {
    let app_selector = format!("{LABEL_APP}={app}");
    // One after the other on the client's kept-alive connection: concurrent requests each open
    // a TLS connection of their own, which measured slower (see BENCHMARKS.md).
    let svc = kube.get::<Service>(ns, svc_name).await?;
    let pods = kube.list::<Pod>(Some(ns), Some(&app_selector)).await?;
    let vs = kube.get::<VirtualService>(ns, app).await?;
    let svc = svc.ok_or_else(|| Error::NotFound {
        target: Target {
            action: "read",
            kind: "Service".into(),
            namespace: Some(ns.into()),
            name: Some(svc_name.to_string()),
        },
        message: String::new(),
        hint: Some("the task's Service is gone: offline the task".into()),
    })?;
    Ok((svc, pods, vs))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RoutingChoice {
    /// kubesphere when KubeSphere's controller-manager writes the Service's VirtualService, else client.
    Auto,
    /// The plugin writes the DestinationRule and VirtualService itself.
    Client,
    /// KubeSphere's controllers route; the plugin writes only the Strategy.
    Kubesphere,
}

pub enum RoutedBy {
    Client(Box<RoutingOutcome>),
    Kubesphere,
}

/// The incident path: every port to the governor with one server-side apply and no reads, so a
/// take-over costs three requests in all. Routes carry no port: Istio applies a port-less
/// route to every port of the host and keeps each request on its port.
pub async fn governor_routing(
    kube: &Kube,
    ns: &str,
    s: &Strategy,
    governor: &str,
    choice: RoutingChoice,
) -> Result<bool> {
    if choice == RoutingChoice::Kubesphere {
        return Ok(false);
    }
    let svc = s.service().unwrap_or_default().to_string();
    let subset = normalize_version(governor);
    let route = vec![crate::model::istio::RouteDestination::to(&svc, &subset, 100)];
    let vs = VirtualService {
        api_version: Some(format!(
            "{}/{}",
            crate::model::istio::ISTIO_GROUP,
            crate::model::istio::ISTIO_VERSION
        )),
        kind: Some("VirtualService".into()),
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(app_label(s)),
            namespace: Some(ns.into()),
            labels: s.metadata.labels.clone(),
            ..Default::default()
        },
        spec: crate::model::istio::VirtualServiceSpec {
            hosts: vec![svc.clone()],
            http: vec![crate::model::istio::HttpRoute { route: route.clone(), ..Default::default() }],
            tcp: vec![crate::model::istio::TcpRoute { route, ..Default::default() }],
            ..Default::default()
        },
    };
    let force = choice == RoutingChoice::Client;
    match kube.apply(ns, &vs, Write::Real, force).await {
        Ok(_) => Ok(true),
        Err(Error::Conflict { message, .. })
            if conflict_managers(&message).iter().any(|m| is_kubesphere_manager(m)) =>
        {
            Ok(false)
        }
        Err(Error::Conflict { .. }) => kube.apply(ns, &vs, Write::Real, true).await.map(|_| true),
        Err(e) => Err(e),
    }
}

fn is_kubesphere_manager(m: &str) -> bool {
    m == "controller-manager" || m == "ks-controller-manager"
}

/// Managers named in a server-side apply conflict: `conflict with "NAME" using ...`.
pub fn conflict_managers(message: &str) -> Vec<String> {
    message
        .split("conflict with \"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_messages_name_their_managers() {
        let m = r#"Apply failed with 2 conflicts: conflict with "controller-manager" using networking.istio.io/v1alpha3: .spec.http, conflict with "kubectl-edit" using networking.istio.io/v1alpha3: .spec.hosts"#;
        assert_eq!(conflict_managers(m), ["controller-manager", "kubectl-edit"]);
    }
}
