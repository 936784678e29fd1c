//! Drift: the live VirtualService routes differently from what the task derives, and who made
//! it so. The cluster keeps who last wrote which fields of an object (its managedFields, one
//! entry per field manager: `kubectl-grayscale` for the plugin, `kubectl-edit`,
//! `kubectl-patch` or what `--field-manager` names for kubectl, a controller's own name), so a
//! change made outside the plugin names its author there.

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, ObjectMeta};

use super::routing;
use crate::FIELD_MANAGER;
use crate::model::istio::VirtualService;
use crate::model::strategy::Strategy;

/// Whether the live routing differs from the task's, and the manager that last wrote it when
/// that was not the plugin.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Drift {
    pub drifted: bool,
    pub by: Option<String>,
}

fn newest<'a>(entries: impl Iterator<Item = &'a ManagedFieldsEntry>) -> Option<&'a ManagedFieldsEntry> {
    entries.max_by_key(|f| f.time.as_ref().map(|t| t.0))
}

/// The newest field manager of `meta` that is not the plugin, if it wrote no earlier than the
/// plugin last did: a manager that wrote before the plugin's last write did not make what the
/// plugin wrote differ. Times are to the second, so a write in the same second as the
/// plugin's counts.
pub fn changed_by_other(meta: &ObjectMeta) -> Option<String> {
    let fields = meta.managed_fields.as_deref().unwrap_or_default();
    let ours = |f: &&ManagedFieldsEntry| f.manager.as_deref() == Some(FIELD_MANAGER);
    let other = newest(fields.iter().filter(|f| !ours(f)))?;
    let plugin = newest(fields.iter().filter(ours)).and_then(|f| f.time.as_ref().map(|t| t.0));
    let at = other.time.as_ref().map(|t| t.0);
    match (plugin, at) {
        (Some(p), Some(o)) if o < p => None,
        _ => other.manager.clone(),
    }
}

/// Judges the live VirtualService against what the task derives for the versions that are
/// ready (principal first). A task whose versions have no ready pod derives no routing: no
/// drift then.
pub fn drift(s: &Strategy, svc: &Service, app: &str, ready: &[String], vs: Option<&VirtualService>) -> Drift {
    let want = routing::plan(svc, app, Some(s), ready, vs);
    let drifted = want.mode.writes_virtual_service()
        && routing::drifted(vs.map(|v| &v.spec), &want.virtual_service.spec);
    let by = if drifted { vs.and_then(|v| changed_by_other(&v.metadata)) } else { None };
    Drift { drifted, by }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta(entries: &[(&str, &str)]) -> ObjectMeta {
        let fields: Vec<_> =
            entries.iter().map(|(m, t)| json!({"manager": m, "operation": "Update", "time": t})).collect();
        serde_json::from_value(json!({"name": "reviews", "managedFields": fields})).unwrap()
    }

    #[test]
    fn the_newest_other_manager_after_the_plugin_made_the_change() {
        // (case, (manager, time) entries, the manager named)
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], Option<&'a str>);
        let cases: [Case; 6] = [
            (
                "an edit after the plugin's write",
                &[("kubectl-grayscale", "2026-01-01T00:00:00Z"), ("console-edit", "2026-01-01T00:01:00Z")],
                Some("console-edit"),
            ),
            (
                "the newest of two others",
                &[
                    ("kubectl-client-side-apply", "2026-01-01T00:02:00Z"),
                    ("kubectl-grayscale", "2026-01-01T00:00:00Z"),
                    ("kubectl-edit", "2026-01-01T00:03:00Z"),
                ],
                Some("kubectl-edit"),
            ),
            (
                "in the same second",
                &[("kubectl-grayscale", "2026-01-01T00:00:00Z"), ("console-edit", "2026-01-01T00:00:00Z")],
                Some("console-edit"),
            ),
            (
                "an older writer did not change what the plugin wrote",
                &[("kubectl-create", "2026-01-01T00:00:00Z"), ("kubectl-grayscale", "2026-01-01T00:05:00Z")],
                None,
            ),
            ("only the plugin", &[("kubectl-grayscale", "2026-01-01T00:00:00Z")], None),
            (
                "the plugin owns nothing any more",
                &[("controller-manager", "2026-01-01T00:00:00Z")],
                Some("controller-manager"),
            ),
        ];
        for (case, entries, want) in cases {
            assert_eq!(changed_by_other(&meta(entries)).as_deref(), want, "{case}");
        }
    }

    #[test]
    fn drift_names_the_manager_only_when_the_routing_differs() {
        let s: Strategy = serde_json::from_value(json!({
            "metadata": {"name": "rc", "namespace": "demo"},
            "spec": {"type": "Canary", "principal": "v1", "strategyPolicy": "WaitForWorkloadReady",
                "template": {"spec": {"hosts": ["reviews"], "http": [{"route": [
                    {"destination": {"host": "reviews", "subset": "v1"}, "weight": 80},
                    {"destination": {"host": "reviews", "subset": "v2"}, "weight": 20}]}]}}}
        }))
        .unwrap();
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": "reviews", "namespace": "demo", "labels": {"app": "reviews"}},
            "spec": {"selector": {"app": "reviews"}, "ports": [{"name": "http-web", "port": 9080}]}
        }))
        .unwrap();
        let ready = ["v1".to_string(), "v2".to_string()];
        // The VirtualService as the plugin derives it, then as written by `managers`, with its
        // weights swapped or not.
        let live = |swap: bool, managers: &[(&str, &str)]| {
            let mut v = routing::plan(&svc, "reviews", Some(&s), &ready, None).virtual_service;
            if swap {
                for r in &mut v.spec.http {
                    let w: Vec<_> = r.route.iter().map(|d| d.weight).collect();
                    for (d, w) in r.route.iter_mut().zip(w.into_iter().rev()) {
                        d.weight = w;
                    }
                }
            }
            v.metadata = meta(managers);
            v
        };
        let edited =
            [("kubectl-grayscale", "2026-01-01T00:00:00Z"), ("console-edit", "2026-01-01T00:01:00Z")];
        let same = drift(&s, &svc, "reviews", &ready, Some(&live(false, &edited)));
        assert_eq!(same, Drift { drifted: false, by: None }, "an edit that left the routing as derived");
        let moved = drift(&s, &svc, "reviews", &ready, Some(&live(true, &edited)));
        assert_eq!(moved, Drift { drifted: true, by: Some("console-edit".into()) });
        let plugin_only = [("kubectl-grayscale", "2026-01-01T00:00:00Z")];
        let stale = drift(&s, &svc, "reviews", &ready, Some(&live(true, &plugin_only)));
        assert_eq!(stale, Drift { drifted: true, by: None }, "drift with no author to name");
        let none_ready = drift(&s, &svc, "reviews", &[], Some(&live(true, &edited)));
        assert!(!none_ready.drifted, "no ready version derives no routing");
    }
}
