use clap::Args;

use super::Context;
use crate::cluster::task::Journal;
use crate::error::{Error, Result};
use crate::plan::operate::Change;
use crate::plan::routing::RoutingChoice;

#[derive(Args, Debug)]
#[command(
    after_help = "--percent writes Istio's mirrorPercentage, an extension the KubeSphere console does not \
show: the console mirrors 100% and displays such a task as plain mirroring.

Examples:
  kubectl grayscale mirror reviews-shadow --on
  kubectl grayscale mirror reviews-shadow --on --percent 10
  kubectl grayscale mirror reviews-shadow --off"
)]
pub struct MirrorArgs {
    /// The task's name.
    pub name: String,
    /// Mirror live traffic to the new version.
    #[arg(long, conflicts_with = "off", required_unless_present = "off")]
    pub on: bool,
    /// Stop mirroring.
    #[arg(long)]
    pub off: bool,
    /// Share of requests mirrored, 0-100 (Istio mirrorPercentage; default: all).
    #[arg(long, requires = "on")]
    pub percent: Option<f64>,
    /// Who writes the routing objects (see the README).
    #[arg(long, value_enum, default_value_t = RoutingChoice::Auto)]
    pub routing: RoutingChoice,
    #[command(flatten)]
    pub deadline: super::change::Deadline,
    #[command(flatten)]
    pub force: super::change::Force,
}

pub async fn run(ctx: &Context, args: MirrorArgs) -> Result<()> {
    if let Some(p) = args.percent
        && !(p.is_finite() && (0.0..=100.0).contains(&p))
    {
        return Err(Error::invalid("--percent", format!("{p} must be between 0 and 100")));
    }
    let change = Change::Mirror { on: args.on, percent: args.percent };
    super::change::change_and_route(
        ctx,
        &args.name,
        Journal::Push("mirror"),
        args.routing,
        args.deadline,
        args.force,
        move |_| Ok(change.clone()),
    )
    .await?;
    Ok(())
}
