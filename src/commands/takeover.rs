use clap::Args;

use super::Context;
use crate::cluster::route::{self, Request, RoutedBy};
use crate::cluster::task::Journal;
use crate::error::{Error, Result};
use crate::output::Format;
use crate::plan::fleet;
use crate::plan::live::Expect;
use crate::plan::operate::Change;
use crate::plan::routing::RoutingChoice;

const SINGLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

fn current_context(ctx: &Context) -> Result<String> {
    crate::cluster::current_context(ctx.global.kubeconfig.as_deref())?
        .ok_or_else(|| Error::Config("the kubeconfig has no current context: name one with --context".into()))
}

#[derive(Args, Debug)]
#[command(after_help = "Takes effect at once, with no prompt, in two rounds of API requests: one \
round of parallel reads (the task, its Service, VirtualService, DestinationRule and pods; without --as, \
a SelfSubjectReview asks the cluster who the user is), then one round of writes sent together: the \
task's governor, the VirtualService (client routing) or HTTPRoute, and the Event that records who took \
over, each write guarded by what was read. When one write is refused after the other landed, the \
take-over is applied again on fresh state until task and routing agree. Under KubeSphere routing, \
only the task is written and KubeSphere's controller routes.

Refused (exit 11, nothing written) when the version has no ready pod, when KubeSphere routes and its \
DestinationRule has no subset for it, or when the task is paused; --force routes to it anyway.

Examples:
  # Incident: send every port of the service back to the old version
  kubectl grayscale takeover reviews-canary --version v1

  # Give the new version all traffic
  kubectl grayscale takeover reviews-canary --version v2

  # Clear the take-over: the task's own routes apply again
  kubectl grayscale takeover reviews-canary --restore

  # Several clusters at once (a list, or /regex/ over the kubeconfig's contexts), each with its
  # own deadline; exit 14 and a retry command when not every cluster is done
  kubectl grayscale takeover reviews-canary --version v1 --context eu-1,us-1 --timeout 20s
  kubectl grayscale takeover reviews-canary --version v1 --context '/^prod-/' --dry-run")]
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
    /// The most the whole take-over may take (e.g. 10s; default 30s); past it, the command says
    /// what was applied and how to finish. Across clusters: each cluster's own deadline over
    /// connection, retries and every request (default 60s).
    #[arg(long, value_parser = crate::output::parse_duration)]
    pub timeout: Option<std::time::Duration>,
    /// Across clusters: how many clusters are read and written at once (default: all).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..), conflicts_with = "serial")]
    pub max_parallel: Option<u16>,
    /// Across clusters: one cluster at a time, in the order given, stopping at the first that
    /// fails (a canary cluster first).
    #[arg(long)]
    pub serial: bool,
    /// Across clusters: write to the clusters whose plan could be made even when another's
    /// could not (by default nothing is written anywhere then).
    #[arg(long)]
    pub allow_partial: bool,
    /// Read and judge every cluster, print the plan per cluster, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The result per cluster: table, json or yaml (with one context: selects the per-cluster
    /// report, as --dry-run does).
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Format>,
}

/// A single take-over as it always was, unless the flags ask for the per-cluster report.
fn per_cluster(args: &TakeoverArgs) -> bool {
    args.dry_run || args.output.is_some() || args.serial || args.allow_partial || args.max_parallel.is_some()
}

pub async fn run(ctx: &Context, args: TakeoverArgs) -> Result<()> {
    let sel = match ctx.global.context.as_deref() {
        Some(c) => fleet::parse(c)?,
        None => fleet::Selection::One(String::new()),
    };
    if sel.is_fleet() || per_cluster(&args) {
        let sel = match sel {
            // No --context: the kubeconfig's current context, by name.
            fleet::Selection::One(n) if n.is_empty() => fleet::Selection::One(current_context(ctx)?),
            s => s,
        };
        return super::takeover_fleet::run(ctx, args, sel).await;
    }
    let timeout = args.timeout.unwrap_or(SINGLE_TIMEOUT);
    if args.restore {
        let deadline = super::change::Deadline { timeout };
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
    let written = route::Progress::default();
    let warn = |w: &str| ctx.ui.warn(w);
    let req = Request {
        journal: Journal::Push("takeover"),
        choice: args.routing,
        preflight: false,
        expect: Expect { force: args.force, ..Expect::default() },
        warn: &warn,
        together: true,
    };
    let v = version.clone();
    let takeover =
        route::change(&kube, &ns, &args.name, req, move |_| Ok(Change::Takeover(v.clone())), &written);
    let outcome = match tokio::time::timeout(timeout, takeover).await {
        Ok(r) => r?,
        Err(_) => {
            let name = &args.name;
            let (done, next) = if written.task.get() {
                (
                    format!("task {name} has governor {version}, but its routing may not be written"),
                    format!("write the routing with: kubectl grayscale sync {name} -n {ns}"),
                )
            } else if written.sent.get() {
                (
                    "its writes went out but no answer came back: task and routing may each be as before or taken over".to_string(),
                    format!(
                        "run the same command again (it finishes a take-over that landed, or makes it): kubectl grayscale takeover {name} --version {version} -n {ns}"
                    ),
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
                message: format!("the take-over did not finish within {timeout:?}: {done}"),
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
