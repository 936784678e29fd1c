//! Who changes a task, as the cluster sees it, for the journal and the Events: the impersonated
//! user (`--as`), else what a SelfSubjectReview answers, else the kubeconfig user.
//!
//! Asked only by the commands that change a task, once per command, and never cached across
//! commands (a kubeconfig's credentials change under the same name). Only
//! `authentication.k8s.io/v1` is asked (Kubernetes 1.28+): a cluster that does not serve it
//! answers 404, and trying `v1beta1` (1.27) and `v1alpha1` (1.26, behind a feature gate) after
//! that would cost every older cluster two more requests per command, all 404.

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use kube::api::{Api, PostParams};

use super::Kube;

/// The user: `--as` as given, else the cluster's answer, else the kubeconfig user.
pub fn choose(impersonated: Option<&str>, reviewed: Option<String>, kubeconfig: &str) -> String {
    impersonated
        .map(str::to_string)
        .or(reviewed.filter(|u| !u.is_empty()))
        .unwrap_or_else(|| kubeconfig.to_string())
}

/// What the cluster answers to "who am I"; None where it does not serve the question (404
/// before 1.28) or cannot answer it: the journal then names the kubeconfig user, and a
/// change is never refused for it.
async fn review(kube: &Kube) -> Option<String> {
    let api: Api<SelfSubjectReview> = Api::all(kube.client.clone());
    match api.create(&PostParams::default(), &SelfSubjectReview::default()).await {
        Ok(r) => r.status?.user_info?.username,
        Err(kube::Error::Api(s)) if s.code == 404 => {
            tracing::info!(
                "SelfSubjectReview not served (before Kubernetes 1.28): changes name the kubeconfig user"
            );
            None
        }
        Err(e) => {
            tracing::info!("SelfSubjectReview failed ({e}): changes name the kubeconfig user");
            None
        }
    }
}

/// The user as the cluster sees them. One request at most, and none under `--as`.
pub async fn user(kube: &Kube) -> String {
    if kube.impersonated || kube.user_known {
        return kube.user.clone();
    }
    choose(None, review(kube).await, &kube.user)
}

impl Kube {
    /// This connection with `user` as the one who changes tasks.
    pub fn with_user(mut self, user: String) -> Kube {
        self.user = user;
        self.user_known = true;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_impersonated_user_wins_then_the_clusters_answer_then_the_kubeconfig() {
        assert_eq!(choose(Some("ops"), Some("alice".into()), "admin"), "ops");
        assert_eq!(choose(None, Some("alice".into()), "admin"), "alice");
        assert_eq!(choose(None, Some(String::new()), "admin"), "admin");
        assert_eq!(choose(None, None, "admin"), "admin");
    }
}
