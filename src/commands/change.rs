//! What every verb that changes a running task shares: the guarded update, routing, and the
//! before/after report.

use super::Context;
use crate::error::Result;
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

/// Changes the task and converges its routing (also when the task was already in the wanted
/// state: its routing may not be); prints the routing before and after on stdout.
pub async fn change_and_route(
    ctx: &Context,
    name: &str,
    journal: Journal<'_>,
    routing: RoutingChoice,
    make: impl Fn(&Strategy) -> Result<Change>,
) -> Result<Updated> {
    let kube = ctx.kube().await?;
    let ns = kube.namespace.clone();
    let (updated, routed) = ops::update_and_route(
        &kube,
        &ns,
        name,
        ops::Edit { journal, choice: routing, preflight: true, warn: &|w| ctx.ui.warn(w) },
        make,
    )
    .await?;
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
