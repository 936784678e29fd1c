//! `create`: validate, fetch, plan, write (undoing on failure), then follow the rollout and move
//! routing once the new version is ready.

use std::path::PathBuf;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use serde::Serialize;

use super::Context;
use crate::cluster::{Kube, Write};
use crate::error::{Error, Result, Target};
use crate::model::istio::VirtualService;
use crate::model::strategy::{ANN_ICON, LABEL_APP, Strategy, TaskType};
use crate::ops::{self, RoutingChoice};
use crate::output::{print, to_json, to_yaml};
use crate::plan::eligibility;
use crate::plan::routing::RoutingMode;
use crate::plan::{new_version, task};
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

/// Everything `create` writes, in order.
pub struct Plan {
    pub namespace: String,
    pub service: Service,
    pub app_label: String,
    pub strategy: Strategy,
    pub deployment: Deployment,
    pub client_routing: bool,
    pub existing_vs: Option<VirtualService>,
    pub principal: String,
    pub old_ready: Vec<String>,
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
            let final_routing = final_routing(&plan);
            let mut items = vec![json(&plan.strategy), json(&plan.deployment)];
            if let Some(r) = &final_routing {
                items.push(json(&r.destination_rule));
                items.push(json(&r.virtual_service));
            }
            print_objects(&items, args.output.unwrap_or(ObjectFormat::Yaml));
            return Ok(());
        }
        DryRun::Server => Write::DryRun,
        DryRun::None => Write::Real,
    };
    let written = write_objects(ctx, &kube, &plan, write).await?;
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
    wait::follow(ctx, &kube, &plan, &req, &args).await
}

/// Reads what the task needs, checks eligibility, and builds the objects. Writes nothing.
async fn plan(kube: &Kube, req: &CreateRequest, routing: RoutingChoice) -> Result<Plan> {
    let ns = req.namespace.clone().unwrap_or_else(|| kube.namespace.clone());
    let svc = kube.get::<Service>(&ns, &req.service).await?.ok_or_else(|| Error::NotFound {
        target: Target {
            action: "read",
            kind: "Service".into(),
            namespace: Some(ns.clone()),
            name: Some(req.service.clone()),
        },
        message: String::new(),
        hint: Some(format!("check the name with: kubectl get services -n {ns}")),
    })?;
    let svc_labels = svc.metadata.labels.clone().unwrap_or_default();
    let app_name =
        req.app.clone().or_else(|| svc_labels.get(crate::model::strategy::LABEL_APP_NAME).cloned());
    if let (Some(given), Some(actual)) = (&req.app, svc_labels.get(crate::model::strategy::LABEL_APP_NAME))
        && given != actual
    {
        return Err(Error::Ineligible {
            what: format!("Service {ns}/{} belongs to the composed app {actual}, not {given}", req.service),
            hint: format!("use --app {actual}, or leave --app out"),
        });
    }
    let kubesphere_shape = svc_labels.contains_key(crate::model::strategy::LABEL_APP_NAME);
    let want_vs = routing != RoutingChoice::Kubesphere;
    let app_label_guess = svc_labels
        .get(LABEL_APP)
        .cloned()
        .or_else(|| {
            svc.spec.as_ref().and_then(|s| s.selector.as_ref()).and_then(|s| s.get(LABEL_APP).cloned())
        })
        .unwrap_or_else(|| req.service.clone());
    let app_fut = async {
        match (&app_name, kubesphere_shape) {
            (Some(a), true) => kube.application(&ns, a).await,
            _ => Ok(None),
        }
    };
    let vs_fut =
        async { if want_vs { kube.get::<VirtualService>(&ns, &app_label_guess).await } else { Ok(None) } };
    // One after the other on the client's kept-alive connection: concurrent requests each open
    // a TLS connection of their own, which measured slower (see BENCHMARKS.md).
    // The whole namespace: the new Deployment's name must be free even if another app uses it.
    let all_deployments = kube.list::<Deployment>(Some(&ns), None).await?;
    let strategies = kube.list::<Strategy>(Some(&ns), None).await?;
    let application = app_fut.await?;
    let existing_vs = vs_fut.await?;
    if req.app.is_some() && kubesphere_shape && application.is_none() {
        return Err(Error::Ineligible {
            what: format!(
                "the composed app {} does not exist in namespace {ns}",
                app_name.clone().unwrap_or_default()
            ),
            hint: format!("list the apps with: kubectl get applications.app.k8s.io -n {ns}"),
        });
    }
    if strategies.iter().any(|s| s.metadata.name.as_deref() == Some(req.name.as_str())) {
        return Err(Error::Ineligible {
            what: format!("a task named {} already exists in namespace {ns}", req.name),
            hint: format!(
                "choose another name, or look at it: kubectl grayscale status {} -n {ns}",
                req.name
            ),
        });
    }
    let app_deployments: Vec<Deployment> = all_deployments
        .iter()
        .filter(|d| d.metadata.labels.as_ref().and_then(|l| l.get(LABEL_APP)) == Some(&app_label_guess))
        .cloned()
        .collect();
    let e = eligibility::check(&svc, &app_deployments, application.as_ref(), &strategies, &req.version)?;
    let new_name = new_version::new_workload_name(&e.app_label, &req.version);
    if all_deployments.iter().any(|d| d.metadata.name.as_deref() == Some(new_name.as_str())) {
        return Err(Error::Ineligible {
            what: format!("Deployment {ns}/{new_name} already exists"),
            hint: "choose another --version, or delete that Deployment if it is left over".into(),
        });
    }
    let deployment = new_version::derive(&e.old, &e.app_label, req)?;
    let icon = application
        .as_ref()
        .and_then(|a| a["metadata"]["annotations"][ANN_ICON].as_str().map(str::to_string));
    let strategy = task::build(req, &ns, &e, icon);
    if e.protocol == eligibility::Protocol::Tcp {
        use crate::task::request::Routing;
        match req.routing {
            Routing::Match { .. } => {
                return Err(Error::Ineligible {
                    what: format!(
                        "Service {ns}/{} is TCP (its first port is not named http-, http2- or grpc-): request parameters need HTTP",
                        req.service
                    ),
                    hint: "route by traffic ratio with --weight, or name the port http-... if it serves HTTP"
                        .into(),
                });
            }
            Routing::Mirror => {
                return Err(Error::Ineligible {
                    what: format!("Service {ns}/{} is TCP: traffic mirroring is HTTP only", req.service),
                    hint: "use a canary with a small --weight instead".into(),
                });
            }
            _ => {}
        }
    }
    let client_routing = match routing {
        RoutingChoice::Client => true,
        RoutingChoice::Kubesphere => false,
        RoutingChoice::Auto => !ops::managed_by_kubesphere(existing_vs.as_ref()),
    };
    let old_ready = ops::ready_versions(&svc, &app_deployments, Some(&e.principal));
    Ok(Plan {
        namespace: ns,
        service: svc,
        app_label: e.app_label.clone(),
        strategy,
        deployment,
        client_routing,
        existing_vs,
        principal: e.principal,
        old_ready,
    })
}

