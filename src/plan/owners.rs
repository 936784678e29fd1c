//! Who else owns a task's routing: another progressive-delivery controller (whose next sync puts
//! its weights back), KubeSphere 4.x's service-mesh controller, or a GitOps tool (which reverts
//! hand changes unless told to ignore the weights). Read from the objects the verb already has,
//! with the keys those projects write in their own source (README, "Who else owns the route").

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// How another owner bears on a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// A controller that writes the weights itself: writing them too is a fight.
    Controller,
    /// A GitOps tool: it reverts the change on its next sync unless it ignores the weights.
    GitOps,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub tool: &'static str,
    pub claim: Claim,
    /// The object that proves it: `VirtualService reviews`.
    pub object: String,
    /// The key seen on it.
    pub evidence: String,
}

/// One object a verb read, as owner detection sees it.
pub struct Seen<'a> {
    pub kind: &'static str,
    pub meta: &'a ObjectMeta,
}

const ROLLOUTS_ANN: &str = "argo-rollouts.argoproj.io/managed-by-rollouts";
const KRUISE_ANN: &str = "rollouts.kruise.io/original-spec-configuration";
const FLAGGER_ANN: &str = "flagger.kubernetes.io/original-configuration";
const FLUX_SKIP_ANN: &str = "kustomize.toolkit.fluxcd.io/reconcile";
const KS4_LABEL: &str = "servicemesh.kubesphere.io/controlled-by-strategy";
const ARGOCD_ANN: &str = "argocd.argoproj.io/tracking-id";
const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
const FLUX_LABELS: [(&str, &str); 2] =
    [("kustomize.toolkit.fluxcd.io/name", "Flux"), ("helm.toolkit.fluxcd.io/name", "Flux (helm-controller)")];

/// Field managers of other controllers, and who they are.
const MANAGERS: [(&str, &str, Claim); 7] = [
    ("rollouts-controller", "Argo Rollouts", Claim::Controller),
    ("kruise-rollout", "OpenKruise Rollouts", Claim::Controller),
    ("flagger", "Flagger", Claim::Controller),
    ("servicemesh-controller-manager", "KubeSphere 4.x's service mesh", Claim::Controller),
    ("argocd-controller", "Argo CD", Claim::GitOps),
    ("kustomize-controller", "Flux", Claim::GitOps),
    ("helm-controller", "Flux (helm-controller)", Claim::GitOps),
];

fn name(o: &Seen<'_>) -> String {
    format!("{} {}", o.kind, o.meta.name.as_deref().unwrap_or_default())
}

/// Everything the objects say about other owners, controllers first.
pub fn owners(objects: &[Seen<'_>], rollouts_naming: &[String]) -> Vec<Owner> {
    let mut out = Vec::new();
    let mut add = |tool, claim, o: &Seen<'_>, evidence: String| {
        let owner = Owner { tool, claim, object: name(o), evidence };
        if !out.contains(&owner) {
            out.push(owner);
        }
    };
    for o in objects {
        let ann = |k: &str| o.meta.annotations.as_ref().and_then(|a| a.get(k));
        let label = |k: &str| o.meta.labels.as_ref().and_then(|a| a.get(k));
        if let Some(v) = ann(ROLLOUTS_ANN) {
            add("Argo Rollouts", Claim::Controller, o, format!("annotation {ROLLOUTS_ANN}: {v}"));
        }
        if ann(KRUISE_ANN).is_some() {
            add("OpenKruise Rollouts", Claim::Controller, o, format!("annotation {KRUISE_ANN}"));
        }
        if ann(FLAGGER_ANN).is_some() {
            add("Flagger", Claim::Controller, o, format!("annotation {FLAGGER_ANN}"));
        }
        if ann(FLUX_SKIP_ANN).is_some_and(|v| v == "disabled") {
            add(
                "Flagger",
                Claim::Controller,
                o,
                format!("annotation {FLUX_SKIP_ANN}: disabled (Flagger sets it on the routes it generates)"),
            );
        }
        for r in o.meta.owner_references.iter().flatten() {
            if r.api_version.starts_with("flagger.app/") && r.kind == "Canary" {
                add("Flagger", Claim::Controller, o, format!("ownerReference to Canary {}", r.name));
            }
        }
        if let Some(v) = label(KS4_LABEL) {
            add("KubeSphere 4.x's service mesh", Claim::Controller, o, format!("label {KS4_LABEL}: {v}"));
        }
        for f in o.meta.managed_fields.iter().flatten() {
            let m = f.manager.as_deref().unwrap_or_default();
            if let Some((_, tool, claim)) = MANAGERS.iter().find(|(name, _, _)| *name == m) {
                add(tool, *claim, o, format!("field manager {m}"));
            }
        }
        if let Some(v) = ann(ARGOCD_ANN) {
            add("Argo CD", Claim::GitOps, o, format!("annotation {ARGOCD_ANN}: {v}"));
        }
        if let Some(v) = label(INSTANCE_LABEL) {
            add("Argo CD", Claim::GitOps, o, format!("label {INSTANCE_LABEL}: {v} (Helm sets it too)"));
        }
        for (k, tool) in FLUX_LABELS {
            if let Some(v) = label(k) {
                add(tool, Claim::GitOps, o, format!("label {k}: {v}"));
            }
        }
    }
    if let Some(vs) = objects.iter().find(|o| o.kind == "VirtualService") {
        for r in rollouts_naming {
            add(
                "Argo Rollouts",
                Claim::Controller,
                vs,
                format!("Rollout {r} routes it (spec.strategy.canary.trafficRouting.istio)"),
            );
        }
    }
    out.sort_by_key(|o| o.claim == Claim::GitOps);
    out
}

