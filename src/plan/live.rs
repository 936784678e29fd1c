//! What a verb must find in the live state before it writes: read in one round (the task, its
//! Service, VirtualService, DestinationRule and pods), judged here. A change that the live state
//! would turn into something else than what the user asked (a take-over to a version with no
//! ready pod, weights on a paused task, a gradual shift's step after someone else moved the
//! task) is refused before anything is written.

use k8s_openapi::api::core::v1::{Pod, Service};

use super::identity::TaskIdentity;
use super::operate::Change;
use super::owners::{self, Claim, Owner, Seen};
use super::routing::{self, ANN_WRITE_ID};
use crate::FIELD_MANAGER;
use crate::error::Error;
use crate::model::gateway::HttpRoute;
use crate::model::istio::{DestinationRule, VirtualService};
use crate::model::strategy::{LABEL_VERSION, POLICY_PAUSED, Strategy, normalize_version};

/// One round of reads about a task.
#[derive(Clone, Debug)]
pub struct Live {
    pub task: Strategy,
    pub identity: TaskIdentity,
    pub service: Option<Service>,
    pub vs: Option<VirtualService>,
    pub dr: Option<DestinationRule>,
    /// The pods the Service selects.
    pub pods: Vec<Pod>,
    /// Argo Rollouts' Rollouts that name the VirtualService.
    pub rollouts: Vec<String>,
    /// Gateway API routing: the Service's HTTPRoute and the namespace's Services (per-version
    /// Services among them).
    pub route: Option<HttpRoute>,
    pub version_services: Vec<Service>,
}

