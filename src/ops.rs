//! I/O orchestration shared by commands: fetch what the planning core needs, write what it
//! returns. No routing rule lives here: `plan::routing` decides, this module reads and writes.
//!
//! Routing always follows the latest task state. A VirtualService is written with the
//! resourceVersion it was read at as a precondition, and it is read before the task state it is
//! derived from is written (or read). So when two commands race, the one that routed an older
//! task state either wrote first (and is overwritten) or finds the VirtualService changed,
//! reads both again and derives from the newer task.

use k8s_openapi::api::core::v1::{Pod, Service};

use crate::cluster::{Kube, Write};
use crate::error::{Error, Result, Target};
use crate::model::istio::VirtualService;
use crate::model::strategy::{LABEL_APP, Strategy};
use crate::plan::journal;
use crate::plan::operate::{self, Change};
use crate::plan::rbac;
use crate::plan::routing::{self, RoutingChoice, RoutingPlan};

pub async fn get_task(kube: &Kube, ns: &str, name: &str) -> Result<Strategy> {
    kube.get::<Strategy>(ns, name).await?.ok_or_else(|| {
        Error::missing(
            "task",
            ns,
            name,
            format!("list the tasks with: kubectl grayscale list -n {ns} (or -A for every namespace)"),
        )
    })
}

/// The app label that ties Service, Deployments, Strategy and VirtualService together.
pub fn app_label(s: &Strategy) -> String {
    s.labels().get(LABEL_APP).cloned().unwrap_or_else(|| s.service().unwrap_or_default().to_string())
}

/// The task's pods: the Strategy's selector, as the console's detail page uses it.
pub fn selector_of(s: &Strategy) -> String {
    let labels = s
        .spec
        .selector
        .as_ref()
        .and_then(|l| l.match_labels.clone())
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| [(LABEL_APP.to_string(), app_label(s))].into());
    labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

/// Writes DestinationRule then VirtualService, so the VirtualService never names a subset the
/// DestinationRule lacks. Nothing is written when no version has ready pods. `read_at` is the
/// VirtualService's resourceVersion when it was read: the write is refused (conflict) if it
/// changed since.
pub async fn write_routing(
    kube: &Kube,
    ns: &str,
    r: &RoutingPlan,
    write: Write,
    read_at: Option<&str>,
) -> Result<()> {
    if r.mode == routing::RoutingMode::Empty {
        return Ok(());
    }
    kube.apply(ns, &r.destination_rule, write, true).await?;
    let mut vs = r.virtual_service.clone();
    vs.metadata.resource_version = read_at.map(str::to_string);
    kube.apply(ns, &vs, write, true).await?;
    Ok(())
}

fn kubesphere_routes(choice: RoutingChoice, vs: Option<&VirtualService>) -> bool {
    match choice {
        RoutingChoice::Client => false,
        RoutingChoice::Kubesphere => true,
        RoutingChoice::Auto => routing::managed_by_kubesphere(vs),
    }
}

/// How the journal records a change.
#[derive(Clone, Copy)]
pub enum Journal<'a> {
    Push(&'a str),
    /// Undo: the last entry is consumed, not added to.
    Pop,
}

impl Journal<'_> {
    /// The permissions this change needs, by the verb that journals it.
    fn verb(&self) -> rbac::Verb {
        match self {
            Journal::Pop => rbac::Verb::Undo,
            Journal::Push("match") => rbac::Verb::Match,
            Journal::Push("mirror") => rbac::Verb::Mirror,
            Journal::Push("pause") => rbac::Verb::Pause,
            Journal::Push("resume") => rbac::Verb::Resume,
            Journal::Push("offline") => rbac::Verb::Offline,
            Journal::Push("takeover" | "restore") => rbac::Verb::Takeover,
            Journal::Push(_) => rbac::Verb::Shift,
        }
    }
}

pub fn mode_of(choice: RoutingChoice, vs: Option<&VirtualService>) -> rbac::Mode {
    if kubesphere_routes(choice, vs) { rbac::Mode::Kubesphere } else { rbac::Mode::Client }
}

