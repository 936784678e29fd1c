//! The command line: global kubectl-style options, defined once, and one subcommand per file in
//! `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::cluster::ConnectOptions;
use crate::commands;
use crate::output::{ColorChoice, parse_duration};

#[derive(Parser, Debug)]
#[command(
    name = "kubectl-grayscale",
    bin_name = "kubectl grayscale",
    version,
    about = "Grayscale releases (blue-green, canary, traffic mirroring) on Istio, compatible with KubeSphere",
    long_about = "Grayscale releases on Istio from the terminal.\n\n\
        A task is a servicemesh.kubesphere.io/v1alpha2 Strategy, written exactly as the KubeSphere console \
        writes it, so the console and this plugin operate the same tasks. On a plain Istio cluster the plugin \
        also derives the DestinationRule and VirtualService itself, as KubeSphere's controllers would.",
    after_help = "Examples:\n  \
        kubectl grayscale create canary reviews-canary --service reviews --version v2 --image reviews=example/reviews:v2 --weight 10\n  \
        kubectl grayscale list -A\n  \
        kubectl grayscale status reviews-canary -n bookinfo"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Shown after each command's own flags, under their own heading, as kubectl splits its
/// options from its global options.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Path to the kubeconfig file (default: KUBECONFIG, then ~/.kube/config).
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// The kubeconfig cluster to use.
    #[arg(long, global = true)]
    pub cluster: Option<String>,
    /// The kubeconfig user to use.
    #[arg(long, global = true)]
    pub user: Option<String>,
    /// Namespace of the task (default: the context's namespace).
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    /// Time to wait for each API request (e.g. 10s, 1m); 0 waits for ever.
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_duration)]
    pub request_timeout: Option<std::time::Duration>,
    /// Username to impersonate for the operation, as kubectl's --as.
    #[arg(long = "as", global = true, value_name = "USER")]
    pub as_user: Option<String>,
    /// Group to impersonate (repeat for several), as kubectl's --as-group.
    #[arg(long = "as-group", global = true, value_name = "GROUP")]
    pub as_group: Vec<String>,
    /// UID to impersonate, as kubectl's --as-uid.
    #[arg(long = "as-uid", global = true, value_name = "UID")]
    pub as_uid: Option<String>,
    /// Log level as kubectl's: 6 prints every API request (method, path, status, latency) on
    /// stderr, 8 their bodies too (Secret data and tokens redacted).
    #[arg(short = 'v', long = "v", global = true, value_name = "N", default_value_t = 0)]
    pub verbosity: u8,
    /// Colour the output: auto (a terminal and no NO_COLOR), always or never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

impl GlobalArgs {
    pub fn connect_options(&self) -> ConnectOptions {
        ConnectOptions {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            cluster: self.cluster.clone(),
            user: self.user.clone(),
            namespace: self.namespace.clone(),
            request_timeout: self.request_timeout.filter(|d| !d.is_zero()),
            as_user: self.as_user.clone(),
            as_groups: self.as_group.clone(),
            as_uid: self.as_uid.clone(),
            verbosity: self.verbosity,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the plugin's version.
    Version(commands::version::VersionArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell).
    Completion(commands::completion::CompletionArgs),
    /// Install the Strategy custom resource definition where it is missing.
    Init(commands::init::InitArgs),
    /// Create a grayscale release task and watch the new version roll out.
    Create(Box<commands::create::CreateArgs>),
    /// List grayscale release tasks.
    #[command(visible_alias = "ls")]
    List(commands::list::ListArgs),
    /// Show one task: versions, replicas, pods and traffic.
    #[command(visible_alias = "get")]
    Status(commands::status::StatusArgs),
    /// Shift a canary's traffic: absolute, relative, or gradually, gated on pod health and metrics.
    Shift(commands::shift::ShiftArgs),
    /// The old and the new version side by side from Prometheus: rate, success, latency, gates.
    Analyze(commands::analyze::AnalyzeArgs),
    /// Route a canary by request parameters (header, cookie, URI, client OS), or back to a ratio.
    Match(commands::matching::MatchArgs),
    /// Send every port to one version at once (the incident lever), or --restore.
    Takeover(commands::takeover::TakeoverArgs),
    /// Mirror live traffic to the new version, or stop.
    Mirror(commands::mirror::MirrorArgs),
    /// Pause a task: routing goes back to the Service's default.
    Pause(commands::pause::PauseArgs),
    /// Resume a paused task.
    Resume(commands::pause::PauseArgs),
    /// End a task keeping one version.
    #[command(visible_alias = "delete")]
    Offline(commands::offline::OfflineArgs),
    /// Show the task's journal of routing changes.
    History(commands::history::HistoryArgs),
    /// Revert the task's last journaled change.
    Undo(commands::history::UndoArgs),
    /// Re-derive a task's DestinationRule and VirtualService (client routing mode).
    Sync(commands::sync::SyncArgs),
    /// Print the minimal Role (and ClusterRole) for the given verbs.
    Rbac(commands::rbac::RbacArgs),
    /// Print the Argo CD or Flux configuration that leaves the task's routing to this plugin.
    Gitops(commands::gitops::GitopsArgs),
}
