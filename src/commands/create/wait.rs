//! Following the new version's rollout after `create`, and moving routing once it is ready.

use std::time::Instant;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;

use super::CreateArgs;
use super::hints::{failure_hint, interrupted_hint};
use crate::cluster::route as ops;
use crate::cluster::{Kube, PodChange, await_routing, pod_events};
use crate::commands::Context;
use crate::error::{Error, Result};
use crate::model::istio::DestinationRule;
use crate::model::istio::VirtualService;
use crate::model::strategy::{LABEL_APP, LABEL_VERSION, Strategy};
use crate::plan::create::Plan;
use crate::plan::pods::pod_view;
use crate::plan::routing::{self, RoutingChoice, RoutingPlan};
use crate::rollout::{Display, Tracker};
use crate::task::request::CreateRequest;

/// What `create` wrote that routing builds on.
pub struct Written {
    pub strategy: Strategy,
    /// The VirtualService as last written or read: its resourceVersion guards the next write.
    pub vs: Option<VirtualService>,
}

/// Every pod of the app, both versions: the new version's are followed, the old version's
/// readiness decides when routing may move.
struct AppPods(BTreeMap<String, Pod>);

impl AppPods {
    fn ready(&self, p: &Plan) -> Vec<String> {
        let pods: Vec<Pod> = self.0.values().cloned().collect();
        routing::ready_versions_of_pods(&p.service, &pods, Some(&p.principal))
    }
}

fn version_of(pod: &Pod) -> &str {
    pod.metadata.labels.as_ref().and_then(|l| l.get(LABEL_VERSION)).map(String::as_str).unwrap_or("")
}

pub async fn follow(
    ctx: &Context,
    kube: &Kube,
    p: &Plan,
    mut written: Written,
    mut interrupt: crate::signal::Interrupt,
    req: &CreateRequest,
    args: &CreateArgs,
) -> Result<()> {
    let ns = &p.namespace;
    let deploy = p.deployment.metadata.name.clone().unwrap_or_default();
    let desired = p.deployment.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    if desired <= 0 {
        // Copied from an old version scaled to zero: there is nothing to become ready.
        ctx.ui.warn(&format!(
            "{deploy} has 0 replicas, so routing stays on {}; scale it up, then route it with: kubectl grayscale sync {} -n {ns}",
            p.principal, req.name
        ));
        return Ok(());
    }
    let mut display = Display::new(ctx.ui.progress, ctx.ui.err_color(), &deploy, desired);
    let mut tracker = Tracker::default();
    let mut watch = pod_events(kube, ns, &format!("{LABEL_APP}={}", p.app_label));
    let mut app_pods = AppPods(BTreeMap::new());
    let mut waiting_for_old = false;
    let deadline = tokio::time::Instant::now() + args.timeout;
    let mut routed = false;
    display.status("waiting for pods");
    loop {
        let wake = tracker
            .next_deadline(args.fail_after)
            .map(tokio::time::Instant::from_std)
            .map_or(deadline, |f| f.min(deadline));
        tokio::select! {
            ev = watch.next() => match ev? {
                PodChange::Applied(pod) => {
                    let name = pod.metadata.name.clone().unwrap_or_default();
                    if version_of(&pod) == req.version {
                        let v = pod_view(&pod);
                        if tracker.apply(v.clone(), Instant::now()) {
                            display.pod(&v);
                        }
                    }
                    app_pods.0.insert(name, *pod);
                }
                PodChange::Deleted(pod) => {
                    let name = pod.metadata.name.clone().unwrap_or_default();
                    if version_of(&pod) == req.version {
                        tracker.remove(&name);
                        display.gone(&name);
                    }
                    app_pods.0.remove(&name);
                }
            },
            _ = tokio::time::sleep_until(wake) => {}
            _ = interrupt.recv() => {
                display.finish();
                return Err(Error::Interrupted {
                    message: format!("stopped following {deploy}; the task {ns}/{} stays", req.name),
                    hint: interrupted_hint(p, req),
                });
            }
        }
        display.ready(tracker.ready(), desired);
        if let Some(f) = tracker.persistent_failure(Instant::now(), args.fail_after) {
            let f = f.clone();
            display.finish();
            return Err(Error::Rollout {
                message: format!(
                    "rollout of {deploy} failed: pod {} is {}{} for more than {:?}; {}",
                    f.name,
                    f.state,
                    f.message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default(),
                    args.fail_after,
                    if routed {
                        "routing already includes it".to_string()
                    } else {
                        format!("no traffic was sent to {}", req.version)
                    }
                ),
                hint: failure_hint(p, req, &f.name),
            });
        }
        if tokio::time::Instant::now() >= deadline {
            display.finish();
            let why = if waiting_for_old {
                format!(
                    "{deploy} is ready but the old version {} has no ready pod after {:?}: routing was left on the old version",
                    p.principal, args.timeout
                )
            } else {
                format!(
                    "{deploy} is not ready after {:?} ({}/{desired} pods ready)",
                    args.timeout,
                    tracker.ready()
                )
            };
            return Err(Error::Rollout { message: why, hint: failure_hint(p, req, "") });
        }
        if !routed && tracker.ready() >= 1 {
            if !p.kubesphere() && !app_pods.ready(p).contains(&p.principal) {
                if !waiting_for_old {
                    display.note(&format!(
                        "the old version {} has no ready pod yet: routing waits for it, so {} gets no more than the task gives it",
                        p.principal, req.version
                    ));
                    display.status("waiting for the old version");
                }
                waiting_for_old = true;
                continue;
            }
            display.status("routing");
            route(kube, p, &mut written, &app_pods.ready(p), req, &display, deadline).await?;
            routed = true;
            display.status("routed; waiting for the remaining pods");
        }
        if routed && tracker.ready() >= desired {
            break;
        }
    }
    display.status("done");
    display.finish();
    ctx.ui.info(&format!(
        "{} is ready ({desired}/{desired}) and routed; see it with: kubectl grayscale status {} -n {ns}",
        req.version, req.name
    ));
    Ok(())
}

