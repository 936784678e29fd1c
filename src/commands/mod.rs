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
pub mod takeover_fleet;
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
        // Only `takeover` runs over several clusters; a list must never reach kube's config
        // loader, which would fail on it with a misleading "no such context".
        if let Some(c) = &self.global.context
            && crate::plan::fleet::parse(c)?.is_fleet()
        {
            return Err(crate::error::Error::invalid(
                "--context",
                format!(
                    "{c:?} names several contexts; only takeover runs over several clusters, every other command takes one context"
                ),
            ));
        }
        Kube::connect(&self.global.connect_options()).await
    }
}
