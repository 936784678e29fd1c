use clap::Args;

use super::Context;
use crate::error::Result;
use crate::model::istio::VirtualService;
use crate::ops::{self, RoutedBy};
use crate::plan::rbac;
use crate::plan::routing::{RoutingChoice, RoutingMode};

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  # Route a task created with --no-wait once its new version is ready\n  \
kubectl grayscale sync reviews-canary\n\n  # Route a task written by the KubeSphere console on a cluster without KubeSphere's controllers\n  \
kubectl grayscale sync reviews-canary -n bookinfo"
)]
pub struct SyncArgs {
    /// The task's name.
    pub name: String,
    /// Who writes the routing objects (see the README); `client` overrides the detection.
    #[arg(long, value_enum, default_value_t = RoutingChoice::Auto)]
    pub routing: RoutingChoice,
}

pub async fn run(ctx: &Context, args: SyncArgs) -> Result<()> {
    let kube = ctx.kube().await?;
    let ns = kube.namespace.clone();
    let s = ops::get_task(&kube, &ns, &args.name).await?;
    let vs = kube.get::<VirtualService>(&ns, &ops::app_label(&s)).await?;
    let perms = rbac::needs(rbac::Verb::Sync, ops::mode_of(args.routing, vs.as_ref()));
    ops::preflight(&kube, &ns, &format!("syncing task {}", args.name), &perms).await?;
    // The task again, read after the VirtualService: the routing derived is never older.
    let start = (ops::get_task(&kube, &ns, &args.name).await?, vs);
    let outcome = match ops::converge(&kube, &ns, &args.name, Some(start), args.routing).await? {
        RoutedBy::Client(o) => o,
        RoutedBy::Kubesphere => {
            ctx.ui.info(&format!(
                "KubeSphere's controllers route task {}: nothing written (--routing client overrides)",
                args.name
            ));
            return Ok(());
        }
    };
    match outcome.mode {
        RoutingMode::Task => {
            ctx.ui.info(&format!("routing of {} follows task {}", outcome.service, args.name))
        }
        RoutingMode::Default => ctx.ui.info(&format!(
            "routing of {} stays on {}: the task's versions are not all ready yet, or it is paused",
            outcome.service,
            outcome.subsets.first().cloned().unwrap_or_default(),
        )),
        RoutingMode::Empty => {
            ctx.ui.warn(&format!("no version of {} has ready pods: routing left unchanged", outcome.service))
        }
    }
    Ok(())
}