/// Checks every permission `perms` names before a multi-step command writes anything: one
/// SelfSubjectRulesReview (or, where the authorizer cannot answer it completely, one
/// SelfSubjectAccessReview per permission, all at once). A missing one is reported by name and
/// nothing is done.
pub async fn preflight(kube: &Kube, ns: &str, what: &str, perms: &[rbac::Perm]) -> Result<()> {
    // Permissions in another namespace (Prometheus's) are proved by their first request.
    let perms: Vec<rbac::Perm> = perms.iter().filter(|p| p.namespace.is_none()).cloned().collect();
    let perms = perms.as_slice();
    let mut missing = Vec::new();
    match kube.rules_review(ns).await? {
        Some(rules) => missing.extend(perms.iter().filter(|p| !rbac::allowed(&rules, p))),
        None => {
            let answers = futures::future::join_all(perms.iter().map(|p| kube.can_i(ns, p))).await;
            for (p, a) in perms.iter().zip(answers) {
                if !a? {
                    missing.push(p);
                }
            }
        }
    }
    let Some(first) = missing.first() else { return Ok(()) };
    Err(Error::Forbidden {
        target: Target {
            action: first.verb,
            kind: if first.group.is_empty() {
                first.resource.to_string()
            } else {
                format!("{}.{}", first.resource, first.group)
            },
            namespace: (!first.cluster).then(|| ns.to_string()),
            name: None,
        },
        message: format!(
            "{what} needs {}; nothing was written (see every permission it needs with: kubectl grayscale rbac)",
            missing.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ")
        ),
    })
}

/// Unique per write: the time and the process.
fn write_id() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!("{}-{}", now.as_nanos(), std::process::id())
}

/// How a verb changes its task: what it journals, who routes, whether to check permissions
/// before the first write, and where warnings go.
pub struct Edit<'a> {
    pub journal: Journal<'a>,
    pub choice: RoutingChoice,
    pub preflight: bool,
    pub warn: &'a dyn Fn(&str),
}

pub struct Updated {
    pub before: Strategy,
    pub after: Strategy,
    pub changed: bool,
    /// Conflicting writes that were retried on fresh state.
    pub retries: u32,
    /// The VirtualService as read before the task was written (None: none, or not read).
    pub vs: Option<VirtualService>,
}

/// Conflicting writers: enough attempts for a handful of concurrent commands on one task.
const MAX_ATTEMPTS: u32 = 12;

/// A short, growing, jittered pause before retrying a conflicting write, so that writers that
/// collided do not collide again in lockstep.
async fn backoff(attempt: u32) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let ms = u64::from(attempt.min(6)) * 10 + u64::from(nanos % 20);
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
}

/// Read, change, write with a resourceVersion precondition; on a conflict, read again and
/// re-apply the change to the fresh state, so concurrent updates are never lost. With
/// `read_vs`, the task's VirtualService is read once, before the first write.
pub async fn update_task(
    kube: &Kube,
    ns: &str,
    name: &str,
    edit: &Edit<'_>,
    read_vs: bool,
    make: impl Fn(&Strategy) -> Result<Change>,
) -> Result<Updated> {
    let Edit { journal, choice, preflight: check, warn } = *edit;
    let mut attempt = 0;
    let mut vs = None;
    loop {
        attempt += 1;
        let s = get_task(kube, ns, name).await?;
        if read_vs && attempt == 1 {
            vs = kube.get::<VirtualService>(ns, &app_label(&s)).await?;
        }
        let change = make(&s)?;
        let to = operate::apply(&s, &change)?;
        if attempt == 1 {
            operate::console_warnings(&s, &change).iter().for_each(|w| warn(w));
            if check {
                let perms = rbac::needs(journal.verb(), mode_of(choice, vs.as_ref()));
                preflight(kube, ns, &format!("changing task {name}"), &perms).await?;
            }
        }
        let from = operate::state_of(&s);
        if to == from {
            return Ok(Updated { before: s.clone(), after: s, changed: false, retries: attempt - 1, vs });
        }
        let mut entries = journal::read(&s);
        match journal {
            Journal::Push(action) => {
                let entry = journal::Entry {
                    at: k8s_openapi::jiff::Timestamp::now().to_string(),
                    by: kube.user.clone(),
                    action: action.to_string(),
                    from,
                    to: to.clone(),
                };
                entries = journal::push(entries, entry);
            }
            Journal::Pop => {
                entries.pop();
            }
        }
        let mut annotations = journal::annotation(&entries);
        let id = write_id();
        annotations[routing::ANN_WRITE_ID] = serde_json::Value::String(id.clone());
        let patch = operate::merge_patch(&s, &to, annotations);
        match kube.merge_patch::<Strategy>(ns, name, &patch).await {
            Ok(after) => {
                return Ok(Updated { before: s, after, changed: true, retries: attempt - 1, vs });
            }
            // The answer was lost: the task's write id tells whether this write landed, so it is
            // never applied twice (a relative shift would be).
            Err(e) if e.answer_lost() && attempt < MAX_ATTEMPTS => {
                let now = get_task(kube, ns, name).await?;
                if now.annotation(routing::ANN_WRITE_ID) == Some(id.as_str()) {
                    return Ok(Updated { before: s, after: now, changed: true, retries: attempt - 1, vs });
                }
                backoff(attempt).await;
            }
            Err(Error::Conflict { .. }) if attempt < MAX_ATTEMPTS => backoff(attempt).await,
            Err(Error::Conflict { target, message, .. }) => {
                return Err(Error::Conflict {
                    target,
                    message,
                    hint: Some(format!(
                        "the task kept changing under this command ({MAX_ATTEMPTS} attempts); see who else operates it: kubectl grayscale history {name} -n {ns}"
                    )),
                });
            }
            Err(e) => return Err(e),
        }
    }
}

