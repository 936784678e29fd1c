//! The record of who moved traffic: every change of a task becomes a Kubernetes Event on its
//! Strategy (`kubectl describe strategy`, `kubectl get events`), naming the change, the routing
//! before and after, and the user as the cluster sees them. Built here, written by
//! `cluster::events`; the clock is passed in.

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;

use crate::FIELD_MANAGER;
use crate::model::strategy::{API_VERSION, KIND, Strategy};
use crate::view::task::task_summary;

/// The Event's reason for a journaled action (`Journal::verb`), `create` and `offline`.
pub fn reason(action: &str) -> &'static str {
    match action {
        "create" => "Created",
        "shift" => "TrafficShifted",
        "takeover" => "TakenOver",
        "restore" => "Restored",
        "pause" => "Paused",
        "resume" => "Resumed",
        "match" => "MatchChanged",
        "mirror" => "MirrorChanged",
        "undo" => "Undone",
        "offline" => "Offline",
        _ => "Changed",
    }
}

/// An Event name as client-go makes them (`<object>.<nanoseconds in hex>`): unique per change,
/// and the same on a retry of the same write, which the API server then refuses as existing.
fn event_name(task: &str, at: Timestamp) -> String {
    let suffix = format!(".{:x}", at.as_nanosecond());
    // A name is at most 253 characters; the suffix is what makes it unique.
    let keep = task.len().min(253 - suffix.len());
    let cut = (0..=keep).rev().find(|i| task.is_char_boundary(*i)).unwrap_or(0);
    format!("{}{suffix}", &task[..cut])
}

/// A Normal Event about `task` (as last written or read: its uid and resourceVersion say
/// which write the Event is about).
pub fn event(task: &Strategy, action: &str, message: String, at: Timestamp) -> Event {
    let name = task.metadata.name.clone().unwrap_or_default();
    let ns = task.metadata.namespace.clone();
    Event {
        metadata: ObjectMeta {
            name: Some(event_name(&name, at)),
            namespace: ns.clone(),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some(API_VERSION.into()),
            kind: Some(KIND.into()),
            name: Some(name),
            namespace: ns,
            uid: task.metadata.uid.clone(),
            resource_version: task.metadata.resource_version.clone(),
            field_path: None,
        },
        reason: Some(reason(action).into()),
        action: Some(action.into()),
        message: Some(message),
        type_: Some("Normal".into()),
        source: Some(EventSource { component: Some(FIELD_MANAGER.into()), host: None }),
        reporting_component: Some(FIELD_MANAGER.into()),
        // No eventTime: with one, core/v1 validation also wants a reporting instance; the
        // first and last timestamps are what `kubectl get events` sorts and shows.
        first_timestamp: Some(Time(at)),
        last_timestamp: Some(Time(at)),
        count: Some(1),
        ..Event::default()
    }
}

/// A change of a running task: `<action> by <user>: <routing before> -> <routing after>`.
pub fn change_event(action: &str, by: &str, before: &Strategy, after: &Strategy, at: Timestamp) -> Event {
    let message = format!("{action} by {by}: {} -> {}", task_summary(before), task_summary(after));
    event(after, action, message, at)
}

/// A change whose Event went out with its writes (the take-over's write round) and that then
/// did not complete: a Warning that says so, so the record never claims a move that was not
/// made.
pub fn failed_event(action: &str, by: &str, task: &Strategy, error: &str, at: Timestamp) -> Event {
    let message = format!("{action} by {by} did not complete: {error}");
    let mut e = event(task, action, message, at);
    e.reason = Some(format!("{}Failed", reason(action)));
    e.type_ = Some("Warning".into());
    e
}

/// A task created: there was no routing of the task's before it.
pub fn created_event(by: &str, task: &Strategy, at: Timestamp) -> Event {
    let message = format!("create by {by}: (no task) -> {}", task_summary(task));
    event(task, "create", message, at)
}

/// A task taken offline: one version kept, the other's Deployment and the task deleted.
pub fn offline_event(by: &str, task: &Strategy, kept: &str, deleted: &str, at: Timestamp) -> Event {
    let message = format!(
        "offline by {by}: {} -> {kept} 100%; deleted the Deployment {deleted} and the task",
        task_summary(task)
    );
    event(task, "offline", message, at)
}

