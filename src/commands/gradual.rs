//! `shift --to`: one step per interval, watching the new version's pods and, with gates, the
//! metrics Prometheus has of both versions. Any failure goes back (to the last step that held,
//! or with `--on-failure takeover` all traffic to the old version) and exits 9.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use tokio::time::Instant;

use super::Context;
use super::change::summary;
use super::gates::{Analyst, Evidence};
use super::schedule_ui::Bar;
use super::shift::{OnFailure, ShiftArgs, step, weight_of};
use crate::cluster::access::preflight_with;
use crate::cluster::route::{mode_of, read_live};
use crate::cluster::task::get_task;
use crate::cluster::{Kube, PodChange, PodWatch, pod_events_from};
use crate::error::{Error, Result};
use crate::model::strategy::Strategy;
use crate::output::{Cell, print, render_table};
use crate::plan::gate::{Outcome, describe};
use crate::plan::operate::Change;
use crate::plan::operate::versions;
use crate::plan::rbac;
use crate::plan::routing::ANN_WRITE_ID;
use crate::plan::schedule::{Health, steps};
use crate::view::pods::pod_view;

/// Why a wait ended early.
enum Stop {
    Degraded(String),
    Interrupted,
}

/// Waits while watching the new version's pods and Ctrl-C.
struct Watch {
    health: Health,
    events: PodWatch,
    interrupt: crate::signal::Interrupt,
}

impl Watch {
    async fn until(&mut self, deadline: Instant, bar: &Bar) -> Result<Option<Stop>> {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return Ok(None),
                _ = tick.tick() => bar.waiting(deadline.saturating_duration_since(Instant::now())),
                ev = self.events.next() => {
                    match ev? {
                        PodChange::Applied(p) => self.health.apply(pod_view(&p)),
                        PodChange::Deleted(p) => self.health.remove(p.metadata.name.as_deref().unwrap_or_default()),
                    }
                    if let Some(reason) = self.health.degraded() {
                        return Ok(Some(Stop::Degraded(reason)));
                    }
                }
                _ = self.interrupt.recv() => return Ok(Some(Stop::Interrupted)),
            }
        }
    }
}

/// A step's judgement after its interval: the evidence when it held, else why not.
enum Judged {
    Held(Evidence),
    Failed(String, Option<Evidence>),
    Stopped(Stop),
}

/// Reads the gates; too little traffic or an unreachable Prometheus is retried (the weight
/// holds) for at most one more interval.
async fn judge(a: &Analyst, w: u8, interval: Duration, watch: &mut Watch, bar: &Bar) -> Result<Judged> {
    let grace = Instant::now() + interval;
    let poll = (interval / 10).clamp(Duration::from_secs(1), Duration::from_secs(10));
    loop {
        let why = match a.evidence(interval, w < 100).await {
            Ok(e) => {
                bar.gates(w, &a.line(&e));
                match &e.outcome {
                    Outcome::Pass => return Ok(Judged::Held(e)),
                    Outcome::Fail(r) => {
                        let msg = format!("gate {}", describe(r, a.unit_of(&r.gate)));
                        return Ok(Judged::Failed(msg, Some(e)));
                    }
                    Outcome::NotYet(why) => (why.clone(), Some(e)),
                }
            }
            Err(err) => {
                bar.note(&format!("{err}; holding at {w}%"));
                (err.to_string(), None)
            }
        };
        if Instant::now() >= grace {
            return Ok(Judged::Failed(format!("no verdict one interval after the step: {}", why.0), why.1));
        }
        if let Some(stop) = watch.until((Instant::now() + poll).min(grace), bar).await? {
            return Ok(Judged::Stopped(stop));
        }
    }
}

/// The steps so far with every reading, for the final report and the failure message.
fn report(history: &[(u8, Evidence)], a: &Analyst) -> String {
    let mut headers = vec!["STEP".to_string(), "WEIGHT".to_string(), "REQUESTS".to_string()];
    headers.extend(a.gates.iter().map(|g| g.name.clone()));
    let rows: Vec<Vec<Cell>> = history
        .iter()
        .enumerate()
        .map(|(i, (w, e))| {
            let mut row = vec![
                Cell::from((i + 1).to_string()),
                Cell::from(format!("{w}%")),
                Cell::from(e.new_requests.map(|n| format!("{n:.0}")).unwrap_or_else(|| "-".into())),
            ];
            row.extend(e.readings.iter().map(|r| {
                let v = r
                    .value
                    .map(|v| crate::plan::gate::fmt(v, a.unit_of(&r.gate)))
                    .unwrap_or_else(|| "-".into());
                Cell::from(format!("{v} {}", verdict_word(r.verdict)))
            }));
            row
        })
        .collect();
    let h: Vec<&str> = headers.iter().map(String::as_str).collect();
    render_table(&h, &rows, false)
}

fn verdict_word(v: crate::plan::gate::Verdict) -> &'static str {
    use crate::plan::gate::Verdict::*;
    match v {
        Pass => "ok",
        Fail => "FAIL",
        NoData => "no-data",
        Skipped => "skipped",
    }
}

struct Run<'a> {
    ctx: &'a Context,
    kube: Kube,
    ns: String,
    args: &'a ShiftArgs,
    target: u8,
    old: String,
    new: String,
    /// The id of the shift's own last write of the task: a step finds it there or yields.
    last_write: std::cell::RefCell<String>,
}

