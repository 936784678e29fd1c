//! The one place that talks to the Kubernetes API. Every call names what it does to which
//! object, so failures classify into the plugin's errors with context.

pub mod access;
mod connect;
mod crds;
mod errors;
pub mod events;
pub mod gateway;
pub mod identity_cache;
mod list_all;
mod objects;
pub mod prometheus;
mod read;
mod retry;
pub mod route;
mod routing;
pub mod task;
pub mod task_watch;
mod together;
mod trace;
mod watch;
pub mod whoami;

pub use retry::RetryLayer;
pub use trace::TraceLayer;

pub use errors::{classify, target, watch_error};
pub use objects::Pages;
pub use watch::{PodChange, PodWatch, await_routing, pod_events, pod_events_from, transient};

use std::time::Duration;

use kube::{Client, Config};

use crate::error::{Error, Result};

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
    /// Who changes tasks, for the journal and the Events: the impersonated user (`--as`), else
    /// the kubeconfig user until `route::change` asks the cluster (`whoami::user`).
    pub user: String,
    /// `--as` was given: the cluster takes the user to be that one, no need to ask.
    pub impersonated: bool,
    /// Whether `user` is already who the cluster sees (asked, or `--as`).
    pub user_known: bool,
    /// The API server's address, which keys the identity cache.
    pub server: String,
    /// Set once a failed Event write was reported, so a command warns about it once.
    pub(crate) event_warned: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The served Strategy CRD's schema, read at most once per command (`strategy_schema`).
    pub(crate) strategy_schema:
        std::sync::Arc<std::sync::Mutex<Option<crate::plan::strategy_schema::StrategySchema>>>,
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
        let server = config.cluster_url.to_string();
        // Our own retries replace the client's (which would also repeat writes that may have
        // been applied); the request log sits inside them, so each attempt is logged.
        config.default_retry = false;
        let builder = connect::builder(&config)?;
        let client = if o.verbosity >= 6 {
            builder.with_layer(&TraceLayer { bodies: o.verbosity >= 8 }).with_layer(&RetryLayer).build()
        } else {
            builder.with_layer(&RetryLayer).build()
        };
        Ok(Kube {
            client,
            namespace,
            user,
            impersonated: o.as_user.is_some(),
            user_known: o.as_user.is_some(),
            server,
            event_warned: Default::default(),
            strategy_schema: Default::default(),
        })
    }
}

/// The kubeconfig's contexts with their servers and namespaces, for `--context a,b` and
/// `--context /regex/` to be checked before any request.
pub fn known_contexts(kubeconfig: Option<&std::path::Path>) -> Result<Vec<crate::plan::fleet::KnownContext>> {
    let kc = load_kubeconfig(kubeconfig)?;
    let server = |cluster: &str| {
        kc.clusters.iter().find(|c| c.name == cluster).and_then(|c| c.cluster.as_ref()?.server.clone())
    };
    Ok(kc
        .contexts
        .iter()
        .map(|c| crate::plan::fleet::KnownContext {
            name: c.name.clone(),
            server: c.context.as_ref().and_then(|x| server(&x.cluster)),
            namespace: c.context.as_ref().and_then(|x| x.namespace.clone()),
        })
        .collect())
}

/// The kubeconfig's current context, if it names one.
pub fn current_context(kubeconfig: Option<&std::path::Path>) -> Result<Option<String>> {
    Ok(load_kubeconfig(kubeconfig)?.current_context.filter(|c| !c.is_empty()))
}

fn load_kubeconfig(path: Option<&std::path::Path>) -> Result<kube::config::Kubeconfig> {
    match path {
        Some(path) => kube::config::Kubeconfig::read_from(path)
            .map_err(|e| Error::Config(format!("{}: {e}", path.display()))),
        None => read_kubeconfig().map_err(|e| Error::Config(e.to_string())),
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
