//! The permissions each verb needs, per routing mode: what `kubectl grayscale rbac` prints as a
//! Role (and a ClusterRole where a verb reads every namespace or installs the CRD), and what
//! multi-step verbs check up front before their first write.

use std::collections::BTreeMap;

use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verb {
    Create,
    List,
    ListAll,
    Status,
    StatusWatch,
    Shift,
    ShiftGradual,
    /// A gradual shift with metric gates (reads Prometheus through the service proxy).
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
    /// The name `kubectl grayscale rbac` takes.
    pub fn name(self) -> &'static str {
        match self {
            Verb::Create => "create",
            Verb::List => "list",
            Verb::ListAll => "list-all",
            Verb::Status => "status",
            Verb::StatusWatch => "status-watch",
            Verb::Shift => "shift",
            Verb::ShiftGradual => "shift-gradual",
            Verb::ShiftGated => "shift-gated",
            Verb::Analyze => "analyze",
            Verb::Match => "match",
            Verb::Takeover => "takeover",
            Verb::Mirror => "mirror",
            Verb::Pause => "pause",
            Verb::Resume => "resume",
            Verb::Offline => "offline",
            Verb::History => "history",
            Verb::Undo => "undo",
            Verb::Sync => "sync",
            Verb::Init => "init",
        }
    }

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
    /// Gateway API routing: what client routing needs, on HTTPRoutes and per-version Services.
    Gateway,
}

/// One permission: an API group, a resource, a verb, and whether it spans the cluster. A few
/// are in a namespace of their own (Prometheus's), on one named object. An optional one is
/// printed in the Role but not checked up front: the verb works without it, with less.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Perm {
    pub group: &'static str,
    pub resource: &'static str,
    pub verb: &'static str,
    pub cluster: bool,
    pub namespace: Option<&'static str>,
    pub name: Option<&'static str>,
    pub optional: bool,
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
        .map(|v| Perm {
            group,
            resource,
            verb: v,
            cluster: false,
            namespace: None,
            name: None,
            optional: false,
        })
        .collect()
}

