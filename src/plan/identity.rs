//! One task's identity: which Service it releases, which VirtualService and DestinationRule
//! route it, which pods are its versions and which Deployments run them. Built once from the
//! Strategy and the Service and used by every verb, so that a Service whose name differs from
//! its pods' `app` label (`reviews-api` selecting `app: reviews`) is the same task for all of
//! them.
//!
//! The names follow KubeSphere's controllers (kubesphere-compat section 8): the DestinationRule
//! is named after the Service; the VirtualService after the Service's `app` label (step 3),
//! which the console's Services always carry; pods are what the Service selects.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use serde::{Deserialize, Serialize};

use crate::model::strategy::{ANN_NEW_WORKLOAD, ANN_OLD_WORKLOAD, LABEL_APP, LABEL_VERSION, Strategy};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskIdentity {
    pub namespace: String,
    pub task: String,
    /// The Strategy's uid: a task deleted and made again under the same name is another task.
    pub uid: String,
    pub service: String,
    /// The VirtualService's name.
    pub app: String,
    /// The labels that pick the task's pods (the Service's selector).
    pub selector: BTreeMap<String, String>,
    pub old_version: String,
    pub new_version: Option<String>,
    pub old_workload: String,
    pub new_workload: Option<String>,
    /// Which API routes the task: Istio's VirtualService or Gateway API's HTTPRoute.
    #[serde(default)]
    pub api: RouteApi,
}

/// The routing API of a task, fixed when it is created (the Strategy's `ANN_ROUTE_API`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RouteApi {
    #[default]
    Istio,
    GatewayApi,
}

/// On a task routed by Gateway API: `gateway-api`. The console's tasks never carry it.
pub const ANN_ROUTE_API: &str = "grayscale.kubectl.io/routing-api";
pub const GATEWAY_API: &str = "gateway-api";

impl RouteApi {
    pub fn of(s: &Strategy) -> Self {
        match s.annotation(ANN_ROUTE_API) {
            Some(GATEWAY_API) => RouteApi::GatewayApi,
            _ => RouteApi::Istio,
        }
    }
}

/// The VirtualService's name for a Service: its `app` label, else its selector's, else its own
/// name (the rule `create` names it by).
pub fn app_of_service(svc: &Service) -> Option<String> {
    let labels = svc.metadata.labels.as_ref();
    labels.and_then(|l| l.get(LABEL_APP)).cloned().or_else(|| {
        svc.spec.as_ref().and_then(|s| s.selector.as_ref()).and_then(|s| s.get(LABEL_APP).cloned())
    })
}

fn strategy_selector(s: &Strategy) -> Option<BTreeMap<String, String>> {
    s.spec.selector.as_ref().and_then(|l| l.match_labels.clone()).filter(|m| !m.is_empty())
}

impl TaskIdentity {
    /// The identity as far as the task alone tells (no Service read yet): a guess that the
    /// Service, once read, confirms or corrects.
    pub fn guess(s: &Strategy) -> Self {
        Self::of(s, None)
    }

    /// The identity from the task and its Service (`None`: not read, or gone).
    pub fn of(s: &Strategy, svc: Option<&Service>) -> Self {
        let service = s.service().unwrap_or_default().to_string();
        let labels = s.labels();
        let app = svc
            .and_then(app_of_service)
            .or_else(|| strategy_selector(s).and_then(|m| m.get(LABEL_APP).cloned()))
            .or_else(|| labels.get(LABEL_APP).cloned())
            .unwrap_or_else(|| service.clone());
        let selector = svc
            .and_then(|v| v.spec.as_ref()?.selector.clone())
            .filter(|m| !m.is_empty())
            .or_else(|| strategy_selector(s))
            .unwrap_or_else(|| BTreeMap::from([(LABEL_APP.to_string(), app.clone())]));
        let old_version = s.spec.principal.clone().unwrap_or_default();
        let new_version = s.new_version();
        let workload = |ann: &str, v: &str| {
            s.annotation(ann).map(str::to_string).unwrap_or_else(|| format!("{app}-{v}"))
        };
        TaskIdentity {
            namespace: s.metadata.namespace.clone().unwrap_or_default(),
            task: s.metadata.name.clone().unwrap_or_default(),
            uid: s.metadata.uid.clone().unwrap_or_default(),
            old_workload: workload(ANN_OLD_WORKLOAD, &old_version),
            new_workload: new_version.as_deref().map(|v| workload(ANN_NEW_WORKLOAD, v)),
            service,
            app,
            selector,
            old_version,
            new_version,
            api: RouteApi::of(s),
        }
    }