impl Run<'_> {
    /// Writes one change of the shift's, if the task is as the shift's last write left it.
    async fn write(&self, change: Change) -> Result<Strategy> {
        let last = self.last_write.borrow().clone();
        let (a, ns) = (self.args, &self.ns);
        let after = step(
            self.ctx,
            &self.kube,
            ns,
            &a.name,
            change,
            &last,
            a.routing,
            a.deadline.timeout,
            a.force.force,
        )
        .await?;
        *self.last_write.borrow_mut() = after.annotation(ANN_WRITE_ID).unwrap_or_default().to_string();
        Ok(after)
    }

    /// Goes back after a failure and returns the error to exit with (9).
    async fn fall_back(&self, healthy: u8, reason: String, evidence: Option<String>) -> Result<Error> {
        let (name, ns) = (&self.args.name, &self.ns);
        let went = match self.args.on_failure {
            OnFailure::Back => {
                self.write(Change::Weight(healthy)).await?;
                format!("went back to {healthy}% for {}", self.new)
            }
            OnFailure::Takeover => {
                self.write(Change::Takeover(self.old.clone())).await?;
                format!("sent all traffic to {} (take-over)", self.old)
            }
        };
        let mut message = format!("{reason}; the shift stopped and {went}");
        if let Some(table) = evidence {
            message.push_str(&format!("\n{}", table.trim_end()));
        }
        Ok(Error::HealthGate {
            message,
            hint: format!(
                "compare the versions: kubectl grayscale analyze {name} -n {ns}; resume later with: kubectl grayscale shift {name} --to {} -n {ns}",
                self.target
            ),
        })
    }
}

pub async fn run(ctx: &Context, args: &ShiftArgs, target: u8) -> Result<()> {
    // Bad gates are refused before anything is read or written.
    let gates = args.gate.parse()?;
    let kube = ctx.kube().await?;
    let ns = kube.namespace.clone();
    let name = args.name.clone();
    // Every step writes the task and its routing: check all of it once, before the first. Who
    // the user is goes out with those reads, asked once for every step's journal and Event.
    let (live, user) = tokio::join!(read_live(&kube, &ns, &name, true), crate::cluster::whoami::user(&kube));
    let (live, rules) = live?;
    let kube = kube.with_user(user);
    let s = live.task.clone();
    let start = weight_of(&s)? as u8;
    let perms = rbac::needs(rbac::Verb::ShiftGradual, mode_of(args.routing, &live));
    preflight_with(&kube, &ns, &format!("shifting task {name}"), &perms, rules.flatten()).await?;
    // Never shift blind: every gate's query runs once before the first step.
    let analyst = if gates.is_empty() {
        None
    } else {
        let a = Analyst::new(&kube, &args.gate, gates, &s, &ns).await?;
        a.evidence(args.interval, true).await?;
        ctx.ui.info(&format!("gates read from Prometheus at {}", a.prometheus.source));
        Some(a)
    };
    let plan = steps(start, target, args.step as u8);
    let (old, new) = versions(&s);
    let new = new.unwrap_or_default();
    let selector = live.identity.version_selector(&new);
    let (pods, rv) = kube.list_with_version::<Pod>(&ns, &selector).await?;
    let mut watch = Watch {
        health: Health::new(pods.iter().map(pod_view)),
        events: pod_events_from(&kube, &ns, &selector, &rv),
        interrupt: crate::signal::Interrupt::install()?,
    };
    let bar = Bar::new(ctx.ui.progress, &name, start, target);
    let last_write = std::cell::RefCell::new(s.annotation(ANN_WRITE_ID).unwrap_or_default().to_string());
    let run =
        Run { ctx, kube: kube.clone(), ns: ns.clone(), args, target, old, new: new.clone(), last_write };
    let mut history: Vec<(u8, Evidence)> = Vec::new();
    let table = |h: &[(u8, Evidence)]| analyst.as_ref().map(|a| report(h, a));
    let (mut healthy, mut at) = (start, start);
    for (i, w) in plan.iter().copied().enumerate() {
        crate::failpoint::gate(&crate::failpoint::before_step(i + 1)).await;
        if let Err(e) = run.write(Change::Weight(w)).await {
            bar.finish();
            return Err(e);
        }
        at = w;
        bar.step(w);
        let last = i + 1 == plan.len();
        if last && analyst.is_none() {
            break;
        }
        let mut stop = watch.until(Instant::now() + args.interval, &bar).await?;
        if stop.is_none()
            && let Some(a) = &analyst
        {
            match judge(a, w, args.interval, &mut watch, &bar).await? {
                Judged::Held(e) => history.push((w, e)),
                Judged::Stopped(s) => stop = Some(s),
                Judged::Failed(reason, e) => {
                    bar.finish();
                    if let Some(e) = e {
                        history.push((w, e));
                    }
                    let reason = format!("step {} ({new} at {w}%): {reason}", i + 1);
                    return Err(run.fall_back(healthy, reason, table(&history)).await?);
                }
            }
        }
        match stop {
            Some(Stop::Degraded(reason)) => {
                bar.finish();
                return Err(run.fall_back(healthy, reason, table(&history)).await?);
            }
            Some(Stop::Interrupted) => {
                bar.finish();
                return Err(Error::Interrupted {
                    message: format!(
                        "the shift stopped at a step boundary: {new} at {at}% (target {target}%)"
                    ),
                    hint: format!(
                        "resume with: kubectl grayscale shift {name} --to {target} --step {} --interval {:?} -n {ns}",
                        args.step, args.interval
                    ),
                });
            }
            None => {}
        }
        healthy = at;
    }
    bar.finish();
    let now = get_task(&kube, &ns, &name).await?;
    print(&format!("task {name}: {} (shifted {start}% -> {at}%)\n", summary(&now)));
    if let Some(t) = table(&history) {
        print(&t);
    }
    Ok(())
}
