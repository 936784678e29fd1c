use clap::Args;

use super::Context;
use crate::cluster::access::preflight_with;
use crate::cluster::route::{Policies, RoutedBy, kubesphere_routes, mode_of, read_live, route};
use crate::error::Result;
use crate::plan::live::{Expect, check_owners};
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
    #[command(flatten)]
    pub force: super::change::Force,
}

pub async fn run(ctx: &Context, args: SyncArgs) -> Result<()> {
    let kube = ctx.kube().await?;
    let ns = kube.namespace.clone();
    let (live, rules) = read_live(&kube, &ns, &args.name, true).await?;
    let kubesphere = kubesphere_routes(args.routing, live.vs.as_ref());
    let expect = Expect { force: args.force.force, kubesphere, ..Expect::default() };
    for w in check_owners(&live, &expect)? {
        ctx.ui.warn(&w);
    }
    let perms = rbac::needs(rbac::Verb::Sync, mode_of(args.routing, &live));
    preflight_with(&kube, &ns, &format!("syncing task {}", args.name), &perms, rules.flatten()).await?;
    let (mode, service, first) = match route(&kube, &ns, live, args.routing, None, Policies::Always).await? {
        RoutedBy::Client(o) => (o.mode, o.service, o.subsets.first().cloned().unwrap_or_default()),
        RoutedBy::Gateway(o) => (o.mode, o.service, o.subsets.first().cloned().unwrap_or_default()),
        RoutedBy::Kubesphere { mirror_repaired: false } => {
            ctx.ui.info(&format!(
                "KubeSphere's controllers route task {}: nothing written (--routing client overrides)",
                args.name
            ));
            return Ok(());
        }
        RoutedBy::Kubesphere { mirror_repaired: true } => {
            ctx.ui.info(&format!(
                "KubeSphere's controllers route task {}: only its mirror was set on their VirtualService, which they do not carry over by themselves",
                args.name
            ));
            return Ok(());
        }
    };
    match mode {
        RoutingMode::Task => ctx.ui.info(&format!("routing of {service} follows task {}", args.name)),
        RoutingMode::Paused => ctx.ui.info(&format!(
            "routing of {service} stays on {first}: the task is paused (kubectl grayscale resume {})",
            args.name,
        )),
        RoutingMode::Default => ctx.ui.info(&format!(
            "routing of {service} stays on {first}: the task's versions do not all have ready pods yet"
        )),
        RoutingMode::Empty => {
            ctx.ui.warn(&format!("no version of {service} has ready pods: routing left unchanged"))
        }
        RoutingMode::NoRoutes => ctx.ui.warn(&format!(
            "task {} derives no route for any port of {}: its VirtualService is left as it is (as KubeSphere leaves it)",
            args.name, service
        )),
    }
    Ok(())
}
