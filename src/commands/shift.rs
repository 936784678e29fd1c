use std::time::Duration;

use clap::{Args, ValueEnum};

use super::Context;
use super::change::change_and_route;
use super::gates::GateArgs;
use crate::cluster::Kube;
use crate::cluster::route::{self, Request};
use crate::cluster::task::Journal;
use crate::error::{Error, Result};
use crate::model::strategy::Strategy;
use crate::output::parse_duration;
use crate::plan::live::Expect;
use crate::plan::operate::{Change, current_weight};
use crate::plan::routing::RoutingChoice;

/// What a gradual shift does when a gate or the new version's pods fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum OnFailure {
    /// Go back to the last weight whose checks held.
    #[default]
    Back,
    /// Send all traffic to the old version (the governor).
    Takeover,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Canary tasks routing by ratio. A weight of 100 makes the new version the governor, 0 the \
old one, anything else clears the governor (the console's rule).

A gradual shift (--to) writes one step per interval and watches the new version's pods: if it loses \
ready pods or its restart count grows, the shift stops, goes back to the last healthy weight and exits 9. \
With --gate or --analysis, each step is also judged on Prometheus's metrics of both versions over the \
interval; a failing gate goes back the same way (--on-failure takeover: all traffic to the old version). \
Too little traffic (--min-requests) or an unreachable Prometheus holds the weight for at most one more \
interval. Prometheus must answer every gate's query before the first step, or nothing is shifted (exit \
10). Ctrl-C stops at a step boundary, leaves the task and its routing consistent and exits 130.

Examples:
  kubectl grayscale shift reviews-canary --weight 30
  kubectl grayscale shift reviews-canary --by +10
  kubectl grayscale shift reviews-canary --by -20
  kubectl grayscale shift reviews-canary --to 100 --step 20 --interval 5m
  kubectl grayscale shift reviews-canary --to 100 --step 10 --interval 1m \\
      --gate 'success-rate>=99' --gate 'p99<=500ms' --on-failure takeover"
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
    #[command(flatten)]
    pub gate: GateArgs,
    /// The deadline of one change (of each step with --to).
    #[command(flatten)]
    pub deadline: super::change::Deadline,
    #[command(flatten)]
    pub force: super::change::Force,
    /// What a failed gate or pod check does during a gradual shift.
    #[arg(long, value_enum, default_value_t = OnFailure::Back, requires = "to")]
    pub on_failure: OnFailure,
}

pub fn weight_of(s: &Strategy) -> Result<i64> {
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
        return super::gradual::run(ctx, &args, to as u8).await;
    }
    if args.gate.any() {
        return Err(Error::invalid("--gate", "gates judge the steps of a gradual shift: add --to W"));
    }
    if let Some(w) = args.weight {
        in_range("--weight", w)?;
    }
    let (weight, by) = (args.weight, args.by);
    change_and_route(
        ctx,
        &args.name,
        Journal::Push("shift"),
        args.routing,
        args.deadline,
        args.force,
        move |s| {
            let target = match (weight, by) {
                (Some(w), _) => w,
                // Saturates: an absurd --by is then refused as out of range, never wrapped.
                (None, Some(n)) => weight_of(s)?.saturating_add(n),
                _ => unreachable!("clap requires one of them"),
            };
            Ok(Change::Weight(in_range(if weight.is_some() { "--weight" } else { "--by" }, target)?))
        },
    )
    .await?;
    Ok(())
}

/// One step of a gradual shift (or its way back): `change` to the task, refused without writing
/// if the task no longer carries `last_write`, the id of the shift's own last write.
#[allow(clippy::too_many_arguments)]
pub async fn step(
    ctx: &Context,
    kube: &Kube,
    ns: &str,
    name: &str,
    change: Change,
    last_write: &str,
    routing: RoutingChoice,
    timeout: Duration,
    force: bool,
) -> Result<Strategy> {
    let written = route::Progress::default();
    let warn = |w: &str| ctx.ui.warn(w);
    let journal = Journal::Push(if matches!(change, Change::Takeover(_)) { "takeover" } else { "shift" });
    let req = Request {
        journal,
        choice: routing,
        preflight: false,
        expect: Expect { last_write: Some(last_write.to_string()), force, ..Expect::default() },
        warn: &warn,
        together: false,
    };
    let run = route::change(kube, ns, name, req, move |_| Ok(change.clone()), &written);
    let o = match tokio::time::timeout(timeout, run).await {
        Ok(r) => r?,
        Err(_) => return Err(super::change::deadline_error("shift", name, ns, timeout, written.task.get())),
    };
    if o.retries > 0 {
        ctx.ui.warn(&format!(
            "the task changed concurrently; re-applied on fresh state ({} retries)",
            o.retries
        ));
    }
    Ok(o.after)
}
