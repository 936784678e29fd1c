//! The permissions each verb needs, per routing mode: what `kubectl grayscale rbac` prints as a
//! Role (and a ClusterRole where a verb reads every namespace or installs the CRD), and what
//! multi-step verbs check up front before their first write.

use std::collections::BTreeMap;

use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Verb {
    Create,
    List,
    #[value(name = "list-all")]
    ListAll,
    Status,
    #[value(name = "status-watch")]
    StatusWatch,
    Shift,
    #[value(name = "shift-gradual")]
    ShiftGradual,
    /// A gradual shift with metric gates (reads Prometheus through the service proxy).
    #[value(name = "shift-gated")]
    ShiftGated,
    Analyze,
    Match,
    Takeover,
    Mirror,
    Pause,
    Resume,
    Offline,
    History,
    Undo,
    Sync,
    Init,
}

impl Verb {
    pub const ALL: [Verb; 19] = [
        Verb::Create,
        Verb::List,
        Verb::ListAll,
        Verb::Status,
        Verb::StatusWatch,
        Verb::Shift,
        Verb::ShiftGradual,
        Verb::ShiftGated,
        Verb::Analyze,
        Verb::Match,
        Verb::Takeover,
        Verb::Mirror,
        Verb::Pause,
        Verb::Resume,
        Verb::Offline,
        Verb::History,
        Verb::Undo,
        Verb::Sync,
        Verb::Init,
    ];
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mode {
    Client,
    Kubesphere,
}

/// One permission: an API group, a resource, a verb, and whether it spans the cluster. A few
/// are in a namespace of their own (Prometheus's), on one named object.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Perm {
    pub group: &'static str,
    pub resource: &'static str,
    pub verb: &'static str,
    pub cluster: bool,
    pub namespace: Option<&'static str>,
    pub name: Option<&'static str>,
}

impl std::fmt::Display for Perm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = if self.group.is_empty() {
            self.resource.to_string()
        } else {
            format!("{}.{}", self.resource, self.group)
        };
        write!(f, "{} {r}", self.verb)?;
        if let Some(n) = self.name {
            write!(f, " {n}")?;
        }
        match (self.cluster, self.namespace) {
            (true, _) => write!(f, " (all namespaces)"),
            (false, Some(ns)) => write!(f, " in namespace {ns}"),
            (false, None) => Ok(()),
        }
    }
}

const SM: &str = "servicemesh.kubesphere.io";
const ISTIO: &str = "networking.istio.io";

