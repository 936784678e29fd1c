//! `rbac`: the minimal Role (and ClusterRole) for the given verbs, to bind to an on-call user.

use clap::{Args, ValueEnum};
use serde::Serialize;

use super::Context;
use super::create::ObjectFormat;
use crate::error::Result;
use crate::output::{print, to_json};
use crate::plan::rbac::{self, Mode, Verb};

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModeArg {
    /// Permissions for both routing modes.
    Both,
    Client,
    Kubesphere,
    /// Gateway API routing: HTTPRoutes and per-version Services instead of Istio's objects.
    GatewayApi,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Prints objects for kubectl apply; bind them with a RoleBinding (and a ClusterRoleBinding \
for list-all and init). shift-gated and analyze also get a Role in Prometheus's namespace (istio-system \
with client routing, kubesphere-monitoring-system with KubeSphere's) allowing `get services/proxy` on \
that Prometheus alone; bind it there too. Every verb that changes a task records an Event on it \
(create events). The rules last in the Role, under a comment (and named by its \
grayscale.kubectl.io/optional-rules annotation), are optional: owner detection lists Argo Rollouts \
where it may and falls back to annotations and managedFields where it may not; a take-over records \
its Event where it may.

Examples:
  # What an on-call engineer needs to take over and look at tasks in bookinfo
  kubectl grayscale rbac takeover status -n bookinfo | kubectl apply -f -
  kubectl create rolebinding oncall-grayscale --role kubectl-grayscale --user alice -n bookinfo

  # Every verb, for clusters where KubeSphere routes
  kubectl grayscale rbac --routing kubesphere -o json"
)]
pub struct RbacArgs {
    /// The verbs to allow (default: all of them).
    #[arg(value_enum, value_name = "VERB")]
    pub verbs: Vec<Verb>,
    /// The routing mode the permissions are for.
    #[arg(long, value_enum, default_value_t = ModeArg::Both)]
    pub routing: ModeArg,
    /// The name of the Role and ClusterRole.
    #[arg(long, default_value = "kubectl-grayscale")]
    pub name: String,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = ObjectFormat::Yaml)]
    pub output: ObjectFormat,
}

#[derive(Serialize)]
struct List<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    items: &'a [serde_json::Value],
}

pub async fn run(ctx: &Context, args: RbacArgs) -> Result<()> {
    // The namespace as every command resolves it; no request is made.
    let ns = match ctx.kube().await {
        Ok(k) => k.namespace,
        Err(_) => ctx.global.namespace.clone().unwrap_or_else(|| "default".into()),
    };
    let verbs: Vec<Verb> = if args.verbs.is_empty() { Verb::ALL.to_vec() } else { args.verbs.clone() };
    let modes: &[Mode] = match args.routing {
        ModeArg::Both => &[Mode::Client, Mode::Kubesphere],
        ModeArg::Client => &[Mode::Client],
        ModeArg::Kubesphere => &[Mode::Kubesphere],
        ModeArg::GatewayApi => &[Mode::Gateway],
    };
    let perms: Vec<rbac::Perm> =
        verbs.iter().flat_map(|v| modes.iter().flat_map(move |m| rbac::needs(*v, *m))).collect();
    let objects = rbac::roles(&rbac::merge(perms), &ns, &args.name);
    match args.output {
        ObjectFormat::Yaml => print(&rbac::yaml(&objects)),
        ObjectFormat::Json => print(&to_json(&List { api_version: "v1", kind: "List", items: &objects })),
    }
    Ok(())
}
