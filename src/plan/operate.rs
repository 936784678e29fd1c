//! Changes to a running task, with the console's semantics (kubesphere-compat sections 3-5).
//! Pure: a Strategy and a change in, the task's new routing state out, or the reason the change
//! does not apply to this task.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Problem};
use crate::model::istio::{Destination, HttpRoute, Percent, RouteDestination, TcpRoute};
use crate::model::strategy::{POLICY_PAUSED, POLICY_WAIT, Strategy, TaskType};
use crate::task::matching::MatchRule;

/// The part of a task that routing changes touch; journaled before and after every change.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct TaskState {
    /// `""` for none, as the console writes it.
    pub governor: String,
    pub policy: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<HttpRoute>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tcp: Vec<TcpRoute>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// Canary by traffic: the new version's weight.
    Weight(u8),
    /// Canary: route by request parameters.
    Match(MatchRule),
    /// Canary: back from request parameters to a ratio.
    Ratio(u8),
    /// Send every port to this version.
    Takeover(String),
    /// Clear the governor.
    Restore,
    Mirror {
        on: bool,
        percent: Option<f64>,
    },
    Pause,
    Resume,
    /// Put a journaled state back (undo).
    RestoreState(Box<TaskState>),
}

pub fn state_of(s: &Strategy) -> TaskState {
    TaskState {
        governor: s.spec.governor.clone().unwrap_or_default(),
        policy: s.policy().to_string(),
        http: s.spec.template.spec.http.clone(),
        tcp: s.spec.template.spec.tcp.clone(),
    }
}

pub fn versions(s: &Strategy) -> (String, Option<String>) {
    (s.spec.principal.clone().unwrap_or_default(), s.new_version())
}

fn is_tcp(s: &Strategy) -> bool {
    s.spec.template.spec.http.is_empty() && !s.spec.template.spec.tcp.is_empty()
}

/// Whether a canary routes by request parameters (any http item with a non-empty match).
pub fn is_match_mode(s: &Strategy) -> bool {
    s.spec.template.spec.http.iter().any(|h| !h.matches.is_empty())
}

/// The new version's weight of a canary by traffic.
pub fn current_weight(s: &Strategy) -> Option<u8> {
    let (_, new) = versions(s);
    let new = new?;
    let t = &s.spec.template.spec;
    let route = t.http.first().map(|h| &h.route).or(t.tcp.first().map(|r| &r.route))?;
    route
        .iter()
        .find(|r| r.destination.subset.as_deref() == Some(new.as_str()))
        .and_then(|r| r.weight)
        .map(|w| w.clamp(0, 100) as u8)
}

/// What a task route carries besides its match and destinations: the mirror and the user's own
/// fields (timeout, retries, headers, fault, corsPolicy), taken from the unconditional route so
/// that weight and match changes keep them.
fn carried(http: &[HttpRoute]) -> HttpRoute {
    let from = http.iter().rev().find(|h| h.matches.is_empty()).or(http.first());
    from.map(|h| HttpRoute {
        name: h.name.clone(),
        mirror: h.mirror.clone(),
        mirror_percentage: h.mirror_percentage.clone(),
        extra: h.extra.clone(),
        ..HttpRoute::default()
    })
    .unwrap_or_default()
}

fn refuse(field: &str, msg: String) -> Error {
    Error::Invalid(vec![Problem::new(field, msg)])
}

fn name(s: &Strategy) -> String {
    s.metadata.name.clone().unwrap_or_default()
}