fn p(group: &'static str, resource: &'static str, verbs: &[&'static str]) -> Vec<Perm> {
    verbs
        .iter()
        .map(|v| Perm { group, resource, verb: v, cluster: false, namespace: None, name: None })
        .collect()
}

/// Reading Prometheus through the API server's service proxy: Istio's addon with client
/// routing, KubeSphere's monitoring Prometheus where KubeSphere routes.
fn prometheus(mode: Mode) -> Perm {
    let at = super::gate::PROXIED[if mode == Mode::Client { 0 } else { 1 }];
    Perm {
        group: "",
        resource: "services/proxy",
        verb: "get",
        cluster: false,
        namespace: Some(at.namespace),
        name: Some(at.name),
    }
}

/// Reading and writing routing after a task changed (`ops::converge`).
fn routing(mode: Mode) -> Vec<Perm> {
    let mut out = p(ISTIO, "virtualservices", &["get", "patch"]);
    if mode == Mode::Client {
        out.extend(p("", "services", &["get"]));
        out.extend(p("", "pods", &["list"]));
        out.extend(p(ISTIO, "destinationrules", &["patch"]));
    }
    out
}

/// Everything `verb` needs in `mode`, sorted and without duplicates.
pub fn needs(verb: Verb, mode: Mode) -> Vec<Perm> {
    let mut out = match verb {
        Verb::Create => {
            let mut v = p(SM, "strategies", &["list", "create"]);
            v.extend(p("apps", "deployments", &["list", "create", "delete"]));
            v.extend(p("", "services", &["get"]));
            v.extend(p("app.k8s.io", "applications", &["get"]));
            v.extend(p(ISTIO, "virtualservices", &["get"]));
            v.extend(p("", "pods", &["watch"]));
            match mode {
                Mode::Client => {
                    // Server-side apply creates the routing objects the first time: create too.
                    v.extend(p(ISTIO, "destinationrules", &["patch", "create"]));
                    v.extend(p(ISTIO, "virtualservices", &["patch", "create"]));
                    v.extend(p("", "pods", &["list"]));
                }
                Mode::Kubesphere => {
                    v.extend(p(ISTIO, "destinationrules", &["list", "watch"]));
                    v.extend(p(ISTIO, "virtualservices", &["list", "watch"]));
                }
            }
            v
        }
        Verb::List => {
            let mut v = p(SM, "strategies", &["list"]);
            v.extend(p("apps", "deployments", &["list"]));
            v
        }
        Verb::ListAll => needs(Verb::List, mode).into_iter().map(|p| Perm { cluster: true, ..p }).collect(),
        Verb::Status => {
            let mut v = p(SM, "strategies", &["get"]);
            v.extend(p("apps", "deployments", &["list"]));
            v.extend(p(ISTIO, "virtualservices", &["get"]));
            v.extend(p("", "pods", &["list"]));
            v.extend(p("", "events", &["list"]));
            v.extend(p("", "services", &["get"]));
            v
        }
        Verb::StatusWatch => {
            let mut v = p(SM, "strategies", &["get", "list", "watch"]);
            v.extend(p("apps", "deployments", &["list", "watch"]));
            v.extend(p(ISTIO, "virtualservices", &["list", "watch"]));
            v.extend(p("", "pods", &["list", "watch"]));
            v.extend(p("", "events", &["list", "watch"]));
            v
        }
        Verb::Shift | Verb::Match | Verb::Mirror | Verb::Pause | Verb::Resume | Verb::Undo => {
            let mut v = p(SM, "strategies", &["get", "patch"]);
            v.extend(routing(mode));
            v
        }
        Verb::ShiftGradual => {
            let mut v = needs(Verb::Shift, mode);
            v.extend(p("", "pods", &["list", "watch"]));
            v
        }
        Verb::ShiftGated => {
            let mut v = needs(Verb::ShiftGradual, mode);
            v.push(prometheus(mode));
            v
        }
        Verb::Analyze => {
            let mut v = p(SM, "strategies", &["get"]);
            v.push(prometheus(mode));
            v
        }
        Verb::Takeover => {
            // The incident fast path: read and write the task, patch the VirtualService (client
            // routing) or read it to see that KubeSphere routes. When another command routed
            // in between, the fallback also needs what `sync` needs.
            let mut v = p(SM, "strategies", &["get", "patch"]);
            v.extend(p(ISTIO, "virtualservices", &[if mode == Mode::Client { "patch" } else { "get" }]));
            v
        }
        Verb::Offline => {
            let mut v = p(SM, "strategies", &["get", "patch", "delete"]);
            v.extend(p("apps", "deployments", &["delete"]));
            v.extend(routing(mode));
            if mode == Mode::Kubesphere {
                v.extend(p(ISTIO, "virtualservices", &["list", "watch"]));
            }
            v
        }
        Verb::History => p(SM, "strategies", &["get"]),
        Verb::Sync => {
            // Sync routes tasks the console made on clusters without KubeSphere: their routing
            // objects do not exist yet.
            let mut v = p(SM, "strategies", &["get"]);
            v.extend(routing(mode));
            if mode == Mode::Client {
                v.extend(p(ISTIO, "destinationrules", &["create"]));
                v.extend(p(ISTIO, "virtualservices", &["create"]));
            }
            v
        }
        Verb::Init => ["get", "list", "watch", "patch", "create"]
            .iter()
            .map(|verb| Perm {
                group: "apiextensions.k8s.io",
                resource: "customresourcedefinitions",
                verb,
                cluster: true,
                namespace: None,
                name: None,
            })
            .collect(),
    };
    out.sort();
    out.dedup();
    out
}

/// Whether the rules a SelfSubjectRulesReview returned allow `p`.
pub fn allowed(rules: &[k8s_openapi::api::authorization::v1::ResourceRule], p: &Perm) -> bool {
    let has = |list: &Option<Vec<String>>, want: &str| {
        list.as_ref().is_some_and(|l| l.iter().any(|x| x == "*" || x == want))
    };
    rules.iter().any(|r| {
        r.api_groups.as_ref().is_some_and(|g| g.iter().any(|x| x == "*" || x == p.group))
            && has(&r.resources, p.resource)
            && r.verbs.iter().any(|v| v == "*" || v == p.verb)
    })
}

/// The Role (namespaced permissions), a Role in each other namespace a permission names, and, if
/// any permission spans the cluster, the ClusterRole, as objects `kubectl apply` takes. Rules
/// group verbs by resource.
pub fn roles(perms: &[Perm], namespace: &str, name: &str) -> Vec<Value> {
    let rules = |cluster: bool, ns: Option<&str>| -> Vec<Value> {
        let mut by: BTreeMap<(&str, &str, Option<&str>), Vec<&str>> = BTreeMap::new();
        for p in perms.iter().filter(|p| p.cluster == cluster && p.namespace == ns) {
            let verbs = by.entry((p.group, p.resource, p.name)).or_default();
            if !verbs.contains(&p.verb) {
                verbs.push(p.verb);
            }
        }
        by.into_iter()
            .map(|((g, r, n), mut verbs)| {
                verbs.sort();
                let mut rule = json!({"apiGroups": [g], "resources": [r], "verbs": verbs});
                if let Some(n) = n {
                    rule["resourceNames"] = json!([n]);
                }
                rule
            })
            .collect()
    };
    let mut out = Vec::new();
    let mut namespaces: Vec<Option<&str>> = vec![None];
    for p in perms.iter().filter(|p| !p.cluster) {
        if p.namespace.is_some() && !namespaces.contains(&p.namespace) {
            namespaces.push(p.namespace);
        }
    }
    for ns in namespaces {
        let ns_rules = rules(false, ns);
        if !ns_rules.is_empty() {
            out.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": name, "namespace": ns.unwrap_or(namespace)}, "rules": ns_rules}));
        }
    }
    let cluster_rules = rules(true, None);
    if !cluster_rules.is_empty() {
        out.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": name}, "rules": cluster_rules}));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(perms: &[Perm], group: &str, resource: &str, verb: &str) -> bool {
        perms.iter().any(|p| p.group == group && p.resource == resource && p.verb == verb)
    }

    #[test]
    fn client_routing_needs_the_routing_writes_and_kubesphere_routing_does_not() {
        let c = needs(Verb::Shift, Mode::Client);
        assert!(has(&c, ISTIO, "destinationrules", "patch") && has(&c, "", "pods", "list"));
        let k = needs(Verb::Shift, Mode::Kubesphere);
        assert!(!has(&k, ISTIO, "destinationrules", "patch") && !has(&k, "", "pods", "list"));
        assert!(has(&k, SM, "strategies", "patch"));
    }

    #[test]
    fn reading_every_namespace_and_installing_the_crd_need_a_cluster_role() {
        let r = roles(&needs(Verb::ListAll, Mode::Client), "demo", "grayscale");
        assert_eq!(r.len(), 1);
        assert_eq!(r[0]["kind"], "ClusterRole");
        let mut both = needs(Verb::Init, Mode::Client);
        both.extend(needs(Verb::Status, Mode::Client));
        let r = roles(&both, "demo", "grayscale");
        assert_eq!(
            r.iter().map(|o| o["kind"].as_str().unwrap()).collect::<Vec<_>>(),
            ["Role", "ClusterRole"]
        );
    }

    #[test]
    fn rules_group_verbs_by_resource() {
        let r = roles(&needs(Verb::Offline, Mode::Client), "demo", "oncall");
        let rules = r[0]["rules"].as_array().unwrap();
        let strategies = rules.iter().find(|x| x["resources"][0] == "strategies").unwrap();
        assert_eq!(strategies["verbs"], json!(["delete", "get", "patch"]));
        assert_eq!(r[0]["metadata"], json!({"name": "oncall", "namespace": "demo"}));
    }

    #[test]
    fn rules_allow_by_group_resource_and_verb_with_wildcards() {
        use k8s_openapi::api::authorization::v1::ResourceRule;
        let rule = |g: &str, r: &str, v: &str| ResourceRule {
            api_groups: Some(vec![g.into()]),
            resources: Some(vec![r.into()]),
            verbs: vec![v.into()],
            resource_names: None,
        };
        let vs = p(ISTIO, "virtualservices", &["patch"]).remove(0);
        assert!(allowed(&[rule(ISTIO, "virtualservices", "patch")], &vs));
        assert!(allowed(&[rule("*", "*", "*")], &vs));
        assert!(!allowed(&[rule(ISTIO, "virtualservices", "get")], &vs));
        assert!(!allowed(&[rule("", "virtualservices", "patch")], &vs));
        assert!(!allowed(&[rule(ISTIO, "destinationrules", "patch")], &vs));
    }

    #[test]
    fn every_verb_needs_something_and_names_it_readably() {
        for v in Verb::ALL {
            for m in [Mode::Client, Mode::Kubesphere] {
                assert!(!needs(v, m).is_empty(), "{v:?}");
            }
        }
        let vs = p(ISTIO, "virtualservices", &["patch"]).remove(0);
        assert_eq!(vs.to_string(), "patch virtualservices.networking.istio.io");
        assert_eq!(
            prometheus(Mode::Client).to_string(),
            "get services/proxy prometheus:9090 in namespace istio-system"
        );
    }

    #[test]
    fn metric_gates_add_a_role_on_prometheus_alone_in_its_namespace() {
        let r = roles(&needs(Verb::ShiftGated, Mode::Client), "demo", "oncall");
        assert_eq!(r.len(), 2);
        assert_eq!(r[0]["metadata"]["namespace"], "demo");
        assert!(!r[0]["rules"].to_string().contains("services/proxy"));
        assert_eq!(r[1]["kind"], "Role");
        assert_eq!(r[1]["metadata"], json!({"name": "oncall", "namespace": "istio-system"}));
        assert_eq!(
            r[1]["rules"],
            json!([{"apiGroups": [""], "resources": ["services/proxy"], "verbs": ["get"], "resourceNames": ["prometheus:9090"]}])
        );
        let k = roles(&needs(Verb::Analyze, Mode::Kubesphere), "demo", "oncall");
        assert_eq!(k[1]["metadata"]["namespace"], "kubesphere-monitoring-system");
        assert_eq!(k[1]["rules"][0]["resourceNames"], json!(["prometheus-k8s:9090"]));
    }
}