    /// What the read round needs to know before it reads: the objects' names.
    pub fn names(&self) -> Names {
        Names {
            service: self.service.clone(),
            app: self.app.clone(),
            selector: self.selector.clone(),
            api: self.api,
        }
    }

    /// `k=v,...`, the pods' label selector.
    pub fn pod_selector(&self) -> String {
        selector_string(&self.selector)
    }

    /// The pods of one version.
    pub fn version_selector(&self, version: &str) -> String {
        let mut sel = self.selector.clone();
        sel.insert(LABEL_VERSION.to_string(), version.to_string());
        selector_string(&sel)
    }

    /// The task's Deployments: labelled with the pods' `app`.
    pub fn workload_selector(&self) -> String {
        format!("{LABEL_APP}={}", self.selector.get(LABEL_APP).unwrap_or(&self.app))
    }

    /// The Deployment that runs `version`, if it is one of the task's.
    pub fn workload_of(&self, version: &str) -> Option<&str> {
        if version == self.old_version {
            Some(&self.old_workload)
        } else if Some(version) == self.new_version.as_deref() {
            self.new_workload.as_deref()
        } else {
            None
        }
    }
}

/// The names of the objects a verb reads about a task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    pub service: String,
    pub app: String,
    pub selector: BTreeMap<String, String>,
    pub api: RouteApi,
}

impl Names {
    pub fn pod_selector(&self) -> String {
        selector_string(&self.selector)
    }
}

fn selector_string(m: &BTreeMap<String, String>) -> String {
    m.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn task(labels: serde_json::Value, selector: Option<serde_json::Value>) -> Strategy {
        let mut spec = json!({"type": "Canary", "principal": "v1",
            "template": {"spec": {"hosts": ["reviews-api"], "http": [{"route": [
                {"destination": {"host": "reviews-api", "subset": "v1"}, "weight": 90},
                {"destination": {"host": "reviews-api", "subset": "v2"}, "weight": 10}]}]}}});
        if let Some(sel) = selector {
            spec["selector"] = json!({"matchLabels": sel});
        }
        serde_json::from_value(json!({
            "metadata": {"name": "rc", "namespace": "ns", "uid": "u1", "labels": labels,
                "annotations": {"servicemesh.kubesphere.io/oldWorkloadName": "reviews-v1"}},
            "spec": spec
        }))
        .unwrap()
    }

    fn service(labels: serde_json::Value, selector: serde_json::Value) -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": "reviews-api", "labels": labels},
            "spec": {"selector": selector, "ports": [{"name": "http", "port": 9080}]}
        }))
        .unwrap()
    }

    #[test]
    fn identity_cases() {
        // (case, task labels, task selector, service labels, service selector) -> (app, pods)
        let cases = [
            (
                "console Service: app label equal to its name",
                json!({"app": "reviews-api"}),
                None,
                Some((json!({"app": "reviews-api"}), json!({"app": "reviews-api"}))),
                ("reviews-api", "app=reviews-api"),
            ),
            (
                "Service named apart from its pods, no labels of its own",
                json!({"app": "reviews-api"}),
                None,
                Some((json!({}), json!({"app": "reviews"}))),
                ("reviews", "app=reviews"),
            ),
            (
                "the Service's own app label names the VirtualService; its selector the pods",
                json!({"app": "reviews-api"}),
                None,
                Some((json!({"app": "reviews"}), json!({"app": "reviews", "tier": "backend"}))),
                ("reviews", "app=reviews,tier=backend"),
            ),
            (
                "no Service read: the task's selector is the guess",
                json!({"app": "reviews-api"}),
                Some(json!({"app": "reviews"})),
                None,
                ("reviews", "app=reviews"),
            ),
            (
                "no Service and no selector: the task's app label",
                json!({"app": "reviews-api"}),
                None,
                None,
                ("reviews-api", "app=reviews-api"),
            ),
        ];
        for (case, labels, sel, svc, (app, pods)) in cases {
            let svc = svc.map(|(l, s)| service(l, s));
            let id = TaskIdentity::of(&task(labels, sel), svc.as_ref());
            assert_eq!((id.app.as_str(), id.pod_selector().as_str()), (app, pods), "{case}");
            assert_eq!(id.service, "reviews-api", "{case}");
        }
    }

    #[test]
    fn workloads_come_from_the_task_or_follow_the_app() {
        let svc = service(json!({}), json!({"app": "reviews"}));
        let id = TaskIdentity::of(&task(json!({}), None), Some(&svc));
        assert_eq!(id.workload_of("v1"), Some("reviews-v1"));
        assert_eq!(id.workload_of("v2"), Some("reviews-v2"));
        assert_eq!(id.workload_of("v3"), None);
        assert_eq!(id.version_selector("v2"), "app=reviews,version=v2");
    }
}
