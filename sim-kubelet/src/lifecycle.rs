//! The pod lifecycle as a pure function of (pod, time since binding).
//!
//! Failure injection by image reference (documented in the README):
//! - an image reference containing `nonexistent`: the pull fails, `ErrImagePull` then
//!   `ImagePullBackOff`, pod stays Pending;
//! - containing `crashloop`: the container starts, exits with code 1 and goes to
//!   `CrashLoopBackOff` with a restart count that grows every second;
//! - containing `never-ready`: Running but never Ready.
//!
//! Everything else starts after its init containers complete and becomes Ready after the
//! longest readiness/startup probe initial delay, scaled by `Timing::delay_factor`.

use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::{Value, json};

pub struct Timing {
    pub delay_factor: f64,
}

/// Time a container takes to be "created" and an init container to run to completion.
const CREATE: f64 = 0.2;
const INIT_RUN: f64 = 0.2;
/// Pull failure turns from ErrImagePull into ImagePullBackOff after this long.
const PULL_BACKOFF_AFTER: f64 = 1.5;
/// A crashing container restarts once per this period.
const CRASH_PERIOD: f64 = 1.0;
/// Graceful deletion is simulated for at most this long.
const MAX_GRACE: f64 = 0.5;

#[derive(Debug, PartialEq)]
pub enum PodAction {
    Nothing,
    Bind { node: String },
    Status(Value),
    Delete,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum ImageBehaviour {
    Normal,
    PullFails,
    Crashes,
    NeverReady,
}

fn behaviour(image: &str) -> ImageBehaviour {
    if image.contains("nonexistent") {
        ImageBehaviour::PullFails
    } else if image.contains("crashloop") {
        ImageBehaviour::Crashes
    } else if image.contains("never-ready") {
        ImageBehaviour::NeverReady
    } else {
        ImageBehaviour::Normal
    }
}

/// What to do with `pod` now. `elapsed` is the time since this kubelet first saw it bound here,
/// `deleting_for` the time since it first saw its deletion timestamp.
pub fn plan_pod(
    pod: &Pod,
    node: &str,
    elapsed: Duration,
    deleting_for: Option<Duration>,
    bound_at: SystemTime,
    ip: &str,
    t: &Timing,
) -> PodAction {
    let Some(spec) = pod.spec.as_ref() else { return PodAction::Nothing };
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if matches!(phase, Some("Succeeded") | Some("Failed")) {
        return PodAction::Nothing;
    }
    match spec.node_name.as_deref() {
        None | Some("") => {
            if pod.metadata.deletion_timestamp.is_some() {
                return PodAction::Delete;
            }
            return match unschedulable_reason(pod) {
                None => PodAction::Bind { node: node.to_string() },
                Some(msg) => PodAction::Status(json!({
                    "phase": "Pending",
                    "conditions": [{"type": "PodScheduled", "status": "False",
                                    "reason": "Unschedulable", "message": msg}],
                })),
            };
        }
        Some(n) if n != node => return PodAction::Nothing,
        _ => {}
    }
    let secs = elapsed.as_secs_f64();
    if let Some(for_) = deleting_for {
        let grace = pod.metadata.deletion_grace_period_seconds.unwrap_or(30).max(0) as f64;
        if for_.as_secs_f64() >= grace.min(MAX_GRACE) {
            return PodAction::Delete;
        }
        // Terminating: containers stop serving before they go away, as after SIGTERM.
        let mut status = pod_status(spec, secs, bound_at, ip, t);
        for c in status["conditions"].as_array_mut().into_iter().flatten() {
            if c["type"] == "Ready" || c["type"] == "ContainersReady" {
                c["status"] = json!("False");
            }
        }
        return PodAction::Status(status);
    }
    PodAction::Status(pod_status(spec, secs, bound_at, ip, t))
}

/// The simulated node has no taints and only the labels set at registration; a pod asking for
/// any other node label cannot be placed.
fn unschedulable_reason(pod: &Pod) -> Option<String> {
    let selector = pod.spec.as_ref()?.node_selector.as_ref()?;
    let known =
        ["kubernetes.io/os", "kubernetes.io/arch", "kubernetes.io/hostname", "node.kubernetes.io/simulated"];
    if selector.keys().any(|k| !known.contains(&k.as_str()))
        || selector.get("kubernetes.io/os").is_some_and(|v| v != "linux")
    {
        Some("0/1 nodes are available: 1 node(s) didn't match node selector.".into())
    } else {
        None
    }
}

fn pod_status(
    spec: &k8s_openapi::api::core::v1::PodSpec,
    secs: f64,
    bound_at: SystemTime,
    ip: &str,
    t: &Timing,
) -> Value {
    let started = rfc3339(bound_at);
    let mut init_statuses = Vec::new();
    let mut init_done_at = CREATE;
    let mut init_blocked: Option<&'static str> = None;
    for c in spec.init_containers.iter().flatten() {
        if init_blocked.is_some() {
            init_statuses.push(waiting(c, "PodInitializing", None, 0, false));
            continue;
        }
        let local = secs - init_done_at;
        match behaviour(&c.image.clone().unwrap_or_default()) {
            ImageBehaviour::PullFails if local >= 0.0 => {
                init_statuses.push(pull_failure(c, local));
                init_blocked = Some("PullFails");
            }
            ImageBehaviour::Crashes if local >= 0.0 => {
                init_statuses.push(crash(c, local, &started));
                init_blocked = Some("Crashes");
            }
            _ if local < INIT_RUN => {
                let st = if local < 0.0 {
                    waiting(c, "PodInitializing", None, 0, false)
                } else {
                    running(c, &started, false, 0)
                };
                init_statuses.push(st);
                init_blocked = Some("Running");
            }
            _ => {
                init_statuses.push(json!({
                    "name": c.name, "image": c.image, "imageID": image_id(c), "ready": true, "restartCount": 0,
                    "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started, "finishedAt": started}},
                }));
                init_done_at += INIT_RUN;
            }
        }
    }
    let initialized = init_blocked.is_none();
    let local = secs - init_done_at;
    let mut statuses = Vec::new();
    let mut all_ready = initialized;
    let mut any_created = false;
    for c in &spec.containers {
        if !initialized || local < 0.0 {
            let reason = if spec.init_containers.as_ref().is_some_and(|v| !v.is_empty()) {
                "PodInitializing"
            } else {
                "ContainerCreating"
            };
            statuses.push(waiting(c, reason, None, 0, false));
            all_ready = false;
            continue;
        }
        match behaviour(&c.image.clone().unwrap_or_default()) {
            ImageBehaviour::PullFails => {
                statuses.push(pull_failure(c, local));
                all_ready = false;
            }
            ImageBehaviour::Crashes => {
                statuses.push(crash(c, local, &started));
                all_ready = false;
                any_created = true;
            }
            ImageBehaviour::NeverReady => {
                statuses.push(running(c, &started, false, 0));
                all_ready = false;
                any_created = true;
            }
            ImageBehaviour::Normal => {
                let ready = local >= ready_after(c, t);
                statuses.push(running(c, &started, ready, 0));
                all_ready &= ready;
                any_created = true;
            }
        }
    }
    let phase = if any_created { "Running" } else { "Pending" };
    let cond = |ty: &str, ok: bool, reason: Option<&str>| {
        let mut v =
            json!({"type": ty, "status": if ok { "True" } else { "False" }, "lastTransitionTime": started});
        if let (false, Some(r)) = (ok, reason) {
            v["reason"] = json!(r);
        }
        v
    };
    let mut status = json!({
        "phase": phase,
        "hostIP": "127.0.0.1",
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "startTime": started,
        "qosClass": "BestEffort",
        "conditions": [
            cond("Initialized", initialized, Some("ContainersNotInitialized")),
            cond("Ready", all_ready, Some("ContainersNotReady")),
            cond("ContainersReady", all_ready, Some("ContainersNotReady")),
            cond("PodScheduled", true, None),
        ],
        "containerStatuses": statuses,
    });
    if !init_statuses.is_empty() {
        status["initContainerStatuses"] = json!(init_statuses);
    }
    status
}

fn ready_after(c: &Container, t: &Timing) -> f64 {
    let delay = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
        p.as_ref().and_then(|p| p.initial_delay_seconds).unwrap_or(0).max(0) as f64
    };
    (delay(&c.readiness_probe) + delay(&c.startup_probe)) * t.delay_factor
}

