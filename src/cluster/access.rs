//! Permission checks before a multi-step command writes anything.

use k8s_openapi::api::authorization::v1::ResourceRule;
use kube::api::{Api, PostParams};

use super::{Kube, classify};
use crate::error::{Error, Result, Target};
use crate::plan::rbac;

impl Kube {
    /// The current user's rules in `ns` (a SelfSubjectRulesReview: one request for all of them);
    /// None where the authorizer cannot list them completely (webhooks), so that callers ask
    /// permission by permission instead.
    pub async fn rules_review(
        &self,
        ns: &str,
    ) -> Result<Option<Vec<k8s_openapi::api::authorization::v1::ResourceRule>>> {
        use k8s_openapi::api::authorization::v1::{SelfSubjectRulesReview, SelfSubjectRulesReviewSpec};
        let review = SelfSubjectRulesReview {
            spec: SelfSubjectRulesReviewSpec { namespace: Some(ns.to_string()) },
            ..Default::default()
        };
        let api: Api<SelfSubjectRulesReview> = Api::all(self.client.clone());
        let target =
            Target { action: "create", kind: "SelfSubjectRulesReview".into(), namespace: None, name: None };
        let answer = api.create(&PostParams::default(), &review).await.map_err(|e| classify(target, e))?;
        Ok(answer.status.filter(|s| !s.incomplete).map(|s| s.resource_rules))
    }

    /// Whether the current user may do what `p` names (a SelfSubjectAccessReview).
    pub async fn can_i(&self, ns: &str, p: &crate::plan::rbac::Perm) -> Result<bool> {
        use k8s_openapi::api::authorization::v1::{
            ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
        };
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    group: Some(p.group.to_string()),
                    resource: Some(p.resource.to_string()),
                    verb: Some(p.verb.to_string()),
                    namespace: (!p.cluster).then(|| ns.to_string()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let api: Api<SelfSubjectAccessReview> = Api::all(self.client.clone());
        let target =
            Target { action: "create", kind: "SelfSubjectAccessReview".into(), namespace: None, name: None };
        let answer = api.create(&PostParams::default(), &review).await.map_err(|e| classify(target, e))?;
        Ok(answer.status.is_some_and(|s| s.allowed))
    }
}

/// The user's rules in a namespace; None where the authorizer cannot list them completely.
pub type Rules = Option<Vec<ResourceRule>>;

/// Checks every permission `perms` names: one SelfSubjectRulesReview (or, where the authorizer
/// cannot answer it completely, one SelfSubjectAccessReview per permission, all at once). A
/// missing one is reported by name and nothing is done.
pub async fn preflight(kube: &Kube, ns: &str, what: &str, perms: &[rbac::Perm]) -> Result<()> {
    let rules = kube.rules_review(ns).await?;
    preflight_with(kube, ns, what, perms, rules).await
}

/// `preflight` with the rules already read (in the same round as the command's other reads).
pub async fn preflight_with(
    kube: &Kube,
    ns: &str,
    what: &str,
    perms: &[rbac::Perm],
    rules: Rules,
) -> Result<()> {
    // Permissions in another namespace (Prometheus's) are proved by their first request;
    // optional ones are not needed at all.
    let perms: Vec<&rbac::Perm> = perms.iter().filter(|p| p.namespace.is_none() && !p.optional).collect();
    let mut missing = Vec::new();
    match rules {
        Some(rules) => missing.extend(perms.iter().copied().filter(|p| !rbac::allowed(&rules, p))),
        None => {
            let answers = futures::future::join_all(perms.iter().map(|p| kube.can_i(ns, p))).await;
            for (p, a) in perms.iter().zip(answers) {
                if !a? {
                    missing.push(*p);
                }
            }
        }
    }
    let Some(first) = missing.first() else { return Ok(()) };
    Err(Error::Forbidden {
        target: Target {
            action: first.verb,
            kind: if first.group.is_empty() {
                first.resource.to_string()
            } else {
                format!("{}.{}", first.resource, first.group)
            },
            namespace: (!first.cluster).then(|| ns.to_string()),
            name: None,
        },
        message: format!(
            "{what} needs {}; nothing was written (see every permission it needs with: kubectl grayscale rbac)",
            missing.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ")
        ),
    })
}
