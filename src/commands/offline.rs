use std::time::Duration;

use clap::Args;
use k8s_openapi::api::apps::v1::Deployment;

use super::Context;
use crate::cluster::route::{self, Request, RoutedBy};
use crate::cluster::task::{Journal, get_task};
use crate::error::{Error, Result};
use crate::model::strategy::*;
use crate::output::{parse_duration, print};
use crate::plan::identity::RouteApi;
use crate::plan::live::Expect;
use crate::plan::operate::{Change, versions};
use crate::plan::routing::{self, RoutingChoice, gateway};

#[derive(Args, Debug)]
#[command(after_help = "Ends the task keeping one version: sets the governor to it (refused, keeping both \
versions, when it has no ready pod), reads the routing back (or, under KubeSphere, waits) until it no longer \
sends traffic to the other version, deletes the other version's Deployment, deletes the task, and leaves \
routing on the kept version. Without --keep, the version that already takes all traffic is kept (a mirror \
task keeps its old version); a blue-green or canary task with no such version is refused, as in the console.

Examples:
  kubectl grayscale offline reviews-canary --keep v2
  kubectl grayscale delete reviews-shadow")]
pub struct OfflineArgs {
    /// The task's name.
    pub name: String,
    /// The version to keep.
    #[arg(long, value_name = "VERSION")]
    pub keep: Option<String>,
    /// Who writes the routing objects (see the README).
    #[arg(long, value_enum, default_value_t = RoutingChoice::Auto)]
    pub routing: RoutingChoice,
    #[command(flatten)]
    pub force: super::change::Force,
    /// How long to wait for KubeSphere to route away from the removed version.
    #[arg(long, value_parser = parse_duration, default_value = "2m")]
    pub timeout: Duration,
}

fn partial(done: &[String], e: Error, name: &str, keep: &str, ns: &str) -> Error {
    Error::Partial {
        // A step that itself stopped half-way says what it did in its own message.
        message: match (done.is_empty(), matches!(e, Error::Partial { .. })) {
            (true, true) => "offline stopped in its first step".to_string(),
            (true, false) => "offline stopped; done so far: nothing".to_string(),
            (false, _) => format!("offline stopped; done so far: {}", done.join(", ")),
        },
        source: Some(Box::new(e)),
        hint: format!(
            "run the same command again to finish: kubectl grayscale offline {name} --keep {keep} -n {ns}"
        ),
    }
}

