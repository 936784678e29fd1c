//! Writing the record of who moved traffic (`plan::events`): one Event on the Strategy per
//! change, after the change's own writes, so that it never delays them. The change has
//! happened by then: a failed Event write is reported once on stderr and never fails the
//! command.

use std::sync::atomic::Ordering;

use k8s_openapi::api::core::v1::Event;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};

use super::task::Journal;
use super::{Kube, classify, target};
use crate::model::strategy::Strategy;
use crate::plan::events;

/// Writes `ev`; a failure is told through `warn`, once per command.
pub async fn record(kube: &Kube, ev: &Event, warn: &dyn Fn(&str)) {
    let ns = ev.metadata.namespace.clone().unwrap_or_else(|| kube.namespace.clone());
    let api: Api<Event> = Api::namespaced(kube.client.clone(), &ns);
    match api.create(&PostParams::default(), ev).await {
        Ok(_) => {}
        // The name is the change's own: a 409 is this Event, stored by an attempt whose
        // answer was lost (a 503 after the write, retried).
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => {
            if !kube.event_warned.swap(true, Ordering::Relaxed) {
                let task = ev.involved_object.name.clone().unwrap_or_default();
                let e = classify(target::<Event>("create", Some(&ns), None), e);
                let hint = e.hint().map(|h| format!(" ({h})")).unwrap_or_default();
                warn(&format!(
                    "the change to task {task} was made, but its Event could not be recorded: {e}{hint}"
                ));
            }
        }
    }
}

/// The Event of a change made through `route::change`, when the task did change (an
/// unchanged task moved no traffic).
pub async fn record_change(
    kube: &Kube,
    journal: Journal<'_>,
    before: &Strategy,
    after: &Strategy,
    changed: bool,
    warn: &dyn Fn(&str),
) {
    if !changed {
        return;
    }
    let ev = events::change_event(journal.verb(), &kube.user, before, after, Timestamp::now());
    record(kube, &ev, warn).await;
}
