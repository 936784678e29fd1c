//! kubectl-grayscale: grayscale releases (blue-green, canary, mirror) on Istio, operating the
//! same `servicemesh.kubesphere.io/v1alpha2` Strategy objects as the KubeSphere console.

pub mod cli;
pub mod cluster;
pub mod commands;
pub mod complete;
pub mod error;
pub mod failpoint;
pub mod model;
pub mod output;
pub mod plan;
pub mod rollout;
pub mod signal;
pub mod task;
pub mod view;

#[cfg(test)]
mod no_panic_tests;

pub use error::{Error, Result};

/// The field manager of every server-side apply, and the user agent of every request.
pub const FIELD_MANAGER: &str = "kubectl-grayscale";
