//! Cluster-scoped and optional APIs: the composed app and the CRDs.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::core::{ApiResource, DynamicObject};

use super::{Kube, Write, classify};
use crate::FIELD_MANAGER;
use crate::error::{Result, Target};
use crate::model::strategy::CRD_NAME;
use crate::plan::strategy_schema::{self, StrategySchema};

impl Kube {
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

    /// The served Strategy CRD's schema, read once per command (one GET, only by the writes that
    /// need it: `strategy_schema::needs_schema`). Where the CRD may not be read, every field is
    /// assumed kept and `warn` says that the check did not run.
    pub async fn strategy_schema(&self, warn: &dyn Fn(&str)) -> Result<StrategySchema> {
        if let Some(s) = self.strategy_schema.lock().expect("schema cache").clone() {
            return Ok(s);
        }
        let schema = match self.crd(CRD_NAME).await {
            Ok(Some(crd)) => StrategySchema::of_crd(&serde_json::to_value(crd).unwrap_or_default()),
            Ok(None) => StrategySchema::keeps_all(),
            Err(e @ crate::error::Error::Forbidden { .. }) => {
                warn(&format!(
                    "cannot read the Strategy CRD ({e}): not checked whether it keeps the task's request conditions \
                     (KubeSphere 3.4's drops them, kubesphere/kubesphere#3845)"
                ));
                StrategySchema::keeps_all()
            }
            Err(e) => return Err(e),
        };
        *self.strategy_schema.lock().expect("schema cache") = Some(schema.clone());
        Ok(schema)
    }

    /// Refuses routes the served Strategy CRD would cut (nothing written), and returns the
    /// spelling of the mirror percentage it keeps. Reads the CRD only where `needs_schema`.
    pub async fn check_routes(
        &self,
        task: &str,
        before: &[crate::model::istio::HttpRoute],
        after: &[crate::model::istio::HttpRoute],
        warn: &dyn Fn(&str),
    ) -> Result<strategy_schema::MirrorKey> {
        if !strategy_schema::needs_schema(before, after) {
            return Ok(strategy_schema::MirrorKey::Camel);
        }
        let schema = self.strategy_schema(warn).await?;
        let pruned = schema.pruned(after);
        if !pruned.is_empty() {
            return Err(strategy_schema::refusal(task, &pruned));
        }
        Ok(schema.mirror_key().unwrap_or(strategy_schema::MirrorKey::Camel))
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

impl Kube {
    /// Argo Rollouts' Rollouts in a namespace, for owner detection: empty where the CRD is not
    /// installed, None where they may not be listed (detection then falls back to annotations
    /// and managedFields, and says so at -v 6).
    pub async fn rollouts(&self, ns: &str) -> Result<Option<Vec<serde_json::Value>>> {
        let ar = ApiResource {
            group: "argoproj.io".into(),
            version: "v1alpha1".into(),
            api_version: "argoproj.io/v1alpha1".into(),
            kind: "Rollout".into(),
            plural: "rollouts".into(),
        };
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), ns, &ar);
        match api.list(&kube::api::ListParams::default()).await {
            Ok(l) => {
                Ok(Some(l.items.into_iter().map(|o| serde_json::to_value(o).unwrap_or_default()).collect()))
            }
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(Some(vec![])),
            Err(kube::Error::Api(s)) if s.code == 403 => {
                tracing::info!(
                    "may not list rollouts.argoproj.io in {ns}: owner detection falls back to annotations and managedFields"
                );
                Ok(None)
            }
            Err(e) => Err(classify(
                Target { action: "list", kind: "Rollout".into(), namespace: Some(ns.into()), name: None },
                e,
            )),
        }
    }

    /// Waits until the CRD is established; false when `timeout` passed first.
    pub async fn crd_established(&self, name: &str, timeout: std::time::Duration) -> bool {
        use kube::runtime::conditions::is_crd_established;
        use kube::runtime::wait::await_condition;
        let api: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        matches!(
            tokio::time::timeout(timeout, await_condition(api, name, is_crd_established())).await,
            Ok(Ok(_))
        )
    }
}

fn crd_target(action: &'static str, name: &str) -> Target {
    Target { action, kind: "CustomResourceDefinition".into(), namespace: None, name: Some(name.into()) }
}
