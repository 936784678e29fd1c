//! The one place that talks to the Kubernetes API. Every call names what it does to which
//! object, so failures classify into the plugin's errors with context.

pub mod prometheus;
mod retry;
mod trace;
mod watch;

pub use retry::RetryLayer;
pub use trace::TraceLayer;

pub use watch::{PodChange, PodWatch, await_routing, pod_events, pod_events_from, transient};

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::core::{ApiResource, DynamicObject, NamespaceResourceScope};
use kube::{Client, Config, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::FIELD_MANAGER;
use crate::error::{Error, Result, Target};

/// kubectl-style connection options.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    pub kubeconfig: Option<std::path::PathBuf>,
    pub context: Option<String>,
    pub cluster: Option<String>,
    pub user: Option<String>,
    pub namespace: Option<String>,
    pub request_timeout: Option<Duration>,
    /// Impersonation, as kubectl's --as, --as-group and --as-uid.
    pub as_user: Option<String>,
    pub as_groups: Vec<String>,
    pub as_uid: Option<String>,
    /// kubectl's -v: 6 logs every request, 8 their bodies too.
    pub verbosity: u8,
}

#[derive(Clone)]
pub struct Kube {
    pub client: Client,
    /// `-n`, else the context's namespace, else `default`.
    pub namespace: String,
    /// The kubeconfig user, for the task journal ("who, as far as the client knows").
    pub user: String,
}

/// Server-side dry run or a real write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    Real,
    DryRun,
}

pub fn user_agent() -> String {
    format!("kubectl-grayscale/{}", env!("CARGO_PKG_VERSION"))
}

impl Kube {
    pub async fn connect(o: &ConnectOptions) -> Result<Self> {
        let opts = kube::config::KubeConfigOptions {
            context: o.context.clone(),
            cluster: o.cluster.clone(),
            user: o.user.clone(),
        };
        let kc = match &o.kubeconfig {
            Some(path) => kube::config::Kubeconfig::read_from(path)
                .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?,
            None => read_kubeconfig().map_err(|e| Error::Config(e.to_string()))?,
        };
        let user = o
            .as_user
            .clone()
            .or_else(|| o.user.clone())
            .or_else(|| context_user(&kc, o.context.as_deref()))
            .unwrap_or_else(|| "unknown".into());
        let mut config =
            Config::from_custom_kubeconfig(kc, &opts).await.map_err(|e| Error::Config(e.to_string()))?;
        if o.as_user.is_some() || !o.as_groups.is_empty() {
            config.auth_info.impersonate = o.as_user.clone();
            config.auth_info.impersonate_groups = (!o.as_groups.is_empty()).then(|| o.as_groups.clone());
            config.auth_info.impersonate_uid = o.as_uid.clone();
        }
        if let Some(t) = o.request_timeout {
            config.connect_timeout = Some(t);
            config.read_timeout = Some(t);
        }
        config.headers.push((
            http::header::USER_AGENT,
            http::HeaderValue::from_str(&user_agent()).expect("ascii user agent"),
        ));
        let namespace = o.namespace.clone().unwrap_or_else(|| config.default_namespace.clone());
        // Our own retries replace the client's (which would also repeat writes that may have
        // been applied); the request log sits inside them, so each attempt is logged.
        config.default_retry = false;
        let builder =
            kube::client::ClientBuilder::try_from(config).map_err(|e| Error::Config(e.to_string()))?;
        let client = if o.verbosity >= 6 {
            builder.with_layer(&TraceLayer { bodies: o.verbosity >= 8 }).with_layer(&RetryLayer).build()
        } else {
            builder.with_layer(&RetryLayer).build()
        };
        Ok(Kube { client, namespace, user })
    }

