//! `gitops`: the configuration that makes Argo CD or Flux leave a task's routing to this plugin
//! instead of putting Git's weights back on every sync (argo-rollouts #3854, Flux's FAQ on edits
//! being rolled back). Pure: the task's identity and its Service in, the object to merge into the
//! Application or Kustomization out, with the reasons as YAML comments.
//!
//! The paths are whole route lists, not the weights alone: the plugin rewrites every route of the
//! VirtualService (`create` adds the new version's destination, `match` adds a route per rule, a
//! take-over sends each protocol to one version with no port match; see `plan::operate::apply`
//! and `plan::routing`), so ignoring only `.weight` would leave the app OutOfSync after those.

use k8s_openapi::api::core::v1::Service;
use serde_json::{Value, json};

use super::identity::TaskIdentity;
use crate::model::istio::{ISTIO_GROUP, ISTIO_VERSION};
use crate::model::strategy::{API_VERSION, KIND};

/// What the plugin writes on the VirtualService: every HTTP and TCP route.
pub const VIRTUAL_SERVICE_PATHS: [&str; 2] = [".spec.http", ".spec.tcp"];
/// What it writes on the DestinationRule: one subset per ready version.
pub const DESTINATION_RULE_PATHS: [&str; 1] = [".spec.subsets"];
/// What every change writes on the task (`plan::operate::TaskState`).
pub const STRATEGY_PATHS: [&str; 4] =
    [".spec.governor", ".spec.strategyPolicy", ".spec.template.spec.http", ".spec.template.spec.tcp"];

const SM_GROUP: &str = "servicemesh.kubesphere.io";

pub const ARGOCD_TRACKING_ID: &str = "argocd.argoproj.io/tracking-id";
pub const ARGOCD_INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
pub const FLUX_NAME_LABEL: &str = "kustomize.toolkit.fluxcd.io/name";
pub const FLUX_NAMESPACE_LABEL: &str = "kustomize.toolkit.fluxcd.io/namespace";
pub const FLUX_SSA: &str = "kustomize.toolkit.fluxcd.io/ssa";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    Argocd,
    Flux,
}

/// The Application or Kustomization that applies the task's objects, and how it was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub name: String,
    pub namespace: Option<String>,
    /// `--app`, or the annotation or label it was read from.
    pub source: String,
}

/// The configuration to print: the object, and the comments that say why it is so.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub comments: Vec<String>,
    pub object: Value,
}

impl Config {
    /// YAML with the reasons as comments above the object.
    pub fn yaml(&self) -> String {
        let mut out: String = self
            .comments
            .iter()
            .map(|c| if c.is_empty() { "#\n".to_string() } else { format!("# {c}\n") })
            .collect();
        out.push_str(&serde_yaml_ng::to_string(&self.object).expect("configuration serialises"));
        out
    }
}

fn annotation<'a>(svc: &'a Service, key: &str) -> Option<&'a str> {
    svc.metadata.annotations.as_ref()?.get(key).map(String::as_str).filter(|v| !v.is_empty())
}

fn label<'a>(svc: &'a Service, key: &str) -> Option<&'a str> {
    svc.metadata.labels.as_ref()?.get(key).map(String::as_str).filter(|v| !v.is_empty())
}

/// The Application that syncs the Service: its tracking id (`APP:group/Kind:ns/name`, or
/// `NS_APP:...` for an Application outside Argo CD's namespace), else the instance label that
/// label tracking sets (Helm sets it too, to the release's name: the source is said).
pub fn argocd_owner(svc: &Service) -> Option<Owner> {
    if let Some(id) = annotation(svc, ARGOCD_TRACKING_ID) {
        let app = id.split(':').next().unwrap_or_default();
        let (namespace, name) = match app.split_once('_') {
            Some((ns, name)) => (Some(ns.to_string()), name),
            None => (None, app),
        };
        if !name.is_empty() {
            return Some(Owner {
                name: name.to_string(),
                namespace,
                source: format!("the Service's {ARGOCD_TRACKING_ID} annotation"),
            });
        }
    }
    label(svc, ARGOCD_INSTANCE_LABEL).map(|name| Owner {
        name: name.to_string(),
        namespace: None,
        source: format!("the Service's {ARGOCD_INSTANCE_LABEL} label"),
    })
}

