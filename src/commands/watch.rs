//! `status --watch`: the task redrawn on every watch event (a terminal), or one line per change
//! (a pipe, a log).

use std::collections::BTreeMap;
use std::io::IsTerminal;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::Resource;
use kube::runtime::watcher::{self, Event};

use crate::cluster::Kube;
use crate::cluster::task::get_task;
use crate::cluster::task_watch::{Change, task_changes};
use crate::error::{Error, Result};
use crate::model::strategy::Strategy;
use crate::output::{Format, print};
use crate::plan::identity::TaskIdentity;
use crate::view::pods::pod_view;
use crate::view::render;
use crate::view::task::{TaskView, task_view, traffic_summary};

/// The lines that describe a view; a change prints the lines that are new.
pub fn lines(v: &TaskView) -> Vec<String> {
    let mut out = vec![format!(
        "task {} traffic {} governor {} policy {}",
        v.name,
        traffic_summary(&v.routing),
        v.governor.as_deref().unwrap_or("-"),
        v.policy
    )];
    for x in &v.versions {
        out.push(format!("version {} {} ready {}/{}", x.version, x.workload, x.ready, x.replicas));
    }
    for p in &v.live_routing {
        let w: Vec<String> = p.weights.iter().map(|w| format!("{} {}%", w.version, w.weight)).collect();
        out.push(format!(
            "routing port {} {}",
            if p.port == 0 { "*".into() } else { p.port.to_string() },
            w.join(" ")
        ));
    }
    for e in &v.events {
        out.push(format!("warning {} {}: {}", e.object, e.reason, e.message));
    }
    for p in &v.pods {
        let mut l = format!("pod {} {} {}", p.version, p.name, p.state);
        if p.restarts > 0 {
            l.push_str(&format!(" restarts {}", p.restarts));
        }
        out.push(l);
    }
    out
}

pub fn changes(prev: &[String], next: &[String]) -> Vec<String> {
    next.iter().filter(|l| !prev.contains(l)).cloned().collect()
}

fn watch_error_is_transient(e: &watcher::Error) -> bool {
    match e {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => crate::cluster::transient(e),
        // 410 Gone: the watcher lists again from scratch on its next poll.
        watcher::Error::WatchError(s) => matches!(s.code, 410 | 429 | 500 | 502 | 503 | 504),
        _ => false,
    }
}

fn upsert<K: Resource<DynamicType = ()> + Clone>(store: &mut BTreeMap<String, K>, ev: Event<K>) {
    match ev {
        Event::Apply(o) | Event::InitApply(o) => {
            store.insert(o.meta().name.clone().unwrap_or_default(), o);
        }
        Event::Delete(o) => {
            store.remove(o.meta().name.as_deref().unwrap_or_default());
        }
        Event::Init | Event::InitDone => {}
    }
}

pub async fn run(kube: &Kube, ns: &str, name: &str, color: bool) -> Result<()> {
    let s = get_task(kube, ns, name).await?;
    let svc = kube.get::<k8s_openapi::api::core::v1::Service>(ns, s.service().unwrap_or_default()).await?;
    let id = TaskIdentity::of(&s, svc.as_ref());
    let app = id.app.clone();
    let selector = id.pod_selector();
    let mut events = task_changes(kube, ns, name, &app, &id.workload_selector(), &selector);
    let tty = std::io::stdout().is_terminal();
    let mut task = Some(s);
    let (mut deployments, mut pods, mut vs) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    let mut warnings = BTreeMap::new();
    let mut shown: Vec<String> = Vec::new();
    let mut reconnecting = false;
    while let Some(ev) = events.next().await {
        let ev = match ev {
            Ok(ev) => ev,
            // The connection broke (the API server restarts, say): the watchers reconnect with
            // backoff and resume; say so once, keep going.
            Err(e) if watch_error_is_transient(&e) => {
                if !reconnecting {
                    eprintln!("lost the connection to the API server ({e}); reconnecting");
                    reconnecting = true;
                }
                continue;
            }
            // A refusal (403) keeps its exit code and the permission to ask for; nothing was
            // written either way.
            Err(e) => {
                return Err(
                    match crate::cluster::watch_error(
                        crate::cluster::target::<Strategy>("watch", Some(ns), Some(name)),
                        kube::runtime::wait::Error::ProbeFailed(e),
                    ) {
                        e @ Error::Forbidden { .. } => e,
                        e => Error::Watch {
                            message: format!("the watch of task {name} failed: {e}"),
                            hint: format!("run it again: kubectl grayscale status {name} -n {ns} --watch"),
                        },
                    },
                );
            }
        };
        if std::mem::take(&mut reconnecting) {
            eprintln!("reconnected");
        }
        match ev {
            Change::Task(e) => match *e {
                Event::Delete(_) => {
                    print(&format!("task {name} was deleted\n"));
                    return Ok(());
                }
                Event::Apply(t) | Event::InitApply(t) => task = Some(t),
                _ => {}
            },
            Change::Deployment(e) => upsert(&mut deployments, *e),
            Change::Pod(e) => upsert(&mut pods, *e),
            Change::Routing(e) => upsert(&mut vs, *e),
            Change::Warning(e) => upsert(&mut warnings, *e),
        }
        let Some(t) = &task else { continue };
        let deps: Vec<Deployment> = deployments.values().cloned().collect();
        let mut pod_views: Vec<_> = pods.values().map(pod_view).collect();
        pod_views.sort_by(|a, b| (&a.version, &a.name).cmp(&(&b.version, &b.name)));
        let events: Vec<_> = warnings.values().cloned().collect();
        let recent = crate::view::task::warning_events(&events, &pod_views, 5);
        let mut view = task_view(t, &deps, vs.values().next(), pod_views);
        view.events = recent;
        if tty {
            let now = k8s_openapi::jiff::Timestamp::now().as_second();
            print(&format!("\x1b[H\x1b[2J{}", render::status(&view, Format::Table, now, color)));
        } else {
            let next = lines(&view);
            let stamp = k8s_openapi::jiff::Timestamp::now().strftime("%H:%M:%S%.3f").to_string();
            for l in changes(&shown, &next) {
                print(&format!("{stamp} {l}\n"));
            }
            shown = next;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_new_lines_are_printed() {
        let prev = vec!["pod v2 a Running".to_string(), "version v2 x ready 0/1".to_string()];
        let next = vec!["pod v2 a Ready".to_string(), "version v2 x ready 1/1".to_string()];
        assert_eq!(changes(&prev, &next), next);
        assert!(changes(&next, &next).is_empty());
    }
}