async fn route(
    kube: &Kube,
    p: &Plan,
    written: &mut Written,
    ready: &[String],
    req: &CreateRequest,
    display: &Display,
    deadline: tokio::time::Instant,
) -> Result<()> {
    let ns = &p.namespace;
    if p.gateway {
        // The per-version Services and the HTTPRoute, from fresh reads of everything.
        let failed = |e| ops::routing_failed(e, &req.name, ns);
        if let ops::RoutedBy::Gateway(g) =
            ops::converge(kube, ns, &req.name, RoutingChoice::GatewayApi).await.map_err(failed)?
        {
            let summary =
                crate::view::task::traffic_summary(&crate::view::task::routing_view(&written.strategy));
            display.note(&format!("routing applied to HTTPRoute {} (Gateway API): {summary}", g.service));
            for why in crate::cluster::gateway::accepted(kube, ns, &g.service).await? {
                display.note(&format!("warning: the mesh has not accepted HTTPRoute {}: {why}", g.service));
            }
        }
        return Ok(());
    }
    if let Some(r) =
        p.routing_when_ready(&written.strategy, ready, written.vs.as_ref()).filter(|_| p.client_routing)
    {
        let read_at = written.vs.as_ref().and_then(|v| v.metadata.resource_version.clone());
        let failed = |e| ops::routing_failed(e, &req.name, ns);
        let r = match ops::write_plan(kube, ns, &p.service, &r, read_at.as_deref()).await {
            Ok(()) => r,
            // Someone changed the routing since it was pinned: route the latest task from fresh reads.
            Err(Error::Conflict { .. }) => {
                match ops::converge(kube, ns, &req.name, RoutingChoice::Client).await.map_err(failed)? {
                    ops::RoutedBy::Client(r) => *r,
                    ops::RoutedBy::Kubesphere { .. } | ops::RoutedBy::Gateway(_) => {
                        unreachable!("client routing was asked for")
                    }
                }
            }
            Err(e) => return Err(failed(e)),
        };
        let summary = crate::view::task::traffic_summary(&crate::view::task::routing_view(&written.strategy));
        display.note(&format!("routing applied to {} ({}): {summary}", r.service, ctx_mode(&r)));
        return Ok(());
    }
    // KubeSphere routes: wait until its controllers have put the task's routes in place (for a
    // blue-green task whose old version governs, that is "all traffic to the old version").
    if let Some(why) = routing::kubesphere_never_routes(&written.strategy) {
        display.note(&format!("warning: {why}; not waiting for it (route this task with --routing client)"));
        return Ok(());
    }
    display.note("waiting for KubeSphere's controllers to route the task");
    let svc = &p.service;
    let svc_name = svc.metadata.name.clone().unwrap_or_default();
    let s = &written.strategy;
    let done = |dr: Option<&DestinationRule>, vs: Option<&VirtualService>| {
        routing::kubesphere_routed(svc, &p.app_label, s, dr, vs)
    };
    match tokio::time::timeout_at(deadline, await_routing(kube, ns, &svc_name, &p.app_label, done)).await {
        Ok(Ok(())) => {
            display.note("KubeSphere routed the task");
            Ok(())
        }
        Ok(Err(e)) => Err(e),
        Err(_) => Err(Error::Rollout {
            message: format!("KubeSphere did not route task {} before the timeout", req.name),
            hint: format!(
                "check that KubeSphere's controller-manager runs (kubectl get virtualservice {} -n {ns} -o yaml shows what it wrote); the task stays: see it with kubectl grayscale status {} -n {ns}",
                p.app_label, req.name
            ),
        }),
    }
}

fn ctx_mode(r: &RoutingPlan) -> &'static str {
    match r.mode {
        crate::plan::routing::RoutingMode::Task => "client routing",
        _ => "default route",
    }
}
