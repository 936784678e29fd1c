//! Following the new version's rollout after `create`, and moving routing once it is ready.

use std::time::Instant;

use kube::api::Api;
use kube::runtime::wait::await_condition;

use super::{CreateArgs, Plan, final_routing};
use crate::cluster::{Kube, PodChange, Write, pod_events};
use crate::commands::Context;
use crate::error::{Error, Result};
use crate::model::istio::VirtualService;
use crate::model::strategy::normalize_version;
use crate::ops;
use crate::rollout::{Display, Tracker};
use crate::task::request::CreateRequest;
use crate::view::pods::pod_view;

fn selector(p: &Plan) -> String {
    let labels = p.deployment.spec.as_ref().and_then(|s| s.selector.match_labels.clone()).unwrap_or_default();
    labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

pub async fn follow(
    ctx: &Context,
    kube: &Kube,
    p: &Plan,
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
    let mut watch = pod_events(kube, ns, &selector(p));
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
                    let v = pod_view(&pod);
                    if tracker.apply(v.clone(), Instant::now()) {
                        display.pod(&v);
                    }
                }
                PodChange::Deleted(pod) => {
                    let name = pod.metadata.name.clone().unwrap_or_default();
                    tracker.remove(&name);
                    display.gone(&name);
                }
            },
            _ = tokio::time::sleep_until(wake) => {}
            _ = tokio::signal::ctrl_c() => {
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
            return Err(Error::Rollout {
                message: format!(
                    "{deploy} is not ready after {:?} ({}/{desired} pods ready)",
                    args.timeout,
                    tracker.ready()
                ),
                hint: failure_hint(p, req, ""),
            });
        }
        if !routed && tracker.ready() >= 1 {
            display.status("routing");
            route(kube, p, req, &display, deadline).await?;
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
    req: &CreateRequest,
    display: &Display,
    deadline: tokio::time::Instant,
) -> Result<()> {
    let ns = &p.namespace;
    if let Some(r) = final_routing(p) {
        ops::write_routing(kube, ns, &r, Write::Real).await.map_err(|e| Error::Partial {
            message: format!("the new version is ready but routing could not be written: {e}"),
            hint: format!("retry with: kubectl grayscale sync {} -n {ns}", req.name),
        })?;
        let summary = crate::view::task::traffic_summary(&crate::view::task::routing_view(&p.strategy));
        display.note(&format!("routing applied to {} ({}): {summary}", r.service, ctx_mode(&r)));
        return Ok(());
    }
    // KubeSphere routes: wait for its controller to send traffic to the new subset.
    let subset = normalize_version(&req.version);
    let api: Api<VirtualService> = Api::namespaced(kube.client.clone(), ns);
    let cond = move |vs: Option<&VirtualService>| {
        vs.is_some_and(|vs| {
            let text = serde_json::to_string(&vs.spec).unwrap_or_default();
            text.contains(&format!("\"subset\":\"{subset}\""))
        })
    };
    display.note("waiting for KubeSphere's controllers to route the new version");
    match tokio::time::timeout_at(deadline, await_condition(api, &p.app_label, cond)).await {
        Ok(Ok(_)) => {
            display.note("KubeSphere routed the new version");
            Ok(())
        }
        _ => Err(Error::Rollout {
            message: format!("KubeSphere did not route {} before the timeout", req.version),
            hint: format!(
                "check that ks-controller-manager runs; on a cluster without KubeSphere create with --routing=client, or route now with: kubectl grayscale sync {} -n {ns}",
                req.name
            ),
        }),
    }
}

fn ctx_mode(r: &ops::RoutingOutcome) -> &'static str {
    match r.mode {
        crate::plan::routing::RoutingMode::Task => "client routing",
        _ => "default route",
    }
}

fn interrupted_hint(p: &Plan, req: &CreateRequest) -> String {
    let ns = &p.namespace;
    format!(
        "follow it with: kubectl grayscale status {n} -n {ns}; when the new version is ready, route it with: kubectl grayscale sync {n} -n {ns}",
        n = req.name
    )
}

fn failure_hint(p: &Plan, req: &CreateRequest, pod: &str) -> String {
    let ns = &p.namespace;
    let deploy = p.deployment.metadata.name.clone().unwrap_or_default();
    let inspect = if pod.is_empty() {
        format!("kubectl describe deployment {deploy} -n {ns}")
    } else {
        format!("kubectl describe pod {pod} -n {ns}")
    };
    format!(
        "the task {n} stays and traffic stays on {old}. Inspect: {inspect}. Fix the image: kubectl set image deployment/{deploy} CONTAINER=IMAGE -n {ns}, then kubectl grayscale sync {n} -n {ns}. Or end the task keeping {old}: kubectl grayscale offline {n} --keep {old} -n {ns}",
        n = req.name,
        old = p.principal
    )
}