fn image_id(c: &Container) -> String {
    format!("sim://{}", c.image.as_deref().unwrap_or_default())
}

fn waiting(c: &Container, reason: &str, message: Option<String>, restarts: u32, started: bool) -> Value {
    let mut w = json!({"reason": reason});
    if let Some(m) = message {
        w["message"] = json!(m);
    }
    json!({"name": c.name, "image": c.image, "imageID": if started { image_id(c) } else { String::new() },
           "ready": false, "restartCount": restarts, "state": {"waiting": w}})
}

fn running(c: &Container, started: &str, ready: bool, restarts: u32) -> Value {
    json!({"name": c.name, "image": c.image, "imageID": image_id(c), "ready": ready, "started": true,
           "restartCount": restarts, "state": {"running": {"startedAt": started}}})
}

fn pull_failure(c: &Container, local: f64) -> Value {
    let image = c.image.as_deref().unwrap_or_default();
    if local < PULL_BACKOFF_AFTER {
        let msg = format!(
            "rpc error: code = NotFound desc = failed to pull and unpack image \"{image}\": failed to resolve reference \"{image}\": not found"
        );
        waiting(c, "ErrImagePull", Some(msg), 0, false)
    } else {
        waiting(c, "ImagePullBackOff", Some(format!("Back-off pulling image \"{image}\"")), 0, false)
    }
}

fn crash(c: &Container, local: f64, started: &str) -> Value {
    let restarts = 1 + (local / CRASH_PERIOD) as u32;
    let mut v = waiting(
        c,
        "CrashLoopBackOff",
        Some(format!("back-off 10s restarting failed container={} pod=simulated", c.name)),
        restarts,
        true,
    );
    v["lastState"] = json!({"terminated": {"exitCode": 1, "reason": "Error", "startedAt": started, "finishedAt": started}});
    v
}

