//! kubectl-grayscale: grayscale releases on Istio, compatible with KubeSphere.
pub mod model;
