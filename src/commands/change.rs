//! What every verb that changes a running task shares: the guarded update, routing, and the
//! before/after report.

use std::cell::Cell;
use std::time::Duration;

use super::Context;
use crate::error::{Error, Result};
use crate::model::strategy::Strategy;
use crate::ops::{self, Journal, RoutedBy, Updated};
use crate::output::print;
use crate::plan::operate::Change;
use crate::plan::routing::{RoutingChoice, RoutingMode};
use crate::view::task::{routing_view, traffic_summary};

pub fn summary(s: &Strategy) -> String {
    let mut t = traffic_summary(&routing_view(s));
    if s.policy() == crate::model::strategy::POLICY_PAUSED {
        t.push_str(" [paused]");
    }
    t
}

/// Tells where routing stands after a change (stderr).
pub fn report_routing(ctx: &Context, routed: &RoutedBy) {
    match routed {
        RoutedBy::Client(o) => match o.mode {
            RoutingMode::Task => ctx.ui.info(&format!("routing of {} follows the task", o.service)),
            RoutingMode::Default => ctx.ui.warn(&format!(
                "routing of {} stays on {}: the task's versions do not all have ready pods yet; it follows the task once they do (kubectl grayscale sync)",
                o.service,
                o.subsets.first().cloned().unwrap_or_default()
            )),
            RoutingMode::Empty => ctx.ui.warn(&format!(
                "no version of {} has ready pods: routing left unchanged",
                o.service
            )),
        },
        RoutedBy::Kubesphere => ctx.ui.info("KubeSphere's controllers apply the routing"),
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
    make: impl Fn(&Strategy) -> Result<Change>,
) -> Result<Updated> {
    let kube = ctx.kube().await?;
    let ns = kube.namespace.clone();
    let verb = match &journal {
        Journal::Push(v) => *v,
        Journal::Pop => "undo",
    };
    let written = Cell::new(false);
    let warn = |w: &str| ctx.ui.warn(w);
    let change = ops::update_and_route_noting(
        &kube,
        &ns,
        name,
        ops::Edit { journal, choice: routing, preflight: true, warn: &warn },
        make,
        &written,
    );
    let (updated, routed) = match tokio::time::timeout(deadline.timeout, change).await {
        Ok(r) => r?,
        Err(_) => return Err(deadline_error(verb, name, &ns, deadline.timeout, written.get())),
    };
    if updated.retries > 0 {
        ctx.ui.warn(&format!(
            "the task changed concurrently; re-applied on fresh state ({} retries)",
            updated.retries
        ));
    }
    if updated.changed {
        print(&format!("task {name}: {} -> {}\n", summary(&updated.before), summary(&updated.after)));
    } else {
        print(&format!("task {name} unchanged: {}\n", summary(&updated.after)));
    }
    report_routing(ctx, &routed);
    Ok(updated)
}