fn ready(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none()
        && p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

impl Live {
    /// Who else owns the routing, from the VirtualService, DestinationRule and Service.
    pub fn owners(&self) -> Vec<Owner> {
        let mut seen = Vec::new();
        if let Some(v) = &self.vs {
            seen.push(Seen { kind: "VirtualService", meta: &v.metadata });
        }
        if let Some(d) = &self.dr {
            seen.push(Seen { kind: "DestinationRule", meta: &d.metadata });
        }
        if let Some(r) = &self.route {
            seen.push(Seen { kind: "HTTPRoute", meta: &r.metadata });
        }
        if let Some(s) = &self.service {
            seen.push(Seen { kind: "Service", meta: &s.metadata });
        }
        owners::owners(&seen, &self.rollouts)
    }

    /// `(ready, all)` pods of one version.
    pub fn pods_of(&self, version: &str) -> (usize, usize) {
        let of: Vec<&Pod> = self
            .pods
            .iter()
            .filter(|p| {
                p.metadata.labels.as_ref().and_then(|l| l.get(LABEL_VERSION)).map(String::as_str)
                    == Some(version)
            })
            .collect();
        (of.iter().filter(|p| ready(p)).count(), of.len())
    }

    /// Versions with ready pods, principal first (the DestinationRule's subset order).
    pub fn ready_versions(&self) -> Vec<String> {
        match &self.service {
            Some(svc) => {
                routing::ready_versions_of_pods(svc, &self.pods, self.task.spec.principal.as_deref())
            }
            None => vec![],
        }
    }

    pub fn dr_has(&self, version: &str) -> bool {
        let sub = normalize_version(version);
        self.dr.as_ref().is_some_and(|d| d.spec.subsets.iter().any(|s| s.name == sub))
    }

    /// Where a paused task's traffic goes: the Service's default route, to the first subset.
    pub fn default_version(&self) -> Option<String> {
        self.ready_versions().into_iter().next()
    }
}

/// What a verb relies on, beyond the task existing.
#[derive(Clone, Debug, Default)]
pub struct Expect {
    /// `--force`: route to a version even with no ready pod, write a route another controller
    /// owns.
    pub force: bool,
    /// The routing is KubeSphere's: its DestinationRule must already have the target's subset.
    pub kubesphere: bool,
    /// A gradual shift: the task must still carry the id of the shift's own last write (`""`:
    /// the task had none when the shift read it).
    pub last_write: Option<String>,
}

fn changes_traffic(c: &Change) -> bool {
    matches!(
        c,
        Change::Weight(_) | Change::Ratio(_) | Change::Match(_) | Change::Takeover(_) | Change::Mirror { .. }
    )
}

/// Who last changed the task, as far as the cluster tells: the journal's last entry when the
/// plugin wrote last, else the last field manager that is not the plugin.
pub fn last_changed_by(s: &Strategy) -> String {
    let plugin_wrote_last = s.annotation(ANN_WRITE_ID).is_some()
        && s.metadata
            .managed_fields
            .as_ref()
            .and_then(|m| m.iter().max_by_key(|f| f.time.as_ref().map(|t| t.0)))
            .is_none_or(|f| f.manager.as_deref() == Some(FIELD_MANAGER));
    let journal = super::journal::read(s);
    match journal.last() {
        Some(e) if plugin_wrote_last => format!("{} by {} at {}", e.action, e.by, e.at),
        _ => s
            .metadata
            .managed_fields
            .as_ref()
            .and_then(|m| {
                m.iter()
                    .filter(|f| f.manager.as_deref() != Some(FIELD_MANAGER))
                    .max_by_key(|f| f.time.as_ref().map(|t| t.0))
            })
            .and_then(|f| f.manager.clone())
            .map(|m| format!("a change made outside kubectl-grayscale (field manager {m})"))
            .unwrap_or_else(|| "a change made outside kubectl-grayscale".to_string()),
    }
}

/// Judges the routing's other owners: a controller's route is refused (exit 13) unless forced;
/// a GitOps tool's is a warning pointing at the configuration that makes it leave the weights
/// alone. KubeSphere's own controllers are no fight when they route (the plugin then writes
/// only the Strategy, their input).
pub fn check_owners(live: &Live, expect: &Expect) -> Result<Vec<String>, Error> {
    judge_owners(&live.owners(), expect, &live.identity.task, &live.identity.namespace)
}

/// `check_owners` for owners already found (of task `name`, also before it exists).
pub fn judge_owners(all: &[Owner], expect: &Expect, name: &str, ns: &str) -> Result<Vec<String>, Error> {
    let mut warnings = Vec::new();
    let fight = all
        .iter()
        .find(|o| o.claim == Claim::Controller && !(expect.kubesphere && o.tool.starts_with("KubeSphere")));
    if let Some(o) = fight {
        let what = format!("{} is owned by {} ({})", o.object, o.tool, o.evidence);
        if !expect.force {
            return Err(Error::Owned {
                message: format!(
                    "{what}: its controller would put its own routing back; nothing was written"
                ),
                hint: format!(
                    "operate the release with {}; or, knowing it will likely revert the change, add --force (kubectl grayscale ... {name} -n {ns} --force)",
                    o.tool
                ),
            });
        }
        warnings.push(format!("--force: {what}; it will likely put its own routing back on its next sync"));
    }
    let git = owners::gitops(all);
    if let Some(first) = git.first() {
        let tool = if first.tool == "Argo CD" { "argocd" } else { "flux" };
        warnings.push(format!(
            "{} is managed by {} ({}): it will revert this change on its next sync unless told to ignore the weights; see: kubectl grayscale gitops {name} --tool {tool} -n {ns}",
            first.object, first.tool, first.evidence
        ));
    }
    Ok(warnings)
}

/// Judges `change` against the live state: Ok with warnings to print, or the refusal.
pub fn check(live: &Live, change: &Change, expect: &Expect) -> Result<Vec<String>, Error> {
    let s = &live.task;
    let name = &live.identity.task;
    let ns = &live.identity.namespace;
    let mut warnings = Vec::new();
    if let Some(id) = &expect.last_write
        && s.annotation(ANN_WRITE_ID).unwrap_or_default() != id
    {
        return Err(Error::Yielded {
            message: format!(
                "task {name} changed since this shift's last step ({}); the shift stopped without writing",
                last_changed_by(s)
            ),
            hint: format!("see the task as it is now: kubectl grayscale status {name} -n {ns}"),
        });
    }
    if s.policy() == POLICY_PAUSED && changes_traffic(change) {
        let default = live.default_version().map(|v| format!(" ({v})")).unwrap_or_default();
        return Err(Error::NotLive {
            message: format!(
                "task {name} is paused: its routing stays on the Service's default route{default} whatever its weights say, so this change would not move any traffic; nothing was written"
            ),
            hint: format!("resume the task first: kubectl grayscale resume {name} -n {ns}"),
        });
    }
    if let Change::Takeover(v) = change {
        let (ready, all) = live.pods_of(v);
        let missing_subset = expect.kubesphere && !live.dr_has(v);
        if ready == 0 || missing_subset {
            let why = if ready == 0 {
                format!("{v} has no ready pod ({ready} of {all} ready)")
            } else {
                let dr = live.identity.service.clone();
                format!("the DestinationRule {dr} has no subset {}", normalize_version(v))
            };
            if !expect.force {
                return Err(Error::NotLive {
                    message: format!(
                        "{why}: sending all traffic of {} to it would fail every request; nothing was written",
                        live.identity.service
                    ),
                    hint: format!(
                        "watch its pods with: kubectl grayscale status {name} -n {ns}; --force routes to it anyway"
                    ),
                });
            }
            warnings.push(format!("--force: {why}; requests routed to it fail until it can serve them"));
        }
    }
    if expect.kubesphere && *change == Change::Pause && s.policy() != POLICY_PAUSED {
        warnings.push(pause_under_kubesphere(live));
    }
    warnings.extend(check_owners(live, expect)?);
    Ok(warnings)
}

/// KubeSphere routes a paused task to its DestinationRule's first subset, and its controller
/// lists subsets in its Deployment cache's order, which may differ on every sync.
fn pause_under_kubesphere(live: &Live) -> String {
    let (name, ns) = (&live.identity.task, &live.identity.namespace);
    let principal = live.task.spec.principal.clone().unwrap_or_default();
    let subsets: Vec<String> = live.dr.iter().flat_map(|d| &d.spec.subsets).map(|s| s.name.clone()).collect();
    let now = subsets.first().map(|s| format!(" (now {s}, of {})", subsets.join(", "))).unwrap_or_default();
    format!(
        "KubeSphere routes a paused task to its DestinationRule's first subset{now}, and its controller orders the \
         subsets anew on every sync: traffic may move between the versions while {name} is paused; to hold it on \
         the old version, take over instead: kubectl grayscale takeover {name} -n {ns} --version {principal}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::istio::{DestinationRuleSpec, Subset};
    use serde_json::json;

    fn task(policy: &str, write_id: Option<&str>) -> Strategy {
        let mut ann = serde_json::Map::new();
        if let Some(id) = write_id {
            ann.insert(ANN_WRITE_ID.into(), json!(id));
        }
        serde_json::from_value(json!({
            "metadata": {"name": "rc", "namespace": "ns", "annotations": ann},
            "spec": {"type": "Canary", "principal": "v1", "strategyPolicy": policy,
                "template": {"spec": {"hosts": ["reviews"], "http": [{"route": [
                    {"destination": {"host": "reviews", "subset": "v1"}, "weight": 90},
                    {"destination": {"host": "reviews", "subset": "v2"}, "weight": 10}]}]}}}
        }))
        .unwrap()
    }

    fn pod(version: &str, is_ready: bool) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": format!("p-{version}"), "labels": {"app": "reviews", "version": version}},
            "status": {"conditions": [{"type": "Ready", "status": if is_ready {"True"} else {"False"}}]}
        }))
        .unwrap()
    }

    fn live(policy: &str, pods: Vec<Pod>, subsets: &[&str]) -> Live {
        let t = task(policy, Some("w1"));
        let svc: Service = serde_json::from_value(json!({"metadata": {"name": "reviews"},
            "spec": {"selector": {"app": "reviews"}, "ports": [{"name": "http", "port": 9080}]}}))
        .unwrap();
        let dr = DestinationRule {
            spec: DestinationRuleSpec {
                host: "reviews".into(),
                subsets: subsets
                    .iter()
                    .map(|s| Subset { name: s.to_string(), ..Subset::default() })
                    .collect(),
                ..DestinationRuleSpec::default()
            },
            ..DestinationRule::default()
        };
        Live {
            identity: TaskIdentity::of(&t, Some(&svc)),
            task: t,
            service: Some(svc),
            vs: None,
            dr: Some(dr),
            pods,
            rollouts: vec![],
            route: None,
            version_services: vec![],
        }
    }

    fn takeover(v: &str) -> Change {
        Change::Takeover(v.into())
    }

    #[test]
    fn live_state_cases() {
        let both = || vec![pod("v1", true), pod("v2", true)];
        let v2_down = || vec![pod("v1", true), pod("v2", false), pod("v2", false)];
        let client = Expect::default();
        let forced = Expect { force: true, ..Expect::default() };
        let ks = Expect { kubesphere: true, ..Expect::default() };
        let shift_step = |id: &str| Expect { last_write: Some(id.into()), ..Expect::default() };
        // (case, live, change, expect, Ok(warnings) or Err(exit code, words))
        // Ok(number of warnings) or Err((exit code, words of the message)).
        type Want = Result<usize, (i32, &'static str)>;
        let cases: Vec<(&str, Live, Change, Expect, Want)> = vec![
            (
                "take-over to a ready version",
                live("WaitForWorkloadReady", both(), &["v1", "v2"]),
                takeover("v2"),
                client.clone(),
                Ok(0),
            ),
            (
                "take-over to a version with no ready pod",
                live("WaitForWorkloadReady", v2_down(), &["v1"]),
                takeover("v2"),
                client.clone(),
                Err((11, "v2 has no ready pod (0 of 2 ready)")),
            ),
            (
                "forced",
                live("WaitForWorkloadReady", v2_down(), &["v1"]),
                takeover("v2"),
                forced.clone(),
                Ok(1),
            ),
            (
                "client routing writes the missing subset itself",
                live("WaitForWorkloadReady", both(), &["v1"]),
                takeover("v2"),
                client.clone(),
                Ok(0),
            ),
            (
                "KubeSphere's DestinationRule lacks the subset",
                live("WaitForWorkloadReady", both(), &["v1"]),
                takeover("v2"),
                ks.clone(),
                Err((11, "has no subset v2")),
            ),
            (
                "weights on a paused task",
                live("Paused", both(), &["v1", "v2"]),
                Change::Weight(40),
                client.clone(),
                Err((11, "is paused")),
            ),
            (
                "take-over on a paused task",
                live("Paused", both(), &["v1", "v2"]),
                takeover("v1"),
                client.clone(),
                Err((11, "default route (v1)")),
            ),
            (
                "resume a paused task",
                live("Paused", both(), &["v1", "v2"]),
                Change::Resume,
                client.clone(),
                Ok(0),
            ),
            (
                "a shift's step on its own last write",
                live("WaitForWorkloadReady", both(), &["v1", "v2"]),
                Change::Weight(40),
                shift_step("w1"),
                Ok(0),
            ),
            (
                "a shift's step after another write",
                live("WaitForWorkloadReady", both(), &["v1", "v2"]),
                Change::Weight(40),
                shift_step("w0"),
                Err((12, "changed since this shift's last step")),
            ),
        ];
        for (case, l, change, expect, want) in cases {
            match (check(&l, &change, &expect), want) {
                (Ok(w), Ok(n)) => assert_eq!(w.len(), n, "{case}: {w:?}"),
                (Err(e), Err((code, words))) => {
                    assert_eq!(e.exit_code(), code, "{case}: {e}");
                    assert!(e.to_string().contains(words), "{case}: {e}");
                }
                (got, _) => panic!("{case}: {got:?}"),
            }
        }
    }

    #[test]
    fn pausing_under_kubesphere_warns_that_its_first_subset_is_not_stable() {
        let l = live("WaitForWorkloadReady", vec![pod("v1", true), pod("v2", true)], &["v2", "v1"]);
        let ks = Expect { kubesphere: true, ..Expect::default() };
        let w = check(&l, &Change::Pause, &ks).unwrap();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("first subset (now v2, of v2, v1)"), "{}", w[0]);
        assert!(w[0].contains("kubectl grayscale takeover rc -n ns --version v1"), "{}", w[0]);
        // Client routing lists the principal first: no warning; nor for another change.
        assert!(check(&l, &Change::Pause, &Expect::default()).unwrap().is_empty());
        assert!(check(&l, &Change::Weight(20), &ks).unwrap().is_empty());
        // Already paused: nothing changes, nothing to say.
        let paused = live("Paused", vec![pod("v1", true)], &["v1"]);
        assert!(check(&paused, &Change::Pause, &ks).unwrap().is_empty());
    }

    #[test]
    fn who_changed_names_the_journal_or_the_field_manager() {
        let mut s = task("WaitForWorkloadReady", None);
        s.metadata.managed_fields = Some(vec![
            serde_json::from_value(json!({"manager": "kubectl-edit",
            "operation": "Update", "time": "2026-01-01T00:00:00Z"}))
            .unwrap(),
        ]);
        assert_eq!(
            last_changed_by(&s),
            "a change made outside kubectl-grayscale (field manager kubectl-edit)"
        );
    }
}
