use std::time::Duration;

use clap::Args;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

use super::Context;
use crate::cluster::Write;
use crate::error::{Error, Result};
use crate::model::strategy::CRD_NAME;
use crate::output::{print, to_yaml};

/// The Strategy CRD as KubeSphere defines it, with a structural schema.
pub const STRATEGY_CRD: &str = include_str!("../../deploy/crds/servicemesh-strategies.yaml");

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  # Install the Strategy CRD (needs permission to create CustomResourceDefinitions)\n  \
kubectl grayscale init\n\n  # Show what would be installed\n  kubectl grayscale init --dry-run"
)]
pub struct InitArgs {
    /// Print the CRD that would be installed and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn strategy_crd() -> CustomResourceDefinition {
    serde_yaml_ng::from_str(STRATEGY_CRD).expect("the embedded Strategy CRD parses")
}

pub async fn run(ctx: &Context, args: InitArgs) -> Result<()> {
    let crd = strategy_crd();
    if args.dry_run {
        print(&to_yaml(&crd));
        return Ok(());
    }
    let kube = ctx.kube().await?;
    if kube.crd(CRD_NAME).await?.is_some() {
        ctx.ui.info(&format!("{CRD_NAME} is already installed; nothing to do"));
    } else {
        kube.apply_crd(&crd, Write::Real).await?;
        match kube.crd_established(CRD_NAME, Duration::from_secs(30)).await {
            true => ctx.ui.info(&format!("installed {CRD_NAME}")),
            false => {
                return Err(Error::Partial {
                    message: format!("{CRD_NAME} was created but is not established after 30s"),
                    hint: format!("check it with: kubectl get crd {CRD_NAME} -o yaml"),
                    source: None,
                });
            }
        }
    }
    if kube.crd("virtualservices.networking.istio.io").await?.is_none() {
        ctx.ui.warn("Istio's VirtualService CRD is missing: install Istio before creating tasks");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_strategy_crd_parses_and_serves_v1alpha2() {
        let crd = strategy_crd();
        assert_eq!(crd.metadata.name.as_deref(), Some(CRD_NAME));
        let v = &crd.spec.versions[0];
        assert_eq!((v.name.as_str(), v.served, v.storage), ("v1alpha2", true, true));
        let schema = serde_json::to_value(&v.schema).unwrap();
        let spec = &schema["openAPIV3Schema"]["properties"]["spec"]["properties"];
        assert_eq!(spec["governor"]["type"], "string");
        assert!(spec["template"]["properties"]["spec"]["properties"]["http"].is_object());
    }
}
