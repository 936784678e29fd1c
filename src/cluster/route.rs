//! The one routing entry point: every verb that changes a task's traffic goes through `change`.
//!
//! 1. One round of parallel reads (`read`): the task, its Service, VirtualService,
//!    DestinationRule and pods (and the user's permissions when asked).
//! 2. The pure core judges the change against that state (`plan::live::check`): refused before
//!    anything is written when it relies on what is not there.
//! 3. The task is written, guarded by the resourceVersion it was read at, with a new write id. A
//!    write whose outcome is unknown is looked up by that id before anything is computed again,
//!    so a relative change applies once or not at all.
//! 4. The routing derived from the written task and the live objects is written where it
//!    differs, guarded by the VirtualService's resourceVersion (`routing`). If another command
//!    routed in between, everything is read again and the newest task wins.

use std::cell::Cell;

use super::Kube;
use super::access::preflight_with;
use super::routing::{MAX_ATTEMPTS, pauses};
use super::task::{Journal, change_patch, new_write_id, write_change};
use crate::error::{Error, Result};
use crate::model::strategy::Strategy;
use crate::plan::live::{self, Expect, Live};
use crate::plan::operate::{self, Change};
use crate::plan::rbac;
use crate::plan::routing::{self, RoutingChoice};

pub use super::read::read_live;
pub use super::routing::{
    Policies, RoutedBy, converge, kubesphere_routes, plan_of, route, route_without_task, wait_routed_away,
    with_service_policy, write_plan, write_routing,
};

/// How a verb changes its task.
#[derive(Clone)]
pub struct Request<'a> {
    pub journal: Journal<'a>,
    pub choice: RoutingChoice,
    /// Check every permission the verb needs before the first write.
    pub preflight: bool,
    pub expect: Expect,
    pub warn: &'a dyn Fn(&str),
    /// The task and routing writes (and the Event) go out together in one round, after the
    /// reads: the take-over's two rounds (`together`). Verbs that check permissions first, and
    /// tasks KubeSphere routes, keep the writes in order.
    pub together: bool,
}

pub struct Outcome {
    pub before: Strategy,
    pub after: Strategy,
    pub changed: bool,
    /// Conflicting writes that were retried on fresh state.
    pub retries: u32,
    pub routed: RoutedBy,
}

