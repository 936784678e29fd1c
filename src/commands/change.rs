//! What every verb that changes a running task shares: the guarded update, routing, and the
//! before/after report.

use super::Context;
use crate::error::Result;
use crate::model::strategy::Strategy;
use crate::ops::{self, Journal, RoutedBy, RoutingChoice, Updated};
use crate::output::print;
use crate::plan::operate::Change;
use crate::view::task::{routing_view, traffic_summary};

pub fn summary(s: &Strategy) -> String {
    let mut t = traffic_summary(&routing_view(s));
    if s.policy() == crate::model::strategy::POLICY_PAUSED {
        t.push_str(" [paused]");
    }
    t
}

/// Changes the task and its routing; prints the routing before and after on stdout.
pub async fn change_and_route(
    ctx: &Context,
    name: &str,
    journal: Journal<'_>,
    routing: RoutingChoice,
    make: impl Fn(&Strategy) -> Result<Change>,
) -> Result<Updated> {
    let kube = ctx.kube().await?;
    let ns = kube.namespace.clone();
    let updated = ops::update_task(&kube, &ns, name, journal, make).await?;
    if updated.retries > 0 {
        ctx.ui.warn(&format!(
            "the task changed concurrently; re-applied on fresh state ({} retries)",
            updated.retries
        ));
    }
    if !updated.changed {
        print(&format!("task {name} unchanged: {}\n", summary(&updated.after)));
        return Ok(updated);
    }
    let routed = ops::route_task(&kube, &ns, &updated.after, routing).await.map_err(|e| {
        crate::error::Error::Partial {
            message: format!("task {name} was changed but its routing could not be written: {e}"),
            hint: format!("write the routing with: kubectl grayscale sync {name} -n {ns}"),
        }
    })?;
    print(&format!("task {name}: {} -> {}\n", summary(&updated.before), summary(&updated.after)));
    match routed {
        RoutedBy::Client(o) => {
            ctx.ui.info(&format!("routing of {} written ({:?})", o.service, o.mode).to_lowercase())
        }
        RoutedBy::Kubesphere => ctx.ui.info("KubeSphere's controllers apply the routing"),
    }
    Ok(updated)
}
