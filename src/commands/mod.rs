//! One module per verb, each with its `Args` and one `run`.

pub mod analyze;
pub mod change;
pub mod completion;
pub mod create;
pub mod gates;
pub mod gitops;
pub mod gradual;
pub mod history;
pub mod init;
pub mod list;
pub mod matching;
pub mod mirror;
pub mod offline;
pub mod pause;
pub mod rbac;
pub mod schedule_ui;
pub mod shift;
pub mod status;
pub mod sync;
pub mod takeover;
pub mod values;
pub mod version;
pub mod watch;

use crate::cli::GlobalArgs;
use crate::cluster::Kube;
use crate::error::Result;
use crate::output::Ui;

/// What every command gets: the global options and how to print.
pub struct Context {
    pub global: GlobalArgs,
    pub ui: Ui,
}

impl Context {
    pub async fn kube(&self) -> Result<Kube> {
        Kube::connect(&self.global.connect_options()).await
    }
}
