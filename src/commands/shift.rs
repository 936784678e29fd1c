use std::time::Duration;

use clap::Args;
use k8s_openapi::api::core::v1::Pod;

use super::Context;
use super::change::{change_and_route, summary};
use crate::cluster::{Kube, PodChange, pod_events_from};
use crate::error::{Error, Result};
use crate::model::strategy::Strategy;
use crate::ops::{self, Journal};
use crate::output::{parse_duration, print};
use crate::plan::operate::{Change, current_weight, versions};
use crate::plan::rbac;
use crate::plan::routing::RoutingChoice;
use crate::plan::schedule::{Health, steps};
use crate::view::pods::pod_view;

#[derive(Args, Debug)]
#[command(
    after_help = "Canary tasks routing by ratio. A weight of 100 makes the new version the governor, 0 the \
old one, anything else clears the governor (the console's rule).

A gradual shift (--to) writes one step per interval and watches the new version's pods: if it loses \
ready pods or its restart count grows, the shift stops, goes back to the last healthy weight and exits 9. \
Ctrl-C stops at a step boundary, leaves the task and its routing consistent and exits 130.

Examples:
  kubectl grayscale shift reviews-canary --weight 30
  kubectl grayscale shift reviews-canary --by +10
  kubectl grayscale shift reviews-canary --by -20
  kubectl grayscale shift reviews-canary --to 100 --step 20 --interval 5m"
)]
pub struct ShiftArgs {
    /// The task's name.
    pub name: String,
    /// Set the new version's weight to W percent.
    #[arg(long, value_name = "W", conflicts_with_all = ["by", "to"], required_unless_present_any = ["by", "to"])]
    pub weight: Option<i64>,
    /// Change the new version's weight by N percentage points (+N or -N).
    #[arg(long, value_name = "N", allow_hyphen_values = true, conflicts_with = "to")]
    pub by: Option<i64>,
    /// Shift gradually to W percent.
    #[arg(long, value_name = "W")]
    pub to: Option<i64>,
    /// Percentage points per step of a gradual shift.
    #[arg(long, value_name = "S", default_value_t = 10, requires = "to")]
    pub step: i64,
    /// Time between steps of a gradual shift (e.g. 30s, 5m).
    #[arg(long, value_parser = parse_duration, default_value = "1m", requires = "to")]
    pub interval: Duration,
    /// Who writes the routing objects (see the README).
    #[arg(long, value_enum, default_value_t = RoutingChoice::Auto)]
    pub routing: RoutingChoice,
}

fn weight_of(s: &Strategy) -> Result<i64> {
    current_weight(s).map(i64::from).ok_or_else(|| {
        Error::invalid(
            "shift",
            format!(
                "task {} has no traffic ratio to shift (it is not a canary by traffic)",
                s.metadata.name.clone().unwrap_or_default()
            ),
        )
    })
}

fn in_range(field: &str, w: i64) -> Result<u8> {
    if (0..=100).contains(&w) {
        Ok(w as u8)
    } else {
        Err(Error::invalid(
            field,
            format!("the new version's weight would be {w}; it must stay between 0 and 100"),
        ))
    }
}

pub async fn run(ctx: &Context, args: ShiftArgs) -> Result<()> {
    if let Some(to) = args.to {
        in_range("--to", to)?;
        if !(1..=100).contains(&args.step) {
            return Err(Error::invalid("--step", format!("{} must be between 1 and 100", args.step)));
        }
        return gradual(ctx, &args, to as u8).await;
    }
    if let Some(w) = args.weight {
        in_range("--weight", w)?;
    }
    let (weight, by) = (args.weight, args.by);
    change_and_route(ctx, &args.name, Journal::Push("shift"), args.routing, move |s| {
        let target = match (weight, by) {
            (Some(w), _) => w,
            (None, Some(n)) => weight_of(s)? + n,
            _ => unreachable!("clap requires one of them"),
        };
        Ok(Change::Weight(in_range(if weight.is_some() { "--weight" } else { "--by" }, target)?))
    })
    .await?;
    Ok(())
}

