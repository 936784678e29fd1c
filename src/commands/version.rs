use clap::Args;
use serde::Serialize;

use super::Context;
use crate::error::Result;
use crate::output::{Format, print, to_json, to_yaml};

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  kubectl grayscale version\n  kubectl grayscale version -o json")]
pub struct VersionArgs {
    /// Output format: table (plain text), json or yaml.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VersionView {
    client_version: &'static str,
    strategy_api_version: &'static str,
}

pub async fn run(_ctx: &Context, args: VersionArgs) -> Result<()> {
    let v = VersionView {
        client_version: env!("CARGO_PKG_VERSION"),
        strategy_api_version: crate::model::strategy::API_VERSION,
    };
    match args.output {
        Format::Json => print(&to_json(&v)),
        Format::Yaml => print(&to_yaml(&v)),
        _ => print(&format!("kubectl-grayscale v{}\n", v.client_version)),
    }
    Ok(())
}
