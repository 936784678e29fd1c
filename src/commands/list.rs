use std::collections::HashMap;

use clap::Args;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;

use super::Context;
use crate::error::Result;
use crate::model::istio::VirtualService;
use crate::model::strategy::Strategy;
use crate::output::{Format, print};
use crate::plan::drift::{self, Drift};
use crate::plan::identity::TaskIdentity;
use crate::plan::routing;
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

/// The Services and VirtualServices of the listed namespaces, by namespace and name: what
/// telling drift needs besides the Deployments.
struct Around {
    services: HashMap<(String, String), Service>,
    virtual_services: HashMap<(String, String), VirtualService>,
}

fn key(meta: &kube::api::ObjectMeta) -> (String, String) {
    (meta.namespace.clone().unwrap_or_default(), meta.name.clone().unwrap_or_default())
}

/// A task's drift as `list` can tell it: readiness from the Deployments' status (a list reads
/// no pods), the rest as `status` judges it.
fn drift_of(s: &Strategy, deployments: &[Deployment], around: &Around) -> Option<Drift> {
    let ns = s.metadata.namespace.clone().unwrap_or_default();
    let svc = around.services.get(&(ns.clone(), s.service()?.to_string()))?;
    let id = TaskIdentity::of(s, Some(svc));
    // `list` reads VirtualServices only: a task Gateway API routes shows its drift in `status`.
    if id.api == crate::plan::identity::RouteApi::GatewayApi {
        return None;
    }
    // Sorted by namespace: this namespace's Deployments are one run of the list.
    let from =
        deployments.partition_point(|d| d.metadata.namespace.as_deref().unwrap_or_default() < ns.as_str());
    let to =
        deployments.partition_point(|d| d.metadata.namespace.as_deref().unwrap_or_default() <= ns.as_str());
    let ready = routing::ready_versions(svc, &deployments[from..to], s.spec.principal.as_deref());
    Some(drift::drift(s, svc, &id.app, &ready, around.virtual_services.get(&(ns, id.app.clone()))))
}

pub async fn run(ctx: &Context, args: ListArgs) -> Result<()> {
    let kube = ctx.kube().await?;
    let ns = (!args.all_namespaces).then_some(kube.namespace.as_str());
    // One round: the versioned Deployments for every task, instead of one request per task, and
    // the Services and VirtualServices that tell drift; then the tasks page by page, each page
    // turned into views and dropped. Drift is extra: where those two cannot be listed (no
    // permission, no Istio), the list comes without it.
    let (deployments, services, virtual_services) = tokio::join!(
        kube.list::<Deployment>(ns, Some("version")),
        kube.list::<Service>(ns, None),
        kube.list::<VirtualService>(ns, None),
    );
    let mut deployments = deployments?;
    deployments.sort_by(|a, b| a.metadata.namespace.cmp(&b.metadata.namespace));
    let around = match (services, virtual_services) {
        (Ok(svcs), Ok(vss)) => Some(Around {
            services: svcs.into_iter().map(|s| (key(&s.metadata), s)).collect(),
            virtual_services: vss.into_iter().map(|v| (key(&v.metadata), v)).collect(),
        }),
        (Err(e), _) | (_, Err(e)) => {
            tracing::info!("no drift in the list: {e}");
            None
        }
    };
    let mut views = Vec::new();
    kube.list_pages(ns, args.selector.as_deref(), |page: Vec<Strategy>| {
        views.extend(page.iter().map(|s| {
            let mut v = task_view(s, &deployments, None, vec![]);
            if let Some(d) = around.as_ref().and_then(|a| drift_of(s, &deployments, a)) {
                v.drift = Some(d.drifted);
                v.drift_by = d.by;
            }
            v
        }));
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
