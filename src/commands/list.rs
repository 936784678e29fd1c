use clap::Args;
use k8s_openapi::api::apps::v1::Deployment;

use super::Context;
use crate::error::Result;
use crate::model::strategy::Strategy;
use crate::output::{Format, print};
use crate::view::render;
use crate::view::task::task_view;

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  kubectl grayscale list\n  kubectl grayscale list -A -o wide\n  kubectl grayscale list -n bookinfo -o json"
)]
pub struct ListArgs {
    /// List tasks in all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
    /// Only tasks whose labels match this selector (e.g. app.kubernetes.io/name=bookinfo).
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
}

pub async fn run(ctx: &Context, args: ListArgs) -> Result<()> {
    let kube = ctx.kube().await?;
    let ns = (!args.all_namespaces).then_some(kube.namespace.as_str());
    // One list of versioned Deployments for every task, instead of one request per task; then
    // the tasks page by page, each page turned into views and dropped.
    let deployments: Vec<Deployment> = kube.list(ns, Some("version")).await?;
    let mut views = Vec::new();
    kube.list_pages(ns, args.selector.as_deref(), |page: Vec<Strategy>| {
        views.extend(page.iter().map(|s| task_view(s, &deployments, None, vec![])));
    })
    .await?;
    views.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    if views.is_empty() && !args.output.is_machine() {
        match ns {
            Some(ns) => ctx.ui.info(&format!("No grayscale release tasks in namespace {ns}.")),
            None => ctx.ui.info("No grayscale release tasks found."),
        }
        return Ok(());
    }
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    print(&render::list(&views, args.output, args.all_namespaces, now, ctx.ui.color));
    Ok(())
}
