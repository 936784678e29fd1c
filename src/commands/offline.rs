use std::time::Duration;

use clap::Args;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;
use kube::runtime::wait::await_condition;

use super::Context;
use crate::cluster::{Kube, Write};
use crate::error::{Error, Result};
use crate::model::istio::VirtualService;
use crate::model::strategy::*;
use crate::ops::{self, Journal, RoutedBy};
use crate::output::{parse_duration, print};
use crate::plan::operate::{Change, versions};
use crate::plan::routing::{self, RoutingChoice};

#[derive(Args, Debug)]
#[command(
    after_help = "Ends the task keeping one version: sets the governor to it, waits until routing no longer \
sends traffic to the other version, deletes the other version's Deployment, deletes the task, and leaves \
routing on the kept version. Without --keep, the version that already takes all traffic is kept (a mirror \
task keeps its old version); a blue-green or canary task with no such version is refused, as in the console.

Examples:
  kubectl grayscale offline reviews-canary --keep v2
  kubectl grayscale delete reviews-shadow"
)]
pub struct OfflineArgs {
    /// The task's name.
    pub name: String,
    /// The version to keep.
    #[arg(long, value_name = "VERSION")]
    pub keep: Option<String>,
    /// Who writes the routing objects (see the README).
    #[arg(long, value_enum, default_value_t = RoutingChoice::Auto)]
    pub routing: RoutingChoice,
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
    let s = ops::get_task(&kube, &ns, &args.name).await?;
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
    let loser_workload = s
        .annotation(if loser == old { ANN_OLD_WORKLOAD } else { ANN_NEW_WORKLOAD })
        .map(str::to_string)
        .unwrap_or_else(|| format!("{}-{loser}", s.service().unwrap_or_default()));
    let mut done: Vec<String> = Vec::new();
    let fail = |done: &[String], e: Error| partial(done, e, &args.name, &keep, &ns);

    let k = keep.clone();
    let (_, routed) = ops::update_and_route(
        &kube,
        &ns,
        &args.name,
        ops::Edit {
            journal: Journal::Push("offline"),
            choice: args.routing,
            preflight: true,
            warn: &|w| ctx.ui.warn(w),
        },
        move |_| Ok(Change::Takeover(k.clone())),
    )
    .await
    .map_err(|e| fail(&done, e))?;
    done.push(format!("governor set to {keep}"));
    let client = match routed {
        RoutedBy::Client(_) => true,
        RoutedBy::Kubesphere => {
            wait_routed_away(&kube, &ns, &ops::app_label(&s), &loser, args.timeout)
                .await
                .map_err(|e| fail(&done, e))?;
            false
        }
    };
    done.push(format!("routing moved off {loser}"));

    kube.delete::<Deployment>(&ns, &loser_workload).await.map_err(|e| fail(&done, e))?;
    done.push(format!("Deployment {loser_workload} deleted"));
    kube.delete::<Strategy>(&ns, &args.name).await.map_err(|e| fail(&done, e))?;
    done.push(format!("task {} deleted", args.name));

    if client {
        final_routing(&kube, &ns, &s, &keep, &loser).await.map_err(|e| fail(&done, e))?;
    }
    print(&format!(
        "task {} is offline: kept {keep}, deleted {loser_workload}; {} now serves only {keep}\n",
        args.name,
        s.service().unwrap_or_default()
    ));
    Ok(())
}

/// KubeSphere mode: its controller must drop the removed version's subset before the
/// Deployment goes, or traffic may briefly reach deleted pods (kubesphere-compat section 7).
async fn wait_routed_away(
    kube: &Kube,
    ns: &str,
    vs_name: &str,
    loser: &str,
    timeout: Duration,
) -> Result<()> {
    let subset = normalize_version(loser);
    let api: Api<VirtualService> = Api::namespaced(kube.client.clone(), ns);
    let cond = move |vs: Option<&VirtualService>| {
        vs.is_none_or(|vs| {
            !serde_json::to_string(&vs.spec).unwrap_or_default().contains(&format!("\"subset\":\"{subset}\""))
        })
    };
    match tokio::time::timeout(timeout, await_condition(api, vs_name, cond)).await {
        Ok(Ok(_)) => Ok(()),
        _ => Err(Error::Rollout {
            message: format!("KubeSphere still routes to {loser} after {timeout:?}"),
            hint: "check that ks-controller-manager runs".into(),
        }),
    }
}

/// Client mode, task gone: the Service's default route, to the kept version only.
async fn final_routing(kube: &Kube, ns: &str, s: &Strategy, keep: &str, loser: &str) -> Result<()> {
    let app = ops::app_label(s);
    let vs = kube.get::<VirtualService>(ns, &app).await?;
    let (svc, pods) = ops::fetch_workloads(kube, ns, s.service().unwrap_or_default(), &app).await?;
    let ready: Vec<String> =
        routing::ready_versions_of_pods(&svc, &pods, Some(keep)).into_iter().filter(|v| v != loser).collect();
    let plan = routing::plan(&svc, &app, None, &ready, vs.as_ref());
    let read_at = vs.as_ref().and_then(|v| v.metadata.resource_version.clone());
    ops::write_routing(kube, ns, &plan, Write::Real, read_at.as_deref()).await
}
