//! The flags of `create`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::output::parse_duration;
use crate::plan::routing::RoutingChoice;
use crate::task::request::CreateFlags;

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypeArg {
    Bluegreen,
    Canary,
    Mirror,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DryRun {
    None,
    Client,
    Server,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectFormat {
    Yaml,
    Json,
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  # Canary: send 10% of the traffic to v2, with a new image for the container \"reviews\"
  kubectl grayscale create canary reviews-canary --service reviews --version v2 \\
      --image reviews=example/reviews:2.0 --weight 10

  # Canary by request: Chrome users on Android and requests with x-beta=1 go to v2
  kubectl grayscale create canary reviews-beta --service reviews --version v2 --header x-beta=1 --os android

  # Blue-green: v2 runs beside v1 and takes no traffic until you take it over
  kubectl grayscale create bluegreen reviews-bg --service reviews --version v2 --image example/reviews:2.0

  # Mirror live traffic to v2
  kubectl grayscale create mirror reviews-shadow --service reviews --version v2

  # Everything from a task file (see the README for its schema), flags win over the file
  kubectl grayscale create canary -f task.yaml --weight 20

  # Print what would be written
  kubectl grayscale create canary reviews-canary --service reviews --version v2 --dry-run=client -o yaml")]
pub struct CreateArgs {
    /// Task type: bluegreen, canary or mirror.
    #[arg(value_enum)]
    pub task_type: TypeArg,
    /// Task name (lowercase letters, digits and '-'); may come from the task file.
    pub name: Option<String>,
    /// Task file (YAML) with every setting; `-` reads standard input.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The Service to release.
    #[arg(long)]
    pub service: Option<String>,
    /// The composed app (app.k8s.io Application); defaults to the Service's app.kubernetes.io/name.
    #[arg(long)]
    pub app: Option<String>,
    /// New version number: lowercase letters and digits, at most 16.
    #[arg(long = "version", value_name = "VERSION")]
    pub new_version: Option<String>,
    /// Pod replicas of the new version (default: the old version's).
    #[arg(long)]
    pub replicas: Option<i64>,
    /// Replace a container's image, keeping its other settings: [CONTAINER=]IMAGE. Repeatable.
    #[arg(long = "image", value_name = "[CONTAINER=]IMAGE")]
    pub images: Vec<String>,
    /// CPU request in cores: [CONTAINER=]CORES.
    #[arg(long, value_name = "[CONTAINER=]CORES")]
    pub cpu_request: Vec<String>,
    /// CPU limit in cores: [CONTAINER=]CORES.
    #[arg(long, value_name = "[CONTAINER=]CORES")]
    pub cpu_limit: Vec<String>,
    /// Memory request in MiB: [CONTAINER=]MIB.
    #[arg(long, value_name = "[CONTAINER=]MIB")]
    pub memory_request: Vec<String>,
    /// Memory limit in MiB: [CONTAINER=]MIB.
    #[arg(long, value_name = "[CONTAINER=]MIB")]
    pub memory_limit: Vec<String>,
    /// Image pull policy: [CONTAINER=]IfNotPresent|Always|Never.
    #[arg(long, value_name = "[CONTAINER=]POLICY")]
    pub image_pull_policy: Vec<String>,
    /// Secret with private registry credentials for the new version's pods. Repeatable.
    #[arg(long = "image-pull-secret", value_name = "SECRET")]
    pub image_pull_secrets: Vec<String>,
    /// Remove a container from the new version. Repeatable.
    #[arg(long = "remove-container", value_name = "CONTAINER")]
    pub remove_containers: Vec<String>,
    /// Blue-green: the version that takes all traffic at creation (old or new; default old).
    #[arg(long, value_name = "old|new")]
    pub takeover: Option<String>,
    /// Canary by traffic: the new version's share in percent, 0-100 (default 50).
    #[arg(long)]
    pub weight: Option<i64>,
    #[command(flatten)]
    pub conditions: crate::commands::matching::MatchFlags,
    /// Who writes the DestinationRule and VirtualService (see the README).
    #[arg(long, value_enum, default_value_t = RoutingChoice::Auto)]
    pub routing: RoutingChoice,
    /// Print the objects instead of writing them: client (nothing sent) or server (validated by the API server).
    #[arg(long, value_enum, num_args = 0..=1, require_equals = true, default_missing_value = "client", default_value = "none")]
    pub dry_run: DryRun,
    /// Print the written (or dry-run) objects in this format.
    #[arg(short, long, value_enum)]
    pub output: Option<ObjectFormat>,
    /// Return once the objects are written, without following the rollout.
    #[arg(long)]
    pub no_wait: bool,
    /// Give up following the rollout after this long (e.g. 90s, 5m).
    #[arg(long, value_parser = parse_duration, default_value = "5m")]
    pub timeout: Duration,
    /// Fail once a pod has been failing (ImagePullBackOff, CrashLoopBackOff...) for this long.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub fail_after: Duration,
    #[command(flatten)]
    pub force: crate::commands::change::Force,
}

impl CreateArgs {
    pub(super) fn flags(&self, namespace: Option<String>) -> CreateFlags {
        let mut f = CreateFlags {
            name: self.name.clone(),
            namespace,
            service: self.service.clone(),
            app: self.app.clone(),
            version: self.new_version.clone(),
            replicas: self.replicas,
            images: self.images.clone(),
            cpu_request: self.cpu_request.clone(),
            cpu_limit: self.cpu_limit.clone(),
            memory_request: self.memory_request.clone(),
            memory_limit: self.memory_limit.clone(),
            image_pull_policy: self.image_pull_policy.clone(),
            image_pull_secrets: self.image_pull_secrets.clone(),
            remove_containers: self.remove_containers.clone(),
            takeover: self.takeover.clone(),
            weight: self.weight,
            ..CreateFlags::default()
        };
        self.conditions.fill(&mut f);
        f
    }
}