/// RFC 3339 in UTC with second precision, as the API server stores times.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(image: &str, init: Option<&str>, readiness_delay: Option<i32>) -> Pod {
        let mut c = json!({"name": "app", "image": image});
        if let Some(d) = readiness_delay {
            c["readinessProbe"] = json!({"tcpSocket": {"port": 80}, "initialDelaySeconds": d});
        }
        let mut spec = json!({"nodeName": "n", "containers": [c]});
        if let Some(i) = init {
            spec["initContainers"] = json!([{"name": "init", "image": i}]);
        }
        serde_json::from_value(json!({"metadata": {"name": "p", "uid": "u"}, "spec": spec})).unwrap()
    }

    fn status_at(p: &Pod, secs: f64) -> Value {
        let t = Timing { delay_factor: 0.1 };
        match plan_pod(p, "n", Duration::from_secs_f64(secs), None, SystemTime::UNIX_EPOCH, "10.244.0.2", &t)
        {
            PodAction::Status(s) => s,
            other => panic!("expected a status, got {other:?}"),
        }
    }

    fn ready(s: &Value) -> bool {
        s["conditions"].as_array().unwrap().iter().any(|c| c["type"] == "Ready" && c["status"] == "True")
    }

    #[test]
    fn a_normal_pod_becomes_ready_after_its_scaled_readiness_delay() {
        let p = pod("nginx:1.25", None, Some(10));
        assert_eq!(status_at(&p, 0.1)["phase"], "Pending");
        assert!(!ready(&status_at(&p, 0.5)));
        assert_eq!(status_at(&p, 0.5)["phase"], "Running");
        assert!(ready(&status_at(&p, 1.3)));
    }

    #[test]
    fn init_containers_complete_before_the_work_container_starts() {
        let p = pod("nginx", Some("busybox"), None);
        let s = status_at(&p, 0.3);
        assert_eq!(s["containerStatuses"][0]["state"]["waiting"]["reason"], "PodInitializing");
        let s = status_at(&p, 0.7);
        assert_eq!(s["initContainerStatuses"][0]["state"]["terminated"]["reason"], "Completed");
        assert!(ready(&s));
    }

    #[test]
    fn a_missing_image_goes_from_err_image_pull_to_back_off() {
        let p = pod("example/nonexistent:1", None, None);
        let w = |s: f64| status_at(&p, s)["containerStatuses"][0]["state"]["waiting"]["reason"].clone();
        assert_eq!(w(0.5), "ErrImagePull");
        assert_eq!(w(2.5), "ImagePullBackOff");
        assert_eq!(status_at(&p, 2.5)["phase"], "Pending");
    }

    #[test]
    fn a_crashing_image_restarts_more_and_more() {
        let p = pod("example/crashloop:1", None, None);
        let r = |s: f64| status_at(&p, s)["containerStatuses"][0]["restartCount"].as_u64().unwrap();
        assert!(r(3.5) > r(1.0));
        assert_eq!(
            status_at(&p, 1.0)["containerStatuses"][0]["state"]["waiting"]["reason"],
            "CrashLoopBackOff"
        );
    }

    #[test]
    fn a_never_ready_image_runs_but_is_not_ready() {
        let s = status_at(&pod("example/never-ready:1", None, None), 30.0);
        assert_eq!(s["phase"], "Running");
        assert!(!ready(&s));
    }

    #[test]
    fn unbound_pods_are_bound_unless_their_node_selector_cannot_match() {
        let mut p = pod("nginx", None, None);
        p.spec.as_mut().unwrap().node_name = None;
        let t = Timing { delay_factor: 0.1 };
        let act = plan_pod(&p, "n", Duration::ZERO, None, SystemTime::UNIX_EPOCH, "ip", &t);
        assert_eq!(act, PodAction::Bind { node: "n".into() });
        p.spec.as_mut().unwrap().node_selector = Some([("gpu".to_string(), "yes".to_string())].into());
        let act = plan_pod(&p, "n", Duration::ZERO, None, SystemTime::UNIX_EPOCH, "ip", &t);
        assert!(matches!(act, PodAction::Status(s) if s["conditions"][0]["reason"] == "Unschedulable"));
    }

    #[test]
    fn a_deleted_pod_stops_being_ready_then_goes_after_its_grace_period() {
        let mut p = pod("nginx", None, None);
        p.metadata.deletion_timestamp = Some(serde_json::from_value(json!("2023-11-14T22:13:20Z")).unwrap());
        p.metadata.deletion_grace_period_seconds = Some(30);
        let t = Timing { delay_factor: 0.1 };
        let at = |d: f64| {
            plan_pod(
                &p,
                "n",
                Duration::from_secs(5),
                Some(Duration::from_secs_f64(d)),
                SystemTime::UNIX_EPOCH,
                "ip",
                &t,
            )
        };
        assert!(matches!(at(0.1), PodAction::Status(s) if !ready(&s)));
        assert_eq!(at(1.0), PodAction::Delete);
    }

    #[test]
    fn rfc3339_formats_a_known_instant() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20Z");
    }
}