async fn set_weight(
    ctx: &Context,
    kube: &Kube,
    ns: &str,
    name: &str,
    w: u8,
    routing: RoutingChoice,
) -> Result<Strategy> {
    let (u, _) = ops::update_and_route(
        kube,
        ns,
        name,
        ops::Edit {
            journal: Journal::Push("shift"),
            choice: routing,
            preflight: false,
            warn: &|w| ctx.ui.warn(w),
        },
        move |_| Ok(Change::Weight(w)),
    )
    .await?;
    if u.retries > 0 {
        ctx.ui.warn(&format!(
            "the task changed concurrently; re-applied on fresh state ({} retries)",
            u.retries
        ));
    }
    Ok(u.after)
}

async fn gradual(ctx: &Context, args: &ShiftArgs, target: u8) -> Result<()> {
    let kube = ctx.kube().await?;
    let ns = kube.namespace.clone();
    let name = args.name.clone();
    let s = ops::get_task(&kube, &ns, &name).await?;
    let start = weight_of(&s)? as u8;
    // Every step writes the task and its routing: check all of it once, before the first.
    let vs = kube.get::<crate::model::istio::VirtualService>(&ns, &ops::app_label(&s)).await?;
    let perms = rbac::needs(rbac::Verb::ShiftGradual, ops::mode_of(args.routing, vs.as_ref()));
    ops::preflight(&kube, &ns, &format!("shifting task {name}"), &perms).await?;
    let plan = steps(start, target, args.step as u8);
    let (_, new) = versions(&s);
    let new = new.unwrap_or_default();
    let selector = format!("{},version={new}", ops::selector_of(&s));
    let (pods, rv) = kube.list_with_version::<Pod>(&ns, &selector).await?;
    let mut health = Health::new(pods.iter().map(pod_view));
    let mut watch = pod_events_from(&kube, &ns, &selector, &rv);
    let bar = super::schedule_ui::Bar::new(ctx.ui.progress, &name, start, target);
    let mut interrupt = crate::signal::Interrupt::install()?;
    let mut healthy = start;
    let mut at = start;
    for (i, w) in plan.iter().copied().enumerate() {
        set_weight(ctx, &kube, &ns, &name, w, args.routing).await?;
        at = w;
        bar.step(w, target);
        if i + 1 == plan.len() {
            break;
        }
        let deadline = tokio::time::Instant::now() + args.interval;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break,
                _ = tick.tick() => bar.waiting(deadline.saturating_duration_since(tokio::time::Instant::now())),
                ev = watch.next() => {
                    match ev? {
                        PodChange::Applied(p) => health.apply(pod_view(&p)),
                        PodChange::Deleted(p) => health.remove(p.metadata.name.as_deref().unwrap_or_default()),
                    }
                    if let Some(reason) = health.degraded() {
                        bar.finish();
                        set_weight(ctx, &kube, &ns, &name, healthy, args.routing).await?;
                        return Err(Error::HealthGate {
                            message: format!("{reason}; the shift stopped and went back to {healthy}% for {new}"),
                            hint: format!(
                                "inspect the new version: kubectl grayscale status {name} -n {ns}; resume later with: kubectl grayscale shift {name} --to {target} -n {ns}"
                            ),
                        });
                    }
                }
                _ = interrupt.recv() => {
                    bar.finish();
                    return Err(Error::Interrupted {
                        message: format!("the shift stopped at a step boundary: {new} at {at}% (target {target}%)"),
                        hint: format!("resume with: kubectl grayscale shift {name} --to {target} --step {} --interval {:?} -n {ns}", args.step, args.interval),
                    });
                }
            }
        }
        healthy = at;
    }
    bar.finish();
    let now = ops::get_task(&kube, &ns, &name).await?;
    print(&format!("task {name}: {} (shifted {start}% -> {at}%)\n", summary(&now)));
    Ok(())
}