    /// A JSON merge patch; a `metadata.resourceVersion` in it makes the write conditional.
    pub async fn merge_patch<K>(&self, ns: &str, name: &str, patch: &serde_json::Value) -> Result<K>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + DeserializeOwned
            + Clone
            + std::fmt::Debug,
    {
        let pp = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..PatchParams::default() };
        self.api::<K>(ns)
            .patch(name, &pp, &Patch::Merge(patch))
            .await
            .map_err(|e| classify(target::<K>("update", Some(ns), Some(name)), e))
    }

    /// An RFC 6902 JSON patch; a `test` operation in it makes the write conditional (a failed
    /// test is `Ok(None)`: nothing was written).
    pub async fn json_patch<K>(&self, ns: &str, name: &str, ops: &serde_json::Value) -> Result<Option<K>>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + DeserializeOwned
            + Clone
            + std::fmt::Debug,
    {
        let pp = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..PatchParams::default() };
        let patch: json_patch::Patch = serde_json::from_value(ops.clone()).expect("a JSON patch");
        match self.api::<K>(ns).patch(name, &pp, &Patch::<()>::Json(patch)).await {
            Ok(o) => Ok(Some(o)),
            // The API server answers a failed `test` (or a missing path) with 422, and a missing
            // object with 404: in both cases nothing was written.
            Err(kube::Error::Api(s)) if s.code == 422 || s.code == 404 => Ok(None),
            Err(e) => Err(classify(target::<K>("update", Some(ns), Some(name)), e)),
        }
    }

    fn api<K>(&self, ns: &str) -> Api<K>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>,
    {
        Api::namespaced(self.client.clone(), ns)
    }

    pub async fn get<K>(&self, ns: &str, name: &str) -> Result<Option<K>>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + DeserializeOwned
            + Clone
            + std::fmt::Debug,
    {
        self.api::<K>(ns)
            .get_opt(name)
            .await
            .map_err(|e| classify(target::<K>("read", Some(ns), Some(name)), e))
    }

    /// Lists in one namespace, or all with `None`, following continue tokens page by page.
    pub async fn list<K>(&self, ns: Option<&str>, selector: Option<&str>) -> Result<Vec<K>>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + DeserializeOwned
            + Clone
            + std::fmt::Debug,
    {
        let mut out = Vec::new();
        self.list_pages(ns, selector, |page: Vec<K>| out.extend(page)).await?;
        Ok(out)
    }

    /// Hands each page of a list to `each` as it arrives, so a caller that keeps less than the
    /// whole objects never holds them all.
    pub async fn list_pages<K>(
        &self,
        ns: Option<&str>,
        selector: Option<&str>,
        mut each: impl FnMut(Vec<K>),
    ) -> Result<()>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + DeserializeOwned
            + Clone
            + std::fmt::Debug,
    {
        let api: Api<K> = match ns {
            Some(ns) => self.api(ns),
            None => Api::all(self.client.clone()),
        };
        let mut lp = ListParams::default().limit(500);
        if let Some(s) = selector {
            lp = lp.labels(s);
        }
        loop {
            let page = api.list(&lp).await.map_err(|e| classify(target::<K>("list", ns, None), e))?;
            each(page.items);
            match page.metadata.continue_ {
                Some(c) if !c.is_empty() => lp = lp.continue_token(&c),
                _ => break,
            }
        }
        Ok(())
    }

    /// Warning events in a namespace (the `type` field selector every release serves).
    pub async fn warning_events(&self, ns: &str) -> Result<Vec<k8s_openapi::api::core::v1::Event>> {
        let lp = ListParams::default().fields("type=Warning").limit(500);
        let api: Api<k8s_openapi::api::core::v1::Event> = self.api(ns);
        api.list(&lp)
            .await
            .map(|l| l.items)
            .map_err(|e| classify(target::<k8s_openapi::api::core::v1::Event>("list", Some(ns), None), e))
    }

    /// One page-by-page list, with the resourceVersion to watch from.
    pub async fn list_with_version<K>(&self, ns: &str, selector: &str) -> Result<(Vec<K>, String)>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + DeserializeOwned
            + Clone
            + std::fmt::Debug,
    {
        let lp = ListParams::default().labels(selector);
        let list = self
            .api::<K>(ns)
            .list(&lp)
            .await
            .map_err(|e| classify(target::<K>("list", Some(ns), None), e))?;
        Ok((list.items, list.metadata.resource_version.unwrap_or_default()))
    }

    pub async fn create<K>(&self, ns: &str, obj: &K, write: Write) -> Result<K>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + DeserializeOwned
            + Serialize
            + Clone
            + std::fmt::Debug,
    {
        let pp = PostParams { dry_run: write == Write::DryRun, field_manager: Some(FIELD_MANAGER.into()) };
        let name = obj.meta().name.clone();
        self.api::<K>(ns)
            .create(&pp, obj)
            .await
            .map_err(|e| classify(target::<K>("create", Some(ns), name.as_deref()), e))
    }

    /// Server-side apply with the plugin's field manager. `force` takes over fields another
    /// manager set, as a controller that owns the object does.
    pub async fn apply<K>(&self, ns: &str, obj: &K, write: Write, force: bool) -> Result<K>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + DeserializeOwned
            + Serialize
            + Clone
            + std::fmt::Debug,
    {
        let name = obj.meta().name.clone().unwrap_or_default();
        let mut pp = PatchParams::apply(FIELD_MANAGER);
        if force {
            pp = pp.force();
        }
        if write == Write::DryRun {
            pp = pp.dry_run();
        }
        self.api::<K>(ns)
            .patch(&name, &pp, &Patch::Apply(obj))
            .await
            .map_err(|e| classify(target::<K>("apply", Some(ns), Some(&name)), e))
    }

    pub async fn delete<K>(&self, ns: &str, name: &str) -> Result<bool>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + DeserializeOwned
            + Clone
            + std::fmt::Debug,
    {
        let dp = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..DeleteParams::default()
        };
        match self.api::<K>(ns).delete(name, &dp).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
            Err(e) => Err(classify(target::<K>("delete", Some(ns), Some(name)), e)),
        }
    }

    /// The current user's rules in `ns` (a SelfSubjectRulesReview: one request for all of them);
    /// None where the authorizer cannot list them completely (webhooks), so that callers ask
    /// permission by permission instead.
    pub async fn rules_review(
        &self,
        ns: &str,
    ) -> Result<Option<Vec<k8s_openapi::api::authorization::v1::ResourceRule>>> {
        use k8s_openapi::api::authorization::v1::{SelfSubjectRulesReview, SelfSubjectRulesReviewSpec};
        let review = SelfSubjectRulesReview {
            spec: SelfSubjectRulesReviewSpec { namespace: Some(ns.to_string()) },
            ..Default::default()
        };
        let api: Api<SelfSubjectRulesReview> = Api::all(self.client.clone());
        let target =
            Target { action: "create", kind: "SelfSubjectRulesReview".into(), namespace: None, name: None };
        let answer = api.create(&PostParams::default(), &review).await.map_err(|e| classify(target, e))?;
        Ok(answer.status.filter(|s| !s.incomplete).map(|s| s.resource_rules))
    }

    /// Whether the current user may do what `p` names (a SelfSubjectAccessReview).
    pub async fn can_i(&self, ns: &str, p: &crate::plan::rbac::Perm) -> Result<bool> {
        use k8s_openapi::api::authorization::v1::{
            ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
        };
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    group: Some(p.group.to_string()),
                    resource: Some(p.resource.to_string()),
                    verb: Some(p.verb.to_string()),
                    namespace: (!p.cluster).then(|| ns.to_string()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let api: Api<SelfSubjectAccessReview> = Api::all(self.client.clone());
        let target =
            Target { action: "create", kind: "SelfSubjectAccessReview".into(), namespace: None, name: None };
        let answer = api.create(&PostParams::default(), &review).await.map_err(|e| classify(target, e))?;
        Ok(answer.status.is_some_and(|s| s.allowed))
    }

    /// The composed app (app.k8s.io Application), if the cluster has one by that name.
    pub async fn application(&self, ns: &str, name: &str) -> Result<Option<serde_json::Value>> {
        let ar = ApiResource {
            group: "app.k8s.io".into(),
            version: "v1beta1".into(),
            api_version: "app.k8s.io/v1beta1".into(),
            kind: "Application".into(),
            plural: "applications".into(),
        };
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), ns, &ar);
        match api.get_opt(name).await {
            Ok(o) => Ok(o.map(|o| serde_json::to_value(o).unwrap_or_default())),
            // No Application CRD at all: a plain Istio cluster.
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
            Err(e) => Err(classify(
                Target {
                    action: "read",
                    kind: "Application".into(),
                    namespace: Some(ns.into()),
                    name: Some(name.into()),
                },
                e,
            )),
        }
    }

    pub async fn crd(&self, name: &str) -> Result<Option<CustomResourceDefinition>> {
        let api: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        api.get_opt(name).await.map_err(|e| classify(crd_target("read", name), e))
    }

    pub async fn apply_crd(
        &self,
        crd: &CustomResourceDefinition,
        write: Write,
    ) -> Result<CustomResourceDefinition> {
        let api: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        let name = crd.metadata.name.clone().unwrap_or_default();
        let mut pp = PatchParams::apply(FIELD_MANAGER).force();
        if write == Write::DryRun {
            pp = pp.dry_run();
        }
        api.patch(&name, &pp, &Patch::Apply(crd)).await.map_err(|e| classify(crd_target("create", &name), e))
    }
}

