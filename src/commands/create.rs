//! `create`: validate, fetch, plan, write (undoing on failure), then follow the rollout and move
//! routing once the new version is ready.

use std::path::PathBuf;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use serde::Serialize;

use super::Context;
use crate::cluster::{Kube, Write};
use crate::error::{Error, Result};
use crate::model::istio::VirtualService;
use crate::model::strategy::{Strategy, TaskType};
use crate::ops;
use crate::output::{print, to_json, to_yaml};
use crate::plan::create::{self, Plan};
use crate::plan::rbac;
use crate::plan::routing::{RoutingChoice, RoutingMode};
use crate::task::file::TaskFile;
use crate::task::request::{self, CreateRequest};

mod args;
mod wait;

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

fn json<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).expect("objects serialise")
}

pub async fn run(ctx: &Context, args: CreateArgs) -> Result<()> {
    let file = args.file.as_ref().map(read_file).transpose()?;
    let req = request::build(task_type(args.task_type), &args.flags(ctx.global.namespace.clone()), file)
        .map_err(Error::Invalid)?;
    for w in &req.warnings {
        ctx.ui.warn(w);
    }
    let kube = ctx.kube().await?;
    let plan = plan(&kube, &req, args.routing).await?;
    let write = match args.dry_run {
        DryRun::Client => {
            let final_routing =
                plan.routing_when_ready(&plan.strategy, &ready_with_new(&plan), plan.existing_vs.as_ref());
            let mut items = vec![json(&plan.strategy), json(&plan.deployment)];
            if let Some(r) = final_routing.as_ref().filter(|_| plan.client_routing) {
                items.push(json(&r.destination_rule));
                items.push(json(&r.virtual_service));
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
        let mode = if plan.client_routing { rbac::Mode::Client } else { rbac::Mode::Kubesphere };
        let perms = rbac::needs(rbac::Verb::Create, mode);
        ops::preflight(&kube, &plan.namespace, &format!("creating task {}", req.name), &perms).await?;
    }
    let interrupt = crate::signal::Interrupt::install()?;
    let (written, strategy, vs) = write_objects(ctx, &kube, &plan, write).await?;
    if write == Write::DryRun {
        print_objects(&written, args.output.unwrap_or(ObjectFormat::Yaml));
        return Ok(());
    }
    let name = &req.name;
    let ns = &plan.namespace;
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
        let next = if plan.client_routing {
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
    let virtual_service = if routing != RoutingChoice::Kubesphere {
        kube.get::<VirtualService>(&ns, &keys.virtual_service).await?
    } else {
        None
    };
    let observed =
        create::Observed { namespace: ns, service, deployments, strategies, application, virtual_service };
    create::create(req, observed, routing)
}

/// Pins routing to the old version, creates the Deployment, then the Strategy. A failure after
/// the Deployment was created deletes it again, so the cluster is as before (routing pinned to
/// the old version is what it served anyway). Returns the objects written and the
/// VirtualService as written, whose resourceVersion guards the next routing write.
async fn write_objects(
    ctx: &Context,
    kube: &Kube,
    p: &Plan,
    write: Write,
) -> Result<(Vec<serde_json::Value>, Strategy, Option<VirtualService>)> {
    let ns = &p.namespace;
    let mut written = Vec::new();
    let mut vs = p.existing_vs.clone();
    if let Some(r) = p.initial_routing() {
        if r.mode == RoutingMode::Empty {
            ctx.ui.warn(&format!(
                "the old version {} has no ready pods: routing is left as it is until it has",
                p.principal
            ));
        } else {
            kube.apply(ns, &r.destination_rule, write, true).await?;
            let mut v = r.virtual_service.clone();
            v.metadata.resource_version = vs.as_ref().and_then(|v| v.metadata.resource_version.clone());
            vs = Some(kube.apply(ns, &v, write, true).await?);
        }
    }
    let deployment = match kube.create(ns, &p.deployment, write).await {
        Err(e) if e.answer_lost() => {
            recover(kube, ns, &p.deployment, e, |d: &Deployment| {
                d.spec.as_ref().map(|s| &s.template.metadata)
                    == p.deployment.spec.as_ref().map(|s| &s.template.metadata)
            })
            .await?
        }
        other => other?,
    };
    written.push(json(&deployment));
    crate::failpoint::gate(crate::failpoint::BEFORE_TASK_CREATE).await;
    let created = match kube.create(ns, &p.strategy, write).await {
        Err(e) if e.answer_lost() => {
            recover(kube, ns, &p.strategy, e, |s: &Strategy| s.spec == p.strategy.spec).await
        }
        other => other,
    };
    let strategy = match created {
        Ok(s) => s,
        Err(e) => {
            if write == Write::DryRun {
                return Err(e);
            }
            let name = p.deployment.metadata.name.clone().unwrap_or_default();
            let undone = match kube.delete::<Deployment>(ns, &name).await {
                Ok(_) => {
                    format!("the new Deployment {ns}/{name} was deleted again; nothing is left to clean up")
                }
                Err(u) => format!(
                    "deleting the new Deployment {ns}/{name} also failed ({u}): delete it with kubectl delete deployment {name} -n {ns}"
                ),
            };
            return Err(Error::Partial {
                message: "the task could not be created".into(),
                hint: format!("{undone}; then run the same command again"),
                source: Some(Box::new(e)),
            });
        }
    };
    written.insert(0, json(&strategy));
    if write == Write::DryRun
        && let Some(r) = p.routing_when_ready(&p.strategy, &ready_with_new(p), p.existing_vs.as_ref())
    {
        written.push(json(&kube.apply(ns, &r.destination_rule, write, true).await?));
        written.push(json(&kube.apply(ns, &r.virtual_service, write, true).await?));
    }
    Ok((written, strategy, vs))
}

/// A create whose answer was lost: the object is read back and taken as created by this
/// command if it is what this command wrote; if it is not there, the create is sent again; if
/// something else has that name, the original error stands.
async fn recover<K>(kube: &Kube, ns: &str, obj: &K, lost: Error, ours: impl Fn(&K) -> bool) -> Result<K>
where
    K: kube::Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + serde::de::DeserializeOwned
        + Serialize
        + Clone
        + std::fmt::Debug,
{
    let name = obj.meta().name.clone().unwrap_or_default();
    match kube.get::<K>(ns, &name).await? {
        Some(found) if ours(&found) => Ok(found),
        Some(_) => Err(lost),
        None => kube.create(ns, obj, Write::Real).await,
    }
}

/// The versions ready once the new one is: what a dry run shows as the final routing.
fn ready_with_new(p: &Plan) -> Vec<String> {
    let mut ready = p.old_ready.clone();
    ready.push(p.new_version.clone());
    ready
}