/// Routing before the new version is ready: the old version only.
fn initial_routing(p: &Plan) -> Option<ops::RoutingOutcome> {
    p.client_routing.then(|| {
        ops::plan_routing(&p.service, &p.app_label, Some(&p.strategy), &p.old_ready, p.existing_vs.as_ref())
    })
}

/// Routing once the new version has ready pods.
pub fn final_routing(p: &Plan) -> Option<ops::RoutingOutcome> {
    let new =
        p.deployment.metadata.labels.as_ref().and_then(|l| l.get("version")).cloned().unwrap_or_default();
    let mut ready = p.old_ready.clone();
    ready.push(new);
    p.client_routing.then(|| {
        ops::plan_routing(&p.service, &p.app_label, Some(&p.strategy), &ready, p.existing_vs.as_ref())
    })
}

/// Pins routing to the old version, creates the Deployment, then the Strategy. A failure after
/// the Deployment was created deletes it again, so the cluster is as before (routing pinned to
/// the old version is what it served anyway).
async fn write_objects(ctx: &Context, kube: &Kube, p: &Plan, write: Write) -> Result<Vec<serde_json::Value>> {
    let ns = &p.namespace;
    let mut written = Vec::new();
    if let Some(r) = initial_routing(p) {
        if r.mode == RoutingMode::Empty {
            ctx.ui.warn(&format!(
                "the old version {} has no ready pods: routing is left as it is until a version is ready",
                p.principal
            ));
        }
        ops::write_routing(kube, ns, &r, write).await?;
    }
    let deployment = kube.create(ns, &p.deployment, write).await?;
    written.push(json(&deployment));
    match kube.create(ns, &p.strategy, write).await {
        Ok(s) => written.insert(0, json(&s)),
        Err(e) => {
            if write == Write::Real {
                let name = p.deployment.metadata.name.clone().unwrap_or_default();
                let undo = kube.delete::<Deployment>(ns, &name).await;
                let undone = match undo {
                    Ok(_) => format!(
                        "the new Deployment {ns}/{name} was deleted again; nothing is left to clean up"
                    ),
                    Err(u) => format!(
                        "deleting the new Deployment {ns}/{name} also failed ({u}): delete it with kubectl delete deployment {name} -n {ns}"
                    ),
                };
                return Err(Error::Partial {
                    message: format!("{e}"),
                    hint: format!("{undone}; then run the same command again"),
                });
            }
            return Err(e);
        }
    }
    if write == Write::DryRun
        && let Some(r) = final_routing(p)
    {
        let dr = kube.apply(ns, &r.destination_rule, write, true).await?;
        let vs = kube.apply(ns, &r.virtual_service, write, true).await?;
        written.push(json(&dr));
        written.push(json(&vs));
    }
    Ok(written)
}
