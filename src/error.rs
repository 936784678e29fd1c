//! One error type for the whole plugin. Each variant knows its exit code and, where a person
//! can do something about it, a hint. Rendering lives in `main.rs`.

use std::fmt;

/// One problem with the user's input, named by the field it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub message: String,
}

impl Problem {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// What the plugin was doing to which object, for error messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    pub action: &'static str,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.action, self.kind)?;
        match (&self.namespace, &self.name) {
            (Some(ns), Some(n)) => write!(f, " {ns}/{n}"),
            (None, Some(n)) => write!(f, " {n}"),
            (Some(ns), None) => write!(f, " in namespace {ns}"),
            (None, None) => Ok(()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid input:\n{}", list(.0))]
    Invalid(Vec<Problem>),

    #[error("{what}")]
    Ineligible { what: String, hint: String },

    #[error("{target}: not found{}", detail(.message))]
    NotFound { target: Target, message: String, hint: Option<String> },

    #[error("{target}: forbidden: {message}")]
    Forbidden { target: Target, message: String },

    #[error("{target}: conflict: {message}")]
    Conflict { target: Target, message: String, hint: Option<String> },

    #[error("{target}: {}", api_message(.source))]
    Api { target: Target, source: Box<kube::Error> },

    #[error("cannot load the Kubernetes configuration: {0}")]
    Config(String),

    #[error("{message}")]
    Rollout { message: String, hint: String },

    /// A step failed after an earlier write succeeded; `source` is the failure itself.
    #[error("{message}{}", cause(.source))]
    Partial { message: String, hint: String, source: Option<Box<Error>> },

    /// A command ran out of its time; the message says what was applied.
    #[error("{message}")]
    Deadline { message: String, hint: String },

    /// A watch broke off; nothing was written.
    #[error("{message}")]
    Watch { message: String, hint: String },

    /// Prometheus could not be reached or a gate's query failed.
    #[error("metrics: {message}")]
    Metrics { message: String, hint: String },

    #[error("health gate: {message}")]
    HealthGate { message: String, hint: String },

    #[error("interrupted: {message}")]
    Interrupted { message: String, hint: String },

    /// The live state does not allow the change (no ready pod, no subset, a paused task);
    /// nothing was written.
    #[error("refused: {message}")]
    NotLive { message: String, hint: String },

    /// Another controller owns the routing; nothing was written.
    #[error("refused: {message}")]
    Owned { message: String, hint: String },

    /// A gradual shift found the task changed by someone else since its last step and stopped.
    #[error("{message}")]
    Yielded { message: String, hint: String },

    /// A take-over across clusters that is not as asked on every cluster; the message names
    /// the clusters left and the command that retries just those.
    #[error("{message}")]
    Clusters { message: String, hint: String },

    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The server's own words for an API error, without the client's debug dump.
fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if !s.message.is_empty() => format!("{} ({} {})", s.message, s.code, s.reason),
        other => other.to_string(),
    }
}

fn cause(source: &Option<Box<Error>>) -> String {
    source.as_ref().map(|e| format!(": {e}")).unwrap_or_default()
}

fn list(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n")
}

fn detail(message: &str) -> String {
    if message.is_empty() { String::new() } else { format!(" ({message})") }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Exit codes, documented in the README.
pub mod exit {
    pub const FAILURE: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const NOT_FOUND: i32 = 3;
    pub const CONFLICT: i32 = 4;
    pub const FORBIDDEN: i32 = 5;
    pub const ROLLOUT: i32 = 6;
    pub const PARTIAL: i32 = 7;
    pub const CONFIG: i32 = 8;
    pub const HEALTH_GATE: i32 = 9;
    pub const METRICS: i32 = 10;
    pub const NOT_LIVE: i32 = 11;
    pub const YIELDED: i32 = 12;
    pub const OWNED: i32 = 13;
    /// A take-over across clusters finished on some clusters and not on others (or on none).
    pub const CLUSTERS_LEFT: i32 = 14;
    pub const INTERRUPTED: i32 = 130;
}

impl Error {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid(vec![Problem::new(field, message)])
    }

    /// An object that a read found missing, with what to do about it.
    pub fn missing(kind: &str, ns: &str, name: &str, hint: impl Into<String>) -> Self {
        Error::NotFound {
            target: Target {
                action: "read",
                kind: kind.into(),
                namespace: Some(ns.into()),
                name: Some(name.into()),
            },
            message: String::new(),
            hint: Some(hint.into()),
        }
    }

    /// A write whose outcome is unknown: its answer never came (the connection broke or timed
    /// out), or a server error that may have been sent after the write was stored (500, 502,
    /// 504). It may or may not have been applied.
    pub fn answer_lost(&self) -> bool {
        match self {
            Error::Api { source, .. } => match source.as_ref() {
                kube::Error::Api(s) => matches!(s.code, 500 | 502 | 504),
                _ => true,
            },
            _ => false,
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Invalid(_) | Error::Ineligible { .. } => exit::USAGE,
            Error::NotFound { .. } => exit::NOT_FOUND,
            Error::Conflict { .. } => exit::CONFLICT,
            Error::Forbidden { .. } => exit::FORBIDDEN,
            Error::Rollout { .. } => exit::ROLLOUT,
            // Missing permissions stay recognisable: the on-call user must ask for them.
            Error::Partial { source: Some(e), .. } if e.exit_code() == exit::FORBIDDEN => exit::FORBIDDEN,
            Error::Partial { .. } => exit::PARTIAL,
            Error::Config(_) => exit::CONFIG,
            Error::HealthGate { .. } => exit::HEALTH_GATE,
            Error::Metrics { .. } => exit::METRICS,
            Error::Interrupted { .. } => exit::INTERRUPTED,
            Error::NotLive { .. } => exit::NOT_LIVE,
            Error::Yielded { .. } => exit::YIELDED,
            Error::Owned { .. } => exit::OWNED,
            Error::Clusters { .. } => exit::CLUSTERS_LEFT,
            Error::Api { .. } | Error::Watch { .. } | Error::Deadline { .. } | Error::Io(_) => exit::FAILURE,
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Invalid(_) => Some("run the command with --help for the accepted values".into()),
            Error::Partial { hint, source, .. } => Some(match source.as_ref().and_then(|e| e.hint()) {
                Some(h) => format!("{h}; then {hint}"),
                None => hint.clone(),
            }),
            Error::Ineligible { hint, .. }
            | Error::Watch { hint, .. }
            | Error::Deadline { hint, .. }
            | Error::Rollout { hint, .. }
            | Error::HealthGate { hint, .. }
            | Error::Metrics { hint, .. }
            | Error::Interrupted { hint, .. }
            | Error::NotLive { hint, .. }
            | Error::Yielded { hint, .. }
            | Error::Owned { hint, .. }
            | Error::Clusters { hint, .. } => Some(hint.clone()),
            Error::NotFound { hint, .. } | Error::Conflict { hint, .. } => hint.clone(),
            Error::Forbidden { target, .. } => Some(format!(
                "ask a cluster administrator for permission to {} {}; \
                 `kubectl auth can-i {} {}` checks it",
                target.action,
                target.kind,
                verb_of(target.action),
                target.kind.to_lowercase()
            )),
            Error::Config(_) => Some(
                "check --kubeconfig, --context and the KUBECONFIG variable; `kubectl config view` shows what kubectl sees"
                    .into(),
            ),
            Error::Api { source, .. } => match source.as_ref() {
                kube::Error::HyperError(_) | kube::Error::Service(_) => {
                    Some("the API server could not be reached: check the cluster address and your network".into())
                }
                _ => None,
            },
            Error::Io(_) => None,
        }
    }
}

fn verb_of(action: &str) -> &str {
    match action {
        "read" => "get",
        "list" => "list",
        "watch" => "watch",
        "create" => "create",
        "update" | "apply" => "patch",
        "delete" => "delete",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_input_lists_every_problem_with_its_field() {
        let e = Error::Invalid(vec![
            Problem::new("name", "must be lowercase"),
            Problem::new("version", "too long"),
        ]);
        assert_eq!(e.to_string(), "invalid input:\n  - name: must be lowercase\n  - version: too long");
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn forbidden_names_the_permission_to_ask_for() {
        let e = Error::Forbidden {
            target: Target {
                action: "create",
                kind: "CustomResourceDefinition".into(),
                namespace: None,
                name: Some("x".into()),
            },
            message: "no".into(),
        };
        assert!(e.hint().unwrap().contains("kubectl auth can-i create customresourcedefinition"));
        assert_eq!(e.exit_code(), 5);
    }
}
