//! Kubernetes API failures mapped to the plugin's errors, keeping what was being done.

use kube::Resource;

use crate::error::{Error, Target};

pub fn target<K: Resource<DynamicType = ()>>(
    action: &'static str,
    ns: Option<&str>,
    name: Option<&str>,
) -> Target {
    Target {
        action,
        kind: K::kind(&()).into_owned(),
        namespace: ns.map(str::to_string),
        name: name.map(str::to_string),
    }
}

/// A failed wait or watch, classified like a request: a 403 stays a Forbidden with its hint.
pub fn watch_error(target: Target, e: kube::runtime::wait::Error) -> Error {
    use kube::runtime::watcher::Error as W;
    let kube::runtime::wait::Error::ProbeFailed(w) = e;
    match w {
        W::InitialListFailed(e) | W::WatchStartFailed(e) | W::WatchFailed(e) => classify(target, e),
        W::WatchError(s) => classify(target, kube::Error::Api(s)),
        other => Error::Watch {
            message: format!("{target}: {other}"),
            hint: "run the command again; the task is unchanged by the watch".into(),
        },
    }
}

/// Whether a JSON patch was refused because one of its `test` operations failed (the API server
/// answers 422 with json-patch's "testing value PATH failed: test failed"): the object changed
/// since it was read and nothing was written. Any other 422 (a value the schema refuses, a path
/// that is not there) is a real failure, to be reported.
pub fn failed_test(s: &kube::core::Status) -> bool {
    s.code == 422 && (s.message.contains("test failed") || s.message.contains("testing value"))
}

/// Maps an API failure to the plugin's error, keeping what was being done.
pub fn classify(target: Target, e: kube::Error) -> Error {
    match e {
        kube::Error::Api(s) => match s.code {
            404 => {
                // A 404 on a collection or an apply means the resource type itself is missing.
                let hint = match (target.kind.as_str(), target.action) {
                    ("Strategy", "list" | "create") => {
                        Some("the Strategy CRD is not installed here: install it with kubectl grayscale init".to_string())
                    }
                    ("VirtualService" | "DestinationRule", "apply") => Some(
                        "Istio's CRDs are not installed here: install Istio, or let KubeSphere route with --routing kubesphere"
                            .to_string(),
                    ),
                    _ => None,
                };
                Error::NotFound { target, message: s.message.clone(), hint }
            }
            403 => Error::Forbidden { target, message: s.message.clone() },
            409 => Error::Conflict {
                target,
                message: s.message.clone(),
                hint: Some(
                    "someone else changed it at the same time, or it already exists: look at it and retry"
                        .into(),
                ),
            },
            _ => Error::Api { target, source: Box::new(kube::Error::Api(s)) },
        },
        other => Error::Api { target, source: Box::new(other) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(
            kube::core::Status::failure("the server could not find the requested resource", "NotFound")
                .with_code(code),
        ))
    }

    #[test]
    fn a_missing_strategy_type_points_to_init() {
        let e = classify(target::<crate::model::strategy::Strategy>("list", Some("ns"), None), status(404));
        assert_eq!(e.exit_code(), 3);
        assert!(e.hint().unwrap().contains("kubectl grayscale init"));
    }

    #[test]
    fn a_forbidden_watch_is_a_forbidden_error_with_its_hint() {
        use kube::runtime::{wait, watcher};
        let t = target::<crate::model::istio::VirtualService>("watch", Some("ns"), Some("x"));
        let e = watch_error(t, wait::Error::ProbeFailed(watcher::Error::WatchStartFailed(status(403))));
        assert_eq!(e.exit_code(), 5);
        assert!(e.hint().unwrap().contains("kubectl auth can-i watch virtualservice"), "{:?}", e.hint());
    }

    #[test]
    fn only_a_failed_test_operation_is_read_as_a_changed_object() {
        let answer =
            |code: u16, message: &str| kube::core::Status::failure(message, "Invalid").with_code(code);
        // What kube-apiserver answers to a JSON patch whose guard failed.
        assert!(failed_test(&answer(422, "testing value /metadata/resourceVersion failed: test failed")));
        // A value the schema refuses, or a path that is not there: real failures, reported.
        let invalid = "VirtualService.networking.istio.io \"reviews\" is invalid: spec.http[0].mirrorPercentage.value: Invalid value: 200: must be less than or equal to 100";
        assert!(!failed_test(&answer(422, invalid)));
        assert!(!failed_test(&answer(422, "unable to remove nonexistent key: mirror: missing value")));
        assert!(!failed_test(&answer(409, "test failed")));
    }

    #[test]
    fn forbidden_and_conflict_are_told_apart() {
        let t = || target::<crate::model::strategy::Strategy>("update", Some("ns"), Some("x"));
        assert_eq!(classify(t(), status(403)).exit_code(), 5);
        assert_eq!(classify(t(), status(409)).exit_code(), 4);
        assert_eq!(classify(t(), status(500)).exit_code(), 1);
    }
}