pub enum RoutedBy {
    Client(Box<RoutingPlan>),
    Kubesphere,
}

/// Brings the routing of a task to what its latest state derives. `start` is a task state and
/// the VirtualService read before that state was written; without it, both are read (the
/// VirtualService first). A conflicting VirtualService write means another command routed in
/// between: both are read again and the newer task wins.
pub async fn converge(
    kube: &Kube,
    ns: &str,
    name: &str,
    start: Option<(Strategy, Option<VirtualService>)>,
    choice: RoutingChoice,
) -> Result<RoutedBy> {
    let (mut s, mut vs) = match start {
        Some(x) => x,
        None => reread(kube, ns, name, None).await?,
    };
    for attempt in 1..=MAX_ATTEMPTS {
        if kubesphere_routes(choice, vs.as_ref()) {
            if let Some(live) = vs.as_ref()
                && let Some(patch) = routing::kubesphere_mirror_patch(&s, live)
            {
                // A failed test means the controller rewrote it meanwhile: its next sync
                // carries what is there, so nothing is lost by not retrying here.
                kube.json_patch::<VirtualService>(ns, &app_label(&s), &patch).await?;
            }
            return Ok(RoutedBy::Kubesphere);
        }
        let app = app_label(&s);
        let (svc, pods) = fetch_workloads(kube, ns, s.service().unwrap_or_default(), &app).await?;
        let ready = routing::ready_versions_of_pods(&svc, &pods, s.spec.principal.as_deref());
        let plan = routing::plan(&svc, &app, Some(&s), &ready, vs.as_ref());
        let read_at = vs.as_ref().and_then(|v| v.metadata.resource_version.clone());
        crate::failpoint::gate(crate::failpoint::BEFORE_ROUTING_WRITE).await;
        match write_routing(kube, ns, &plan, Write::Real, read_at.as_deref()).await {
            Ok(()) => return Ok(RoutedBy::Client(Box::new(plan))),
            Err(Error::Conflict { .. }) if attempt < MAX_ATTEMPTS => {
                backoff(attempt).await;
                (s, vs) = reread(kube, ns, name, Some(&app)).await?;
            }
            Err(e) => return Err(e),
        }
    }
    unreachable!("the last attempt returns")
}

/// The VirtualService, then the task: in this order, so the routing derived from the task is
/// never older than the VirtualService it replaces.
async fn reread(
    kube: &Kube,
    ns: &str,
    name: &str,
    app: Option<&str>,
) -> Result<(Strategy, Option<VirtualService>)> {
    let app = match app {
        Some(a) => a.to_string(),
        None => app_label(&get_task(kube, ns, name).await?),
    };
    let vs = kube.get::<VirtualService>(ns, &app).await?;
    Ok((get_task(kube, ns, name).await?, vs))
}

/// Changes a task, then converges its routing. A failure after the task was written keeps its
/// cause (and exit code) and says how to finish.
pub async fn update_and_route(
    kube: &Kube,
    ns: &str,
    name: &str,
    edit: Edit<'_>,
    make: impl Fn(&Strategy) -> Result<Change>,
) -> Result<(Updated, RoutedBy)> {
    update_and_route_noting(kube, ns, name, edit, make, &std::cell::Cell::new(false)).await
}

/// `update_and_route`, setting `task_written` once the task's write is confirmed, so that a
/// caller whose deadline cuts it short can say what was applied.
pub async fn update_and_route_noting(
    kube: &Kube,
    ns: &str,
    name: &str,
    edit: Edit<'_>,
    make: impl Fn(&Strategy) -> Result<Change>,
    task_written: &std::cell::Cell<bool>,
) -> Result<(Updated, RoutedBy)> {
    let choice = edit.choice;
    let read_vs = choice != RoutingChoice::Kubesphere;
    let updated = update_task(kube, ns, name, &edit, read_vs, make).await?;
    task_written.set(updated.changed);
    let start = if updated.changed {
        Some((updated.after.clone(), updated.vs.clone()))
    } else if read_vs {
        // The task was read before the VirtualService: read it again, so the routing derived
        // is never older than the VirtualService it replaces.
        Some((get_task(kube, ns, name).await?, updated.vs.clone()))
    } else {
        None
    };
    let routed = converge(kube, ns, name, start, choice).await.map_err(|e| routing_failed(e, name, ns))?;
    Ok((updated, routed))
}

pub fn routing_failed(e: Error, name: &str, ns: &str) -> Error {
    Error::Partial {
        message: format!("task {name} was changed but its routing could not be written"),
        hint: format!("write the routing with: kubectl grayscale sync {name} -n {ns}"),
        source: Some(Box::new(e)),
    }
}

