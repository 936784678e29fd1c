//! Watching the pods of one version.
//!
//! One watch request from resourceVersion "0" delivers the current pods as ADDED events and
//! then every change, which keeps `create` within its request budget (a list-then-watch
//! reflector costs one more request). The stream is resumed from the last seen version when
//! the server closes it, and restarted from "0" if that version has expired.

use futures::{StreamExt, stream::BoxStream};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, WatchEvent, WatchParams};

use super::{Kube, classify, target};
use crate::error::{Error, Result};

pub enum PodChange {
    Applied(Box<Pod>),
    Deleted(Box<Pod>),
}

pub struct PodWatch {
    api: Api<Pod>,
    params: WatchParams,
    ns: String,
    resource_version: String,
    stream: Option<BoxStream<'static, kube::Result<WatchEvent<Pod>>>>,
    pauses: backon::ExponentialBackoff,
}

/// Growing pauses between reconnects: 100 ms doubling to 2 s, jittered.
fn reconnect_pauses() -> backon::ExponentialBackoff {
    use backon::BackoffBuilder;
    backon::ExponentialBuilder::default()
        .with_min_delay(std::time::Duration::from_millis(100))
        .with_max_delay(std::time::Duration::from_secs(2))
        .with_jitter()
        .without_max_times()
        .build()
}

/// Errors worth waiting out: the connection, or the server saying it is busy or restarting.
pub fn transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => matches!(s.code, 429 | 500 | 502 | 503 | 504),
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => true,
        _ => false,
    }
}

pub fn pod_events(kube: &Kube, ns: &str, selector: &str) -> PodWatch {
    pod_events_from(kube, ns, selector, "0")
}

/// Changes after `resource_version` (of a list the caller already has).
pub fn pod_events_from(kube: &Kube, ns: &str, selector: &str, resource_version: &str) -> PodWatch {
    PodWatch {
        api: Api::namespaced(kube.client.clone(), ns),
        params: WatchParams::default().labels(selector).timeout(290),
        ns: ns.to_string(),
        resource_version: resource_version.to_string(),
        stream: None,
        pauses: reconnect_pauses(),
    }
}

impl PodWatch {
    pub async fn next(&mut self) -> Result<PodChange> {
        loop {
            if self.stream.is_none() {
                match self.api.watch(&self.params, &self.resource_version).await {
                    Ok(s) => {
                        self.pauses = reconnect_pauses();
                        self.stream = Some(s.boxed());
                    }
                    Err(e) if transient(&e) => {
                        self.pause().await;
                        continue;
                    }
                    Err(e) => return Err(classify(target::<Pod>("watch", Some(&self.ns), None), e)),
                }
            }
            let stream = self.stream.as_mut().expect("set above");
            match stream.next().await {
                Some(Ok(WatchEvent::Added(p) | WatchEvent::Modified(p))) => {
                    self.remember(&p);
                    return Ok(PodChange::Applied(Box::new(p)));
                }
                Some(Ok(WatchEvent::Deleted(p))) => {
                    self.remember(&p);
                    return Ok(PodChange::Deleted(Box::new(p)));
                }
                Some(Ok(WatchEvent::Bookmark(b))) => self.resource_version = b.metadata.resource_version,
                Some(Ok(WatchEvent::Error(e))) if e.code == 410 => {
                    self.resource_version = "0".into();
                    self.stream = None;
                }
                Some(Ok(WatchEvent::Error(e))) => {
                    return Err(Error::Api {
                        target: target::<Pod>("watch", Some(&self.ns), None),
                        source: Box::new(kube::Error::Api(e)),
                    });
                }
                // The connection broke (an API server restart, a proxy): resume from the last
                // version seen once the server answers again; the caller's deadline bounds it.
                Some(Err(e)) if transient(&e) => {
                    self.stream = None;
                    self.pause().await;
                }
                Some(Err(e)) => return Err(classify(target::<Pod>("watch", Some(&self.ns), None), e)),
                None => self.stream = None,
            }
        }
    }

    async fn pause(&mut self) {
        let p = self.pauses.next().unwrap_or(std::time::Duration::from_secs(2));
        tokio::time::sleep(p).await;
    }

    fn remember(&mut self, p: &Pod) {
        if let Some(rv) = &p.metadata.resource_version {
            self.resource_version = rv.clone();
        }
    }
}

/// Waits until `done(service's DestinationRule, app's VirtualService)` holds, re-checking on
/// every change of either (two watches from the current state).
pub async fn await_routing(
    kube: &Kube,
    ns: &str,
    dr_name: &str,
    vs_name: &str,
    done: impl Fn(
        Option<&crate::model::istio::DestinationRule>,
        Option<&crate::model::istio::VirtualService>,
    ) -> bool,
) -> Result<()> {
    use crate::model::istio::{DestinationRule, VirtualService};
    use kube::runtime::watcher::{self, Event};
    enum Seen {
        Dr(Option<DestinationRule>),
        Vs(Option<VirtualService>),
    }
    fn latest<K: Clone>(e: Event<K>) -> Option<Option<K>> {
        match e {
            Event::Apply(o) | Event::InitApply(o) => Some(Some(o)),
            Event::Delete(_) => Some(None),
            _ => None,
        }
    }
    let dr_api: Api<DestinationRule> = Api::namespaced(kube.client.clone(), ns);
    let vs_api: Api<VirtualService> = Api::namespaced(kube.client.clone(), ns);
    let drs =
        watcher::watcher(dr_api, watcher::Config::default().fields(&format!("metadata.name={dr_name}")))
            .map(|e| e.map(|e| latest(e).map(Seen::Dr)));
    let vss =
        watcher::watcher(vs_api, watcher::Config::default().fields(&format!("metadata.name={vs_name}")))
            .map(|e| e.map(|e| latest(e).map(Seen::Vs)));
    let mut events = futures::stream::select(drs.boxed(), vss.boxed());
    let (mut dr, mut vs) = (None, None);
    while let Some(ev) = events.next().await {
        let ev = ev.map_err(|e| {
            super::watch_error(
                target::<VirtualService>("watch", Some(ns), Some(vs_name)),
                kube::runtime::wait::Error::ProbeFailed(e),
            )
        })?;
        match ev {
            Some(Seen::Dr(d)) => dr = d,
            Some(Seen::Vs(v)) => vs = v,
            None => continue,
        }
        if done(dr.as_ref(), vs.as_ref()) {
            return Ok(());
        }
    }
    Err(Error::Watch {
        message: format!("the watch of {ns}/{vs_name} ended"),
        hint: "run the command again".into(),
    })
}