/// The Rollouts (argoproj.io) among `rollouts` whose Istio traffic routing names the
/// VirtualService `vs` of namespace `ns` (`name`, `name.ns` or `name.ns.svc.cluster.local`).
pub fn rollouts_naming(rollouts: &[serde_json::Value], vs: &str, ns: &str) -> Vec<String> {
    let names_it = |n: &str| {
        let n = n.trim_end_matches(".svc.cluster.local").trim_end_matches(".cluster.local");
        n == vs || n == format!("{vs}.{ns}")
    };
    rollouts
        .iter()
        .filter(|r| {
            let istio = &r["spec"]["strategy"]["canary"]["trafficRouting"]["istio"];
            let one = istio["virtualService"]["name"].as_str().is_some_and(names_it);
            let many = istio["virtualServices"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|v| v["name"].as_str().is_some_and(names_it));
            one || many
        })
        .filter_map(|r| r["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}

/// The controller that owns the route, if any: a write would be undone by its next sync.
pub fn controller(owners: &[Owner]) -> Option<&Owner> {
    owners.iter().find(|o| o.claim == Claim::Controller)
}

/// The GitOps tools that manage the route, for one warning.
pub fn gitops(owners: &[Owner]) -> Vec<&Owner> {
    owners.iter().filter(|o| o.claim == Claim::GitOps).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta(v: serde_json::Value) -> ObjectMeta {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn owner_cases() {
        // (case, kind, metadata, rollouts naming it) -> (tool, claim, evidence words) or none
        type Want = Option<(&'static str, Claim, &'static str)>;
        let cases: Vec<(&str, &'static str, serde_json::Value, Vec<String>, Want)> = vec![
            ("a plain VirtualService", "VirtualService", json!({"name": "reviews"}), vec![], None),
            (
                "the plugin's own field manager",
                "VirtualService",
                json!({"name": "reviews", "managedFields": [{"manager": "kubectl-grayscale", "operation": "Apply"}]}),
                vec![],
                None,
            ),
            (
                "Argo Rollouts writes the VirtualService",
                "VirtualService",
                json!({"name": "reviews", "managedFields": [{"manager": "rollouts-controller", "operation": "Update"}]}),
                vec![],
                Some(("Argo Rollouts", Claim::Controller, "field manager rollouts-controller")),
            ),
            (
                "a Rollout names it",
                "VirtualService",
                json!({"name": "reviews"}),
                vec!["reviews-rollout".into()],
                Some(("Argo Rollouts", Claim::Controller, "Rollout reviews-rollout routes it")),
            ),
            (
                "Argo Rollouts' DestinationRule",
                "DestinationRule",
                json!({"name": "reviews", "annotations": {"argo-rollouts.argoproj.io/managed-by-rollouts": "r"}}),
                vec![],
                Some(("Argo Rollouts", Claim::Controller, "managed-by-rollouts: r")),
            ),
            (
                "a Flagger Canary owns it",
                "VirtualService",
                json!({"name": "reviews", "ownerReferences": [{"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "name": "reviews", "uid": "u"}]}),
                vec![],
                Some(("Flagger", Claim::Controller, "ownerReference to Canary reviews")),
            ),
            (
                "Flagger took it over",
                "VirtualService",
                json!({"name": "reviews", "annotations": {"flagger.kubernetes.io/original-configuration": "{}"}}),
                vec![],
                Some(("Flagger", Claim::Controller, "original-configuration")),
            ),
            (
                "Kruise rolls it",
                "VirtualService",
                json!({"name": "reviews", "annotations": {"rollouts.kruise.io/original-spec-configuration": "{}"}}),
                vec![],
                Some(("OpenKruise Rollouts", Claim::Controller, "original-spec-configuration")),
            ),
            (
                "KubeSphere 4.x",
                "VirtualService",
                json!({"name": "reviews", "labels": {"servicemesh.kubesphere.io/controlled-by-strategy": "rc"}}),
                vec![],
                Some(("KubeSphere 4.x's service mesh", Claim::Controller, "controlled-by-strategy: rc")),
            ),
            (
                "Argo CD tracks it",
                "VirtualService",
                json!({"name": "reviews", "annotations": {"argocd.argoproj.io/tracking-id": "app:networking.istio.io/VirtualService:ns/reviews"}}),
                vec![],
                Some(("Argo CD", Claim::GitOps, "tracking-id")),
            ),
            (
                "Flux applies it",
                "VirtualService",
                json!({"name": "reviews", "managedFields": [{"manager": "kustomize-controller", "operation": "Apply"}]}),
                vec![],
                Some(("Flux", Claim::GitOps, "field manager kustomize-controller")),
            ),
            (
                "Flux's label",
                "VirtualService",
                json!({"name": "reviews", "labels": {"kustomize.toolkit.fluxcd.io/name": "apps"}}),
                vec![],
                Some(("Flux", Claim::GitOps, "kustomize.toolkit.fluxcd.io/name: apps")),
            ),
        ];
        for (case, kind, m, naming, want) in cases {
            let m = meta(m);
            let got = owners(&[Seen { kind, meta: &m }], &naming);
            match want {
                None => assert!(got.is_empty(), "{case}: {got:?}"),
                Some((tool, claim, words)) => {
                    let first = got.first().unwrap_or_else(|| panic!("{case}: none"));
                    assert_eq!((first.tool, first.claim), (tool, claim), "{case}");
                    assert!(first.evidence.contains(words), "{case}: {}", first.evidence);
                    assert_eq!(first.object, format!("{kind} reviews"), "{case}");
                }
            }
        }
    }

    #[test]
    fn a_controller_comes_before_gitops() {
        let m = meta(json!({"name": "reviews", "annotations": {"argocd.argoproj.io/tracking-id": "x",
            "rollouts.kruise.io/original-spec-configuration": "{}"}}));
        let got = owners(&[Seen { kind: "VirtualService", meta: &m }], &[]);
        assert_eq!(controller(&got).unwrap().tool, "OpenKruise Rollouts");
        assert_eq!(gitops(&got).len(), 1);
    }

    #[test]
    fn rollouts_name_the_virtual_service_in_every_spelling() {
        let r = |name: &str, vs: serde_json::Value| json!({"metadata": {"name": name}, "spec": {"strategy": {"canary": {"trafficRouting": {"istio": vs}}}}});
        let rollouts = vec![
            r("a", json!({"virtualService": {"name": "reviews"}})),
            r("b", json!({"virtualServices": [{"name": "other"}, {"name": "reviews.ns"}]})),
            r("c", json!({"virtualService": {"name": "reviews.ns.svc.cluster.local"}})),
            r("d", json!({"virtualService": {"name": "reviews.elsewhere"}})),
            r("e", json!({"virtualService": {"name": "ratings"}})),
        ];
        assert_eq!(rollouts_naming(&rollouts, "reviews", "ns"), ["a", "b", "c"]);
    }
}
