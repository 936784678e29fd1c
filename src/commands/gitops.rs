//! `gitops`: the Argo CD or Flux configuration that leaves a task's routing to this plugin.

use clap::{Args, ValueEnum};
use k8s_openapi::api::core::v1::Service;

use super::Context;
use super::create::ObjectFormat;
use crate::cluster::task::get_task;
use crate::error::Result;
use crate::output::{print, to_json};
use crate::plan::gitops::{self, Tool};
use crate::plan::identity::TaskIdentity;

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolArg {
    /// An Application's ignoreDifferences and sync option.
    Argocd,
    /// A Kustomization's patches giving the objects the IfNotPresent apply policy.
    Flux,
}

#[derive(Args, Debug)]
#[command(after_help = "Prints what to merge into the Argo CD Application or Flux Kustomization that \
applies the task's VirtualService, DestinationRule or Strategy, so that a sync does not put Git's routes \
back over the plugin's. The reasons are comments in the YAML output; -o json carries the object alone.

Examples:
  kubectl grayscale gitops reviews-canary --tool argocd
  kubectl grayscale gitops reviews-canary --tool flux --app apps")]
pub struct GitopsArgs {
    /// The task's name.
    pub name: String,
    /// The GitOps tool that applies the task's objects.
    #[arg(long, value_enum)]
    pub tool: ToolArg,
    /// The Application (argocd) or Kustomization (flux) to name in the output (default: read
    /// from the Service's tracking annotation or labels, where there is one).
    #[arg(long, value_name = "NAME")]
    pub app: Option<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = ObjectFormat::Yaml)]
    pub output: ObjectFormat,
}

pub async fn run(ctx: &Context, args: GitopsArgs) -> Result<()> {
    let kube = ctx.kube().await?;
    let ns = kube.namespace.clone();
    let s = get_task(&kube, &ns, &args.name).await?;
    // The Service names the VirtualService (its app label) and may name the owner; a task whose
    // Service is gone still gets the names its own labels give.
    let svc = match s.service() {
        Some(name) => kube.get::<Service>(&ns, name).await?,
        None => None,
    };
    let id = TaskIdentity::of(&s, svc.as_ref());
    let tool = match args.tool {
        ToolArg::Argocd => Tool::Argocd,
        ToolArg::Flux => Tool::Flux,
    };
    let owner = gitops::owner(tool, svc.as_ref(), args.app.as_deref());
    let config = match tool {
        Tool::Argocd => gitops::argocd(&id, owner.as_ref()),
        Tool::Flux => gitops::flux(&id, owner.as_ref()),
    };
    match args.output {
        ObjectFormat::Yaml => print(&config.yaml()),
        ObjectFormat::Json => print(&to_json(&config.object)),
    }
    Ok(())
}
