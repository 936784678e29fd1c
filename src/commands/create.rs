//! `create`: validate, fetch, plan, write (undoing on failure), then follow the rollout and move
//! routing once the new version is ready.

use std::path::PathBuf;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use serde::Serialize;

use super::Context;
use crate::cluster::access;
use crate::cluster::{Kube, Write};
use crate::error::{Error, Result};
use crate::model::istio::{DestinationRule, VirtualService};
use crate::model::strategy::{Strategy, TaskType};
use crate::output::{print, to_json, to_yaml};
use crate::plan::create::{self, Plan};
use crate::plan::live::{Expect, judge_owners};
use crate::plan::owners::{self, Owner, Seen};
use crate::plan::rbac;
use crate::plan::routing::RoutingChoice;
use crate::task::file::TaskFile;
use crate::task::request::{self, CreateRequest};

mod args;
mod hints;
mod wait;
mod write;

pub use args::{CreateArgs, DryRun, ObjectFormat, TypeArg};

fn task_type(t: TypeArg) -> TaskType {
    match t {
        TypeArg::Bluegreen => TaskType::BlueGreen,
        TypeArg::Canary => TaskType::Canary,
        TypeArg::Mirror => TaskType::Mirror,
    }
}

fn read_file(path: &PathBuf) -> Result<TaskFile> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| Error::invalid("--filename", format!("{}: {e}", path.display())))?
    };
    TaskFile::parse(&text).map_err(|e| Error::invalid("--filename", format!("{}: {e}", path.display())))
}

#[derive(Serialize)]
struct ObjectList<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    items: &'a [serde_json::Value],
}

fn print_objects(items: &[serde_json::Value], format: ObjectFormat) {
    match format {
        ObjectFormat::Json => print(&to_json(&ObjectList { api_version: "v1", kind: "List", items })),
        ObjectFormat::Yaml => {
            let docs: Vec<String> = items.iter().map(to_yaml).collect();
            print(&docs.join("---\n"));
        }
    }
}

pub(super) fn json<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).expect("objects serialise")
}

/// Everything `create` checks before it connects: a bad flag or task file fails fast, with no
/// cluster needed to say so.
pub fn validate(args: &CreateArgs, namespace: Option<String>) -> Result<CreateRequest> {
    let file = args.file.as_ref().map(read_file).transpose()?;
    request::build(task_type(args.task_type), &args.flags(namespace), file).map_err(Error::Invalid)
}

pub async fn run(ctx: &Context, args: CreateArgs) -> Result<()> {
    let req = validate(&args, ctx.global.namespace.clone())?;
    for w in &req.warnings {
        ctx.ui.warn(w);
    }
    let kube = ctx.kube().await?;
    // Who the user is (for the task's Event) goes out with the reads, and only for a real write.
    let who = async {
        match args.dry_run {
            DryRun::None => Some(crate::cluster::whoami::user(&kube).await),
            DryRun::Client | DryRun::Server => None,
        }
    };
    let (plan, user) = tokio::join!(plan(&kube, &req, args.routing), who);
    let mut plan = plan?;
    for w in &plan.warnings {
        ctx.ui.warn(w);
    }
    let kube = match user {
        Some(u) => kube.with_user(u),
        None => kube,
    };
    plan.created_by(&kube.user);
    // Request conditions the served Strategy CRD would cut are refused before anything is
    // written (one read of the CRD, only for a canary by request parameters).
    kube.check_routes(&req.name, &[], &plan.strategy.spec.template.spec.http, &|w: &str| ctx.ui.warn(w))
        .await?;
    // Another controller's route is refused before anything is written; a GitOps tool's is
    // said once.
    if args.dry_run != DryRun::Client {
        let owners = owners_of(&kube, &plan).await?;
        let expect = Expect { force: args.force.force, kubesphere: plan.kubesphere(), ..Expect::default() };
        for w in judge_owners(&owners, &expect, &req.name, &plan.namespace)? {
            ctx.ui.warn(&w);
        }
    }
    let write = match args.dry_run {
        DryRun::Client => {
            let final_routing =
                plan.routing_when_ready(&plan.strategy, &ready_with_new(&plan), plan.existing_vs.as_ref());
            let mut items = vec![json(&plan.strategy), json(&plan.deployment)];
            if let Some(r) = final_routing.as_ref().filter(|_| plan.client_routing) {
                items.push(json(&r.destination_rule));
                items.push(json(&r.virtual_service));
            }
            if plan.gateway {
                let features = crate::plan::routing::gateway::Features::ALL;
                let g = plan.gateway_routing(
                    &plan.strategy,
                    &ready_with_new(&plan),
                    plan.existing_route.as_ref(),
                    features,
                )?;
                items.extend(g.services.iter().map(json));
                items.push(json(&g.route));
            }
            print_objects(&items, args.output.unwrap_or(ObjectFormat::Yaml));
            return Ok(());
        }
        DryRun::Server => Write::DryRun,
        DryRun::None => Write::Real,
    };
    // From the first write on, Ctrl-C is held until the writes are done and then stops the
    // rollout watch, so it never leaves a Deployment without its task.
    if write == Write::Real {
        let mode = match (plan.client_routing, plan.gateway) {
            (_, true) => rbac::Mode::Gateway,
            (true, _) => rbac::Mode::Client,
            _ => rbac::Mode::Kubesphere,
        };
        let perms = rbac::needs(rbac::Verb::Create, mode);
        access::preflight(&kube, &plan.namespace, &format!("creating task {}", req.name), &perms).await?;
    }
    let interrupt = crate::signal::Interrupt::install()?;
    let (written, strategy, vs) = write::write_objects(ctx, &kube, &plan, write).await?;
    if write == Write::DryRun {
        print_objects(&written, args.output.unwrap_or(ObjectFormat::Yaml));
        return Ok(());
    }
    let name = &req.name;
    let ns = &plan.namespace;
    // The record of who created the task, once it exists (the new version's routing follows
    // once it is ready, when the task's journal takes over).
    let ev = crate::plan::events::created_event(&kube.user, &strategy, k8s_openapi::jiff::Timestamp::now());
    crate::cluster::events::record(&kube, &ev, &|w: &str| ctx.ui.warn(w)).await;
    // The verbs that follow read everything about the task in one round.
    let identity = crate::plan::identity::TaskIdentity::of(&strategy, Some(&plan.service));
    crate::cluster::identity_cache::store(&kube.server, &identity);
    ctx.ui.info(&format!(
        "created task {ns}/{name}: {} of {} {} -> {}",
        req.task_type.as_str().to_lowercase(),
        req.service,
        plan.principal,
        req.version
    ));
    if let Some(f) = args.output {
        print_objects(&written, f);
    }
    if args.no_wait {
        let next = if !plan.kubesphere() {
            format!("once it is ready, route it with: kubectl grayscale sync {name} -n {ns}")
        } else {
            "KubeSphere routes it once it is ready".to_string()
        };
        ctx.ui.info(&format!(
            "not waiting for {}; {next}",
            plan.deployment.metadata.name.clone().unwrap_or_default()
        ));
        return Ok(());
    }
    wait::follow(ctx, &kube, &plan, wait::Written { strategy, vs }, interrupt, &req, &args).await
}