pub fn apply(s: &Strategy, change: &Change) -> Result<TaskState, Error> {
    let mut st = state_of(s);
    let svc = s.service().unwrap_or_default().to_string();
    let (old, new) = versions(s);
    let kind = s.task_type();
    let new =
        new.ok_or_else(|| refuse("task", format!("task {} names no new version in its routes", name(s))))?;
    match change {
        Change::Weight(w) | Change::Ratio(w) => {
            if kind != Some(TaskType::Canary) {
                let hint = if kind == Some(TaskType::BlueGreen) {
                    "use takeover to switch a blue-green task"
                } else {
                    "mirror tasks send no live traffic to the new version"
                };
                return Err(refuse("--weight", format!("task {} is not a canary: {hint}", name(s))));
            }
            if matches!(change, Change::Weight(_)) && is_match_mode(s) {
                return Err(refuse(
                    "--weight",
                    format!(
                        "task {} routes by request parameters; switch it to a ratio with: kubectl grayscale match {} --ratio W",
                        name(s),
                        name(s)
                    ),
                ));
            }
            let (wo, wn) = (100 - i32::from(*w), i32::from(*w));
            let route = vec![RouteDestination::to(&svc, &old, wo), RouteDestination::to(&svc, &new, wn)];
            if is_tcp(s) {
                let extra = st.tcp.first().map(|t| t.extra.clone()).unwrap_or_default();
                st.tcp = vec![TcpRoute { matches: vec![], route, extra }];
            } else {
                st.http = vec![HttpRoute { route, ..carried(&st.http) }];
            }
            st.governor = match w {
                100 => new.clone(),
                0 => old.clone(),
                _ => String::new(),
            };
        }
        Change::Match(rule) => {
            if kind != Some(TaskType::Canary) {
                return Err(refuse(
                    "match",
                    format!("task {} is not a canary: only canaries route by request parameters", name(s)),
                ));
            }
            if is_tcp(s) {
                return Err(refuse(
                    "match",
                    format!("task {} is TCP: request parameters need HTTP", name(s)),
                ));
            }
            let keep = carried(&st.http);
            st.http = vec![
                HttpRoute {
                    matches: vec![rule.to_http_match()],
                    route: vec![RouteDestination::to(&svc, &new, 100)],
                    ..keep.clone()
                },
                HttpRoute { route: vec![RouteDestination::to(&svc, &old, 100)], ..keep },
            ];
            st.governor = String::new();
        }
        Change::Takeover(v) => {
            if *v != old && *v != new {
                return Err(refuse(
                    "--version",
                    format!("task {} has versions {old} and {new}, not {v}", name(s)),
                ));
            }
            st.governor = v.clone();
            // A canary by traffic moves its slider too, as the console does.
            if kind == Some(TaskType::Canary) && !is_match_mode(s) {
                let w = if *v == new { 100 } else { 0 };
                return apply(s, &Change::Weight(w)).map(|mut t| {
                    t.governor = v.clone();
                    t
                });
            }
        }
        Change::Restore => st.governor = String::new(),
        Change::Mirror { on, percent } => {
            if is_tcp(s) {
                return Err(refuse("mirror", format!("task {} is TCP: mirroring is HTTP only", name(s))));
            }
            if st.http.is_empty() {
                st.http = vec![HttpRoute {
                    route: vec![RouteDestination::to(&svc, &old, 100)],
                    ..HttpRoute::default()
                }];
            }
            for h in &mut st.http {
                if *on {
                    h.mirror = Some(Destination { host: svc.clone(), subset: Some(new.clone()), port: None });
                    h.mirror_percentage = percent.map(|value| Percent { value });
                } else {
                    h.mirror = None;
                    h.mirror_percentage = None;
                }
            }
        }
        Change::Pause => st.policy = POLICY_PAUSED.to_string(),
        Change::Resume => {
            if st.policy != POLICY_PAUSED {
                return Err(refuse(
                    "resume",
                    format!("task {} is not paused (policy {})", name(s), st.policy),
                ));
            }
            // The policy the task had before it was paused (journaled), not always
            // WaitForWorkloadReady: a task that routed Immediately keeps doing so.
            st.policy = super::journal::read(s)
                .iter()
                .rev()
                .find(|e| e.to.policy == POLICY_PAUSED && e.from.policy != POLICY_PAUSED)
                .map(|e| e.from.policy.clone())
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| POLICY_WAIT.to_string());
        }
        Change::RestoreState(prev) => st = (**prev).clone(),
    }
    Ok(st)
}

pub const WARN_HEADERS: &str = "the KubeSphere console's editor keeps only the first custom header: editing this task in the console drops the others";

/// What the console cannot show or would undo, said before the change is written.
pub fn console_warnings(s: &Strategy, change: &Change) -> Vec<String> {
    let (old, new) = versions(s);
    let new = new.unwrap_or_default();
    match change {
        Change::Match(rule) if rule.headers.len() > 1 => vec![WARN_HEADERS.into()],
        Change::Mirror { on: true, percent: Some(_) } => vec![
            "the KubeSphere console does not show the mirror percentage: it displays this task as plain mirroring".into(),
        ],
        Change::Takeover(v) if s.task_type() == Some(TaskType::Mirror) && *v == new => vec![format!(
            "the KubeSphere console offers no take-over of a mirror task and keeps {old} when it takes the task offline, deleting {new}, which now takes all traffic: end this task with kubectl grayscale offline --keep {new}"
        )],
        _ => vec![],
    }
}

