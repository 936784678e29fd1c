use clap::Args;

use super::Context;
use crate::cluster::task::Journal;
use crate::error::Result;
use crate::plan::operate::Change;
use crate::plan::routing::RoutingChoice;

#[derive(Args, Debug)]
#[command(
    after_help = "While paused (strategy policy Paused) the Service's routing goes back to its default: \
every port to the first ready version (the old version first). Under KubeSphere routing that is the \
first subset of KubeSphere's DestinationRule, whose order may change on every sync: pause warns, and \
takeover --version OLD holds the old version instead.

Examples:
  kubectl grayscale pause reviews-canary
  kubectl grayscale resume reviews-canary"
)]
pub struct PauseArgs {
    /// The task's name.
    pub name: String,
    /// Who writes the routing objects (see the README).
    #[arg(long, value_enum, default_value_t = RoutingChoice::Auto)]
    pub routing: RoutingChoice,
    #[command(flatten)]
    pub deadline: super::change::Deadline,
    #[command(flatten)]
    pub force: super::change::Force,
}

pub async fn pause(ctx: &Context, args: PauseArgs) -> Result<()> {
    super::change::change_and_route(
        ctx,
        &args.name,
        Journal::Push("pause"),
        args.routing,
        args.deadline,
        args.force,
        |_| Ok(Change::Pause),
    )
    .await?;
    Ok(())
}

pub async fn resume(ctx: &Context, args: PauseArgs) -> Result<()> {
    super::change::change_and_route(
        ctx,
        &args.name,
        Journal::Push("resume"),
        args.routing,
        args.deadline,
        args.force,
        |_| Ok(Change::Resume),
    )
    .await?;
    Ok(())
}