/// Reads what the task needs (one request each, in order on the kept-alive connection) and
/// hands it to the planning core. Writes nothing.
async fn plan(kube: &Kube, req: &CreateRequest, routing: RoutingChoice) -> Result<Plan> {
    let ns = req.namespace.clone().unwrap_or_else(|| kube.namespace.clone());
    let service = kube.get::<Service>(&ns, &req.service).await?.ok_or_else(|| {
        Error::missing(
            "Service",
            &ns,
            &req.service,
            format!("check the name with: kubectl get services -n {ns}"),
        )
    })?;

    let keys = create::keys(&service, req)?;
    let deployments = kube.list::<Deployment>(Some(&ns), None).await?;
    let strategies = kube.list::<Strategy>(Some(&ns), None).await?;
    let application = match &keys.application {
        Some(a) => kube.application(&ns, a).await?,
        None => None,
    };
    // What routes the Service today decides the routing API (never both kinds for one Service).
    let (virtual_service, routes, ambient) = tokio::join!(
        kube.get::<VirtualService>(&ns, &keys.virtual_service),
        crate::cluster::gateway::routes_with_parent(kube, &ns, &req.service),
        crate::cluster::gateway::ambient(kube, &ns),
    );
    let (virtual_service, routes, (ambient, ns_waypoint)) = (virtual_service?, routes?, ambient?);
    let svc_waypoint = service.metadata.labels.as_ref().and_then(|l| l.get("istio.io/use-waypoint")).cloned();
    let observed = create::Observed {
        namespace: ns,
        route: routes
            .iter()
            .flatten()
            .find(|r| r.metadata.name.as_deref() == Some(req.service.as_str()))
            .cloned(),
        routes_with_parent: routes.iter().flatten().filter_map(|r| r.metadata.name.clone()).collect(),
        gateway_served: routes.is_some(),
        ambient,
        waypoint: svc_waypoint.or(ns_waypoint),
        service,
        deployments,
        strategies,
        application,
        virtual_service,
    };
    create::create(req, observed, routing)
}

/// Who else owns the Service's routing: its VirtualService (already read), DestinationRule and
/// the Service itself, and the Rollouts that name the VirtualService (read together).
async fn owners_of(kube: &Kube, p: &Plan) -> Result<Vec<Owner>> {
    let svc_name = p.service.metadata.name.clone().unwrap_or_default();
    let (dr, rollouts) =
        tokio::join!(kube.get::<DestinationRule>(&p.namespace, &svc_name), kube.rollouts(&p.namespace));
    let dr = dr?;
    let vs_name = crate::plan::identity::TaskIdentity::of(&p.strategy, Some(&p.service)).app;
    let naming = owners::rollouts_naming(&rollouts?.unwrap_or_default(), &vs_name, &p.namespace);
    let mut seen = vec![Seen { kind: "Service", meta: &p.service.metadata }];
    if let Some(v) = &p.existing_vs {
        seen.push(Seen { kind: "VirtualService", meta: &v.metadata });
    }
    if let Some(d) = &dr {
        seen.push(Seen { kind: "DestinationRule", meta: &d.metadata });
    }
    Ok(owners::owners(&seen, &naming))
}

/// The versions ready once the new one is: what a dry run shows as the final routing.
pub(super) fn ready_with_new(p: &Plan) -> Vec<String> {
    let mut ready = p.old_ready.clone();
    ready.push(p.new_version.clone());
    ready
}
