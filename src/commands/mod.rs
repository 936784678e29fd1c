//! One module per verb, each with its `Args` and one `run`.

pub mod create;
pub mod init;
pub mod list;
pub mod status;
pub mod sync;
pub mod version;

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
