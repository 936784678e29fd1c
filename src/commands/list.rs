use std::collections::HashMap;

use clap::Args;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;

use super::Context;
use crate::cluster::{Kube, Pages};
use crate::error::Result;
use crate::model::istio::VirtualService;
use crate::model::strategy::Strategy;
use crate::output::{Format, print};
use crate::plan::by_namespace::ByNamespace;
use crate::plan::drift::{self, Drift};
use crate::plan::identity::TaskIdentity;
use crate::plan::routing;
use crate::view::render::ListPrinter;
use crate::view::task::{TaskView, task_view};

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

/// What one namespace's tasks are judged against: its versioned Deployments, and its Services
/// and VirtualServices by name (`None`: drift cannot be told).
struct Around {
    deployments: Vec<Deployment>,
    routing: Option<(HashMap<String, Service>, HashMap<String, VirtualService>)>,
}

fn by_name<K: kube::Resource>(objects: Vec<K>) -> HashMap<String, K> {
    objects.into_iter().map(|o| (o.meta().name.clone().unwrap_or_default(), o)).collect()
}

/// A task's drift as `list` can tell it: readiness from the Deployments' status (a list reads
/// no pods), the rest as `status` judges it.
fn drift_of(s: &Strategy, around: &Around) -> Option<Drift> {
    let (services, virtual_services) = around.routing.as_ref()?;
    let svc = services.get(s.service()?)?;
    let id = TaskIdentity::of(s, Some(svc));
    // `list` reads VirtualServices only: a task Gateway API routes shows its drift in `status`.
    if id.api == crate::plan::identity::RouteApi::GatewayApi {
        return None;
    }
    let ready = routing::ready_versions(svc, &around.deployments, s.spec.principal.as_deref());
    Some(drift::drift(s, svc, &id.app, &ready, virtual_services.get(&id.app)))
}

/// One kind's list, read along with the tasks' and handed out a namespace at a time.
struct Walk<K> {
    pages: Option<Pages<K>>,
    cursor: ByNamespace<K>,
}

impl<K> Walk<K>
where
    K: kube::Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + serde::de::DeserializeOwned
        + Clone
        + std::fmt::Debug,
{
    fn new(pages: Pages<K>) -> Self {
        Walk { pages: Some(pages), cursor: ByNamespace::default() }
    }

    /// The objects in `ns` (`Ok(None)`: their order was broken, see `ByNamespace::take`).
    async fn take(&mut self, ns: &str) -> Result<Option<Vec<K>>> {
        while self.cursor.wants_page(ns) {
            match self.pages.as_mut() {
                Some(p) => match p.next().await {
                    Some(page) => self.cursor.push(page?),
                    None => self.pages = None,
                },
                None => self.cursor.end(),
            }
        }
        Ok(self.cursor.take(ns))
    }
}

/// The objects around the tasks, walked along with them. Drift is extra: where Services or
/// VirtualServices cannot be listed (no permission, no Istio), the list comes without it.
struct Surroundings {
    deployments: Walk<Deployment>,
    routing: Option<(Walk<Service>, Walk<VirtualService>)>,
    disorder_told: bool,
}

impl Surroundings {
    async fn of(&mut self, ns: &str, ui: &crate::output::Ui) -> Result<Around> {
        let routing = async {
            match self.routing.as_mut() {
                Some((svcs, vss)) => Some(tokio::join!(svcs.take(ns), vss.take(ns))),
                None => None,
            }
        };
        // The three kinds' next pages, when the tasks need them, are fetched together.
        let (deployments, routing) = tokio::join!(self.deployments.take(ns), routing);
        let routing = match routing {
            Some((Ok(s), Ok(v))) => s.zip(v).map(|(s, v)| (by_name(s), by_name(v))),
            Some((Err(e), _) | (_, Err(e))) => {
                tracing::info!("no drift in the list: {e}");
                self.routing = None;
                None
            }
            None => None,
        };
        let deployments = deployments?;
        if deployments.is_none() && !self.disorder_told {
            self.disorder_told = true;
            ui.warn(
                "the API server listed objects out of namespace order: readiness is missing from some rows",
            );
        }
        Ok(Around { deployments: deployments.unwrap_or_default(), routing })
    }
}

pub async fn run(ctx: &Context, args: ListArgs) -> Result<()> {
    let kube = ctx.kube().await?;
    let ns = (!args.all_namespaces).then_some(kube.namespace.as_str());
    let mut around = walk_around(&kube, ns);
    // The tasks page by page, each page turned into rows, printed and dropped; the objects
    // around them are walked along, one namespace held at a time: memory stays flat at any
    // number of tasks, with one request per page of each kind.
    let mut tasks = match ns {
        Some(ns) => kube.list_ahead::<Strategy>(ns, args.selector.as_deref()),
        None => kube.tasks_everywhere(args.selector.as_deref()),
    };
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    let mut printer = ListPrinter::new(args.output, args.all_namespaces, now, ctx.ui.color);
    let mut here: Option<(String, Around)> = None;
    let mut views: Vec<TaskView> = Vec::new();
    let read = async {
        while let Some(page) = tasks.next().await {
            // No sort: the API server lists in etcd key order (`<namespace>/<name>`), the order
            // `kubectl get -A` shows, and sorting would need every row held.
            for s in page? {
                let task_ns = s.metadata.namespace.clone().unwrap_or_default();
                let around = match &mut here {
                    Some((n, a)) if *n == task_ns => a,
                    _ => {
                        let a = around.of(&task_ns, &ctx.ui).await?;
                        &mut here.insert((task_ns, a)).1
                    }
                };
                let mut v = task_view(&s, &around.deployments, None, vec![]);
                if let Some(d) = drift_of(&s, around) {
                    v.drift = Some(d.drifted);
                    v.drift_by = d.by;
                }
                views.push(v);
            }
            while views.len() >= ROWS_PER_PRINT {
                let rest = views.split_off(ROWS_PER_PRINT);
                print(&printer.page(&views));
                views = rest;
            }
        }
        Ok::<_, crate::error::Error>(())
    }
    .await;
    // What was read before a failure is printed before it is reported.
    if !views.is_empty() {
        print(&printer.page(&views));
    }
    read?;
    if printer.rows() == 0 && !args.output.is_machine() {
        match ns {
            Some(ns) => ctx.ui.info(&format!("No grayscale release tasks in namespace {ns}.")),
            None => ctx.ui.info("No grayscale release tasks found."),
        }
        return Ok(());
    }
    print(&printer.finish());
    Ok(())
}

/// Rows printed at once, whatever the pages' sizes (a namespace's own list may hold a handful):
/// a table takes its column widths from the first 500 rows, as kubectl's chunked output does.
const ROWS_PER_PRINT: usize = 500;

/// Objects per page of the kinds around the tasks: a Deployment weighs several tasks.
const AROUND_PAGE: u32 = 250;

/// The objects around the tasks are fetched a page at a time as the tasks reach them, not ahead
/// like the tasks: three pages of 500 of each kind ahead took 57 MiB at 50,000 tasks (and a
/// Service, a VirtualService and two Deployments per namespace of 50 tasks); one page of 500,
/// 40 MiB. Pages of 250 cost 8 requests more there.
fn walk_around(kube: &Kube, ns: Option<&str>) -> Surroundings {
    Surroundings {
        deployments: Walk::new(kube.list_asked(ns, Some("version"), AROUND_PAGE)),
        routing: Some((
            Walk::new(kube.list_asked(ns, None, AROUND_PAGE)),
            Walk::new(kube.list_asked(ns, None, AROUND_PAGE)),
        )),
        disorder_told: false,
    }
}
