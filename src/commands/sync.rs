use clap::Args;

use super::Context;
use crate::cluster::Write;
use crate::error::Result;
use crate::ops;
use crate::plan::routing::RoutingMode;

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  # Route a task created with --no-wait once its new version is ready\n  \
kubectl grayscale sync reviews-canary\n\n  # Route a task written by the KubeSphere console on a cluster without KubeSphere's controllers\n  \
kubectl grayscale sync reviews-canary -n bookinfo"
)]
pub struct SyncArgs {
    /// The task's name.
    pub name: String,
}

pub async fn run(ctx: &Context, args: SyncArgs) -> Result<()> {
    let kube = ctx.kube().await?;
    let ns = kube.namespace.clone();
    let s = ops::get_task(&kube, &ns, &args.name).await?;
    let outcome = ops::sync_routing(&kube, &ns, Some(&s), None, Write::Real).await?;
    match outcome.mode {
        RoutingMode::Task => {
            ctx.ui.info(&format!("routing of {} follows task {}", outcome.service, args.name))
        }
        RoutingMode::Default => ctx.ui.info(&format!(
            "routing of {} stays on {}: the task's versions are not all ready yet (policy {})",
            outcome.service,
            outcome.subsets.first().cloned().unwrap_or_default(),
            s.policy()
        )),
        RoutingMode::Empty => {
            ctx.ui.warn(&format!("no version of {} has ready pods: routing left unchanged", outcome.service))
        }
    }
    Ok(())
}