/// KUBECONFIG as kubectl reads it: files that do not exist are skipped (kube's own reader fails
/// on them) and the rest merged in order; when none exists, the error names the first.
fn read_kubeconfig() -> Result<kube::config::Kubeconfig, kube::config::KubeconfigError> {
    use kube::config::Kubeconfig;
    let listed: Vec<std::path::PathBuf> = std::env::var_os("KUBECONFIG")
        .map(|v| std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty()).collect())
        .unwrap_or_default();
    let Some(first) = listed.first() else { return Kubeconfig::read() };
    let existing: Vec<&std::path::PathBuf> = listed.iter().filter(|p| p.exists()).collect();
    if existing.is_empty() {
        return Kubeconfig::read_from(first);
    }
    existing
        .into_iter()
        .try_fold(Kubeconfig::default(), |merged, p| Kubeconfig::read_from(p).and_then(|c| merged.merge(c)))
}

fn context_user(kc: &kube::config::Kubeconfig, context: Option<&str>) -> Option<String> {
    let name = context.map(str::to_string).or_else(|| kc.current_context.clone())?;
    kc.contexts.iter().find(|c| c.name == name)?.context.as_ref()?.user.clone()
}

fn crd_target(action: &'static str, name: &str) -> Target {
    Target { action, kind: "CustomResourceDefinition".into(), namespace: None, name: Some(name.into()) }
}

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
    fn forbidden_and_conflict_are_told_apart() {
        let t = || target::<crate::model::strategy::Strategy>("update", Some("ns"), Some("x"));
        assert_eq!(classify(t(), status(403)).exit_code(), 5);
        assert_eq!(classify(t(), status(409)).exit_code(), 4);
        assert_eq!(classify(t(), status(500)).exit_code(), 1);
    }
}