/// The Kustomization that applied the Service, from the labels kustomize-controller sets.
pub fn flux_owner(svc: &Service) -> Option<Owner> {
    label(svc, FLUX_NAME_LABEL).map(|name| Owner {
        name: name.to_string(),
        namespace: label(svc, FLUX_NAMESPACE_LABEL).map(str::to_string),
        source: format!("the Service's {FLUX_NAME_LABEL} label"),
    })
}

/// The owner to name: `--app` first, else what the Service says.
pub fn owner(tool: Tool, svc: Option<&Service>, app: Option<&str>) -> Option<Owner> {
    if let Some(name) = app {
        return Some(Owner { name: name.to_string(), namespace: None, source: "--app".into() });
    }
    let svc = svc?;
    match tool {
        Tool::Argocd => argocd_owner(svc),
        Tool::Flux => flux_owner(svc),
    }
}

fn metadata(owner: Option<&Owner>) -> Option<Value> {
    let o = owner?;
    let mut m = json!({"name": o.name});
    if let Some(ns) = &o.namespace {
        m["namespace"] = json!(ns);
    }
    Some(m)
}

fn head(tool: &str, id: &TaskIdentity, what: &str, owner: Option<&Owner>) -> Vec<String> {
    let mut c = vec![format!(
        "{tool}: leave the routing of task {} in namespace {} to kubectl-grayscale.",
        id.task, id.namespace
    )];
    match owner {
        Some(o) => c.push(format!("Merge into the {what} {} (named by {}).", o.name, o.source)),
        None => c.push(format!(
            "Merge into the {what} that applies these objects (name it here with --app NAME)."
        )),
    }
    c
}

/// The Application fragment: `ignoreDifferences` on what the plugin writes, and the sync option
/// that makes a sync keep those fields.
pub fn argocd(id: &TaskIdentity, owner: Option<&Owner>) -> Config {
    let entry = |group: &str, kind: &str, name: &str, paths: &[&str]| {
        json!({"group": group, "kind": kind, "name": name, "namespace": id.namespace,
            "jqPathExpressions": paths})
    };
    let mut object = json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "spec": {
            "ignoreDifferences": [
                entry(ISTIO_GROUP, "VirtualService", &id.app, &VIRTUAL_SERVICE_PATHS),
                entry(ISTIO_GROUP, "DestinationRule", &id.service, &DESTINATION_RULE_PATHS),
                entry(SM_GROUP, KIND, &id.task, &STRATEGY_PATHS),
            ],
            "syncPolicy": {"syncOptions": ["RespectIgnoreDifferences=true"]},
        },
    });
    if let Some(m) = metadata(owner) {
        object["metadata"] = m;
    }
    let mut comments = head("Argo CD", id, "Application", owner);
    comments.push("Keep the Application's other syncOptions: add this one to its list.".into());
    comments.extend([
        String::new(),
        format!("Whole route lists, not the weights alone: on VirtualService {}, create adds", id.app),
        "the new version's destination, shift sets the weights, match adds a route per rule,".into(),
        "mirror sets mirror and mirrorPercentage, and a take-over sends each protocol to one".into(),
        "version with no port match. Ignoring only .weight leaves the app OutOfSync after those.".into(),
        format!(
            "DestinationRule {}: one subset per ready version. Strategy {}: its governor,",
            id.service, id.task
        ),
        "policy and route template (an entry for an object that is not in Git does nothing).".into(),
        "Hosts, gateways and every other field stay Git's.".into(),
        String::new(),
        "No expression has a condition: one that selects routes only while a label or a value".into(),
        "is set (select(...)) stops selecting them when it changes, and the app is left".into(),
        "OutOfSync (gatewayapi-plugin #208). These select the same fields in every task state.".into(),
        String::new(),
        "RespectIgnoreDifferences=true: a sync keeps the live values of these paths; without it".into(),
        "a sync writes Git's routes back although the diff ignores them.".into(),
    ]);
    if owner.is_some_and(|o| o.source.contains(ARGOCD_INSTANCE_LABEL)) {
        comments.extend([
            String::new(),
            "The plugin copies the Service's labels to the VirtualService and DestinationRule it".into(),
            format!("creates: with label tracking ({ARGOCD_INSTANCE_LABEL}) Argo CD counts them in this"),
            "Application, and prunes them if they are not in Git and pruning is on.".into(),
        ]);
    }
    Config { comments, object }
}

