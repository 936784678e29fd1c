//! Decides whether the KubeSphere conformance suite (`tests/conformance_kubesphere.rs`) runs.
//!
//! KubeSphere 3.3's controllers are test tooling the team keeps beside the repository, in
//! `../shared/peers/kubesphere-3.3/` (or `$GRAYSCALE_PEERS_DIR/kubesphere-3.3/`). Where that
//! folder is there, this sets `cfg(kubesphere_peer)` and `GRAYSCALE_KUBESPHERE_PEER` (the folder)
//! and the suite runs: a peer that cannot start fails it. Where it is not, the suite is compiled
//! as ignored, so cargo lists its tests as ignored instead of counting them as passed.
//! Likewise `cfg(kubesphere_crds)` where KubeSphere 3.3's and 3.4's Strategy CRDs are there, and
//! `cfg(gateway_api_peer)` where Gateway API v1.6.1's standard HTTPRoute CRD is.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=GRAYSCALE_PEERS_DIR");
    println!("cargo::rustc-check-cfg=cfg(kubesphere_peer)");
    println!("cargo::rustc-check-cfg=cfg(kubesphere_crds)");
    println!("cargo::rustc-check-cfg=cfg(gateway_api_peer)");
    let manifest =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let peers =
        manifest.join(std::env::var_os("GRAYSCALE_PEERS_DIR").unwrap_or_else(|| "../shared/peers".into()));
    let peer = peers.join("kubesphere-3.3");
    // Watch the nearest folder that exists: the peer's (its removal reruns this), else the
    // peers' (the peer appearing in it changes its listing). A path that does not exist would
    // rebuild the package on every build, so where neither exists (a clone with no `../shared`)
    // nothing is watched; `hack/test.sh` rebuilds when the peer arrived after the last build.
    if let Some(watched) = [&peer, &peers].into_iter().find(|p| p.is_dir()) {
        println!("cargo::rerun-if-changed={}", watched.display());
    }
    if peer.is_dir() {
        println!("cargo::rustc-cfg=kubesphere_peer");
        println!("cargo::rustc-env=GRAYSCALE_KUBESPHERE_PEER={}", normal(&peer).display());
    }
    // KubeSphere 3.3's and 3.4's Strategy CRDs, for the unit tests of the schema check
    // (`src/plan/strategy_schema_tests.rs`): read from there, never copied; ignored without them.
    let crd = |v: &str| peers.join(format!("kubesphere-{v}/crds/servicemesh.kubesphere.io_strategies.yaml"));
    let (crd33, crd34) = (crd("3.3"), crd("3.4"));
    if crd33.is_file() && crd34.is_file() {
        println!("cargo::rerun-if-changed={}", crd34.display());
        println!("cargo::rustc-cfg=kubesphere_crds");
        println!("cargo::rustc-env=GRAYSCALE_KUBESPHERE_33_STRATEGY_CRD={}", normal(&crd33).display());
        println!("cargo::rustc-env=GRAYSCALE_KUBESPHERE_34_STRATEGY_CRD={}", normal(&crd34).display());
    }
    // Gateway API's own standard HTTPRoute CRD, for the Gateway API conformance suite
    // (`tests/conformance_gateway_api.rs`): ignored without it.
    let httproutes = peers.join("gateway-api-v1.6.1/crds/gateway.networking.k8s.io_httproutes.yaml");
    if httproutes.is_file() {
        println!("cargo::rerun-if-changed={}", httproutes.display());
        println!("cargo::rustc-cfg=gateway_api_peer");
        println!("cargo::rustc-env=GRAYSCALE_GATEWAY_API_HTTPROUTE_CRD={}", normal(&httproutes).display());
    }
}

/// The path without `..` steps, for messages (`/work/shared/...`, not `/work/repo/../shared/...`).
fn normal(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| p.to_path_buf())
}
