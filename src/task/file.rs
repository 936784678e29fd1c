//! The task file: one YAML document mirroring the console's four steps (basic information,
//! service settings, new version settings, strategy settings). Unknown fields are rejected so a
//! typo is an error, not a silently ignored setting. The schema is documented in the README.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::{Deserialize, Serialize};

pub const FILE_API_VERSION: &str = "grayscale.kubectl.io/v1";
pub const FILE_KIND: &str = "GrayscaleTask";

#[derive(Deserialize, Serialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskFile {
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub basic: Basic,
    #[serde(default)]
    pub service: ServiceSettings,
    #[serde(default)]
    pub new_version: NewVersion,
    #[serde(default)]
    pub strategy: StrategySettings,
}

#[derive(Deserialize, Serialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Basic {
    pub name: Option<String>,
    /// bluegreen, canary or mirror.
    #[serde(rename = "type")]
    pub task_type: Option<String>,
    pub namespace: Option<String>,
}

#[derive(Deserialize, Serialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceSettings {
    /// The composed app (an app.k8s.io Application); optional on a plain Istio service.
    pub app: Option<String>,
    pub name: Option<String>,
}

#[derive(Deserialize, Serialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewVersion {
    pub version: Option<String>,
    pub replicas: Option<i64>,
    /// Secrets holding private registry credentials, added to the pod's imagePullSecrets.
    #[serde(default)]
    pub image_pull_secrets: Vec<String>,
    /// Edits to the old version's containers: a name that exists edits that container, a new
    /// name adds one; fields left out keep the old version's settings.
    #[serde(default)]
    pub containers: Vec<ContainerEdit>,
}

#[derive(Deserialize, Serialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerEdit {
    pub name: String,
    /// Remove this container from the new version.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub remove: bool,
    /// `work` (default) or `init`.
    #[serde(rename = "type")]
    pub container_type: Option<String>,
    pub image: Option<String>,
    pub image_pull_policy: Option<String>,
    pub resources: Option<Resources>,
    pub ports: Option<Vec<PortSetting>>,
    pub liveness_probe: Option<Probe>,
    pub readiness_probe: Option<Probe>,
    pub startup_probe: Option<Probe>,
    pub post_start: Option<Action>,
    pub pre_stop: Option<Action>,
    /// Start command; a string is split at commas, as in the console.
    pub command: Option<ListOrCsv>,
    pub args: Option<ListOrCsv>,
    pub env: Option<Vec<EnvVar>>,
    pub env_from: Option<Vec<EnvFrom>>,
    pub security_context: Option<SecurityContext>,
    pub sync_host_timezone: Option<bool>,
}

/// CPU in cores, memory in MiB, as the console shows them.
#[derive(Deserialize, Serialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Resources {
    pub cpu_request: Option<f64>,
    pub cpu_limit: Option<f64>,
    pub memory_request: Option<f64>,
    pub memory_limit: Option<f64>,
}

#[derive(Deserialize, Serialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortSetting {
    pub name: Option<String>,
    /// TCP (default), UDP or SCTP.
    pub protocol: Option<String>,
    pub container_port: i64,
}

#[derive(Deserialize, Serialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Probe {
    pub http_get: Option<HttpGet>,
    pub command: Option<ListOrCsv>,
    pub tcp_port: Option<IntOrString>,
    pub initial_delay_seconds: Option<i64>,
    pub timeout_seconds: Option<i64>,
    pub period_seconds: Option<i64>,
    pub success_threshold: Option<i64>,
    pub failure_threshold: Option<i64>,
}

#[derive(Deserialize, Serialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Action {
    pub http_get: Option<HttpGet>,
    pub command: Option<ListOrCsv>,
    pub tcp_port: Option<IntOrString>,
}

#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpGet {
    /// HTTP (default) or HTTPS.
    pub scheme: Option<String>,
    pub path: Option<String>,
    pub port: IntOrString,
}

#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(untagged)]
pub enum ListOrCsv {
    List(Vec<String>),
    Csv(String),
}

