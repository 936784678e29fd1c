use clap::Args;

use super::Context;
use super::change::summary;
use crate::cluster::task::{Journal, get_task};
use crate::error::{Error, Result};
use crate::output::{Format, print, to_json, to_yaml};
use crate::plan::journal;
use crate::plan::operate::{Change, TaskState, with_state};
use crate::plan::routing::RoutingChoice;

#[derive(Args, Debug)]
#[command(after_help = "Every routing change made with this plugin is journaled on the task (the last 20). \
The table shows each change's age, as kubectl shows ages; -o json and -o yaml keep the full RFC 3339 stamps.

Examples:
  kubectl grayscale history reviews-canary
  kubectl grayscale history reviews-canary -o json")]
pub struct HistoryArgs {
    /// The task's name.
    pub name: String,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

pub async fn history(ctx: &Context, args: HistoryArgs) -> Result<()> {
    let kube = ctx.kube().await?;
    let s = get_task(&kube, &kube.namespace, &args.name).await?;
    let entries = journal::read(&s);
    match args.output {
        Format::Json => print(&to_json(&entries)),
        Format::Yaml => print(&to_yaml(&entries)),
        _ if entries.is_empty() => ctx.ui.info(&format!("task {} has no journaled changes", args.name)),
        _ => {
            let now = k8s_openapi::jiff::Timestamp::now().as_second();
            let summary = |st: &TaskState| summary(&with_state(&s, st));
            print(&crate::view::history::table(&entries, summary, now, ctx.ui.color));
        }
    }
    Ok(())
}

#[derive(Args, Debug)]
#[command(
    after_help = "Reverts the last journaled change and removes it from the journal, so a second undo \
reverts the change before it.

Examples:
  kubectl grayscale undo reviews-canary"
)]
pub struct UndoArgs {
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

pub async fn undo(ctx: &Context, args: UndoArgs) -> Result<()> {
    let name = args.name.clone();
    super::change::change_and_route(
        ctx,
        &args.name,
        Journal::Pop,
        args.routing,
        args.deadline,
        args.force,
        move |s| {
            let last = journal::read(s).pop().ok_or_else(|| Error::Ineligible {
                what: format!("task {name} has no journaled change to undo"),
                hint: format!("see its changes with: kubectl grayscale history {name}"),
            })?;
            Ok(Change::RestoreState(Box::new(last.from)))
        },
    )
    .await?;
    Ok(())
}