fn optional(group: &'static str, resource: &'static str, verbs: &[&'static str]) -> Vec<Perm> {
    p(group, resource, verbs).into_iter().map(|p| Perm { optional: true, ..p }).collect()
}

/// What names the optional rules of a Role, for scripts (YAML also says it in a comment).
pub const ANN_OPTIONAL: &str = "grayscale.kubectl.io/optional-rules";

/// Said above the optional rules of a printed Role.
pub const OPTIONAL_NOTE: &str = "Optional: not checked before a change; without them owner detection \
falls back to annotations and managedFields (it says so at -v 6), a take-over records no Event, and a \
DestinationRule keeps its live traffic policies instead of the app's ServicePolicy; `list` shows no \
drift, and `list -A` reads the tasks as one chain of pages.";

/// Reading Prometheus through the API server's service proxy: Istio's addon with client
/// routing, KubeSphere's monitoring Prometheus where KubeSphere routes.
fn prometheus(mode: Mode) -> Perm {
    let at = super::gate::PROXIED[if mode == Mode::Kubesphere { 1 } else { 0 }];
    Perm {
        group: "",
        resource: "services/proxy",
        verb: "get",
        cluster: false,
        namespace: Some(at.namespace),
        name: Some(at.name),
        optional: false,
    }
}

/// The read round of every verb that changes or routes a task (`cluster::read`): the task, its
/// Service, VirtualService, DestinationRule and pods, in both routing modes.
fn read_round() -> Vec<Perm> {
    let mut v = p(SM, "strategies", &["get"]);
    v.extend(p("", "services", &["get"]));
    v.extend(p(ISTIO, "virtualservices", &["get"]));
    v.extend(p(ISTIO, "destinationrules", &["get"]));
    v.extend(p("", "pods", &["list"]));
    v
}

/// Owner detection (`cluster::read`): the Argo Rollouts that may name the task's
/// VirtualService. Their CRD is often absent and a namespace's users may not list them, so
/// detection falls back to annotations and managedFields: optional. (Flagger's Canaries are
/// found by the ownerReference they put on the routes: no list.)
fn owners() -> Vec<Perm> {
    optional("argoproj.io", "rollouts", &["list"])
}

/// The Event each change records on the task: who moved the traffic. Best effort (a change
/// whose Event may not be written warns and goes on), so never required up front.
fn event() -> Vec<Perm> {
    optional("", "events", &["create"])
}

/// The app's ServicePolicy, read before a client-mode DestinationRule write
/// (`cluster::routing::with_service_policy`). Without it the live traffic policies stay, as
/// they do where KubeSphere is not installed: optional.
fn service_policies() -> Vec<Perm> {
    optional(SM, "servicepolicies", &["list"])
}

/// Reading and writing routing after a task changed (`ops::converge`).
fn routing(mode: Mode) -> Vec<Perm> {
    let mut out = p(ISTIO, "virtualservices", &["get", "patch"]);
    if mode == Mode::Client {
        out.extend(p("", "services", &["get"]));
        out.extend(p("", "pods", &["list"]));
        out.extend(p(ISTIO, "destinationrules", &["patch"]));
        out.extend(service_policies());
    }
    out
}

/// Everything `verb` needs in `mode`, sorted and without duplicates.
pub fn needs(verb: Verb, mode: Mode) -> Vec<Perm> {
    if mode == Mode::Gateway {
        if matches!(verb, Verb::List | Verb::ListAll) {
            // `list` tells drift from VirtualServices only (a Gateway API task's is in `status`).
            return merge(needs(verb, Mode::Client).into_iter().filter(|p| p.group != ISTIO).collect());
        }
        return merge(on_gateway_api(verb, needs(verb, Mode::Client)));
    }
    let out = match verb {
        Verb::Create => {
            let mut v = p(SM, "strategies", &["list", "create"]);
            v.extend(p("apps", "deployments", &["list", "create", "delete"]));
            v.extend(p("", "services", &["get"]));
            v.extend(p("app.k8s.io", "applications", &["get"]));
            v.extend(p(ISTIO, "virtualservices", &["get"]));
            v.extend(p(ISTIO, "destinationrules", &["get"]));
            v.extend(p("", "pods", &["watch"]));
            v.extend(owners());
            v.extend(event());
            match mode {
                Mode::Client | Mode::Gateway => {
                    // Server-side apply creates the routing objects the first time: create too.
                    v.extend(p(ISTIO, "destinationrules", &["patch", "create"]));
                    v.extend(p(ISTIO, "virtualservices", &["patch", "create"]));
                    v.extend(p("", "pods", &["list"]));
                    v.extend(service_policies());
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
            // Drift: without them the rows come without it.
            v.extend(optional("", "services", &["list"]));
            v.extend(optional(ISTIO, "virtualservices", &["list"]));
            v
        }
        Verb::ListAll => {
            let mut v: Vec<Perm> =
                needs(Verb::List, mode).into_iter().map(|p| Perm { cluster: true, ..p }).collect();
            // Listing namespace by namespace past the first page (`cluster::list_all`): without
            // it the tasks come as one chain of pages.
            v.extend(optional("", "namespaces", &["list"]).into_iter().map(|p| Perm { cluster: true, ..p }));
            v
        }
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
            v.extend(read_round());
            v.extend(routing(mode));
            v.extend(owners());
            v.extend(event());
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
            // The incident lever: one read round, then the task and the VirtualService (client
            // routing). Nothing is checked up front, so nothing it can do without is required:
            // when the DestinationRule must change too (a version's readiness changed since the
            // last routing), it also needs what `sync` needs; and its Event is best effort.
            let mut v = p(SM, "strategies", &["get", "patch"]);
            v.extend(read_round());
            if mode == Mode::Client {
                v.extend(p(ISTIO, "virtualservices", &["patch"]));
            }
            v.extend(owners());
            v.extend(event().into_iter().map(|p| Perm { optional: true, ..p }));
            v
        }
        Verb::Offline => {
            let mut v = p(SM, "strategies", &["get", "patch", "delete"]);
            v.extend(p("apps", "deployments", &["delete"]));
            v.extend(read_round());
            v.extend(routing(mode));
            v.extend(owners());
            v.extend(event());
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
            v.extend(read_round());
            v.extend(routing(mode));
            v.extend(owners());
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
                optional: false,
            })
            .collect(),
    };
    merge(out)
}

const GATEWAY: &str = "gateway.networking.k8s.io";

/// Client routing's permissions moved to Gateway API: the VirtualService's become the
/// HTTPRoute's, the DestinationRule's become the per-version Services' (the read round lists
/// the namespace's Services); offline deletes the per-version Services; a mirror below 100%
/// reads the HTTPRoute CRD's schema, and create reads the namespace (ambient mode).
fn on_gateway_api(verb: Verb, client: Vec<Perm>) -> Vec<Perm> {
    let mut out: Vec<Perm> = client
        .into_iter()
        .filter(|p| p.resource != "servicepolicies")
        .map(|p| match (p.group, p.resource) {
            (ISTIO, "virtualservices") => Perm { group: GATEWAY, resource: "httproutes", ..p },
            (ISTIO, "destinationrules") => {
                let verb = if p.verb == "get" { "list" } else { p.verb };
                Perm { group: "", resource: "services", verb, ..p }
            }
            _ => p,
        })
        .collect();
    let crd = Perm {
        group: "apiextensions.k8s.io",
        resource: "customresourcedefinitions",
        verb: "get",
        cluster: true,
        namespace: None,
        name: Some("httproutes.gateway.networking.k8s.io"),
        optional: true,
    };
    match verb {
        Verb::Create => {
            out.extend(p(GATEWAY, "httproutes", &["list"]));
            out.extend(p("", "services", &["create", "patch"]));
            out.extend(optional("", "namespaces", &["get"]).into_iter().map(|p| Perm { cluster: true, ..p }));
            out.push(crd);
        }
        Verb::Offline => {
            out.extend(p("", "services", &["list", "delete"]));
            out.extend(p(GATEWAY, "httproutes", &["get", "patch", "delete"]));
        }
        Verb::Status => out.extend(p("", "services", &["list"])),
        Verb::Sync | Verb::Mirror | Verb::Shift | Verb::Match | Verb::Undo | Verb::Resume | Verb::Pause => {
            out.extend(p("", "services", &["create", "patch"]));
            out.push(crd);
        }
        _ => {}
    }
    out
}

/// Sorted, without duplicates, and without an optional permission that is also required.
pub fn merge(mut perms: Vec<Perm>) -> Vec<Perm> {
    perms.sort();
    perms.dedup();
    let required: Vec<Perm> = perms.iter().filter(|p| !p.optional).cloned().collect();
    perms.retain(|p| !p.optional || !required.contains(&Perm { optional: false, ..p.clone() }));
    perms
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
    let perms = merge(perms.to_vec());
    let rules = |cluster: bool, ns: Option<&str>, optional: bool| -> Vec<Value> {
        let mut by: BTreeMap<(&str, &str, Option<&str>), Vec<&str>> = BTreeMap::new();
        for p in perms.iter().filter(|p| p.cluster == cluster && p.namespace == ns && p.optional == optional)
        {
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
        // Optional rules come last, so that one comment above them says what they are.
        let mut ns_rules = rules(false, ns, false);
        ns_rules.extend(rules(false, ns, true));
        if !ns_rules.is_empty() {
            let mut role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": name, "namespace": ns.unwrap_or(namespace)}, "rules": ns_rules});
            let optional: Vec<String> = perms
                .iter()
                .filter(|p| p.optional && !p.cluster && p.namespace == ns)
                .map(|p| p.to_string())
                .collect();
            if !optional.is_empty() {
                role["metadata"]["annotations"] = json!({ANN_OPTIONAL: optional.join(", ")});
            }
            out.push(role);
        }
    }
    let cluster_rules = rules(true, None, false);
    if !cluster_rules.is_empty() {
        out.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": name}, "rules": cluster_rules}));
    }
    out
}

/// The permissions a printed rule grants, as `Perm` displays them.
fn rule_perms(rule: &Value) -> Vec<String> {
    let strs = |k: &str| -> Vec<&str> {
        rule[k].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
    };
    let mut out = Vec::new();
    for g in strs("apiGroups") {
        for r in strs("resources") {
            for v in strs("verbs") {
                out.push(if g.is_empty() { format!("{v} {r}") } else { format!("{v} {r}.{g}") });
            }
        }
    }
    out
}

/// The objects as YAML documents, with `OPTIONAL_NOTE` as a comment above a Role's optional
/// rules (its last ones, as `roles` orders them; the annotation names their permissions).
pub fn yaml(objects: &[Value]) -> String {
    let docs: Vec<String> = objects
        .iter()
        .map(|o| {
            let text = serde_yaml_ng::to_string(o).expect("roles serialise");
            let Some(named) = o["metadata"]["annotations"][ANN_OPTIONAL].as_str() else { return text };
            let named: Vec<&str> = named.split(", ").collect();
            let rules = o["rules"].as_array().map_or(&[][..], Vec::as_slice);
            let Some(first) =
                rules.iter().position(|r| rule_perms(r).iter().all(|p| named.contains(&p.as_str())))
            else {
                return text;
            };
            let mut out = String::new();
            let (mut in_rules, mut seen) = (false, 0);
            for line in text.lines() {
                in_rules |= line == "rules:";
                if in_rules && line.starts_with("- ") {
                    if seen == first {
                        out.push_str(&format!("# {OPTIONAL_NOTE}\n"));
                    }
                    seen += 1;
                }
                out.push_str(line);
                out.push('\n');
            }
            out
        })
        .collect();
    docs.join("---\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(perms: &[Perm], group: &str, resource: &str, verb: &str) -> bool {
        perms.iter().any(|p| p.group == group && p.resource == resource && p.verb == verb)
    }

    #[test]
    fn gateway_api_routing_needs_httproutes_and_services_never_istios_objects() {
        for v in Verb::ALL {
            let g = needs(v, Mode::Gateway);
            assert!(!g.iter().any(|p| p.group == ISTIO), "{v:?}: {g:?}");
        }
        let t = needs(Verb::Takeover, Mode::Gateway);
        assert!(has(&t, GATEWAY, "httproutes", "get") && has(&t, GATEWAY, "httproutes", "patch"));
        assert!(has(&t, "", "services", "list"), "the read round lists the per-version Services");
        let o = needs(Verb::Offline, Mode::Gateway);
        assert!(has(&o, "", "services", "delete") && has(&o, GATEWAY, "httproutes", "delete"));
        let c = needs(Verb::Create, Mode::Gateway);
        assert!(has(&c, GATEWAY, "httproutes", "list") && has(&c, "", "services", "create"));
        assert_eq!(has_opt(&c, "", "namespaces", "get"), Some(true), "ambient detection is optional");
    }

    #[test]
    fn client_routing_needs_the_routing_writes_and_kubesphere_routing_does_not() {
        let c = needs(Verb::Shift, Mode::Client);
        assert!(has(&c, ISTIO, "destinationrules", "patch") && has(&c, "", "pods", "list"));
        let k = needs(Verb::Shift, Mode::Kubesphere);
        assert!(!has(&k, ISTIO, "destinationrules", "patch"));
        // The read round lists the pods in both modes (live-state checks).
        assert!(has(&k, "", "pods", "list"));
        assert!(has(&k, SM, "strategies", "patch"));
    }

    #[test]
    fn only_client_routing_reads_the_apps_service_policy_and_never_requires_it() {
        for verb in [Verb::Create, Verb::Shift, Verb::Sync, Verb::Offline, Verb::Undo] {
            assert_eq!(
                has_opt(&needs(verb, Mode::Client), SM, "servicepolicies", "list"),
                Some(true),
                "{verb:?}"
            );
            for mode in [Mode::Kubesphere, Mode::Gateway] {
                assert_eq!(
                    has_opt(&needs(verb, mode), SM, "servicepolicies", "list"),
                    None,
                    "{verb:?} {mode:?}"
                );
            }
        }
        // A take-over writes no DestinationRule unless a version's readiness changed: nothing more.
        assert_eq!(has_opt(&needs(Verb::Takeover, Mode::Client), SM, "servicepolicies", "list"), None);
    }

    #[test]
    fn list_needs_only_the_tasks_and_deployments_and_may_read_the_routing_and_namespaces() {
        for m in [Mode::Client, Mode::Kubesphere, Mode::Gateway] {
            for v in [Verb::List, Verb::ListAll] {
                let n = needs(v, m);
                assert_eq!(has_opt(&n, SM, "strategies", "list"), Some(false), "{v:?} {m:?}");
                assert_eq!(has_opt(&n, "apps", "deployments", "list"), Some(false), "{v:?} {m:?}");
                assert_eq!(has_opt(&n, "", "services", "list"), Some(true), "{v:?} {m:?}");
                let vs = (m != Mode::Gateway).then_some(true);
                assert_eq!(has_opt(&n, ISTIO, "virtualservices", "list"), vs, "{v:?} {m:?}");
                assert_eq!(n.iter().filter(|p| !p.optional).count(), 2, "{v:?} {m:?}: {n:?}");
            }
            assert_eq!(has_opt(&needs(Verb::ListAll, m), "", "namespaces", "list"), Some(true));
            assert_eq!(has_opt(&needs(Verb::List, m), "", "namespaces", "list"), None);
            assert!(needs(Verb::ListAll, m).iter().all(|p| p.cluster), "{m:?}");
        }
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
        assert_eq!(
            (r[0]["metadata"]["name"].as_str(), r[0]["metadata"]["namespace"].as_str()),
            (Some("oncall"), Some("demo"))
        );
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

    fn has_opt(perms: &[Perm], group: &str, resource: &str, verb: &str) -> Option<bool> {
        perms
            .iter()
            .find(|p| p.group == group && p.resource == resource && p.verb == verb)
            .map(|p| p.optional)
    }

    const CHANGES: [Verb; 11] = [
        Verb::Create,
        Verb::Shift,
        Verb::ShiftGradual,
        Verb::ShiftGated,
        Verb::Match,
        Verb::Mirror,
        Verb::Pause,
        Verb::Resume,
        Verb::Offline,
        Verb::Undo,
        Verb::Takeover,
    ];

    #[test]
    fn every_change_records_an_event_and_none_waits_for_its_permission() {
        for v in CHANGES {
            for m in [Mode::Client, Mode::Kubesphere] {
                let want = Some(true);
                assert_eq!(has_opt(&needs(v, m), "", "events", "create"), want, "{v:?} {m:?}");
            }
        }
        for v in [Verb::Sync, Verb::Status, Verb::History, Verb::Analyze, Verb::List] {
            assert_eq!(
                has_opt(&needs(v, Mode::Client), "", "events", "create"),
                None,
                "{v:?} changes nothing"
            );
        }
    }

    #[test]
    fn owner_detection_reads_the_routing_objects_and_may_list_other_controllers() {
        for v in CHANGES.into_iter().chain([Verb::Sync]) {
            for m in [Mode::Client, Mode::Kubesphere] {
                let n = needs(v, m);
                for (g, r) in [(ISTIO, "virtualservices"), (ISTIO, "destinationrules"), ("", "services")] {
                    assert_eq!(has_opt(&n, g, r, "get"), Some(false), "{v:?} {m:?} get {r}");
                }
                assert_eq!(has_opt(&n, "argoproj.io", "rollouts", "list"), Some(true), "{v:?} {m:?}");
            }
        }
    }

    #[test]
    fn a_permission_both_optional_and_required_is_required() {
        let mut both = optional("", "events", &["create"]);
        both.extend(p("", "events", &["create"]));
        let merged = merge(both);
        assert_eq!(has_opt(&merged, "", "events", "create"), Some(false));
        assert_eq!(merged.iter().filter(|p| p.resource == "events").count(), 1);
    }

    #[test]
    fn optional_rules_come_last_under_a_comment_and_are_named_by_an_annotation() {
        let r = roles(&needs(Verb::Shift, Mode::Client), "demo", "oncall");
        let role = &r[0];
        assert_eq!(
            role["metadata"]["annotations"][ANN_OPTIONAL],
            "create events, list rollouts.argoproj.io, list servicepolicies.servicemesh.kubesphere.io"
        );
        let rules = role["rules"].as_array().unwrap();
        assert_eq!(rules.last().unwrap()["resources"], json!(["servicepolicies"]));
        // Every change's Event is best effort: it comes last with the Rollouts, under one comment.
        let t = roles(&needs(Verb::Takeover, Mode::Client), "demo", "oncall");
        assert_eq!(t[0]["metadata"]["annotations"][ANN_OPTIONAL], "create events, list rollouts.argoproj.io");
        let text = yaml(&t);
        let at = text.lines().position(|l| l.starts_with("# Optional:")).expect(&text);
        assert_eq!(text.lines().nth(at + 2), Some("  - ''"), "the events rule first:\n{text}");
        assert_eq!(serde_yaml_ng::from_str::<Value>(&text).unwrap(), t[0]);
        let text = yaml(&r);
        let lines: Vec<&str> = text.lines().collect();
        let at = lines.iter().position(|l| l.starts_with("# Optional:")).expect(&text);
        assert_eq!(lines[at + 1], "- apiGroups:", "{text}");
        assert_eq!(lines[at + 2], "  - ''", "{text}");
        assert_eq!(text.matches("# Optional:").count(), 1);
        let back: Value = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(&back, role);
        // A Role without optional rules has no comment.
        let plain = yaml(&roles(&needs(Verb::Status, Mode::Client), "demo", "oncall"));
        assert!(!plain.contains('#'), "{plain}");
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