/// The task's last change and who made it, as `status` shows it: the journal's last entry,
/// or the field manager of a change made outside the plugin (`live::last_changed_by`); a task
/// nobody changed since it was created says when it was.
pub fn last_change(s: &Strategy) -> String {
    let untouched = s.annotation(crate::plan::routing::ANN_WRITE_ID).is_none()
        && crate::plan::journal::read(s).is_empty()
        && super::drift::changed_by_other(&s.metadata).is_none();
    match &s.metadata.creation_timestamp {
        Some(t) if untouched => format!("created at {}", t.0),
        _ => crate::plan::live::last_changed_by(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn task(w2: i32, governor: Option<&str>) -> Strategy {
        serde_json::from_value(json!({
            "metadata": {"name": "rc", "namespace": "demo", "uid": "u-1", "resourceVersion": "42"},
            "spec": {"type": "Canary", "principal": "v1", "governor": governor,
                "strategyPolicy": "WaitForWorkloadReady",
                "template": {"spec": {"hosts": ["reviews"], "http": [{"route": [
                    {"destination": {"host": "reviews", "subset": "v1"}, "weight": 100 - w2},
                    {"destination": {"host": "reviews", "subset": "v2"}, "weight": w2}]}]}}}
        }))
        .unwrap()
    }

    fn at() -> Timestamp {
        "2026-01-01T00:00:00.5Z".parse().unwrap()
    }

    #[test]
    fn a_shift_names_the_user_the_reason_and_the_routing_before_and_after() {
        let e = change_event("shift", "alice", &task(20, None), &task(30, None), at());
        assert_eq!(e.reason.as_deref(), Some("TrafficShifted"));
        assert_eq!(e.message.as_deref(), Some("shift by alice: v1 80% v2 20% -> v1 70% v2 30%"));
        assert_eq!(e.type_.as_deref(), Some("Normal"));
        assert_eq!(e.reporting_component.as_deref(), Some("kubectl-grayscale"));
        assert_eq!(e.source.unwrap().component.as_deref(), Some("kubectl-grayscale"));
        assert_eq!(e.metadata.namespace.as_deref(), Some("demo"));
        assert_eq!(e.metadata.name.as_deref(), Some("rc.188672520bc76500"));
        let o = e.involved_object;
        assert_eq!(o.api_version.as_deref(), Some("servicemesh.kubesphere.io/v1alpha2"));
        assert_eq!(o.kind.as_deref(), Some("Strategy"));
        assert_eq!(
            (o.name.as_deref(), o.namespace.as_deref(), o.uid.as_deref(), o.resource_version.as_deref()),
            (Some("rc"), Some("demo"), Some("u-1"), Some("42"))
        );
        assert_eq!(e.first_timestamp, Some(Time(at())));
        assert!(e.event_time.is_none(), "core/v1 would then want a reporting instance");
    }

    #[test]
    fn every_verb_has_its_reason() {
        let cases = [
            ("create", "Created"),
            ("shift", "TrafficShifted"),
            ("takeover", "TakenOver"),
            ("restore", "Restored"),
            ("pause", "Paused"),
            ("resume", "Resumed"),
            ("match", "MatchChanged"),
            ("mirror", "MirrorChanged"),
            ("undo", "Undone"),
            ("offline", "Offline"),
            ("something-new", "Changed"),
        ];
        for (action, want) in cases {
            assert_eq!(reason(action), want, "{action}");
        }
    }

    #[test]
    fn take_over_create_and_offline_messages() {
        let e = change_event("takeover", "bob", &task(40, None), &task(40, Some("v1")), at());
        assert_eq!(e.message.as_deref(), Some("takeover by bob: v1 60% v2 40% -> v1 100% v2 0% (takeover)"));
        let e = created_event("bob", &task(10, None), at());
        assert_eq!(e.message.as_deref(), Some("create by bob: (no task) -> v1 90% v2 10%"));
        assert_eq!(e.reason.as_deref(), Some("Created"));
        let e = offline_event("bob", &task(0, Some("v2")), "v2", "reviews-v1", at());
        assert_eq!(
            e.message.as_deref(),
            Some(
                "offline by bob: v2 100% v1 0% (takeover) -> v2 100%; deleted the Deployment reviews-v1 and the task"
            )
        );
    }

    #[test]
    fn a_change_that_did_not_complete_is_a_warning_with_its_own_reason() {
        let e = failed_event("takeover", "bob", &task(40, None), "forbidden", at());
        assert_eq!(e.type_.as_deref(), Some("Warning"));
        assert_eq!(e.reason.as_deref(), Some("TakenOverFailed"));
        assert_eq!(e.message.as_deref(), Some("takeover by bob did not complete: forbidden"));
        assert_eq!(e.involved_object.resource_version.as_deref(), Some("42"));
    }

    #[test]
    fn the_last_change_is_the_creation_until_someone_changes_the_task() {
        let mut t = task(10, None);
        t.metadata.creation_timestamp = Some(Time(at()));
        let plugin =
            json!([{"manager": "kubectl-grayscale", "operation": "Update", "time": "2026-01-01T00:00:00Z"}]);
        t.metadata.managed_fields = Some(serde_json::from_value(plugin).unwrap());
        assert_eq!(last_change(&t), "created at 2026-01-01T00:00:00.5Z");
        let edit = json!([{"manager": "kubectl-grayscale", "operation": "Update", "time": "2026-01-01T00:00:00Z"},
            {"manager": "kubectl-edit", "operation": "Update", "time": "2026-01-01T00:01:00Z"}]);
        t.metadata.managed_fields = Some(serde_json::from_value(edit).unwrap());
        assert_eq!(last_change(&t), "a change made outside kubectl-grayscale (field manager kubectl-edit)");
    }

    #[test]
    fn a_long_task_name_still_makes_a_valid_event_name() {
        let mut t = task(10, None);
        t.metadata.name = Some("a".repeat(253));
        let name = created_event("bob", &t, at()).metadata.name.unwrap();
        assert_eq!(name.len(), 253);
        assert!(name.ends_with(".188672520bc76500"), "{name}");
    }
}