/// The incident path: the task's governor, then the VirtualService with one conditional JSON
/// patch, three requests in all. If the VirtualService no longer routes the task state this
/// command changed (another command routed since, or KubeSphere writes it), it falls back to
/// converging from fresh reads.
pub async fn takeover(
    kube: &Kube,
    ns: &str,
    name: &str,
    version: &str,
    choice: RoutingChoice,
    warn: &dyn Fn(&str),
    task_written: &std::cell::Cell<bool>,
) -> Result<(Updated, RoutedBy)> {
    let v = version.to_string();
    let edit = Edit { journal: Journal::Push("takeover"), choice, preflight: false, warn };
    let updated = update_task(kube, ns, name, &edit, false, move |_| Ok(Change::Takeover(v.clone()))).await?;
    task_written.set(updated.changed);
    if choice == RoutingChoice::Kubesphere {
        return Ok((updated, RoutedBy::Kubesphere));
    }
    if updated.changed {
        let patch = routing::governor_patch(&updated.before, &updated.after, version);
        crate::failpoint::gate(crate::failpoint::BEFORE_ROUTING_WRITE).await;
        let fast = match kube.json_patch::<VirtualService>(ns, &app_label(&updated.after), &patch).await {
            Ok(f) => f,
            Err(e @ Error::Forbidden { .. }) => {
                // May not patch it: fine where KubeSphere routes (auto), else undo the take-over.
                let vs = kube.get::<VirtualService>(ns, &app_label(&updated.after)).await;
                if let Ok(vs) = vs
                    && kubesphere_routes(choice, vs.as_ref())
                {
                    return Ok((updated, RoutedBy::Kubesphere));
                }
                return Err(put_back(kube, ns, name, &updated, e).await);
            }
            Err(e) => return Err(routing_failed(e, name, ns)),
        };
        if fast.is_some() {
            let plan = Box::new(fast_plan(&updated.after));
            return Ok((updated, RoutedBy::Client(plan)));
        }
    }
    let routed = converge(kube, ns, name, None, choice).await.map_err(|e| routing_failed(e, name, ns))?;
    Ok((updated, routed))
}

/// The take-over may not write routing: the task's governor goes back to what it was (one
/// request, guarded by the version just written), so task and routing still agree, and the
/// error names the missing permission (exit 5).
async fn put_back(kube: &Kube, ns: &str, name: &str, updated: &Updated, denied: Error) -> Error {
    let before = operate::state_of(&updated.before);
    let mut entries = journal::annotation(&journal::read(&updated.before));
    // The write id too: the routing, never changed, still carries the stamp of this state.
    entries[routing::ANN_WRITE_ID] =
        updated.before.annotation(routing::ANN_WRITE_ID).map_or(serde_json::Value::Null, |w| w.into());
    let patch = operate::merge_patch(&updated.after, &before, entries);
    match kube.merge_patch::<Strategy>(ns, name, &patch).await {
        Ok(_) => match denied {
            Error::Forbidden { target, message } => Error::Forbidden {
                target,
                message: format!(
                    "{message}; the take-over was undone: task {name} is as it was, its routing unchanged"
                ),
            },
            other => other,
        },
        Err(e) => Error::Partial {
            message: format!(
                "task {name} has the new governor but its routing could not be written ({denied}), and putting the governor back failed"
            ),
            hint: format!(
                "write the routing with an account that may: kubectl grayscale sync {name} -n {ns}"
            ),
            source: Some(Box::new(e)),
        },
    }
}

/// What the fast path wrote, for the report (no Service or pods were read).
fn fast_plan(s: &Strategy) -> RoutingPlan {
    RoutingPlan {
        service: s.service().unwrap_or_default().to_string(),
        mode: routing::RoutingMode::Task,
        subsets: vec![],
        destination_rule: Default::default(),
        virtual_service: VirtualService {
            spec: routing::governor_spec(s, s.governor().unwrap_or("")),
            ..Default::default()
        },
    }
}

/// The Service and the app's pods (readiness per version). One after the other on the client's
/// kept-alive connection: concurrent requests each open a TLS connection of their own, which
/// measured slower (see BENCHMARKS.md).
pub async fn fetch_workloads(
    kube: &Kube,
    ns: &str,
    svc_name: &str,
    app: &str,
) -> Result<(Service, Vec<Pod>)> {
    let svc = kube.get::<Service>(ns, svc_name).await?;
    let pods = kube.list::<Pod>(Some(ns), Some(&format!("{LABEL_APP}={app}"))).await?;
    let svc = svc.ok_or_else(|| {
        Error::missing("Service", ns, svc_name, "the task's Service is gone: offline the task")
    })?;

    Ok((svc, pods))
}
