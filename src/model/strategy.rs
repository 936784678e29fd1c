//! servicemesh.kubesphere.io/v1alpha2 Strategy: a grayscale release task, with the console's
//! annotations and conventions (kubesphere-compat section 2).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::{Deserialize, Serialize};

use super::istio::VirtualServiceSpec;
use super::{Extra, custom_resource};

pub const API_VERSION: &str = "servicemesh.kubesphere.io/v1alpha2";
pub const KIND: &str = "Strategy";
pub const CRD_NAME: &str = "strategies.servicemesh.kubesphere.io";

pub const ANN_OLD_WORKLOAD: &str = "servicemesh.kubesphere.io/oldWorkloadName";
pub const ANN_NEW_WORKLOAD: &str = "servicemesh.kubesphere.io/newWorkloadName";
pub const ANN_WORKLOAD_TYPE: &str = "servicemesh.kubesphere.io/workloadType";
pub const ANN_WORKLOAD_REPLICAS: &str = "servicemesh.kubesphere.io/workloadReplicas";
pub const ANN_ICON: &str = "app.kubernetes.io/icon";
pub const ANN_SERVICEMESH_ENABLED: &str = "servicemesh.kubesphere.io/enabled";

pub const LABEL_APP: &str = "app";
pub const LABEL_VERSION: &str = "version";
pub const LABEL_APP_NAME: &str = "app.kubernetes.io/name";
pub const LABEL_APP_VERSION: &str = "app.kubernetes.io/version";

pub const POLICY_WAIT: &str = "WaitForWorkloadReady";
pub const POLICY_PAUSED: &str = "Paused";
pub const POLICY_IMMEDIATELY: &str = "Immediately";

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Strategy {
    #[serde(rename = "apiVersion", default = "api_version")]
    pub api_version: String,
    #[serde(default = "kind")]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: StrategySpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
}
custom_resource!(Strategy, "servicemesh.kubesphere.io", "v1alpha2", "Strategy", "strategies");

fn api_version() -> String {
    API_VERSION.to_string()
}
fn kind() -> String {
    KIND.to_string()
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StrategySpec {
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// Absent, `""` or a version; a non-empty value sends every port to that version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub governor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    #[serde(default)]
    pub template: RouteTemplate,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct RouteTemplate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
    #[serde(default)]
    pub spec: VirtualServiceSpec,
}

/// The three task types, spelled as the console writes and reads them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskType {
    #[serde(rename = "Bluegreen")]
    BlueGreen,
    Canary,
    Mirror,
}

impl TaskType {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskType::BlueGreen => "Bluegreen",
            TaskType::Canary => "Canary",
            TaskType::Mirror => "Mirror",
        }
    }

    /// Reads `spec.type`. The Go constant `BlueGreen` is accepted too, though the console never
    /// writes it.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "Bluegreen" | "BlueGreen" => Some(TaskType::BlueGreen),
            "Canary" => Some(TaskType::Canary),
            "Mirror" => Some(TaskType::Mirror),
            _ => None,
        }
    }
}

impl Strategy {
    pub fn task_type(&self) -> Option<TaskType> {
        self.spec.kind.as_deref().and_then(TaskType::parse)
    }

    /// The version the routes or the mirror name besides the principal.
    pub fn new_version(&self) -> Option<String> {
        let principal = self.spec.principal.clone().unwrap_or_default();
        let t = &self.spec.template.spec;
        t.http
            .iter()
            .flat_map(|h| {
                h.route
                    .iter()
                    .map(|r| r.destination.subset.clone())
                    .chain(std::iter::once(h.mirror.as_ref().and_then(|m| m.subset.clone())))
            })
            .chain(t.tcp.iter().flat_map(|r| r.route.iter().map(|d| d.destination.subset.clone())))
            .flatten()
            .find(|v| *v != principal)
    }

    pub fn governor(&self) -> Option<&str> {
        self.spec.governor.as_deref().filter(|g| !g.is_empty())
    }

    pub fn policy(&self) -> &str {
        self.spec.strategy_policy.as_deref().unwrap_or("")
    }

    /// The Service the task releases: `hosts[0]` of the template.
    pub fn service(&self) -> Option<&str> {
        self.spec.template.spec.hosts.first().map(String::as_str)
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.metadata.annotations.as_ref()?.get(key).map(String::as_str)
    }

    pub fn labels(&self) -> BTreeMap<String, String> {
        self.metadata.labels.clone().unwrap_or_default()
    }
}

/// KubeSphere's NormalizeVersionName: subset names drop `.`, `_` and `-`.
pub fn normalize_version(v: &str) -> String {
    v.chars().filter(|c| !matches!(c, '.' | '_' | '-')).collect()
}
