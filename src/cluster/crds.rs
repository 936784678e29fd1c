//! Cluster-scoped and optional APIs: the composed app and the CRDs.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::core::{ApiResource, DynamicObject};

use super::{Kube, Write, classify};
use crate::FIELD_MANAGER;
use crate::error::{Result, Target};

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
