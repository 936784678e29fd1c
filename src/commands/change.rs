//! What every verb that changes a running task shares: the guarded update, routing, and the
//! before/after report.

use std::time::Duration;

use super::Context;
use crate::cluster::route::{self, Outcome, Request, RoutedBy};
use crate::cluster::task::Journal;
use crate::error::{Error, Result};
use crate::model::strategy::Strategy;
use crate::output::print;
use crate::plan::live::Expect;
use crate::plan::operate::Change;
use crate::plan::routing::{RoutingChoice, RoutingMode};
use crate::view::task::task_summary;

pub fn summary(s: &Strategy) -> String {
    task_summary(s)
}

/// Tells where routing stands after a change (stderr).
pub fn report_routing(ctx: &Context, routed: &RoutedBy) {
    let (mode, service, first) = match routed {
        RoutedBy::Client(o) => (o.mode, &o.service, o.subsets.first()),
        RoutedBy::Gateway(o) => (o.mode, &o.service, o.subsets.first()),
        RoutedBy::Kubesphere { .. } => return ctx.ui.info("KubeSphere's controllers apply the routing"),
    };
    let first = first.cloned().unwrap_or_default();
    match mode {
        RoutingMode::Task => ctx.ui.info(&format!("routing of {service} follows the task")),
        RoutingMode::Paused => ctx.ui.warn(&format!(
            "task paused: routing of {service} stays on {first} (the Service's default route) until: kubectl grayscale resume"
        )),
        RoutingMode::Default => ctx.ui.warn(&format!(
            "routing of {service} stays on {first}: the task's versions do not all have ready pods yet; it follows the task once they do (kubectl grayscale sync)"
        )),
        RoutingMode::Empty => {
            ctx.ui.warn(&format!("no version of {service} has ready pods: routing left unchanged"))
        }
        RoutingMode::NoRoutes => ctx.ui.warn(&format!(
            "the task derives no route for any port of {service}: its VirtualService is left as it is (as KubeSphere leaves it)"
        )),
    }
}

/// The whole-command deadline of the verbs that change a running task.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct Deadline {
    /// The most the whole command may take (e.g. 10s); past it, the command says what was
    /// applied and how to finish.
    #[arg(long, value_parser = crate::output::parse_duration, default_value = "60s")]
    pub timeout: Duration,
}

/// The override of the refusal to write a route another controller owns.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct Force {
    /// Write even when another controller (Argo Rollouts, Flagger, OpenKruise, KubeSphere 4.x)
    /// owns the route; it will likely put its own routing back.
    #[arg(long)]
    pub force: bool,
}

/// What a change cut short by its deadline had applied, and what to do next.
pub fn deadline_error(verb: &str, name: &str, ns: &str, timeout: Duration, task_written: bool) -> Error {
    let (done, next) = if task_written {
        (
            format!("task {name} was changed, but its routing was not written"),
            format!("write the routing with: kubectl grayscale sync {name} -n {ns}"),
        )
    } else {
        (
            format!("no change to task {name} was confirmed"),
            format!(
                "see whether it landed with: kubectl grayscale history {name} -n {ns}, before running it again \
                 (a relative change such as shift --by would apply twice)"
            ),
        )
    };
    Error::Deadline { message: format!("{verb} did not finish within {timeout:?}: {done}"), hint: next }
}

/// Changes the task and converges its routing (also when the task was already in the wanted
/// state: its routing may not be) within `deadline`; prints the routing before and after on
/// stdout.
pub async fn change_and_route(
    ctx: &Context,
    name: &str,
    journal: Journal<'_>,
    routing: RoutingChoice,
    deadline: Deadline,
    force: Force,
    make: impl Fn(&Strategy) -> Result<Change>,
) -> Result<Outcome> {
    let kube = ctx.kube().await?;
    let ns = kube.namespace.clone();
    let verb = journal.verb().to_string();
    let written = route::Progress::default();
    let warn = |w: &str| ctx.ui.warn(w);
    let expect = Expect { force: force.force, ..Expect::default() };
    let req = Request { journal, choice: routing, preflight: true, expect, warn: &warn, together: false };
    let change = route::change(&kube, &ns, name, req, make, &written);
    let outcome = match tokio::time::timeout(deadline.timeout, change).await {
        Ok(r) => r?,
        Err(_) => return Err(deadline_error(&verb, name, &ns, deadline.timeout, written.task.get())),
    };
    report(ctx, name, &outcome);
    Ok(outcome)
}

/// The routing before and after on stdout; retries and where routing stands on stderr.
pub fn report(ctx: &Context, name: &str, o: &Outcome) {
    report_lines(ctx, name, o);
    report_routing(ctx, &o.routed);
}

/// The routing before and after on stdout; retries on stderr.
pub fn report_lines(ctx: &Context, name: &str, o: &Outcome) {
    if o.retries > 0 {
        ctx.ui.warn(&format!(
            "the task changed concurrently; re-applied on fresh state ({} retries)",
            o.retries
        ));
    }
    if o.changed {
        print(&format!("task {name}: {} -> {}\n", summary(&o.before), summary(&o.after)));
    } else {
        print(&format!("task {name} unchanged: {}\n", summary(&o.after)));
    }
}