impl ListOrCsv {
    pub fn items(&self) -> Vec<String> {
        match self {
            ListOrCsv::List(v) => v.clone(),
            ListOrCsv::Csv(s) => s.split(',').map(|p| p.trim().to_string()).collect(),
        }
    }
}

#[derive(Deserialize, Serialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvVar {
    pub name: String,
    pub value: Option<String>,
    pub config_map_key_ref: Option<KeyRef>,
    pub secret_key_ref: Option<KeyRef>,
}

#[derive(Deserialize, Serialize, Debug, Clone, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KeyRef {
    pub name: String,
    pub key: String,
}

/// Batch reference of a whole ConfigMap or Secret of the task's namespace.
#[derive(Deserialize, Serialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvFrom {
    pub config_map: Option<String>,
    pub secret: Option<String>,
    pub prefix: Option<String>,
}

#[derive(Deserialize, Serialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecurityContext {
    pub privileged: Option<bool>,
    pub allow_privilege_escalation: Option<bool>,
    pub read_only_root_filesystem: Option<bool>,
    pub run_as_non_root: Option<bool>,
    pub run_as_user: Option<i64>,
    pub run_as_group: Option<i64>,
    pub se_linux: Option<SeLinux>,
    pub capabilities: Option<Capabilities>,
}

#[derive(Deserialize, Serialize, Debug, Clone, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SeLinux {
    pub level: Option<String>,
    pub role: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub user: Option<String>,
}

/// Linux capabilities without the `CAP_` prefix (`SYS_TIME`, not `CAP_SYS_TIME`).
#[derive(Deserialize, Serialize, Debug, Clone, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    #[serde(default)]
    pub add: Vec<String>,
    #[serde(default)]
    pub drop: Vec<String>,
}

#[derive(Deserialize, Serialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StrategySettings {
    /// Blue-green: the version that takes over all traffic at creation, `old` (default) or `new`.
    pub takeover: Option<String>,
    /// Canary by traffic: the new version's share in percent (default 50).
    pub weight: Option<i64>,
    /// Canary by request parameters: requests matching all of these go to the new version.
    #[serde(rename = "match")]
    pub matches: Option<MatchSettings>,
}

#[derive(Deserialize, Serialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MatchSettings {
    #[serde(default)]
    pub headers: Vec<HeaderMatch>,
    pub cookie: Option<TextMatch>,
    pub uri: Option<TextMatch>,
    /// Client operating systems: windows, linux, macos, android, ios.
    #[serde(default)]
    pub os: Vec<String>,
}

#[derive(Deserialize, Serialize, Debug, Clone, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HeaderMatch {
    pub name: String,
    pub exact: Option<String>,
    pub regex: Option<String>,
}

#[derive(Deserialize, Serialize, Debug, Clone, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TextMatch {
    pub exact: Option<String>,
    pub prefix: Option<String>,
    pub regex: Option<String>,
}

impl TaskFile {
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: TaskFile = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
        if let Some(v) = &file.api_version
            && v != FILE_API_VERSION
        {
            return Err(format!("apiVersion must be {FILE_API_VERSION}, not {v}"));
        }
        if let Some(k) = &file.kind
            && k != FILE_KIND
        {
            return Err(format!("kind must be {FILE_KIND}, not {k}"));
        }
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_field_is_an_error_that_names_it() {
        let err = TaskFile::parse("newVersion:\n  verison: v2\n").unwrap_err();
        assert!(err.contains("verison"), "{err}");
    }

    #[test]
    fn commands_are_read_from_lists_or_comma_separated_text() {
        let f = TaskFile::parse(
            "newVersion:\n  containers:\n  - name: a\n    command: sh,-c\n    args: [echo, 'a,b']\n",
        )
        .unwrap();
        let c = &f.new_version.containers[0];
        assert_eq!(c.command.as_ref().unwrap().items(), ["sh", "-c"]);
        assert_eq!(c.args.as_ref().unwrap().items(), ["echo", "a,b"]);
    }

    #[test]
    fn a_wrong_kind_is_rejected() {
        assert!(TaskFile::parse("kind: Deployment\n").unwrap_err().contains("GrayscaleTask"));
    }
}