/// The merge patch that writes `to` (and the journal annotation), guarded by the read
/// resourceVersion so a concurrent change is never overwritten silently.
pub fn merge_patch(s: &Strategy, to: &TaskState, annotations: serde_json::Value) -> serde_json::Value {
    let mut template = serde_json::Map::new();
    if is_tcp(s) || (!to.tcp.is_empty() && to.http.is_empty()) {
        template.insert("tcp".into(), serde_json::to_value(&to.tcp).expect("routes serialise"));
    } else {
        template.insert("http".into(), serde_json::to_value(&to.http).expect("routes serialise"));
    }
    serde_json::json!({
        "metadata": {"resourceVersion": s.metadata.resource_version, "annotations": annotations},
        "spec": {
            "governor": to.governor,
            "strategyPolicy": to.policy,
            "template": {"spec": template},
        }
    })
}

/// Applies `to` to a Strategy in memory (what the server will hold after the patch).
pub fn with_state(s: &Strategy, to: &TaskState) -> Strategy {
    let mut out = s.clone();
    out.spec.governor = Some(to.governor.clone());
    out.spec.strategy_policy = Some(to.policy.clone());
    out.spec.template.spec.http = to.http.clone();
    out.spec.template.spec.tcp = to.tcp.clone();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::istio::StringMatch;
    use crate::task::matching::ClientOs;
    use serde_json::json;

    fn canary(w: i64) -> Strategy {
        serde_json::from_value(json!({
            "metadata": {"name": "t", "resourceVersion": "7"},
            "spec": {"type": "Canary", "principal": "v1", "strategyPolicy": "WaitForWorkloadReady",
                "template": {"spec": {"hosts": ["reviews"], "http": [{"route": [
                    {"destination": {"host": "reviews", "subset": "v1"}, "weight": 100 - w},
                    {"destination": {"host": "reviews", "subset": "v2"}, "weight": w}]}]}}}
        }))
        .unwrap()
    }

    #[test]
    fn the_slider_sets_the_governor_at_the_ends_only() {
        let s = canary(20);
        assert_eq!(apply(&s, &Change::Weight(40)).unwrap().governor, "");
        assert_eq!(apply(&s, &Change::Weight(100)).unwrap().governor, "v2");
        assert_eq!(apply(&s, &Change::Weight(0)).unwrap().governor, "v1");
        assert_eq!(current_weight(&with_state(&s, &apply(&s, &Change::Weight(40)).unwrap())), Some(40));
    }

    #[test]
    fn taking_over_a_canary_by_traffic_moves_the_slider() {
        let st = apply(&canary(20), &Change::Takeover("v1".into())).unwrap();
        assert_eq!(st.governor, "v1");
        assert_eq!(st.http[0].route[0].weight, Some(100));
    }

    #[test]
    fn a_version_the_task_does_not_have_is_refused() {
        let e = apply(&canary(20), &Change::Takeover("v9".into())).unwrap_err();
        assert!(e.to_string().contains("has versions v1 and v2, not v9"), "{e}");
    }

    #[test]
    fn match_then_ratio_round_trips() {
        let rule = MatchRule { os: vec![ClientOs::Ios], ..MatchRule::default() };
        let m = with_state(&canary(20), &apply(&canary(20), &Change::Match(rule)).unwrap());
        assert!(is_match_mode(&m));
        assert!(apply(&m, &Change::Weight(30)).is_err(), "weights need ratio mode first");
        let r = apply(&m, &Change::Ratio(30)).unwrap();
        assert_eq!(r.http.len(), 1);
        assert_eq!(r.http[0].route[1].weight, Some(30));
    }

    #[test]
    fn mirror_writes_the_percentage_only_when_asked() {
        let st = apply(&canary(0), &Change::Mirror { on: true, percent: Some(25.0) }).unwrap();
        assert_eq!(st.http[0].mirror.as_ref().unwrap().subset.as_deref(), Some("v2"));
        assert_eq!(st.http[0].mirror_percentage, Some(Percent { value: 25.0 }));
        let off = apply(&with_state(&canary(0), &st), &Change::Mirror { on: false, percent: None }).unwrap();
        assert!(off.http[0].mirror.is_none());
    }

    #[test]
    fn weight_and_match_changes_keep_the_mirror_and_the_users_route_fields() {
        let mut s = canary(20);
        let route = &mut s.spec.template.spec.http[0];
        route.mirror = Some(Destination { host: "reviews".into(), subset: Some("v2".into()), port: None });
        route.mirror_percentage = Some(Percent { value: 20.0 });
        route.extra.insert("timeout".into(), json!("5s"));
        route.extra.insert("retries".into(), json!({"attempts": 3}));
        let cases = [
            ("weight", Change::Weight(40)),
            ("ratio", Change::Ratio(40)),
            ("match", Change::Match(MatchRule { os: vec![ClientOs::Android], ..MatchRule::default() })),
        ];
        for (case, change) in cases {
            let st = apply(&s, &change).unwrap();
            for h in &st.http {
                assert_eq!(h.mirror.as_ref().and_then(|m| m.subset.as_deref()), Some("v2"), "{case}");
                assert_eq!(h.mirror_percentage, Some(Percent { value: 20.0 }), "{case}");
                assert_eq!(h.extra.get("timeout"), Some(&json!("5s")), "{case}");
                assert_eq!(h.extra.get("retries"), Some(&json!({"attempts": 3})), "{case}");
            }
            // Back from request parameters to a ratio keeps them too.
            let back = apply(&with_state(&s, &st), &Change::Ratio(10)).unwrap();
            assert_eq!(back.http[0].extra.get("timeout"), Some(&json!("5s")), "{case}");
            assert!(back.http[0].mirror.is_some(), "{case}");
        }
    }

    #[test]
    fn the_patch_is_guarded_by_the_resource_version() {
        let s = canary(20);
        let p = merge_patch(&s, &apply(&s, &Change::Weight(50)).unwrap(), json!({}));
        assert_eq!(p["metadata"]["resourceVersion"], "7");
        assert_eq!(p["spec"]["template"]["spec"]["http"][0]["route"][1]["weight"], 50);
        assert_eq!(p["spec"]["governor"], "");
    }

    #[test]
    fn resume_restores_the_policy_the_task_had_before_the_pause() {
        let mut s = canary(20);
        s.spec.strategy_policy = Some("Paused".into());
        let entry = crate::plan::journal::Entry {
            at: "t".into(),
            by: "me".into(),
            action: "pause".into(),
            from: TaskState { policy: "Immediately".into(), ..TaskState::default() },
            to: TaskState { policy: "Paused".into(), ..TaskState::default() },
        };
        let ann = crate::plan::journal::annotation(&[entry]);
        s.metadata.annotations = Some(serde_json::from_value(ann).unwrap());
        assert_eq!(apply(&s, &Change::Resume).unwrap().policy, "Immediately");
        let mut console_paused = canary(20);
        console_paused.spec.strategy_policy = Some("Paused".into());
        assert_eq!(apply(&console_paused, &Change::Resume).unwrap().policy, "WaitForWorkloadReady");
    }

    #[test]
    fn what_the_console_cannot_show_is_warned_about() {
        let rule = MatchRule {
            headers: vec![("a".into(), StringMatch::exact("1")), ("b".into(), StringMatch::exact("2"))],
            ..MatchRule::default()
        };
        assert_eq!(console_warnings(&canary(20), &Change::Match(rule)).len(), 1);
        assert_eq!(console_warnings(&canary(20), &Change::Mirror { on: true, percent: Some(5.0) }).len(), 1);
        assert!(console_warnings(&canary(20), &Change::Mirror { on: true, percent: None }).is_empty());
        let mut mirror = canary(0);
        mirror.spec.kind = Some("Mirror".into());
        assert!(console_warnings(&mirror, &Change::Takeover("v2".into()))[0].contains("offline --keep v2"));
        assert!(console_warnings(&mirror, &Change::Takeover("v1".into())).is_empty());
        assert!(console_warnings(&canary(20), &Change::Takeover("v2".into())).is_empty());
    }
}
