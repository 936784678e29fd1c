use clap::Args;

use super::Context;
use super::change::summary;
use crate::error::{Error, Result};
use crate::ops::{self, Journal, RoutedBy};
use crate::output::print;
use crate::plan::operate::Change;
use crate::plan::routing::RoutingChoice;

#[derive(Args, Debug)]
#[command(after_help = "Takes effect at once, with no prompt and three API requests: read the task, \
write its governor, write the VirtualService (client routing).

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
    let takeover = ops::takeover(&kube, &ns, &args.name, &version, args.routing, &warn, &written);
    let (updated, routed) = match tokio::time::timeout(args.timeout, takeover).await {
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
    print(&format!("task {}: {} -> {}\n", args.name, summary(&updated.before), summary(&updated.after)));
    match routed {
        RoutedBy::Client(_) => ctx.ui.info(&format!(
            "every port of {} now goes to {version}",
            updated.after.service().unwrap_or_default()
        )),
        RoutedBy::Kubesphere => ctx.ui.info("KubeSphere's controllers apply the routing"),
    }
    Ok(())
}