/// The Kustomization fragment: patches that give the task's objects Flux's `IfNotPresent` apply
/// policy, the documented way to let another controller own what Flux created.
pub fn flux(id: &TaskIdentity, owner: Option<&Owner>) -> Config {
    let patch = |api_version: &str, group: &str, kind: &str, name: &str| {
        let body = json!({"apiVersion": api_version, "kind": kind,
            "metadata": {"name": name, "annotations": {FLUX_SSA: "IfNotPresent"}}});
        json!({
            "target": {"group": group, "kind": kind, "name": name, "namespace": id.namespace},
            "patch": serde_yaml_ng::to_string(&body).expect("patch serialises"),
        })
    };
    let istio = format!("{ISTIO_GROUP}/{ISTIO_VERSION}");
    let mut object = json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "spec": {"patches": [
            patch(&istio, ISTIO_GROUP, "VirtualService", &id.app),
            patch(&istio, ISTIO_GROUP, "DestinationRule", &id.service),
            patch(API_VERSION, SM_GROUP, KIND, &id.task),
        ]},
    });
    if let Some(m) = metadata(owner) {
        object["metadata"] = m;
    }
    let mut comments = head("Flux", id, "Kustomization", owner);
    comments.push("Add these to its spec.patches.".into());
    comments.extend([
        String::new(),
        format!("{FLUX_SSA}: IfNotPresent makes kustomize-controller create each object"),
        "when it is missing and leave it alone while it exists: the routes, weights, subsets and".into(),
        format!(
            "task state the plugin writes on VirtualService {}, DestinationRule {} and",
            id.app, id.service
        ),
        format!("Strategy {} stay. The price: changes to these objects in Git are not applied", id.task),
        "while they exist; delete one (Flux creates it again from Git) or drop the annotation to".into(),
        "hand it back to Git. The annotation may be written in the manifests instead.".into(),
        String::new(),
        "Not the default policy: Flux applies every field its manifest sets (a route list whole),".into(),
        "and its apply takes over the fields of every field manager whose name starts with".into(),
        "\"kubectl\", as this plugin's (kubectl-grayscale) does.".into(),
    ]);
    Config { comments, object }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::strategy::Strategy;

    fn identity() -> TaskIdentity {
        let s: Strategy = serde_json::from_value(json!({
            "metadata": {"name": "rc", "namespace": "shop", "labels": {"app": "reviews-api"}},
            "spec": {"type": "Canary", "principal": "v1", "template": {"spec": {"hosts": ["reviews-api"],
                "http": [{"route": [{"destination": {"host": "reviews-api", "subset": "v2"}, "weight": 10}]}]}}}
        }))
        .unwrap();
        TaskIdentity::of(&s, Some(&service(json!({}), json!({"app": "reviews"}))))
    }

    fn service(annotations: Value, labels: Value) -> Service {
        serde_json::from_value(json!({"metadata": {"name": "reviews-api", "annotations": annotations,
            "labels": labels}, "spec": {"selector": {"app": "reviews"}}}))
        .unwrap()
    }

    #[test]
    fn argocd_ignores_what_the_plugin_writes_on_each_object_by_its_own_name() {
        let c = argocd(&identity(), None);
        let o = &c.object;
        assert_eq!(
            (o["apiVersion"].as_str(), o["kind"].as_str()),
            (Some("argoproj.io/v1alpha1"), Some("Application"))
        );
        let entries = o["spec"]["ignoreDifferences"].as_array().unwrap();
        let names: Vec<(&str, &str, &str)> = entries
            .iter()
            .map(|e| {
                (e["kind"].as_str().unwrap(), e["name"].as_str().unwrap(), e["namespace"].as_str().unwrap())
            })
            .collect();
        // The VirtualService is named after the pods' app, the DestinationRule after the Service.
        assert_eq!(
            names,
            [
                ("VirtualService", "reviews", "shop"),
                ("DestinationRule", "reviews-api", "shop"),
                ("Strategy", "rc", "shop")
            ]
        );
        assert_eq!(entries[0]["group"], "networking.istio.io");
        assert_eq!(entries[2]["group"], "servicemesh.kubesphere.io");
        assert_eq!(entries[0]["jqPathExpressions"], json!([".spec.http", ".spec.tcp"]));
        assert_eq!(o["spec"]["syncPolicy"]["syncOptions"], json!(["RespectIgnoreDifferences=true"]));
        assert!(o.get("metadata").is_none(), "no Application name was given or found");
    }

    #[test]
    fn no_expression_has_a_condition() {
        let c = argocd(&identity(), None);
        for e in c.object["spec"]["ignoreDifferences"].as_array().unwrap() {
            for p in e["jqPathExpressions"].as_array().unwrap() {
                let p = p.as_str().unwrap();
                assert!(
                    p.starts_with(".spec.")
                        && !p.contains('|')
                        && !p.contains("select")
                        && !p.contains(" if "),
                    "{p}"
                );
            }
        }
    }

    #[test]
    fn yaml_carries_the_reasons_as_comments_and_parses_to_the_object() {
        let c = argocd(&identity(), None);
        let text = c.yaml();
        assert!(text.starts_with("# Argo CD: leave the routing of task rc in namespace shop"), "{text}");
        assert!(
            text.contains("#208") && text.contains("RespectIgnoreDifferences=true: a sync keeps"),
            "{text}"
        );
        assert!(text.contains("--app NAME"), "{text}");
        let back: Value = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(back, c.object);
    }

    #[test]
    fn the_application_comes_from_app_then_the_tracking_id_then_the_instance_label() {
        let tracked = service(json!({ARGOCD_TRACKING_ID: "shop-apps:/Service:shop/reviews-api"}), json!({}));
        assert_eq!(argocd_owner(&tracked).unwrap().name, "shop-apps");
        let other_ns =
            service(json!({ARGOCD_TRACKING_ID: "team-a_shop-apps:/Service:shop/reviews-api"}), json!({}));
        let o = argocd_owner(&other_ns).unwrap();
        assert_eq!((o.name.as_str(), o.namespace.as_deref()), ("shop-apps", Some("team-a")));
        let labelled = service(json!({}), json!({ARGOCD_INSTANCE_LABEL: "shop"}));
        let o = owner(Tool::Argocd, Some(&labelled), None).unwrap();
        assert!(o.source.contains("instance label"), "{}", o.source);
        assert_eq!(owner(Tool::Argocd, Some(&labelled), Some("mine")).unwrap().name, "mine");
        assert_eq!(owner(Tool::Argocd, Some(&service(json!({}), json!({}))), None), None);
        assert_eq!(owner(Tool::Flux, Some(&labelled), None), None, "an Argo CD label names no Kustomization");

        let c = argocd(&identity(), argocd_owner(&other_ns).as_ref());
        assert_eq!(c.object["metadata"], json!({"name": "shop-apps", "namespace": "team-a"}));
        assert!(!c.yaml().contains("prunes them"), "said only under label tracking");
        let c = argocd(&identity(), argocd_owner(&labelled).as_ref());
        assert!(c.yaml().contains("prunes them"));
    }

    #[test]
    fn flux_patches_each_object_with_if_not_present() {
        let svc = service(json!({}), json!({FLUX_NAME_LABEL: "apps", FLUX_NAMESPACE_LABEL: "flux-system"}));
        let c = flux(&identity(), owner(Tool::Flux, Some(&svc), None).as_ref());
        let o = &c.object;
        assert_eq!(o["apiVersion"], "kustomize.toolkit.fluxcd.io/v1");
        assert_eq!(o["kind"], "Kustomization");
        assert_eq!(o["metadata"], json!({"name": "apps", "namespace": "flux-system"}));
        let patches = o["spec"]["patches"].as_array().unwrap();
        let targets: Vec<Value> = patches.iter().map(|p| p["target"].clone()).collect();
        assert_eq!(
            targets,
            [
                json!({"group": "networking.istio.io", "kind": "VirtualService", "name": "reviews", "namespace": "shop"}),
                json!({"group": "networking.istio.io", "kind": "DestinationRule", "name": "reviews-api", "namespace": "shop"}),
                json!({"group": "servicemesh.kubesphere.io", "kind": "Strategy", "name": "rc", "namespace": "shop"}),
            ]
        );
        for p in patches {
            let body: Value = serde_yaml_ng::from_str(p["patch"].as_str().unwrap()).unwrap();
            assert_eq!(body["metadata"]["annotations"][FLUX_SSA], "IfNotPresent");
            assert_eq!(body["metadata"]["name"], p["target"]["name"]);
            assert_eq!(body["kind"], p["target"]["kind"]);
        }
        let text = c.yaml();
        assert!(text.starts_with("# Flux: leave the routing of task rc"), "{text}");
        assert!(text.contains("\"kubectl\", as this plugin's (kubectl-grayscale) does"), "{text}");
        assert_eq!(serde_yaml_ng::from_str::<Value>(&text).unwrap(), c.object);
    }
}
