use clap::Args;

use super::Context;
use crate::cluster::route::{self, Request, RoutedBy};
use crate::cluster::task::Journal;
use crate::error::{Error, Result};
use crate::plan::live::Expect;
use crate::plan::operate::Change;
use crate::plan::routing::RoutingChoice;

#[derive(Args, Debug)]
#[command(after_help = "Takes effect at once, with no prompt, in three rounds of API requests: one \
round of parallel reads (the task, its Service, VirtualService, DestinationRule and pods), the task's \
governor, the VirtualService (client routing); then the Event that records who took over. Without --as, \
one SelfSubjectReview before the reads asks the cluster who the user is.

Refused (exit 11, nothing written) when the version has no ready pod, when KubeSphere routes and its \
DestinationRule has no subset for it, or when the task is paused; --force routes to it anyway.

Examples:
  # Incident: send every port of the service back to the old version
  kubectl grayscale takeover reviews-canary --version v1

  # Give the new version all traffic
  kubectl grayscale takeover reviews-canary --version v2

  # Clear the take-over: the task's own routes apply again
  kubectl grayscale takeover reviews-canary --restore")]
pub struct TakeoverArgs {
    /// The task's name.
    pub name: String,
    /// The version that takes all traffic.
    #[arg(
        long = "version",
        value_name = "VERSION",
        required_unless_present = "restore",
        conflicts_with = "restore"
    )]
    pub version: Option<String>,
    /// Clear the governor.
    #[arg(long)]
    pub restore: bool,
    /// Route to the version even when it has no ready pod (every request to it fails until it
    /// has), or when another controller owns the route (it will likely put its routing back).
    #[arg(long)]
    pub force: bool,
    /// Who writes the routing objects (see the README).
    #[arg(long, value_enum, default_value_t = RoutingChoice::Auto)]
    pub routing: RoutingChoice,
    /// The most the whole take-over may take (e.g. 10s); past it, the command says what was
    /// applied and how to finish.
    #[arg(long, value_parser = crate::output::parse_duration, default_value = "30s")]
    pub timeout: std::time::Duration,
}

pub async fn run(ctx: &Context, args: TakeoverArgs) -> Result<()> {
    if args.restore {
        let deadline = super::change::Deadline { timeout: args.timeout };
        super::change::change_and_route(
            ctx,
            &args.name,
            Journal::Push("restore"),
            args.routing,
            deadline,
            super::change::Force { force: args.force },
            |_| Ok(Change::Restore),
        )
        .await?;
        return Ok(());
    }
    let version = args.version.clone().unwrap_or_default();
    let kube = ctx.kube().await?;
    let ns = kube.namespace.clone();
    let written = std::cell::Cell::new(false);
    let warn = |w: &str| ctx.ui.warn(w);
    let req = Request {
        journal: Journal::Push("takeover"),
        choice: args.routing,
        preflight: false,
        expect: Expect { force: args.force, ..Expect::default() },
        warn: &warn,
    };
    let v = version.clone();
    let takeover =
        route::change(&kube, &ns, &args.name, req, move |_| Ok(Change::Takeover(v.clone())), &written);
    let outcome = match tokio::time::timeout(args.timeout, takeover).await {
        Ok(r) => r?,
        Err(_) => {
            let name = &args.name;
            let (done, next) = if written.get() {
                (
                    format!("task {name} has governor {version}, but its VirtualService was not written"),
                    format!("write the routing with: kubectl grayscale sync {name} -n {ns}"),
                )
            } else {
                (
                    "nothing was written".to_string(),
                    format!(
                        "run the same command again: kubectl grayscale takeover {name} --version {version} -n {ns}"
                    ),
                )
            };
            return Err(Error::Deadline {
                message: format!("the take-over did not finish within {:?}: {done}", args.timeout),
                hint: next,
            });
        }
    };
    super::change::report_lines(ctx, &args.name, &outcome);
    match &outcome.routed {
        RoutedBy::Gateway(p) if p.mode == crate::plan::routing::RoutingMode::Task => {
            ctx.ui.info(&format!("all of {} now goes to {version} (HTTPRoute {})", p.service, p.service))
        }
        RoutedBy::Client(p) if p.mode == crate::plan::routing::RoutingMode::Task => ctx.ui.info(&format!(
            "every port of {} now goes to {version}",
            outcome.after.service().unwrap_or_default()
        )),
        other => super::change::report_routing(ctx, other),
    }
    Ok(())
}