pub async fn run(ctx: &Context, args: OfflineArgs) -> Result<()> {
    let kube = ctx.kube().await?;
    let ns = kube.namespace.clone();
    // Who the user is goes out with the first read: the journal and both Events name them.
    let (s, user) = tokio::join!(get_task(&kube, &ns, &args.name), crate::cluster::whoami::user(&kube));
    let s = s?;
    let kube = kube.with_user(user);
    let (old, new) = versions(&s);
    let new = new.unwrap_or_default();
    let keep = match (&args.keep, s.governor(), s.task_type()) {
        (Some(k), _, _) => k.clone(),
        (None, Some(g), _) => g.to_string(),
        (None, None, Some(TaskType::Mirror)) => old.clone(),
        _ => {
            return Err(Error::Ineligible {
                what: format!(
                    "task {} has no version taking all traffic: select a version to take over all traffic first",
                    args.name
                ),
                hint: format!(
                    "choose the version to keep: kubectl grayscale offline {} --keep {old}|{new} -n {ns}",
                    args.name
                ),
            });
        }
    };
    if keep != old && keep != new {
        return Err(Error::invalid(
            "--keep",
            format!("task {} has versions {old} and {new}, not {keep}", args.name),
        ));
    }
    let loser = if keep == old { new.clone() } else { old.clone() };
    let mut done: Vec<String> = Vec::new();
    let fail = |done: &[String], e: Error| partial(done, e, &args.name, &keep, &ns);

    // The take-over's own checks refuse a kept version with no ready pod: both versions stay.
    let k = keep.clone();
    let warn = |w: &str| ctx.ui.warn(w);
    let req = Request {
        journal: Journal::Push("offline"),
        choice: args.routing,
        preflight: true,
        expect: Expect { force: args.force.force, ..Expect::default() },
        warn: &warn,
        together: false,
    };
    let written = crate::cluster::route::Progress::default();
    let outcome =
        match route::change(&kube, &ns, &args.name, req, move |_| Ok(Change::Takeover(k.clone())), &written)
            .await
        {
            Ok(o) => o,
            Err(
                e @ (Error::NotLive { .. }
                | Error::Owned { .. }
                | Error::Invalid(_)
                | Error::Ineligible { .. }),
            ) => {
                return Err(e);
            }
            Err(e) => return Err(fail(&done, e)),
        };
    done.push(format!("governor set to {keep}"));
    let id = crate::plan::identity::TaskIdentity::of(&outcome.after, None);
    let (id, client) = match &outcome.routed {
        RoutedBy::Client(plan) => {
            // Read back: the Deployment goes only once the live routing has left it.
            let live = route::read_live(&kube, &ns, &args.name, false).await.map_err(|e| fail(&done, e))?.0;
            if let Some(dest) = routing::routes_to(live.vs.as_ref().map(|v| &v.spec), &loser) {
                return Err(fail(
                    &done,
                    Error::NotLive {
                        message: format!(
                            "the VirtualService {} still sends traffic to {loser} ({dest}) after routing all of {} to {keep}; nothing was deleted",
                            live.identity.app, plan.service
                        ),
                        hint: format!("see who routes it: kubectl grayscale status {} -n {ns}", args.name),
                    },
                ));
            }
            (live.identity, true)
        }
        RoutedBy::Gateway(plan) => {
            let live = route::read_live(&kube, &ns, &args.name, false).await.map_err(|e| fail(&done, e))?.0;
            let left = live.route.as_ref().and_then(|r| gateway::routes_to(r, &plan.service, &loser));
            if let Some(dest) = left {
                return Err(fail(
                    &done,
                    Error::NotLive {
                        message: format!(
                            "the HTTPRoute {} still sends traffic to {loser} ({dest}) after routing all of it to {keep}; nothing was deleted",
                            plan.service
                        ),
                        hint: format!("see who routes it: kubectl grayscale status {} -n {ns}", args.name),
                    },
                ));
            }
            (live.identity, true)
        }
        RoutedBy::Kubesphere { .. } => {
            route::wait_routed_away(&kube, &ns, &id.app, &loser, args.timeout)
                .await
                .map_err(|e| fail(&done, e))?;
            (id, false)
        }
    };
    done.push(format!("routing moved off {loser}"));

    let loser_workload = id.workload_of(&loser).unwrap_or_default().to_string();
    kube.delete::<Deployment>(&ns, &loser_workload).await.map_err(|e| fail(&done, e))?;
    done.push(format!("Deployment {loser_workload} deleted"));
    // Gateway API: the route leaves the per-version Services (back to the Service itself, which
    // now selects only the kept version) before they go, and they go before the task, whose
    // garbage collection would otherwise delete them while the route still names them.
    let gateway = id.api == RouteApi::GatewayApi;
    if gateway {
        route::route_without_task(&kube, &ns, &id, &keep, &loser).await.map_err(|e| fail(&done, e))?;
        done.push("the task's HTTPRoute rules and per-version Services removed".into());
    }
    kube.delete::<Strategy>(&ns, &args.name).await.map_err(|e| fail(&done, e))?;
    done.push(format!("task {} deleted", args.name));

    if client && !gateway {
        route::route_without_task(&kube, &ns, &id, &keep, &loser).await.map_err(|e| fail(&done, e))?;
    }
    let now = k8s_openapi::jiff::Timestamp::now();
    let ev = crate::plan::events::offline_event(&kube.user, &outcome.after, &keep, &loser_workload, now);
    crate::cluster::events::record(&kube, &ev, &warn).await;
    print(&format!(
        "task {} is offline: kept {keep}, deleted {loser_workload}; {} now serves only {keep}\n",
        args.name, id.service
    ));
    Ok(())
}