fn verb_of(j: Journal<'_>) -> rbac::Verb {
    match j {
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

pub fn mode_of(choice: RoutingChoice, live: &Live) -> rbac::Mode {
    if live.identity.api == crate::plan::identity::RouteApi::GatewayApi {
        rbac::Mode::Gateway
    } else if kubesphere_routes(choice, live.vs.as_ref()) {
        rbac::Mode::Kubesphere
    } else {
        rbac::Mode::Client
    }
}

/// A change judged against the live state: what it makes of the task, and what to warn about.
pub struct Judged {
    pub change: Change,
    pub to: operate::TaskState,
    pub warnings: Vec<String>,
}

/// The pure core's verdict on a change of the live task: refused (nothing to write) when it
/// relies on what is not there.
pub fn judge(live: &Live, req: &Request<'_>, make: &impl Fn(&Strategy) -> Result<Change>) -> Result<Judged> {
    let kubesphere = kubesphere_routes(req.choice, live.vs.as_ref());
    let change = make(&live.task)?;
    let to = operate::apply(&live.task, &change)?;
    let expect = Expect { kubesphere, ..req.expect.clone() };
    let warnings = live::check(live, &change, &expect)?;
    Ok(Judged { change, to, warnings })
}

/// The read round and the judgement of `change`, writing nothing: what a take-over across
/// clusters asks of every cluster before it writes to any.
pub async fn plan(
    kube: &Kube,
    ns: &str,
    name: &str,
    req: &Request<'_>,
    make: impl Fn(&Strategy) -> Result<Change>,
) -> Result<(Live, Judged)> {
    let (live, _) = read_live(kube, ns, name, false).await?;
    let judged = judge(&live, req, &make)?;
    Ok((live, judged))
}

/// How far a change got, so that a caller whose deadline cuts it short can say what was
/// applied: `sent` once a write went out, `task` once the task's write is confirmed.
#[derive(Default)]
pub struct Progress {
    pub sent: Cell<bool>,
    pub task: Cell<bool>,
}

/// Changes a task and brings its routing to what the new state derives.
pub async fn change(
    kube: &Kube,
    ns: &str,
    name: &str,
    req: Request<'_>,
    make: impl Fn(&Strategy) -> Result<Change>,
    progress: &Progress,
) -> Result<Outcome> {
    // Who the user is (for the journal and the Event) goes out with the first read round.
    let (first, user) = tokio::join!(read_live(kube, ns, name, req.preflight), super::whoami::user(kube));
    let kube = &kube.clone().with_user(user);
    on_read_round(kube, ns, name, &req, &make, progress, first?).await
}

/// `change` on a read round already made and judged (a take-over across clusters reads every
/// cluster before it writes to any): the writes are guarded by what that round saw, so a task
/// or route that moved since is judged afresh, never overwritten. `kube` knows its user.
pub async fn change_after(
    kube: &Kube,
    ns: &str,
    name: &str,
    req: Request<'_>,
    make: impl Fn(&Strategy) -> Result<Change>,
    progress: &Progress,
    live: Live,
) -> Result<Outcome> {
    on_read_round(kube, ns, name, &req, &make, progress, (live, None)).await
}

/// The writes after a read round: together (a take-over), or one after the other.
async fn on_read_round(
    kube: &Kube,
    ns: &str,
    name: &str,
    req: &Request<'_>,
    make: &impl Fn(&Strategy) -> Result<Change>,
    progress: &Progress,
    first: (Live, Option<super::access::Rules>),
) -> Result<Outcome> {
    if req.together {
        return super::together::change(kube, ns, name, req, make, progress, first).await;
    }
    attempts(kube, ns, name, req, make, progress, Some(first), None).await
}

/// The guarded write of the task, then its routing, attempt after attempt on fresh state.
/// `first`: the read round already made; `pending`: the id of a write whose outcome is unknown,
/// and the task it changed.
#[allow(clippy::too_many_arguments)]
pub(super) async fn attempts(
    kube: &Kube,
    ns: &str,
    name: &str,
    req: &Request<'_>,
    make: &impl Fn(&Strategy) -> Result<Change>,
    progress: &Progress,
    mut first: Option<(Live, Option<super::access::Rules>)>,
    mut pending: Option<(String, Strategy)>,
) -> Result<Outcome> {
    let mut pauses = pauses();
    // Continued from the take-over's write round: its warnings are told and its Event is out.
    let continued = pending.is_some();
    for attempt in 1..=MAX_ATTEMPTS {
        let (live, rules) = match first.take() {
            Some(read) => read,
            None => read_live(kube, ns, name, false).await?,
        };
        let retries = (attempt - 1 + usize::from(continued)) as u32;
        if let Some((id, before)) = &pending
            && live.task.annotation(routing::ANN_WRITE_ID) == Some(id.as_str())
        {
            progress.task.set(true);
            let before = before.clone();
            return finish(kube, ns, live, req, before, (true, !continued), retries).await;
        }
        let Judged { change: c, to, warnings } = judge(&live, req, make)?;
        if attempt == 1 && !continued {
            operate::console_warnings(&live.task, &c).iter().chain(&warnings).for_each(|w| (req.warn)(w));
            if let Some(rules) = rules {
                let perms = rbac::needs(verb_of(req.journal), mode_of(req.choice, &live));
                preflight_with(kube, ns, &format!("changing task {name}"), &perms, rules).await?;
            }
        }
        if to == operate::state_of(&live.task) {
            let before = live.task.clone();
            return finish(kube, ns, live, req, before, (false, false), retries).await;
        }
        // Refused, nothing written, where the served Strategy CRD would cut the routes.
        let key = kube.check_routes(name, &live.task.spec.template.spec.http, &to.http, req.warn).await?;
        // Continued from the take-over's write round, the task is written under that round's id,
        // which the routing written with it carries: if the routing still fits the task, it
        // stays as it is. (Any attempt with this id landing means the change was made.)
        let id = match &pending {
            Some((id, _)) if continued => id.clone(),
            _ => new_write_id(),
        };
        let mut patch = change_patch(&live.task, &to, req.journal, &kube.user, &id);
        crate::plan::strategy_schema::spell_mirror_percentage(&mut patch, key);
        progress.sent.set(true);
        match write_change(kube, ns, name, &patch).await? {
            Some(after) => {
                progress.task.set(true);
                let before = live.task.clone();
                let live = Live { task: after, ..live };
                return finish(kube, ns, live, req, before, (true, !continued), retries).await;
            }
            None => {
                pending = Some((id, live.task.clone()));
                if let Some(p) = pauses.next() {
                    tokio::time::sleep(p).await;
                }
            }
        }
    }
    Err(Error::Conflict {
        target: crate::cluster::target::<Strategy>("update", Some(ns), Some(name)),
        message: "the task kept changing under this command".into(),
        hint: Some(format!(
            "the task kept changing under this command ({MAX_ATTEMPTS} attempts); see who else operates it: kubectl grayscale history {name} -n {ns}"
        )),
    })
}

pub(super) async fn finish(
    kube: &Kube,
    ns: &str,
    live: Live,
    req: &Request<'_>,
    before: Strategy,
    (changed, record): (bool, bool),
    retries: u32,
) -> Result<Outcome> {
    let after = live.task.clone();
    let name = live.identity.task.clone();
    let routed = match route(kube, ns, live, req.choice, forced(req, &after), Policies::WithSubsets).await {
        Ok(r) => r,
        // A take-over that may not write routing puts the task back, so that task and routing
        // still agree, and names the missing permission (exit 5).
        Err(e @ Error::Forbidden { .. }) if changed && matches!(req.journal, Journal::Push("takeover")) => {
            return Err(put_back(kube, ns, &name, &before, &after, e).await);
        }
        Err(e) => return Err(routing_failed(e, &name, ns)),
    };
    // Gateway API: what the mesh says of the route just written (not for a take-over, which
    // stays at its request budget; `status` shows it).
    if let RoutedBy::Gateway(g) = &routed
        && changed
        && !matches!(req.journal, Journal::Push("takeover"))
    {
        match super::gateway::accepted(kube, ns, &g.service).await {
            Ok(why) => why.iter().for_each(|w| (req.warn)(&format!("HTTPRoute {}: {w}", g.service))),
            Err(e) => (req.warn)(&e.to_string()),
        }
    }
    super::events::record_change(kube, req.journal, &before, &after, changed && record, req.warn).await;
    Ok(Outcome { before, after, changed, retries, routed })
}

/// Writes the task state of `before` back over `after` (guarded by `after`'s resourceVersion),
/// with `before`'s journal and write id: the routing, never changed, still carries that state.
pub(super) async fn put_back(
    kube: &Kube,
    ns: &str,
    name: &str,
    before: &Strategy,
    after: &Strategy,
    denied: Error,
) -> Error {
    let mut ann = crate::plan::journal::annotation(&crate::plan::journal::read(before));
    ann[routing::ANN_WRITE_ID] =
        before.annotation(routing::ANN_WRITE_ID).map_or(serde_json::Value::Null, |w| w.into());
    let mut patch = operate::merge_patch(after, &operate::state_of(before), ann);
    // Spelt as the forward write was (a percentage there had the schema read).
    let key = kube.strategy_schema.lock().expect("schema cache").as_ref().and_then(|s| s.mirror_key());
    crate::plan::strategy_schema::spell_mirror_percentage(
        &mut patch,
        key.unwrap_or(crate::plan::strategy_schema::MirrorKey::Camel),
    );
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

/// The version a forced take-over routes to even without ready pods.
pub(super) fn forced(req: &Request<'_>, s: &Strategy) -> Option<String> {
    req.expect.force.then(|| s.governor().map(str::to_string)).flatten()
}

pub fn routing_failed(e: Error, name: &str, ns: &str) -> Error {
    Error::Partial {
        message: format!("task {name} was changed but its routing could not be written"),
        hint: format!("write the routing with: kubectl grayscale sync {name} -n {ns}"),
        source: Some(Box::new(e)),
    }
}
